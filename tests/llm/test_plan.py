"""The memory plan, LoRA targets and the 4-bit skip list on meta instances of the paper's models,
and the planned dtypes against the tiny MoE teacher as training loads it."""
import json
import re
from pathlib import Path

import pytest

from spacy_dgemma.llm.sft import LoraHyperparams

CONFIGS = Path(__file__).resolve().parents[2] / ".." / "shared" / "gemma4-configs"
TEACHER = CONFIGS / "gemma-4-26B-A4B-it"
STUDENT = CONFIGS / "gemma-4-E2B-it"
needs_configs = pytest.mark.skipif(not (TEACHER / "config.json").exists(),
                                   reason=f"the published Gemma 4 configs are not at {CONFIGS} (see its README)")
LAYER = re.compile(r"^model\.language_model\.layers\.(\d+)\.(.+)$")


@pytest.fixture(scope="module")
def teacher_meta():
    from spacy_dgemma.llm.loading import meta_model

    return meta_model(str(TEACHER))


@pytest.fixture(scope="module")
def teacher_plan():
    from spacy_dgemma.llm.plan import plan_memory

    return plan_memory(str(TEACHER), "teacher-qlora", gpu_memory_gib=80)


@needs_configs
def test_teacher_qlora_plan_at_the_defaults_fits_80_gib(teacher_plan):
    plan = teacher_plan
    assert plan["settings"]["load_in_4bit"] and plan["settings"]["seq_len"] == 8192
    assert plan["settings"]["gradient_checkpointing"] and plan["settings"]["lora_r"] == 16
    # The counts of ../shared/gemma4-configs/README.md (meta device, transformers 5.24).
    assert plan["parameters"]["total"] == 25_805_933_872
    assert plan["parameters"]["fused_experts"] == 22_837_985_280
    gib = plan["gib"]
    # The experts stay bf16 (22.84B × 2 bytes = 42.5 GiB), not fp32 (85 GiB).
    assert 42.5 <= gib["weights_bf16"] < 46
    assert gib["weights_nf4"] < 1.5  # the 2.19B NF4 weights with their block statistics
    assert plan["lora"]["expert_parameters"] > 0 and plan["lora"]["dtypes"] == ["float32"]
    assert gib["lora_weights_gradients_adamw"] == pytest.approx(plan["lora"]["parameters"] * 16 / 2**30, abs=0.01)
    assert gib["logits_response"] < 4  # the response's logits only, not the 8k prompt's (40 GiB)
    assert plan["total_gib"] == pytest.approx(sum(gib.values()), abs=0.05)
    assert plan["total_gib"] < 80 and plan["fits"] and plan["advice"] == []
    json.dumps(plan)  # JSON-ready


@needs_configs
def test_a_plan_over_the_gpu_memory_fails_with_advice():
    from typer.testing import CliRunner

    from spacy_dgemma.cli import app
    from spacy_dgemma.llm.plan import plan_memory

    plan = plan_memory(str(STUDENT), "distill", gpu_memory_gib=12)
    assert not plan["fits"] and any("max_length" in tip for tip in plan["advice"])
    result = CliRunner().invoke(app, ["llm", "plan", str(STUDENT), "--stage", "distill", "--gpu-memory", "12", "--json"])
    assert result.exit_code == 2 and "E168" in result.stderr
    printed = json.loads(result.stdout)
    assert printed[0]["stage"] == "distill" and printed[0]["fits"] is False
    result = CliRunner().invoke(app, ["llm", "plan", str(STUDENT), "--stage", "student", "--gpu-memory", "24"])
    assert result.exit_code == 0, result.output
    assert "kv_cache" in result.stdout and "fits in 24.0 GiB" in result.stdout


@needs_configs
def test_lora_targets_on_the_real_architectures(teacher_meta):
    from spacy_dgemma.llm.loading import meta_model
    from spacy_dgemma.llm.plan import lora_parameters

    hp = LoraHyperparams(r=16, alpha=32, dropout=0.0)
    lora = lora_parameters(teacher_meta, hp)
    assert lora["target_parameters"] == ["experts.gate_up_proj", "experts.down_proj"]
    by_layer = {}
    for name in lora["adapted_modules"]:
        match = LAYER.match(name)
        assert match, f"{name} is outside the text tower's decoder layers"
        by_layer.setdefault(int(match.group(1)), set()).add(match.group(2))
    assert sorted(by_layer) == list(range(30))
    dense = {"self_attn.q_proj", "self_attn.k_proj", "self_attn.o_proj", "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj"}
    for layer, modules in by_layer.items():
        attention_mlp = {m for m in modules if not m.startswith("experts")}
        # Full-attention layers of 26B-A4B have keys equal to values: no v_proj there.
        assert attention_mlp in (dense, dense | {"self_attn.v_proj"}), (layer, attention_mlp)
        assert any(m.startswith("experts") for m in modules), layer
        assert not any("router" in m for m in modules)
    assert sum(p.numel() for n, p in teacher_meta.named_parameters() if "lora_" in n) == 0  # given back unchanged

    student = meta_model(str(STUDENT))
    lora = lora_parameters(student, hp)
    assert lora["target_parameters"] == [] and lora["expert_parameters"] == 0
    assert all(LAYER.match(n) for n in lora["adapted_modules"])
    assert not any(tower in n for n in lora["adapted_modules"] for tower in ("vision", "audio", "per_layer"))
    # 35 layers with q/o/gate/up/down; k/v only in the 15 layers that keep their own KV cache.
    assert len(lora["adapted_modules"]) == 35 * 5 + 15 * 2


