"""Teacher QLoRA: 4-bit NF4 load on CPU, LoRA targets, one training step changes only LoRA weights,
the response-only loss, checkpoints and resume."""
import dataclasses
import json
import re

import pytest

from spacy_dgemma.llm.parse import format_response
from spacy_dgemma.llm.prompts import build_prompts, document_from_hipe
from spacy_dgemma.llm.sft import TEXT_TOWER_TARGETS, LoraHyperparams, sft_record
from tests.util import HIPE_RECORDS


def write_sft(path, n=2):
    prompts = build_prompts(document_from_hipe(HIPE_RECORDS["en"]))[:n]
    with path.open("w", encoding="utf8") as out:
        for prompt in prompts:
            out.write(json.dumps(sft_record(prompt, format_response("He came.", "TRUE", "Yes.", "TRUE"), {})) + "\n")
    return path


@pytest.mark.parametrize(
    "name,targeted",
    [
        ("model.layers.0.self_attn.q_proj", True),
        ("model.layers.11.mlp.down_proj", True),
        ("model.language_model.layers.3.self_attn.o_proj", True),
        ("model.language_model.layers.3.mlp.gate_proj", True),
        ("model.vision_tower.encoder.layers.0.self_attn.q_proj", False),  # Gemma4ClippableLinear
        ("model.vision_tower.encoder.layers.0.self_attn.q_proj.linear", False),
        ("model.audio_tower.layers.2.mlp.up_proj", False),
        ("model.layers.0.self_attn.q_norm", False),
        ("lm_head", False),
    ],
)
def test_lora_targets_only_the_text_tower(name, targeted):
    assert bool(re.fullmatch(TEXT_TOWER_TARGETS, name)) is targeted


def test_4bit_load_and_one_qlora_step(tiny_models, tmp_path):
    import bitsandbytes as bnb
    import torch

    from spacy_dgemma.llm.loading import load_model, load_tokenizer
    from spacy_dgemma.llm.sft import add_lora, read_jsonl, tokenize_records, train

    path = str(tiny_models["teacher"])
    tokenizer = load_tokenizer(path)
    model = load_model(path, device="cpu", load_in_4bit=True, trainable_adapter=True)
    q_proj = model.model.layers[0].self_attn.q_proj
    assert isinstance(q_proj, bnb.nn.Linear4bit)
    assert q_proj.weight.quant_state.quant_type == "nf4" and q_proj.weight.quant_state.nested  # double quant
    assert not isinstance(model.model.layers[0].router.proj, bnb.nn.Linear4bit)  # the router stays unquantised
    hp = LoraHyperparams(r=4, alpha=8, learning_rate=1e-2, max_steps=1, gradient_accumulation=1, warmup=0,
                         max_length=4096, logging_steps=1)
    peft_model = add_lora(model, hp)
    names = [n for n, p in peft_model.named_parameters() if p.requires_grad]
    assert names and all("lora_" in n for n in names)
    assert any("experts" in n for n in names)  # fused 3D experts adapted via target_parameters
    before = {n: p.detach().clone() for n, p in peft_model.named_parameters()}
    features = tokenize_records(read_jsonl(write_sft(tmp_path / "sft.jsonl")), tokenizer, hp.max_length)
    summary = train(peft_model, tokenizer, features, tmp_path / "run", hp, run_name="test")
    changed = {n for n, p in peft_model.named_parameters() if not torch.equal(before[n], p.detach())}
    assert changed and all("lora_" in n for n in changed), "only LoRA weights may change"
    assert summary["steps"] == 1 and summary["target_parameters"] == ["experts.gate_up_proj", "experts.down_proj"]
    assert (tmp_path / "run" / "adapter" / "adapter_model.safetensors").exists()
    log = [json.loads(line) for line in (tmp_path / "run" / "training_log.jsonl").read_text().splitlines()]
    assert any("loss" in entry for entry in log)


