"""Teacher QLoRA: 4-bit NF4 load on CPU, LoRA targets, one training step changes only LoRA weights."""
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
    hp = LoraHyperparams(r=4, alpha=8, learning_rate=1e-2, max_steps=1, gradient_accumulation=1, warmup=0,
                         max_length=4096, logging_steps=1)
    peft_model = add_lora(model, hp, quantized=True)
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


def test_hyperparameter_files_are_valid(tmp_path):
    from pathlib import Path

    root = Path(__file__).resolve().parents[2] / "training" / "llm"
    for name in ("teacher.json", "student.json", "tiny-teacher.json", "tiny-student.json"):
        LoraHyperparams.from_file(root / name)
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"learning_rat": 0.1}))
    with pytest.raises(ValueError, match="learning_rat"):
        LoraHyperparams.from_file(bad)


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
