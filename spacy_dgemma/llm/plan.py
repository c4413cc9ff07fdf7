"""Memory plan: what each DistilledGemma stage needs on one GPU, from a model's config alone.

The model is built on the meta device (shapes and names, no weights, no memory) exactly as the
stage loads it, and its parameters are classified the way the stage will hold them:

- weights: ``nn.Linear`` layers that bitsandbytes turns into NF4 (4-bit stages; the same skip
  list as ``loading.load_model``), counted at 0.5 byte per weight plus the block statistics
  (double quantisation: one 8-bit absmax per 64 weights, one fp32 absmax per 256 blocks);
  everything else (fused MoE experts, embeddings, router, norms, skipped modules) in bf16;
- LoRA (training stages): the adapter built by peft on the meta model with the stage's
  hyperparameters (the same targets as training), fp32 weights, fp32 gradients and the two fp32
  AdamW moments: 16 bytes per trainable parameter;
- activations (training): with gradient checkpointing, every decoder layer's input (bf16) plus
  the largest layer's recomputed activations and their gradients during its backward (both
  estimated per token from the layer's own modules, see ``_layer_bytes_per_token``), plus, when
  the fused experts carry LoRA, the expert stack that peft materialises for one layer and its
  gradient; logits for the response tokens only (``sft.PadCollator``), with the soft-cap and
  fp32 loss temporaries;
- KV cache (inference): keys and values in bf16 for every layer that keeps its own cache
  (Gemma's KV-shared layers do not), sliding-window layers capped at their window, for
  ``batch_size`` sequences of the prompt + answer length; the prefill of one document prefix.
- overhead: the CUDA context and allocator fragmentation.

The figures are estimates of the peak, from the shapes; nothing here has been measured on a GPU.
"""
from typing import Any, Dict, List, Optional

from spacy_dgemma.errors import InputError

GIB = 1024**3
STAGES = ("teacher-qlora", "annotate", "distill", "student")
# The models each stage loads in the `all` workflow, and how.
STAGE_MODEL = {"teacher-qlora": "teacher", "annotate": "teacher", "distill": "student", "student": "student"}
TRAINING_HPARAMS = {"teacher-qlora": "teacher", "distill": "student"}
# Prompt tokens besides the article: instructions, definitions, output contract, the pair part and
# the chat template (about 1,400 characters with relations.v1; 512 tokens is an upper bound).
PROMPT_TOKENS = 512
NF4_BITS = 4
NF4_BLOCK = 64  # weights per absmax (bitsandbytes' 4-bit blocksize)
DOUBLE_QUANT_BLOCK = 256  # absmax values per second-level fp32 absmax
LORA_BYTES = 4 + 4 + 8  # fp32 weight, fp32 gradient, AdamW exp_avg and exp_avg_sq (fp32)
BF16 = 2
# Logit bytes per kept position and vocabulary entry: bf16 logits and the three soft-capping
# temporaries (divide, tanh, multiply), the fp32 copy, fp32 log-softmax and the fp32 gradient.
LOGIT_BYTES = 4 * BF16 + 3 * 4
# Margin on the per-token activation formula: against what autograd saves on CPU for layers of the
# real widths (experiments/plan_activations.py) the bare formula gives 1.02× (26B-A4B) and 0.90×
# (E2B); with the margin 1.27× and 1.13×.
ACTIVATION_MARGIN = 1.25
CUDA_CONTEXT_GIB = 1.0
FRAGMENTATION = 0.05


def nf4_bytes(n: int, double_quant: bool = True) -> float:
    """Bytes of `n` weights in bitsandbytes NF4 (4 bits each plus the block absmax statistics)."""
    blocks = n / NF4_BLOCK
    stats = blocks * 1 + blocks / DOUBLE_QUANT_BLOCK * 4 if double_quant else blocks * 4
    return n * NF4_BITS / 8 + stats


def _text_config(model):
    config = model.config
    return config.get_text_config() if hasattr(config, "get_text_config") else config


def _is_text_module(name: str) -> bool:
    return not any(tower in name for tower in ("vision", "audio"))


def _decoder_layers(model) -> List[Any]:
    """(name, module) of the text tower's decoder layers."""
    return [(n, m) for n, m in model.named_modules()
            if type(m).__name__.endswith("DecoderLayer") and _is_text_module(n)]