def test_packaged_hyperparameters_resolve_by_name(tmp_path):
    from spacy_dgemma.llm.sft import HPARAMS_DIR, packaged_hparams, resolve_hparams

    assert packaged_hparams() == ["student", "teacher", "tiny-student", "tiny-teacher"]
    for name in packaged_hparams():
        assert resolve_hparams(name) == HPARAMS_DIR / f"{name}.json"
        LoraHyperparams.from_file(name)
    teacher = LoraHyperparams.from_file("teacher", max_steps=7)
    assert teacher.max_steps == 7 and teacher.save_steps > 0 and teacher.gradient_checkpointing
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"learning_rat": 0.1}))
    with pytest.raises(ValueError, match="E163.*learning_rat"):
        LoraHyperparams.from_file(bad)
    assert LoraHyperparams.from_file(HPARAMS_DIR / "student.json").r == 16  # a path works too
    with pytest.raises(ValueError, match="E170"):
        LoraHyperparams.from_file("no-such-set")


def test_multimodal_gemma4_adapts_only_the_text_tower_and_caches_exactly(tiny_models, tmp_path):
    """The real checkpoints are Gemma4ForConditionalGeneration with Gemma4ClippableLinear vision layers."""
    import torch
    from peft import get_peft_model
    from transformers import Gemma4Config, Gemma4ForConditionalGeneration, Gemma4TextConfig, Gemma4VisionConfig

    from spacy_dgemma.llm.labeller import RelationLabeller
    from spacy_dgemma.llm.loading import load_model, load_tokenizer
    from spacy_dgemma.llm.sft import lora_config
    from spacy_dgemma.llm.tiny import TINY_PRESETS

    tokenizer = load_tokenizer(str(tiny_models["student"]))
    vocab = len(tokenizer)
    text = Gemma4TextConfig(vocab_size=vocab, vocab_size_per_layer_input=vocab, pad_token_id=0, bos_token_id=2,
                            eos_token_id=[1, 6], **TINY_PRESETS["student"])
    vision = Gemma4VisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2,
                                num_key_value_heads=2, head_dim=16, use_clipped_linears=True)
    config = Gemma4Config(text_config=text, vision_config=vision, audio_config=None, boi_token_id=vocab - 1,
                          eoi_token_id=vocab - 2, image_token_id=vocab - 3, video_token_id=vocab - 4)
    torch.manual_seed(0)
    Gemma4ForConditionalGeneration(config).save_pretrained(str(tmp_path / "mm"))
    tokenizer.save_pretrained(str(tmp_path / "mm"))
    model = load_model(str(tmp_path / "mm"), device="cpu")  # AutoModelForCausalLM, as for the hub models
    assert type(model).__name__ == "Gemma4ForConditionalGeneration"
    peft_model = get_peft_model(model, lora_config(model, LoraHyperparams(r=2, alpha=4)))
    adapted = [n for n, _ in peft_model.named_modules() if n.endswith("lora_A")]
    assert adapted and all(".language_model.layers." in n for n in adapted)
    peft_model.unload()
    document = document_from_hipe(HIPE_RECORDS["en"])
    model = load_model(str(tmp_path / "mm"), device="cpu")
    cached = RelationLabeller(model, tokenizer, max_new_tokens=8).label_document(document)
    naive = RelationLabeller(model, tokenizer, max_new_tokens=8, cache_prefix=False).label_document(document)
    assert [r.raw for r in cached] == [r.raw for r in naive]


def test_tiny_linear_shapes_suit_4bit_blocks(tiny_models):
    """bitsandbytes repacks NF4 weights for inference in 32 × 64 blocks on AVX512-BF16 CPUs;
    the teacher is the tiny model the workflows load in 4-bit."""
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(str(tiny_models["teacher"]))
    linear = [(n, m) for n, m in model.named_modules() if isinstance(m, torch.nn.Linear) and n != "lm_head"]
    assert linear
    for name, module in linear:
        assert module.out_features % 32 == 0 and module.in_features % 64 == 0, (name, module)


def test_4bit_teacher_inference_forward(tiny_models):
    """The annotate path: a 4-bit model in eval mode without gradients (where the CPU repacking happens)."""
    import torch

    from spacy_dgemma.llm.loading import load_model, load_tokenizer

    path = str(tiny_models["teacher"])
    tokenizer = load_tokenizer(path)
    model = load_model(path, device="cpu", load_in_4bit=True)
    model.eval()
    ids = tokenizer("Mr. Gladstone left London.", return_tensors="pt")
    with torch.no_grad():
        logits = model(**ids).logits
    assert logits.shape[:2] == ids["input_ids"].shape and torch.isfinite(logits).all()


