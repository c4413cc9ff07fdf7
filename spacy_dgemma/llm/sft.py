"""Supervised fine-tuning data and the LoRA training loop shared by the teacher and the student.

SFT records (JSONL, one per pair) are chat conversations plus where the pair part of the user
message starts::

    {"messages": [{"role": "user", "content": "..."}, {"role": "assistant", "content": "{...}"}],
     "pair_offset": 1234, "meta": {"document_id": ..., "pair_index": ..., "source": ...}}

Training uses the plain ``transformers.Trainer`` rather than trl's ``SFTTrainer`` on purpose:
the prompt must be tokenised segment-wise (document prefix | pair suffix, ``chat.py``) exactly
as the prefix-cached inference path sees it, with the loss mask built alongside (loss on the
response tokens only). ``SFTTrainer`` tokenises the rendered conversation itself, which can
merge tokens across the segment boundary and would make training and inference disagree.

Training keeps every base dtype as loaded (``prepare_for_training``: no fp32 upcast of the bf16
MoE experts), computes logits for the response positions only (``PadCollator`` asks for
``logits_to_keep``, ``response_loss`` scores them), and writes a checkpoint (adapter, optimiser
and scheduler state) every ``save_steps`` steps, from which ``train(..., resume=True)`` continues.
"""
import json
import logging
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterable, Iterator, List, Union

from spacy_dgemma.errors import Errors, InputError, Warnings
from spacy_dgemma.llm.chat import encode_example
from spacy_dgemma.llm.prompts import Prompt
from spacy_dgemma.util import AtomicWriter

logger = logging.getLogger("spacy_dgemma")

# LoRA targets: the text tower's attention and MLP projections, for causal LMs
# ("model.layers.N...") and multimodal Gemma 4 ("model.language_model.layers.N..."). The vision and
# audio towers are excluded: their projections are Gemma4ClippableLinear wrappers (not
# LoRA-targetable) and they see no images or audio here. The MoE router (``router.proj``) is not
# adapted either: it stays as trained, in the compute dtype.
TEXT_TOWER_TARGETS = (
    r"^(?!.*(?:vision|audio)).*\blayers\.\d+\."
    r"(?:self_attn\.(?:q_proj|k_proj|v_proj|o_proj)|mlp\.(?:gate_proj|up_proj|down_proj))$"
)
# Fused 3D expert weights of Gemma 4 MoE models (26B-A4B), adapted with peft's target_parameters.
EXPERT_PARAMETERS = ("experts.gate_up_proj", "experts.down_proj")
# The packaged hyperparameter sets: teacher, student (paper scale), tiny-teacher, tiny-student (smoke).
HPARAMS_DIR = Path(__file__).parent / "hparams"


def packaged_hparams() -> List[str]:
    """Names of the hyperparameter sets shipped with the package."""
    return sorted(p.stem for p in HPARAMS_DIR.glob("*.json"))


def resolve_hparams(name_or_path: Union[str, Path]) -> Path:
    """A hyperparameter file: a JSON path, or the name of a packaged set ("teacher", "tiny-student", ...)."""
    path = Path(name_or_path)
    if path.is_file():
        return path
    if str(name_or_path) in packaged_hparams():
        return HPARAMS_DIR / f"{name_or_path}.json"
    raise InputError.of("E170", str(name_or_path), name=str(name_or_path), packaged=packaged_hparams())


@dataclass
class LoraHyperparams:
    """Hyperparameters of a LoRA run (packaged sets in ``spacy_dgemma/llm/hparams/*.json``)."""

    r: int = 16
    alpha: int = 32
    dropout: float = 0.05
    learning_rate: float = 2e-4
    epochs: float = 2.0
    max_steps: int = -1
    batch_size: int = 1
    gradient_accumulation: int = 8
    max_length: int = 8192
    warmup: float = 0.03  # < 1: a fraction of the steps; >= 1: a number of steps
    weight_decay: float = 0.0
    gradient_checkpointing: bool = True
    adapt_experts: bool = True
    logging_steps: int = 1
    save_steps: int = 0  # a checkpoint (adapter + optimiser state) every N optimiser steps; 0: none
    save_total_limit: int = 2  # checkpoints kept (the oldest are deleted)
    seed: int = 0
    extra: Dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_file(cls, name_or_path: Union[str, Path], **overrides) -> "LoraHyperparams":
        """Read a JSON file or a packaged set; unknown keys are an error (typos must not pass silently).

        name_or_path: a JSON file, or a packaged name (see ``packaged_hparams``).
        overrides: values that replace the file's (None: keep the file's).
        """
        path = resolve_hparams(name_or_path)
        try:
            data = json.loads(path.read_text(encoding="utf8"))
        except ValueError as err:
            raise InputError.of("E163", path, detail=f"not JSON: {err}") from err
        if not isinstance(data, dict):
            raise InputError.of("E163", path, detail="expected a JSON object")
        data.update({k: v for k, v in overrides.items() if v is not None})
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(data) - known - {"comment"})
        if unknown:
            raise InputError.of("E163", path, detail=f"unknown keys {unknown}; known: {sorted(known)}")
        data.pop("comment", None)
        return cls(**data)


