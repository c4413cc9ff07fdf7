"""Teacher QLoRA: the teacher in 4-bit NF4 (double quantisation) with a LoRA adapter on top.

Compute dtype is bf16 on CUDA and fp32 on CPU. LoRA adapts the text tower's attention and MLP
projections (explicit ``target_modules``, see ``sft.TEXT_TOWER_TARGETS``) and, for the MoE teacher
(``google/gemma-4-26B-A4B-it``), the fused 3D expert weights through peft's ``target_parameters``.
Not adapted: the vision and audio towers (``Gemma4ClippableLinear``; not used by this task), the
router, the embeddings and the norms.

What fits one 80 GB GPU (``dgemma llm plan google/gemma-4-26B-A4B-it --stage teacher-qlora``):
bitsandbytes quantises ``nn.Linear`` layers only, so the 3D experts (22.8B parameters) stay in
bf16 (42.5 GiB); ``sft.prepare_for_training`` keeps them there (peft's
``prepare_model_for_kbit_training`` would upcast them to fp32, 85 GiB); the router and the LM
head stay out of 4-bit (``loading.quantization_skip_modules``); gradient checkpointing is on;
logits are computed for the response only. For annotation the adapter is merged into a bf16
checkpoint (``distill.merge_adapter``, ``dgemma llm merge-teacher``), so that serving needs no
per-forward rebuild of the expert stack.
"""
import logging
from pathlib import Path
from typing import Any, Dict, Union

from spacy_dgemma.llm.sft import LoraHyperparams, add_lora, read_jsonl, tokenize_records, train, write_summary

logger = logging.getLogger("spacy_dgemma")


def train_teacher(
    model_name: str,
    sft_path: Union[str, Path],
    output_dir: Union[str, Path],
    hp: LoraHyperparams,
    device: str = "auto",
    load_in_4bit: bool = True,
    resume: bool = False,
) -> Dict[str, Any]:
    """QLoRA fine-tuning of the teacher on the stage-0 SFT set.

    model_name: hub name or path of the teacher base model.
    sft_path: SFT JSONL written by ``dgemma llm sft-data``.
    output_dir: receives ``adapter/`` (LoRA weights + tokenizer), ``checkpoints/``,
        ``training_log.jsonl`` and ``training_summary.json``.
    hp: hyperparameters. device: "auto", "cpu" or "cuda".
    load_in_4bit: QLoRA (the paper's setup) or plain LoRA on a full-precision base.
    resume: continue from the last checkpoint in ``output_dir/checkpoints``.
    RETURNS (dict): the training summary.
    """
    import torch

    from spacy_dgemma.llm.loading import load_model, load_tokenizer

    torch.manual_seed(hp.seed)
    tokenizer = load_tokenizer(model_name)
    features = tokenize_records(read_jsonl(sft_path), tokenizer, hp.max_length)
    model = load_model(model_name, device=device, load_in_4bit=load_in_4bit, trainable_adapter=True,
                       attn_implementation="sdpa")
    peft_model = add_lora(model, hp)
    summary = train(peft_model, tokenizer, features, output_dir, hp, run_name="teacher-qlora", resume=resume)
    summary["base_model"] = model_name
    summary["load_in_4bit"] = load_in_4bit
    write_summary(Path(output_dir) / "training_summary.json", summary)
    return summary