@needs_configs
def test_the_4bit_skip_list_extends_transformers_defaults(teacher_meta):
    from transformers.quantizers.base import get_keys_to_not_convert

    from spacy_dgemma.llm.loading import meta_model, quantization_skip_modules
    from spacy_dgemma.llm.plan import planned_dtypes

    skip = quantization_skip_modules(teacher_meta)
    assert set(get_keys_to_not_convert(teacher_meta)) < set(skip) and "router.proj" in skip
    dtypes = planned_dtypes(teacher_meta, load_in_4bit=True)
    routers = [n for n in dtypes if n.endswith("router.proj.weight")]
    assert len(routers) == 30 and {dtypes[n] for n in routers} == {"bfloat16"}
    experts = [n for n in dtypes if ".experts." in n]
    assert len(experts) == 60 and {dtypes[n] for n in experts} == {"bfloat16"}
    assert dtypes["model.language_model.embed_tokens.weight"] == "bfloat16"  # tied to the LM head
    for layer in range(30):
        for proj in ("q_proj", "k_proj", "o_proj"):
            assert dtypes[f"model.language_model.layers.{layer}.self_attn.{proj}.weight"] == "nf4"
        assert dtypes[f"model.language_model.layers.{layer}.mlp.down_proj.weight"] == "nf4"
    assert dtypes["model.vision_tower.encoder.layers.0.self_attn.q_proj.linear.weight"] == "nf4"
    assert {d for n, d in dtypes.items() if "norm" in n} == {"bfloat16"}
    assert set(planned_dtypes(teacher_meta, load_in_4bit=False).values()) == {"bfloat16"}

    student = planned_dtypes(meta_model(str(STUDENT)), load_in_4bit=True)
    per_layer = [n for n in student if "per_layer" in n and n.endswith("proj.weight") or "per_layer_input_gate" in n]
    assert per_layer and {student[n] for n in per_layer} == {"bfloat16"}
    assert student["model.language_model.layers.0.mlp.up_proj.weight"] == "nf4"


def _base_name(name: str) -> str:
    """A parameter's name in the bare model, from its name in the peft model."""
    return name.removeprefix("base_model.model.").replace(".base_layer", "")


def test_planned_dtypes_are_the_dtypes_of_the_loaded_tiny_teacher(tiny_models):
    """The dtypes the plan assumes, checked on the tiny MoE teacher as training holds it (bf16 on CPU)."""
    import bitsandbytes as bnb
    import torch
    from peft import prepare_model_for_kbit_training

    from spacy_dgemma.llm.loading import load_model, meta_model
    from spacy_dgemma.llm.plan import lora_parameters, planned_dtypes
    from spacy_dgemma.llm.sft import add_lora

    path = str(tiny_models["teacher"])
    meta = meta_model(path)
    planned = planned_dtypes(meta, load_in_4bit=True)
    hp = LoraHyperparams(r=4, alpha=8, dropout=0.0, gradient_checkpointing=True)
    planned_lora = lora_parameters(meta, hp)
    assert "nf4" in planned.values() and any(".experts." in n for n in planned)

    model = add_lora(load_model(path, dtype="bfloat16", device="cpu", load_in_4bit=True, trainable_adapter=True), hp)
    modules = dict(model.named_modules())
    seen = set()
    for name, param in model.named_parameters():
        if "lora_" in name:
            assert str(param.dtype).removeprefix("torch.") in planned_lora["dtypes"] and param.requires_grad, name
            continue
        base = _base_name(name)
        seen.add(base)
        owner = modules[name.rsplit(".", 1)[0]]
        if planned[base] == "nf4":
            assert isinstance(owner, bnb.nn.Linear4bit) and type(param).__name__ == "Params4bit", name
        else:
            assert param.dtype == torch.bfloat16 and not isinstance(owner, bnb.nn.Linear4bit), (name, param.dtype)
        assert not param.requires_grad, name
    assert seen == set(planned)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    assert trainable == planned_lora["parameters"]
    adapted = {_base_name(n.split(".lora_")[0]) for n, p in model.named_parameters() if "lora_" in n}
    assert adapted == set(planned_lora["adapted_modules"])

    # The control: peft's own k-bit preparation upcasts the bf16 experts, which the plan rules out.
    upcast = prepare_model_for_kbit_training(load_model(path, dtype="bfloat16", device="cpu", load_in_4bit=True))
    assert {p.dtype for n, p in upcast.named_parameters() if ".experts." in n} == {torch.float32}
