"""Loading causal LMs (full precision or 4-bit NF4, optionally with a LoRA adapter) and tokenizers.

The same code loads ``google/gemma-4-26B-A4B-it`` on a GPU machine and a tiny local model on a
laptop: only the name or path changes.
"""
import logging
from typing import Optional

logger = logging.getLogger("spacy_dgemma")


def resolve_device(device: str = "auto") -> str:
    """"auto" → "cuda" when available, else "cpu"."""
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


def resolve_dtype(dtype: str = "auto", device: str = "cpu"):
    """The torch dtype: "auto" is bfloat16 on CUDA and float32 on CPU."""
    import torch

    if dtype == "auto":
        return torch.bfloat16 if device.startswith("cuda") else torch.float32
    try:
        return {"float32": torch.float32, "fp32": torch.float32, "bfloat16": torch.bfloat16,
                "bf16": torch.bfloat16, "float16": torch.float16, "fp16": torch.float16}[dtype]
    except KeyError:
        raise ValueError(f"Unknown dtype {dtype!r}: use auto, float32, bfloat16 or float16.") from None


def nf4_config(compute_dtype):
    """4-bit NF4 quantisation with double quantisation (QLoRA's setup)."""
    from transformers import BitsAndBytesConfig

    return BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_use_double_quant=True,
        bnb_4bit_compute_dtype=compute_dtype,
        # The LM head stays in the compute dtype (as in QLoRA); the vision/audio towers, unused
        # here, are quantised with the rest.
        llm_int8_skip_modules=["lm_head"],
    )


def load_tokenizer(name_or_path: str):
    """The tokenizer of a model (its chat template included); pads on the left."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(name_or_path)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    if tokenizer.chat_template is None:
        raise ValueError(
            f"The tokenizer of {name_or_path!r} has no chat template; use an instruction-tuned model "
            "(e.g. google/gemma-4-E2B-it) or build the tiny models with `dgemma llm build-tiny`."
        )
    return tokenizer


def load_model(
    name_or_path: str,
    dtype: str = "auto",
    device: str = "auto",
    load_in_4bit: bool = False,
    adapter: Optional[str] = None,
    attn_implementation: str = "sdpa",
    trainable_adapter: bool = False,
):
    """Load a causal LM by hub name or local path.

    name_or_path: e.g. "google/gemma-4-E2B-it" or a local directory.
    dtype: "auto" (bf16 on CUDA, fp32 on CPU), "float32", "bfloat16" or "float16".
    device: "auto", "cpu", "cuda", "cuda:1", ...
    load_in_4bit: quantise the base weights to NF4 (bitsandbytes) with double quantisation.
    adapter: a saved LoRA adapter to apply on top (not merged).
    attn_implementation: "sdpa" or "eager" (the prefix-cached path needs explicit masks).
    trainable_adapter: load the adapter with trainable weights.
    RETURNS: the model, in eval mode unless a trainable adapter was requested.
    """
    from transformers import AutoModelForCausalLM

    device = resolve_device(device)
    torch_dtype = resolve_dtype(dtype, device)
    kwargs = dict(dtype=torch_dtype, attn_implementation=attn_implementation)
    if load_in_4bit:
        kwargs["quantization_config"] = nf4_config(torch_dtype)
        kwargs["device_map"] = {"": device}
    try:
        model = AutoModelForCausalLM.from_pretrained(name_or_path, **kwargs)
    except OSError as err:
        raise OSError(
            f"Cannot load the model {name_or_path!r}: {err}. Give a local path, or a hub name on a "
            "machine with internet access (and accept the model's licence on the hub first)."
        ) from err
    if not load_in_4bit:
        model = model.to(device)
    if adapter:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, adapter, is_trainable=trainable_adapter)
    if not trainable_adapter:
        model.eval()
    logger.info("Loaded %s (%s, %s%s%s)", name_or_path, torch_dtype, device,
                ", 4-bit NF4" if load_in_4bit else "", f", adapter {adapter}" if adapter else "")
    return model

