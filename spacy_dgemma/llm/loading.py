"""Loading causal LMs (full precision or 4-bit NF4, optionally with a LoRA adapter) and tokenizers.

The same code loads ``google/gemma-4-26B-A4B-it`` on a GPU machine and a tiny local model on a
laptop: only the name or path changes.

4-bit loading quantises ``nn.Linear`` layers to NF4 with double quantisation (QLoRA's setup),
except the modules in ``quantization_skip_modules``: transformers' own default list for the
model (tied embeddings, the LM head, the last module) extended, not replaced, with the small
modules whose precision matters more than their size (``PRECISION_CRITICAL``: the MoE router,
the per-layer-input projections of E2B, the multimodal embedding projections). The fused 3D
MoE experts are no ``nn.Linear`` and stay in the compute dtype.
"""
import logging
from typing import List, Optional

logger = logging.getLogger("spacy_dgemma")

# Module-name patterns kept out of 4-bit besides transformers' defaults (matched as
# transformers matches its skip list: a suffix, or a regex from the start of the name).
PRECISION_CRITICAL = (
    "router.proj",  # MoE router of 26B-A4B: 128 logits per token pick the experts
    "per_layer_model_projection",  # E2B per-layer inputs
    "per_layer_input_gate",
    "per_layer_projection",
    "embedding_projection",  # vision/audio soft-token projections
)


def resolve_device(device: str = "auto") -> str:
    """The torch device for `device`: "auto" is spaCy's GPU allocation (thinc's current ops after
    ``spacy.require_gpu(N)`` / ``--gpu-id N``), else torch's current CUDA device (what a Ray actor
    with a GPU or ``CUDA_VISIBLE_DEVICES`` gives), else "cpu"; anything else is returned as is."""
    if device != "auto":
        return device
    from thinc.api import get_current_ops

    ops = get_current_ops()
    if getattr(ops, "device_type", "cpu") == "gpu":
        return "mps" if ops.name == "mps" else f"cuda:{getattr(ops, 'device_id', 0) or 0}"
    import torch

    return f"cuda:{torch.cuda.current_device()}" if torch.cuda.is_available() else "cpu"


def resolve_dtype(dtype: str = "auto", device: str = "cpu"):
    """The torch dtype: "auto" is bfloat16 on CUDA and float32 on CPU."""
    import torch

    from spacy_dgemma.errors import Errors

    if dtype == "auto":
        return torch.bfloat16 if device.startswith("cuda") else torch.float32
    try:
        return {"float32": torch.float32, "fp32": torch.float32, "bfloat16": torch.bfloat16,
                "bf16": torch.bfloat16, "float16": torch.float16, "fp16": torch.float16}[dtype]
    except KeyError:
        raise ValueError(Errors.E158.format(dtype=dtype)) from None


def load_config(name_or_path: str):
    """A model's config (hub name or local folder), without weights."""
    from transformers import AutoConfig

    from spacy_dgemma.errors import InputError

    try:
        return AutoConfig.from_pretrained(name_or_path)
    except (OSError, ValueError) as err:
        raise InputError.of("E166", name_or_path, detail=str(err).splitlines()[0] if str(err) else type(err).__name__) from err


def meta_model(name_or_path: str, dtype=None):
    """The model `load_model` would build, on the meta device: shapes and names, no memory.

    name_or_path: hub name or local folder (only its config is read).
    dtype: parameter dtype (default: the compute dtype of a GPU, bfloat16).
    """
    import torch
    from transformers import AutoModelForCausalLM

    config = load_config(name_or_path)
    with torch.device("meta"):
        return AutoModelForCausalLM.from_config(config, dtype=dtype or torch.bfloat16)


def quantization_skip_modules(model) -> List[str]:
    """Modules kept out of 4-bit: transformers' default list for `model` plus ``PRECISION_CRITICAL``."""
    from transformers.quantizers.base import get_keys_to_not_convert

    return sorted(set(get_keys_to_not_convert(model)) | set(PRECISION_CRITICAL))


def is_quantized_linear(name: str, module, skip_modules: List[str]) -> bool:
    """Whether bitsandbytes turns `module` (named `name`) into a 4-bit layer, as transformers decides."""
    import torch
    from transformers.quantizers.quantizers_utils import should_convert_module

    return type(module) is torch.nn.Linear and should_convert_module(name, skip_modules)


def nf4_config(compute_dtype, skip_modules: Optional[List[str]] = None):
    """4-bit NF4 quantisation with double quantisation (QLoRA's setup).

    compute_dtype: dtype of the matmuls (bf16 on GPU).
    skip_modules: modules kept in the compute dtype (``quantization_skip_modules``); None keeps
        transformers' default list only.
    """
    from transformers import BitsAndBytesConfig

    return BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_use_double_quant=True,
        bnb_4bit_compute_dtype=compute_dtype,
        llm_int8_skip_modules=skip_modules,
    )


def load_tokenizer(name_or_path: str):
    """The tokenizer of a model (its chat template included); pads on the left."""
    from transformers import AutoTokenizer

    from spacy_dgemma.errors import InputError

    try:
        tokenizer = AutoTokenizer.from_pretrained(name_or_path)
    except (OSError, ValueError) as err:
        raise InputError.of("E157", name_or_path, detail=str(err).splitlines()[0] if str(err) else type(err).__name__) from err
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    if tokenizer.chat_template is None:
        raise InputError.of("E156", name_or_path)
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
    load_in_4bit: quantise the base weights to NF4 (bitsandbytes) with double quantisation,
        except ``quantization_skip_modules``.
    adapter: a saved LoRA adapter to apply on top (not merged).
    attn_implementation: "sdpa" or "eager" (the prefix-cached path needs explicit masks).
    trainable_adapter: load the adapter with trainable weights.
    RETURNS: the model, in eval mode unless a trainable adapter was requested.
    """
    from transformers import AutoModelForCausalLM

    from spacy_dgemma.errors import InputError

    device = resolve_device(device)
    torch_dtype = resolve_dtype(dtype, device)
    kwargs = dict(dtype=torch_dtype, attn_implementation=attn_implementation)
    if load_in_4bit:
        skip = quantization_skip_modules(meta_model(name_or_path, torch_dtype))
        kwargs["quantization_config"] = nf4_config(torch_dtype, skip)
        kwargs["device_map"] = {"": device}
    try:
        model = AutoModelForCausalLM.from_pretrained(name_or_path, **kwargs)
    except OSError as err:
        raise InputError.of("E157", name_or_path, detail=str(err).splitlines()[0] if str(err) else type(err).__name__) from err
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