def test_response_loss_from_kept_logits_equals_the_full_loss(tiny_models, tmp_path):
    """Logits for the response positions only give the loss the model computes over all positions."""
    import torch

    from spacy_dgemma.llm.loading import load_model, load_tokenizer
    from spacy_dgemma.llm.sft import PadCollator, read_jsonl, response_loss, tokenize_records

    path = str(tiny_models["student"])
    tokenizer = load_tokenizer(path)
    model = load_model(path, device="cpu")
    features = tokenize_records(read_jsonl(write_sft(tmp_path / "sft.jsonl", n=3)), tokenizer, 4096)
    features[1] = {k: v[:-40] + v[-8:] for k, v in features[1].items()}  # another length: padding in the batch
    batch = PadCollator(tokenizer.pad_token_id)(features)
    keep = batch.pop("logits_to_keep")
    width = batch["input_ids"].shape[1]
    assert 2 <= keep < width / 4  # the prompts are long, the answers short
    with torch.no_grad():
        full = model(**batch).loss
        kept = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], logits_to_keep=keep)
    assert kept.logits.shape[1] == keep
    torch.testing.assert_close(response_loss(kept, batch["labels"]), full, atol=1e-5, rtol=1e-5)
    n = (batch["labels"][:, 1:] != -100).sum()
    torch.testing.assert_close(response_loss(kept, batch["labels"], num_items_in_batch=n * 2), full / 2,
                               atol=1e-5, rtol=1e-5)


def test_checkpoints_and_resume_give_the_uninterrupted_result(tiny_models, tmp_path):
    """A run stopped after its step-2 checkpoint and resumed ends with the uninterrupted run's adapter.

    The four examples are identical, so the data order does not matter; the restarted process uses
    another seed, so that only the checkpoint (weights, optimiser state) can make it agree.
    """
    import shutil

    import torch
    from safetensors.torch import load_file

    from spacy_dgemma.llm.qlora import train_teacher

    prompt = build_prompts(document_from_hipe(HIPE_RECORDS["en"]))[0]
    sft = tmp_path / "sft.jsonl"
    record = json.dumps(sft_record(prompt, format_response("He came.", "TRUE", "Yes.", "TRUE"), {}))
    sft.write_text((record + "\n") * 4, encoding="utf8")
    hp = LoraHyperparams(r=4, alpha=8, dropout=0.0, learning_rate=1e-2, max_steps=4, batch_size=1,
                         gradient_accumulation=1, warmup=0, max_length=4096, gradient_checkpointing=False,
                         save_steps=2, save_total_limit=3, seed=0)
    other_seed = dataclasses.replace(hp, seed=1)
    path = str(tiny_models["teacher"])

    def adapter(name):
        return load_file(str(tmp_path / name / "adapter" / "adapter_model.safetensors"))

    full = train_teacher(path, sft, tmp_path / "full", hp, device="cpu", load_in_4bit=True)
    checkpoints = sorted(p.name for p in (tmp_path / "full" / "checkpoints").iterdir())
    assert full["steps"] == 4 and checkpoints == ["checkpoint-2", "checkpoint-4"]
    # Preempted after step 2: only the first checkpoint is there.
    shutil.copytree(tmp_path / "full" / "checkpoints" / "checkpoint-2", tmp_path / "resumed" / "checkpoints" / "checkpoint-2")
    resumed = train_teacher(path, sft, tmp_path / "resumed", other_seed, device="cpu", load_in_4bit=True, resume=True)
    assert resumed["steps"] == 4 and resumed["resumed_from"].endswith("checkpoint-2")
    a, b = adapter("full"), adapter("resumed")
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], atol=1e-6, rtol=1e-5)
    # The control: from scratch with that seed, the adapter is another.
    with pytest.warns(UserWarning, match="W073"):  # --resume without a checkpoint starts from scratch
        fresh = train_teacher(path, sft, tmp_path / "fresh", other_seed, device="cpu", load_in_4bit=True, resume=True)
    assert fresh["resumed_from"] is None
    assert any(not torch.allclose(a[k], adapter("fresh")[k], atol=1e-4) for k in a)
    with pytest.warns(UserWarning, match="W070"):  # checkpoints of an earlier run, but no --resume
        train_teacher(path, sft, tmp_path / "resumed", dataclasses.replace(hp, max_steps=1), device="cpu",
                      load_in_4bit=True)
