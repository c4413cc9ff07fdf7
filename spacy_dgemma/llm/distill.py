"""Distillation (LoRA SFT of the student on the teacher's traces) and merging adapters into bases.

Response-level distillation: the student learns the teacher's answers (reasoning + labels) for
the same prompts, loss on the response tokens only. The adapter is trained on a full-precision
(bf16 on CUDA, fp32 on CPU) base and merged into a freshly loaded full-precision base, never
into a 4-bit one (merging into quantised weights rounds the update away). The merged model is
saved as safetensors with its tokenizer and a model card carrying its licence, ready for
``spacy_dgemma.GenerativeStudent.v1``. The teacher's adapter is merged the same way, in bf16
(``merge_teacher``), so that annotation serves a plain model.
"""
import logging
from pathlib import Path
from typing import Any, Dict, Union

from spacy_dgemma.llm.sft import LoraHyperparams, add_lora, read_jsonl, tokenize_records, train, write_summary

logger = logging.getLogger("spacy_dgemma")


def merge_adapter(base_name: str, adapter_dir: Union[str, Path], output_dir: Union[str, Path],
                  dtype: str = "auto", device: str = "cpu", what: str = "A LoRA adapter merged into its base") -> Path:
    """Merge a LoRA adapter into a full-precision base and save safetensors + tokenizer + model card.

    base_name: hub name or path of the base model. adapter_dir: the saved adapter.
    output_dir: where the merged model goes. dtype: precision of the merge and of the saved
        weights ("auto": bf16 on CUDA, fp32 on CPU; never 4-bit).
    device: where to merge (CPU needs no GPU memory). what: the model card's description.
    RETURNS (Path): `output_dir`.
    """
    from spacy_dgemma.errors import Errors, InputError
    from spacy_dgemma.llm.licence import write_model_card
    from spacy_dgemma.llm.loading import load_model, load_tokenizer

    if not Path(adapter_dir).is_dir():
        raise InputError.of("E171", adapter_dir, command="dgemma llm teacher (or distill)")
    model = load_model(base_name, dtype=dtype, device=device, adapter=str(adapter_dir))
    base = model.get_base_model()
    if getattr(base, "is_loaded_in_4bit", False) or getattr(base, "is_loaded_in_8bit", False):
        raise ValueError(Errors.E159)
    merged = model.merge_and_unload()
    output_dir = Path(output_dir)
    merged.save_pretrained(str(output_dir), safe_serialization=True)
    load_tokenizer(str(adapter_dir) if (Path(adapter_dir) / "tokenizer_config.json").exists() else base_name
                   ).save_pretrained(str(output_dir))
    write_model_card(output_dir, base_name, f"{what} ({merged.dtype})")
    logger.info("Merged %s + %s into %s (%s)", base_name, adapter_dir, output_dir, merged.dtype)
    return output_dir


def merge_teacher(base_name: str, adapter_dir: Union[str, Path], output_dir: Union[str, Path],
                  dtype: str = "bfloat16", device: str = "auto") -> Path:
    """The trained teacher as one bf16 checkpoint (base + QLoRA adapter merged), for annotation.

    base_name: the teacher base (e.g. google/gemma-4-26B-A4B-it), loaded in `dtype`, not 4-bit.
    adapter_dir: the adapter of ``dgemma llm teacher``. output_dir: the merged model's folder.
    dtype: precision of the merged weights. device: where to merge ("auto": CUDA when available;
        the 26B teacher in bf16 needs about 48 GiB there, or as much CPU memory).
    RETURNS (Path): `output_dir`.
    """
    from spacy_dgemma.llm.loading import resolve_device

    return merge_adapter(base_name, adapter_dir, output_dir, dtype=dtype, device=resolve_device(device),
                         what="The DistilledGemma teacher: its QLoRA adapter merged into the base")


def distill_student(
    student_name: str,
    traces_path: Union[str, Path],
    output_dir: Union[str, Path],
    hp: LoraHyperparams,
    device: str = "auto",
    merge_dtype: str = "auto",
    load_in_4bit: bool = False,
    resume: bool = False,
) -> Dict[str, Any]:
    """Fine-tune the student with LoRA on the teacher's traces and merge the adapter.

    student_name: hub name or path of the student base (e.g. google/gemma-4-E2B-it).
    traces_path: SFT JSONL written by ``dgemma llm annotate --traces``.
    output_dir: receives ``adapter/``, ``checkpoints/``, ``merged/``, ``training_log.jsonl``,
        ``training_summary.json``.
    hp: hyperparameters. device: "auto", "cpu" or "cuda".
    merge_dtype: precision of the merge and of the saved weights ("auto": fp32, as the merge runs
        on CPU; "bfloat16" halves the size of the saved model).
    load_in_4bit: train on a 4-bit base (the merge still loads a full-precision one).
    resume: continue from the last checkpoint in ``output_dir/checkpoints``.
    RETURNS (dict): the training summary, with the merged model's path.
    """
    import torch

    from spacy_dgemma.llm.loading import load_model, load_tokenizer

    torch.manual_seed(hp.seed)
    tokenizer = load_tokenizer(student_name)
    features = tokenize_records(read_jsonl(traces_path), tokenizer, hp.max_length)
    model = load_model(student_name, device=device, load_in_4bit=load_in_4bit, trainable_adapter=True,
                       attn_implementation="sdpa")
    peft_model = add_lora(model, hp)
    summary = train(peft_model, tokenizer, features, output_dir, hp, run_name="student-distill", resume=resume)
    del peft_model, model
    merged = merge_adapter(student_name, Path(output_dir) / "adapter", Path(output_dir) / "merged",
                           dtype=merge_dtype, device="cpu",
                           what="The DistilledGemma student: its LoRA adapter (trained on the teacher's traces) merged")
    summary.update(base_model=student_name, merged=str(merged), merge_dtype=merge_dtype)
    write_summary(Path(output_dir) / "training_summary.json", summary)
    return summary
