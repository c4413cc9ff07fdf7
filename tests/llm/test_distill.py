"""Distillation: the merged student computes what base + adapter computes."""
import json

from spacy_dgemma.llm.chat import encode_prompt
from spacy_dgemma.llm.prompts import build_prompts, document_from_hipe
from tests.util import HIPE_RECORDS


def test_merged_logits_equal_base_plus_adapter(tiny_models, tmp_path):
    import torch
    from peft import LoraConfig, get_peft_model

    from spacy_dgemma.llm.distill import merge_adapter
    from spacy_dgemma.llm.loading import load_model, load_tokenizer
    from spacy_dgemma.llm.sft import TEXT_TOWER_TARGETS

    path = str(tiny_models["student"])
    tokenizer = load_tokenizer(path)
    torch.manual_seed(0)
    # A random (non-zero) adapter, so that merging has something to change.
    config = LoraConfig(r=4, lora_alpha=8, target_modules=TEXT_TOWER_TARGETS, init_lora_weights=False)
    get_peft_model(load_model(path, device="cpu"), config).save_pretrained(str(tmp_path / "adapter"))
    merged_dir = merge_adapter(path, tmp_path / "adapter", tmp_path / "merged")
    assert (merged_dir / "model.safetensors").exists() and (merged_dir / "tokenizer.json").exists()

    prefix, suffix = encode_prompt(tokenizer, build_prompts(document_from_hipe(HIPE_RECORDS["en"]))[0])
    ids = torch.tensor([prefix + suffix])
    with torch.inference_mode():
        base = load_model(path, device="cpu")(ids).logits
        with_adapter = load_model(path, device="cpu", adapter=str(tmp_path / "adapter"))(ids).logits
        merged = load_model(str(merged_dir), device="cpu")(ids).logits
    assert not torch.allclose(base, with_adapter, atol=1e-3), "the adapter must change the model"
    torch.testing.assert_close(merged, with_adapter, atol=1e-4, rtol=1e-4)


def test_distill_trains_and_merges(tiny_models, tmp_path):
    from spacy_dgemma.llm.distill import distill_student
    from spacy_dgemma.llm.parse import format_response
    from spacy_dgemma.llm.sft import LoraHyperparams, sft_record

    traces = tmp_path / "traces.jsonl"
    with traces.open("w", encoding="utf8") as out:
        for prompt in build_prompts(document_from_hipe(HIPE_RECORDS["de"])):
            out.write(json.dumps(sft_record(prompt, format_response("a", "TRUE", "b", "FALSE"), {})) + "\n")
    hp = LoraHyperparams(r=4, alpha=8, learning_rate=1e-2, max_steps=3, gradient_accumulation=1, warmup=0,
                         max_length=4096, gradient_checkpointing=True)
    summary = distill_student(str(tiny_models["student"]), traces, tmp_path / "out", hp, device="cpu",
                              merge_dtype="bfloat16")
    assert summary["steps"] == 3
    assert (tmp_path / "out" / "merged" / "model.safetensors").exists()
    assert json.loads((tmp_path / "out" / "training_summary.json").read_text())["merged"] == summary["merged"]
    from safetensors.torch import load_file

    weights = load_file(str(tmp_path / "out" / "merged" / "model.safetensors"))
    assert {str(t.dtype) for t in weights.values()} == {"torch.bfloat16"}  # --merge-dtype bfloat16


def test_merge_teacher_writes_a_plain_bf16_model_with_its_licence(tiny_models, tmp_path):
    """The MoE teacher's adapter (experts included) merged into one bf16 checkpoint, as annotate serves it."""
    import torch
    from peft import LoraConfig, get_peft_model
    from safetensors.torch import load_file

    from spacy_dgemma.llm.distill import merge_teacher
    from spacy_dgemma.llm.loading import load_model, load_tokenizer
    from spacy_dgemma.llm.sft import EXPERT_PARAMETERS, TEXT_TOWER_TARGETS

    path = str(tiny_models["teacher"])
    tokenizer = load_tokenizer(path)
    torch.manual_seed(0)
    config = LoraConfig(r=4, lora_alpha=8, target_modules=TEXT_TOWER_TARGETS, target_parameters=list(EXPERT_PARAMETERS),
                        init_lora_weights=False)
    get_peft_model(load_model(path, device="cpu"), config).save_pretrained(str(tmp_path / "adapter"))
    merged_dir = merge_teacher(path, tmp_path / "adapter", tmp_path / "merged", device="cpu")
    weights = load_file(str(merged_dir / "model.safetensors"))
    assert {t.dtype for t in weights.values()} == {torch.bfloat16}
    assert not any("lora" in k or "base_layer" in k for k in weights)  # a plain model, nothing to rebuild per forward
    card = (merged_dir / "README.md").read_text(encoding="utf8")
    assert "Gemma Terms of Use" in card and "CC BY-NC-SA 4.0" in card and "MIT" in card

    prefix, suffix = encode_prompt(tokenizer, build_prompts(document_from_hipe(HIPE_RECORDS["en"]))[0])
    ids = torch.tensor([prefix + suffix])
    with torch.inference_mode():
        base = load_model(path, device="cpu", dtype="bfloat16")(ids).logits.float()
        with_adapter = load_model(path, device="cpu", dtype="bfloat16", adapter=str(tmp_path / "adapter"))(ids).logits.float()
        merged = load_model(str(merged_dir), device="cpu", dtype="bfloat16")(ids).logits.float()
    # bf16 rounding of the merged weights (and the odd expert choice it flips) against what the adapter changes.
    assert (merged - with_adapter).abs().mean() < 0.1 * (base - with_adapter).abs().mean()
