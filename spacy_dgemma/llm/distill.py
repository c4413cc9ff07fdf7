"""Distillation: LoRA SFT of the student on the teacher's traces, then a full-precision merge.

Response-level distillation: the student learns the teacher's answers (reasoning + labels) for
the same prompts, loss on the response tokens only. The adapter is trained on a full-precision
(bf16 on CUDA, fp32 on CPU) base and merged into a freshly loaded full-precision base, never
into a 4-bit one (merging into quantised weights rounds the update away). The merged model is
saved as safetensors with its tokenizer, ready for ``spacy_dgemma.GenerativeStudent.v1``.
"""
import json
import logging
from pathlib import Path
from typing import Any, Dict, Union

from spacy_dgemma.llm.sft import LoraHyperparams, add_lora, read_jsonl, tokenize_records, train

logger = logging.getLogger("spacy_dgemma")


def merge_adapter(base_name: str, adapter_dir: Union[str, Path], output_dir: Union[str, Path],
                  dtype: str = "auto", device: str = "cpu") -> Path:
    """Merge a LoRA adapter into a full-precision base and save safetensors + tokenizer.

    base_name: hub name or path of the base model. adapter_dir: the saved adapter.
    output_dir: where the merged model goes. dtype: precision of the merge ("auto": bf16 on
    CUDA, fp32 on CPU; never 4-bit). device: where to merge (CPU needs no GPU memory).
    """
    from spacy_dgemma.llm.loading import load_model, load_tokenizer

    model = load_model(base_name, dtype=dtype, device=device, adapter=str(adapter_dir))
    base = model.get_base_model()
    if getattr(base, "is_loaded_in_4bit", False) or getattr(base, "is_loaded_in_8bit", False):
        raise ValueError("Refusing to merge a LoRA adapter into a quantised base: load it in full precision.")
    merged = model.merge_and_unload()
    output_dir = Path(output_dir)
    merged.save_pretrained(str(output_dir), safe_serialization=True)
    load_tokenizer(str(adapter_dir) if (Path(adapter_dir) / "tokenizer_config.json").exists() else base_name
                   ).save_pretrained(str(output_dir))
    logger.info("Merged %s + %s into %s", base_name, adapter_dir, output_dir)
    return output_dir


def distill_student(
    student_name: str,
    traces_path: Union[str, Path],
    output_dir: Union[str, Path],
    hp: LoraHyperparams,
    device: str = "auto",
    merge_dtype: str = "auto",
) -> Dict[str, Any]:
    """Fine-tune the student with LoRA on the teacher's traces and merge the adapter.

    student_name: hub name or path of the student base (e.g. google/gemma-4-E2B-it).
    traces_path: SFT JSONL written by ``dgemma llm annotate --traces``.
    output_dir: receives ``adapter/``, ``merged/``, ``training_log.jsonl``, ``training_summary.json``.
    hp: hyperparameters. device: "auto", "cpu" or "cuda".
    merge_dtype: precision of the merge and of the saved weights ("auto": fp32, as the merge runs
        on CPU; "bfloat16" halves the size of the saved model).
    RETURNS (dict): the training summary, with the merged model's path.
    """
    import torch

    from spacy_dgemma.llm.loading import load_model, load_tokenizer

    torch.manual_seed(hp.seed)
    tokenizer = load_tokenizer(student_name)
    model = load_model(student_name, device=device, trainable_adapter=True, attn_implementation="sdpa")
    features = tokenize_records(read_jsonl(traces_path), tokenizer, hp.max_length)
    peft_model = add_lora(model, hp, quantized=False)
    summary = train(peft_model, tokenizer, features, output_dir, hp, run_name="student-distill")
    del peft_model, model
    merged = merge_adapter(student_name, Path(output_dir) / "adapter", Path(output_dir) / "merged",
                          dtype=merge_dtype, device="cpu")
    summary.update(base_model=student_name, merged=str(merged))
    (Path(output_dir) / "training_summary.json").write_text(json.dumps(summary, indent=2), encoding="utf8")
    return summary