def planned_dtypes(model, load_in_4bit: bool, skip_modules: Optional[List[str]] = None) -> Dict[str, str]:
    """The storage of every base parameter as the stage holds it: "nf4" or the compute dtype.

    model: the model (meta or loaded, before any adapter). load_in_4bit: a 4-bit stage.
    skip_modules: modules kept out of 4-bit (default: ``loading.quantization_skip_modules``).
    RETURNS (Dict[str, str]): parameter name → "nf4" or "bfloat16" (the compute dtype on a GPU).
    """
    from spacy_dgemma.llm.loading import is_quantized_linear, quantization_skip_modules

    skip = quantization_skip_modules(model) if skip_modules is None else skip_modules
    quantized = {f"{name}.weight" for name, module in model.named_modules()
                 if load_in_4bit and is_quantized_linear(name, module, skip)}
    return {name: "nf4" if name in quantized else "bfloat16" for name, _ in model.named_parameters()}


def lora_parameters(model, hparams) -> Dict[str, Any]:
    """The LoRA adapter training would add to `model` (built on the meta device by peft).

    RETURNS (dict): trainable parameter count (all, of the experts), adapted modules and parameters.
    """
    import torch
    from peft import get_peft_model

    from spacy_dgemma.llm.sft import lora_config

    with torch.device("meta"):
        peft_model = get_peft_model(model, lora_config(model, hparams))
    trainable = [(n, p) for n, p in peft_model.named_parameters() if p.requires_grad]
    # peft nests one wrapper per adapted expert parameter ("experts.base_layer"): one module each.
    modules = sorted({n.split(".lora_")[0].removeprefix("base_model.model.").replace(".base_layer", "")
                      for n, _ in trainable})
    result = {
        "parameters": sum(p.numel() for _, p in trainable),
        "expert_parameters": sum(p.numel() for n, p in trainable if ".experts" in n),
        "dtypes": sorted({str(p.dtype).removeprefix("torch.") for _, p in trainable}),
        "adapted_modules": modules,
        "target_parameters": list(peft_model.peft_config["default"].target_parameters or []),
    }
    peft_model.unload()  # give the meta model back as it was
    return result


def _layer_bytes_per_token(layer, adapted: set, top_k: int, hidden: int) -> float:
    """Activation bytes per token one decoder layer saves for its backward (bf16 compute).

    Every linear layer keeps its input and produces its output (bf16); a LoRA-adapted one also
    keeps an fp32 copy of its input; each routed expert (top_k per token) does the same for
    its two matrices; every RMSNorm keeps an fp32 copy of a hidden-sized input; then
    ``ACTIVATION_MARGIN`` (see there for how the formula compares with a measurement).
    """
    import torch

    total = 0.0
    for name, module in layer.named_modules():
        if isinstance(module, torch.nn.Linear):
            total += (module.in_features + module.out_features) * BF16
            if name in adapted:
                total += module.in_features * 4
        elif type(module).__name__.endswith("RMSNorm"):
            total += hidden * 4
        for param in module.parameters(recurse=False):
            if param.dim() == 3:  # fused experts: (experts, out, in)
                total += top_k * (param.shape[1] + param.shape[2]) * BF16
    return total * ACTIVATION_MARGIN


def _expert_bytes(layer) -> int:
    """Bytes of one layer's fused expert weights in bf16."""
    return sum(p.numel() for p in layer.parameters() if p.dim() == 3) * BF16