def sft_record(prompt: Prompt, response: str, meta: Dict[str, Any]) -> Dict[str, Any]:
    """An SFT JSONL record."""
    return {
        "messages": [{"role": "user", "content": prompt.content}, {"role": "assistant", "content": response}],
        "pair_offset": prompt.pair_offset,
        "meta": meta,
    }


def read_jsonl(path: Union[str, Path]) -> Iterator[Dict[str, Any]]:
    """Records of a JSONL file; names the file and line of a broken line."""
    with Path(path).open(encoding="utf8") as file:
        for n, line in enumerate(file, 1):
            if line.strip():
                try:
                    yield json.loads(line)
                except ValueError as err:
                    raise InputError.of("E165", path, n, detail=err) from err


def tokenize_records(records: Iterable[Dict[str, Any]], tokenizer, max_length: int) -> List[Dict[str, List[int]]]:
    """Input ids and labels (prompt masked) of SFT records; over-long ones are skipped with a warning."""
    features, skipped = [], 0
    for record in records:
        user, assistant = record["messages"][0]["content"], record["messages"][1]["content"]
        input_ids, labels = encode_example(tokenizer, Prompt(user, record["pair_offset"]), assistant)
        if len(input_ids) > max_length:
            skipped += 1
            continue
        features.append({"input_ids": input_ids, "labels": labels})
    if skipped:
        warnings.warn(Warnings.W072.format(n=skipped, max_length=max_length))
    return features


class PadCollator:
    """Right-pads input ids (pad id) and labels (-100), builds the attention mask, and asks the
    model for logits from the first labelled position on only (``logits_to_keep``).

    The prompt is masked from the loss, so its logits are never needed: with an 8k-token prompt
    and Gemma's 262k vocabulary they would take tens of GiB (see ``plan.py``).
    """

    def __init__(self, pad_id: int):
        self.pad_id = pad_id

    def __call__(self, features: List[Dict[str, List[int]]]) -> Dict[str, Any]:
        import torch

        width = max(len(f["input_ids"]) for f in features)
        ids = torch.full((len(features), width), self.pad_id, dtype=torch.long)
        labels = torch.full((len(features), width), -100, dtype=torch.long)
        mask = torch.zeros((len(features), width), dtype=torch.long)
        first = width
        for i, f in enumerate(features):
            n = len(f["input_ids"])
            ids[i, :n] = torch.tensor(f["input_ids"])
            labels[i, :n] = torch.tensor(f["labels"])
            mask[i, :n] = 1
            first = min(first, next((j for j, label in enumerate(f["labels"]) if label != -100), n))
        # The logit at position t predicts token t + 1: keep positions first - 1 … width - 1.
        keep = min(width, width - first + 1)
        return {"input_ids": ids, "labels": labels, "attention_mask": mask, "logits_to_keep": max(keep, 2)}


def response_loss(outputs, labels, num_items_in_batch=None):
    """Cross-entropy of the response tokens from logits kept for the last positions only.

    outputs: the model's output; its logits cover the last K positions (``logits_to_keep``).
    labels: the full-width labels (-100 on the prompt and the padding).
    num_items_in_batch: labelled tokens over the accumulated batch (the Trainer's count), so that
        gradient accumulation averages over tokens, not over micro-batches.
    RETURNS (torch.Tensor): the loss.
    """
    import torch.nn.functional as F

    logits = outputs.logits
    kept = logits.shape[1]
    targets = labels[:, labels.shape[1] - kept + 1 :].to(logits.device)
    logits = logits[:, :-1, :]
    loss = F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), targets.reshape(-1),
                           ignore_index=-100, reduction="sum")
    count = num_items_in_batch if num_items_in_batch is not None else (targets != -100).sum()
    return loss / count


def lora_config(model, hp: LoraHyperparams):
    """LoRA on the text tower's attention/MLP projections (+ the fused experts of MoE models)."""
    from peft import LoraConfig

    names = [name for name, _ in model.named_parameters()]
    experts = [p for p in EXPERT_PARAMETERS if any(n.endswith(p) for n in names)] if hp.adapt_experts else []
    dropout = hp.dropout
    if experts and dropout:
        # peft's ParamWrapper (LoRA on 3D parameters) does not support dropout.
        warnings.warn(Warnings.W071.format(dropout=dropout))
        dropout = 0.0
    return LoraConfig(
        r=hp.r,
        lora_alpha=hp.alpha,
        lora_dropout=dropout,
        target_modules=TEXT_TOWER_TARGETS,
        target_parameters=experts or None,
        bias="none",
        task_type="CAUSAL_LM",
    )


