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
"""
import json
import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterable, Iterator, List, Union

from spacy_dgemma.llm.chat import encode_example
from spacy_dgemma.llm.prompts import Prompt

logger = logging.getLogger("spacy_dgemma")

# LoRA targets: the text tower's attention and MLP projections, for causal LMs
# ("model.layers.N...") and multimodal Gemma 4 ("model.language_model.layers.N..."). The vision and
# audio towers are excluded: their projections are Gemma4ClippableLinear wrappers (not
# LoRA-targetable) and they see no images or audio here.
TEXT_TOWER_TARGETS = (
    r"^(?!.*(?:vision|audio)).*\blayers\.\d+\."
    r"(?:self_attn\.(?:q_proj|k_proj|v_proj|o_proj)|mlp\.(?:gate_proj|up_proj|down_proj))$"
)
# Fused 3D expert weights of Gemma 4 MoE models (26B-A4B), adapted with peft's target_parameters.
EXPERT_PARAMETERS = ("experts.gate_up_proj", "experts.down_proj")


@dataclass
class LoraHyperparams:
    """Hyperparameters of a LoRA run (read from ``training/llm/*.json``)."""

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
    seed: int = 0
    extra: Dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_file(cls, path: Union[str, Path], **overrides) -> "LoraHyperparams":
        """Read a JSON file; unknown keys are an error (typos must not pass silently)."""
        data = json.loads(Path(path).read_text(encoding="utf8"))
        data.update({k: v for k, v in overrides.items() if v is not None})
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(data) - known - {"comment"})
        if unknown:
            raise ValueError(f"{path}: unknown hyperparameters {unknown}; known: {sorted(known)}.")
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
                    raise ValueError(f"{path}:{n}: not valid JSON ({err}); fix or delete the line.") from err


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
        logger.warning("Skipped %d SFT examples longer than max_length=%d tokens.", skipped, max_length)
    return features


class PadCollator:
    """Right-pads input ids (pad id), labels (-100) and builds the attention mask."""

    def __init__(self, pad_id: int):
        self.pad_id = pad_id

    def __call__(self, features: List[Dict[str, List[int]]]) -> Dict[str, Any]:
        import torch

        width = max(len(f["input_ids"]) for f in features)
        ids = torch.full((len(features), width), self.pad_id, dtype=torch.long)
        labels = torch.full((len(features), width), -100, dtype=torch.long)
        mask = torch.zeros((len(features), width), dtype=torch.long)
        for i, f in enumerate(features):
            n = len(f["input_ids"])
            ids[i, :n] = torch.tensor(f["input_ids"])
            labels[i, :n] = torch.tensor(f["labels"])
            mask[i, :n] = 1
        return {"input_ids": ids, "labels": labels, "attention_mask": mask}


def lora_config(model, hp: LoraHyperparams):
    """LoRA on the text tower's attention/MLP projections (+ the fused experts of MoE models)."""
    from peft import LoraConfig

    names = [name for name, _ in model.named_parameters()]
    experts = [p for p in EXPERT_PARAMETERS if any(n.endswith(p) for n in names)] if hp.adapt_experts else []
    dropout = hp.dropout
    if experts and dropout:
        # peft's ParamWrapper (LoRA on 3D parameters) does not support dropout.
        logger.warning("LoRA dropout %.2f set to 0: peft cannot apply dropout to expert parameters.", dropout)
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


def add_lora(model, hp: LoraHyperparams, quantized: bool):
    """Wrap `model` with a trainable LoRA adapter (after k-bit preparation for a 4-bit base)."""
    from peft import get_peft_model, prepare_model_for_kbit_training

    if quantized:
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=hp.gradient_checkpointing)
    elif hp.gradient_checkpointing:
        model.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
        model.enable_input_require_grads()
    model.config.use_cache = False
    return get_peft_model(model, lora_config(model, hp))


def train(peft_model, tokenizer, features: List[Dict[str, List[int]]], output_dir: Union[str, Path],
          hp: LoraHyperparams, run_name: str) -> Dict[str, Any]:
    """Train the adapter with ``transformers.Trainer``; save it, the tokenizer and the training log.

    RETURNS (dict): the run summary written to ``output_dir/training_summary.json``.
    """
    import torch
    from transformers import Trainer, TrainingArguments

    if not features:
        raise ValueError(f"No training examples for {run_name}: check the SFT file and max_length.")
    output_dir = Path(output_dir)
    cuda = torch.cuda.is_available() and next(peft_model.parameters()).device.type == "cuda"
    args = TrainingArguments(
        output_dir=str(output_dir / "checkpoints"),
        per_device_train_batch_size=hp.batch_size,
        gradient_accumulation_steps=hp.gradient_accumulation,
        learning_rate=hp.learning_rate,
        num_train_epochs=hp.epochs,
        max_steps=hp.max_steps,
        warmup_steps=hp.warmup if hp.warmup < 1 else int(hp.warmup),
        weight_decay=hp.weight_decay,
        logging_steps=hp.logging_steps,
        save_strategy="no",
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
                      data_collator=PadCollator(tokenizer.pad_token_id))
    result = trainer.train()
    adapter_dir = output_dir / "adapter"
    peft_model.save_pretrained(str(adapter_dir))
    tokenizer.save_pretrained(str(adapter_dir))
    with (output_dir / "training_log.jsonl").open("w", encoding="utf8") as log:
        for entry in trainer.state.log_history:
            log.write(json.dumps(entry) + "\n")
    trainable, total = peft_model.get_nb_trainable_parameters()
    summary = {
        "run": run_name,
        "examples": len(features),
        "steps": trainer.state.global_step,
        "train_loss": result.training_loss,
        "trainable_parameters": trainable,
        "total_parameters": total,
        "target_modules": TEXT_TOWER_TARGETS,
        "target_parameters": list(peft_model.peft_config["default"].target_parameters or []),
        "hyperparameters": asdict(hp),
        "adapter": str(adapter_dir),
    }
    (output_dir / "training_summary.json").write_text(json.dumps(summary, indent=2), encoding="utf8")
    return summary
