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
    summary = distill_student(str(tiny_models["student"]), traces, tmp_path / "out", hp, device="cpu")
    assert summary["steps"] == 3
    assert (tmp_path / "out" / "merged" / "model.safetensors").exists()
    assert json.loads((tmp_path / "out" / "training_summary.json").read_text())["merged"] == summary["merged"]