def prepare_for_training(model, gradient_checkpointing: bool):
    """Freeze the base model and set it up for adapter training, keeping every dtype as loaded.

    This does what peft's ``prepare_model_for_kbit_training`` does that LoRA needs (freeze, input
    gradients, gradient checkpointing) but not its cast of every non-4-bit parameter to fp32:
    bitsandbytes quantises ``nn.Linear`` only, so the fused MoE experts of the 26B teacher (22.8B
    parameters) would go from 42.5 GiB in bf16 to 85 GiB in fp32. Norms compute in fp32 anyway
    (Gemma's RMSNorm upcasts its input), and LoRA weights are created in fp32 by peft.
    """
    for param in model.parameters():
        param.requires_grad_(False)
    if gradient_checkpointing:
        model.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
        model.enable_input_require_grads()
    model.config.use_cache = False
    return model


def add_lora(model, hp: LoraHyperparams):
    """Wrap `model` (4-bit or full precision) with a trainable LoRA adapter."""
    from peft import get_peft_model

    return get_peft_model(prepare_for_training(model, hp.gradient_checkpointing), lora_config(model, hp))


def train(peft_model, tokenizer, features: List[Dict[str, List[int]]], output_dir: Union[str, Path],
          hp: LoraHyperparams, run_name: str, resume: bool = False) -> Dict[str, Any]:
    """Train the adapter with ``transformers.Trainer``; save it, the tokenizer and the training log.

    peft_model: the model with its trainable adapter (``add_lora``).
    tokenizer: saved beside the adapter. features: from ``tokenize_records``.
    output_dir: receives ``adapter/``, ``checkpoints/`` (every ``hp.save_steps`` steps),
        ``training_log.jsonl`` and ``training_summary.json``.
    hp: hyperparameters. run_name: the run's name in the log.
    resume: continue from the last checkpoint in ``output_dir/checkpoints`` (from scratch when
        there is none).
    RETURNS (dict): the run summary written to ``output_dir/training_summary.json``.
    """
    import torch
    from transformers import Trainer, TrainingArguments
    from transformers.trainer_utils import get_last_checkpoint

    if not features:
        raise ValueError(Errors.E164.format(run=run_name, max_length=hp.max_length))
    output_dir = Path(output_dir)
    checkpoints = output_dir / "checkpoints"
    last = get_last_checkpoint(str(checkpoints)) if checkpoints.is_dir() else None
    if resume and last is None:
        warnings.warn(Warnings.W073.format(folder=checkpoints))
    elif not resume and last is not None:
        warnings.warn(Warnings.W070.format(folder=checkpoints))
    cuda = torch.cuda.is_available() and next(peft_model.parameters()).device.type == "cuda"
    args = TrainingArguments(
        output_dir=str(checkpoints),
        per_device_train_batch_size=hp.batch_size,
        gradient_accumulation_steps=hp.gradient_accumulation,
        learning_rate=hp.learning_rate,
        num_train_epochs=hp.epochs,
        max_steps=hp.max_steps,
        warmup_steps=hp.warmup if hp.warmup < 1 else int(hp.warmup),
        weight_decay=hp.weight_decay,
        logging_steps=hp.logging_steps,
        save_strategy="steps" if hp.save_steps > 0 else "no",
        save_steps=max(hp.save_steps, 1),
        save_total_limit=hp.save_total_limit,
        report_to=[],
        seed=hp.seed,
        data_seed=hp.seed,
        bf16=cuda and torch.cuda.is_bf16_supported(),
        use_cpu=not cuda,
        activation_checkpointing=hp.gradient_checkpointing,
        activation_checkpointing_kwargs={"use_reentrant": False},
        remove_unused_columns=False,
        disable_tqdm=False,
        run_name=run_name,
    )
    trainer = Trainer(model=peft_model, args=args, train_dataset=features,
                      data_collator=PadCollator(tokenizer.pad_token_id), compute_loss_func=response_loss)
    result = trainer.train(resume_from_checkpoint=last if resume else None)
    adapter_dir = output_dir / "adapter"
    peft_model.save_pretrained(str(adapter_dir))
    tokenizer.save_pretrained(str(adapter_dir))
    with AtomicWriter(output_dir / "training_log.jsonl") as log:
        for entry in trainer.state.log_history:
            log.write(json.dumps(entry) + "\n")
    trainable, total = peft_model.get_nb_trainable_parameters()
    summary = {
        "run": run_name,
        "examples": len(features),
        "steps": trainer.state.global_step,
        "resumed_from": str(last) if resume and last is not None else None,
        "train_loss": result.training_loss,
        "trainable_parameters": trainable,
        "total_parameters": total,
        "target_modules": TEXT_TOWER_TARGETS,
        "target_parameters": list(peft_model.peft_config["default"].target_parameters or []),
        "hyperparameters": asdict(hp),
        "adapter": str(adapter_dir),
    }
    write_summary(output_dir / "training_summary.json", summary)
    return summary


def write_summary(path: Union[str, Path], summary: Dict[str, Any]) -> None:
    """Write a run summary as indented JSON, atomically."""
    with AtomicWriter(path) as out:
        out.write(json.dumps(summary, indent=2) + "\n")