def _kv_cache_bytes(layers: List[Any], text_config, tokens: int, batch: int) -> float:
    """Keys and values (bf16) of `batch` sequences of `tokens` tokens.

    Read from each layer's attention module: the width of its key projection (kv heads × head
    dim), whether it reuses another layer's cache (Gemma's KV-shared layers keep none), and its
    sliding window (a sliding layer keeps its last `window` tokens, unless other layers reuse its
    cache at full length).
    """
    total = 0.0
    for _, layer in layers:
        attention = next((m for m in layer.modules() if hasattr(m, "k_proj") or hasattr(m, "is_kv_shared_layer")), None)
        if attention is None:  # an architecture without separate k/v projections: the config's widths
            heads = text_config.num_attention_heads
            width = (getattr(text_config, "num_key_value_heads", None) or heads) * (text_config.hidden_size // heads)
            total += 2 * width * tokens
            continue
        if getattr(attention, "is_kv_shared_layer", False) or getattr(attention, "k_proj", None) is None:
            continue
        window = getattr(attention, "sliding_window", None)
        kept = tokens if not window or getattr(attention, "store_full_length_kv", False) else min(tokens, window)
        total += 2 * attention.k_proj.out_features * kept  # keys and values (also when values equal keys)
    return total * BF16 * batch


def plan_memory(
    model: str,
    stage: str,
    gpu_memory_gib: Optional[float] = None,
    hparams: Optional[str] = None,
    load_in_4bit: Optional[bool] = None,
    batch_size: Optional[int] = None,
    seq_len: Optional[int] = None,
    response_tokens: int = 512,
    max_article_tokens: int = 6000,
    max_new_tokens: int = 256,
) -> Dict[str, Any]:
    """What `stage` needs on one GPU for `model`, from its config alone.

    model: hub name or local folder (only config.json is read).
    stage: "teacher-qlora" (4-bit base + LoRA training), "annotate" (the teacher generating),
        "distill" (full-precision student + LoRA training) or "student" (the student generating).
    gpu_memory_gib: the GPU's memory; the plan says whether the stage fits and what to change.
    hparams: training stages: hyperparameter file or packaged name (default: the stage's own).
    load_in_4bit: inference stages: 4-bit NF4 weights (default: no, as `all` serves bf16 models).
    batch_size: sequences per step (training default: the hyperparameters'; inference: 8 pairs).
    seq_len: tokens per sequence (training default: max_length; inference: article + prompt + answer).
    response_tokens: training: labelled tokens per sequence for which logits are computed.
    max_article_tokens, max_new_tokens: inference: the prompt's article budget and the answer length.
    RETURNS (dict): JSON-ready plan: settings, parameter counts, GiB per component, total, fit, advice.
    """
    from spacy_dgemma.llm.loading import meta_model, quantization_skip_modules
    from spacy_dgemma.llm.sft import LoraHyperparams

    if stage not in STAGES:
        raise InputError.of("E167", "--stage", stage=stage, stages=list(STAGES))
    training = stage in TRAINING_HPARAMS
    for what, value in (("--gpu-memory", gpu_memory_gib), ("--batch-size", batch_size), ("--seq-len", seq_len)):
        if value is not None and value <= 0:
            raise InputError.of("E172", what, what=what, rule="positive", value=value)
    meta = meta_model(model)
    text = _text_config(meta)
    layers = _decoder_layers(meta)
    hidden = text.hidden_size
    vocab = text.vocab_size
    top_k = getattr(text, "top_k_experts", None) or getattr(text, "num_experts_per_tok", None) or 0
    if training:
        hp = LoraHyperparams.from_file(hparams or TRAINING_HPARAMS[stage])
        four_bit = stage == "teacher-qlora"
        batch = batch_size or hp.batch_size
        tokens = seq_len or hp.max_length
    else:
        hp = None
        four_bit = bool(load_in_4bit)
        batch = batch_size or 8
        tokens = seq_len or max_article_tokens + PROMPT_TOKENS + max_new_tokens
    skip = quantization_skip_modules(meta)
    dtypes = planned_dtypes(meta, four_bit, skip)
    params = dict(meta.named_parameters())
    n_nf4 = sum(params[n].numel() for n, d in dtypes.items() if d == "nf4")
    n_bf16 = sum(params[n].numel() for n, d in dtypes.items() if d != "nf4")
    n_experts = sum(p.numel() for n, p in params.items() if p.dim() == 3 and _is_text_module(n))
    gib: Dict[str, float] = {
        "weights_nf4": nf4_bytes(n_nf4) / GIB,
        "weights_bf16": n_bf16 * BF16 / GIB,
    }
    lora = None
    if training:
        lora = lora_parameters(meta, hp)
        adapted = {m.split(".layers.", 1)[-1].split(".", 1)[-1] for m in lora["adapted_modules"]}
        per_token = max(_layer_bytes_per_token(layer, adapted, top_k, hidden) for _, layer in layers)
        gib["lora_weights_gradients_adamw"] = lora["parameters"] * LORA_BYTES / GIB
        if hp.gradient_checkpointing:
            gib["activations_checkpoints"] = len(layers) * batch * tokens * hidden * BF16 / GIB
            gib["activations_one_layer_backward"] = 2 * batch * tokens * per_token / GIB
        else:
            gib["activations_all_layers"] = len(layers) * batch * tokens * per_token / GIB
        if lora["expert_parameters"]:
            gib["expert_lora_materialised"] = 2 * max(_expert_bytes(layer) for _, layer in layers) / GIB
        gib["logits_response"] = batch * min(response_tokens, tokens) * vocab * LOGIT_BYTES / GIB
    else:
        gib["kv_cache"] = _kv_cache_bytes(layers, text, tokens, batch) / GIB
        per_token = max(_layer_bytes_per_token(layer, set(), top_k, hidden) for _, layer in layers)
        gib["prefill_one_layer"] = tokens * per_token / GIB
        gib["logits_last_token"] = batch * vocab * 4 / GIB
    subtotal = sum(gib.values())
    gib["overhead_cuda_context_fragmentation"] = CUDA_CONTEXT_GIB + FRAGMENTATION * subtotal
    total = sum(gib.values())
    plan: Dict[str, Any] = {
        "model": model,
        "architecture": type(meta).__name__,
        "stage": stage,
        "settings": {
            "load_in_4bit": four_bit, "compute_dtype": "bfloat16", "batch_size": batch, "seq_len": tokens,
            **({"lora_r": hp.r, "adapt_experts": hp.adapt_experts, "gradient_checkpointing": hp.gradient_checkpointing,
                "response_tokens": min(response_tokens, tokens)} if training else
               {"max_article_tokens": max_article_tokens, "max_new_tokens": max_new_tokens}),
        },
        "parameters": {
            "total": n_nf4 + n_bf16, "nf4": n_nf4, "bfloat16": n_bf16, "fused_experts": n_experts,
            "decoder_layers": len(layers),
        },
        "skip_modules": skip if four_bit else [],
        "gib": {k: round(v, 2) for k, v in gib.items()},
        "total_gib": round(total, 2),
    }
    if lora is not None:
        plan["lora"] = {k: v for k, v in lora.items() if k != "adapted_modules"}
        plan["lora"]["adapted_modules"] = len(lora["adapted_modules"])
    if gpu_memory_gib is not None:
        plan["gpu_memory_gib"] = gpu_memory_gib
        plan["fits"] = total <= gpu_memory_gib
        plan["advice"] = [] if plan["fits"] else advice(plan)
    return plan


def advice(plan: Dict[str, Any]) -> List[str]:
    """What to change when a plan does not fit, biggest lever first."""
    gib, settings = plan["gib"], plan["settings"]
    tips = []
    weights = gib["weights_nf4"] + gib["weights_bf16"]
    if plan["stage"] in ("annotate", "student") and not settings["load_in_4bit"]:
        tips.append("load the weights in 4-bit (--4bit); bitsandbytes leaves fused MoE experts in bf16")
    if gib.get("kv_cache", 0) > 1:
        tips.append(f"decode fewer pairs together (--batch-size, now {settings['batch_size']}) or shorten "
                    f"the article budget (--max-article-tokens, now {settings['max_article_tokens']})")
    if "activations_all_layers" in gib:
        tips.append("turn on gradient_checkpointing in the hyperparameters")
    if any(k.startswith("activations") for k in gib) and settings["seq_len"] > 2048:
        tips.append(f"lower max_length (now {settings['seq_len']}; longer SFT examples are skipped) or "
                    f"batch_size (now {settings['batch_size']}; raise gradient_accumulation instead)")
    if gib.get("expert_lora_materialised") or plan.get("lora", {}).get("expert_parameters"):
        tips.append("set adapt_experts to false (LoRA on attention and dense MLP only) or lower r")
    if weights > plan.get("gpu_memory_gib", 0):
        tips.append(f"the weights alone need {weights:.1f} GiB: use a GPU with more memory or a smaller model")
    return tips
