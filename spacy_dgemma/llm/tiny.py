"""Tiny Gemma-4-architecture models and a locally trained tokenizer, for CPU tests and `smoke`.

Nothing here downloads anything. The tokenizer is a byte-level BPE trained with `tokenizers` on
HIPE article text and carries Gemma 4's special tokens (``<pad>``=0, ``<eos>``=1, ``<bos>``=2,
``<|turn>``, ``<turn|>``, ...). Its chat template is the project's own, in the Gemma 4 turn
format (``templates/chat/gemma4-{small,large}.jinja``), so prompts are laid out as for the real
checkpoints. The models have random weights:

- ``student``: shaped like ``google/gemma-4-E2B-it`` (per-layer embeddings, sliding and full
  attention layers, KV-shared layers), with the small-model chat template;
- ``teacher``: shaped like ``google/gemma-4-26B-A4B-it`` (a mixture-of-experts block with fused
  3D expert weights beside the dense MLP, keys equal values on full-attention layers), with the
  large-model chat template, whose generation prompt adds an empty thought channel.

Both load with ``AutoTokenizer/AutoModelForCausalLM.from_pretrained(path)``.
"""
import json
import logging
from pathlib import Path
from typing import Dict, Iterable, Iterator, List, Union

logger = logging.getLogger("spacy_dgemma")

# Gemma 4's special tokens, in Gemma's id order for the first four.
SPECIAL_TOKENS: List[str] = [
    "<pad>", "<eos>", "<bos>", "<unk>", "<mask>",
    "<|turn>", "<turn|>", "<|channel>", "<channel|>", "<|think|>",
    "<|tool>", "<tool|>", "<|tool_call>", "<tool_call|>", "<|tool_response>", "<tool_response|>",
    '<|"|>', "<|image|>", "<|audio|>", "<|video|>",
]
END_OF_TURN = "<turn|>"
CHAT_TEMPLATE_DIR = Path(__file__).parent.parent / "templates" / "chat"
# The chat template variant of each tiny model, as on the hub: the 26B/31B models' generation
# prompt closes an empty thought channel when thinking is off, the E2B/E4B models' does not.
TINY_CHAT_TEMPLATES: Dict[str, str] = {"student": "small", "teacher": "large"}

# Architecture presets (see the module docstring). vocab_size is set from the tokenizer.
# The teacher, which the workflows load in 4-bit, has every linear layer's out_features a
# multiple of 32 and in_features a multiple of 64 (the 4-bit block size): on CPUs with
# AVX512-BF16, bitsandbytes repacks NF4 weights in blocks of 32 × 64 for inference and fails on
# other shapes (a 96-wide MLP and a 4-expert router did). The student (full precision in the
# workflows) keeps an 8-wide per-layer input, which such a CPU could not run in 4-bit.
TINY_PRESETS: Dict[str, Dict] = {
    "student": dict(
        hidden_size=64, intermediate_size=128, num_hidden_layers=4, num_attention_heads=2,
        num_key_value_heads=1, head_dim=32, global_head_dim=32, sliding_window=48,
        layer_types=["sliding_attention", "full_attention", "sliding_attention", "full_attention"],
        num_kv_shared_layers=2, hidden_size_per_layer_input=8, final_logit_softcapping=30.0,
    ),
    "teacher": dict(
        hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=2,
        num_key_value_heads=1, head_dim=32, global_head_dim=32, num_global_key_value_heads=1,
        sliding_window=48, layer_types=["sliding_attention", "full_attention"],
        attention_k_eq_v=True, enable_moe_block=True, num_experts=32, top_k_experts=2,
        moe_intermediate_size=32, hidden_size_per_layer_input=0, final_logit_softcapping=30.0,
    ),
}


def chat_template(variant: str = "small") -> str:
    """The project's Gemma 4 chat template: "small" (E2B/E4B style) or "large" (26B-A4B/31B style)."""
    from spacy_dgemma.errors import Errors

    path = CHAT_TEMPLATE_DIR / f"gemma4-{variant}.jinja"
    if variant not in ("small", "large") or not path.is_file():
        raise ValueError(Errors.E160.format(variant=variant))
    return path.read_text(encoding="utf8")


def iter_hipe_texts(paths: Iterable[Union[str, Path]]) -> Iterator[str]:
    """Article texts of HIPE JSONL files (one document per line)."""
    for path in paths:
        with Path(path).open(encoding="utf8") as file:
            for line in file:
                if line.strip():
                    yield json.loads(line)["text"]


def train_tokenizer(texts: Iterable[str], output_dir: Union[str, Path], vocab_size: int = 4096,
                    template: str = "small"):
    """Train a byte-level BPE tokenizer with Gemma 4's special tokens and a chat template; save it.

    texts: training text (e.g. the HIPE train articles).
    output_dir: where ``tokenizer.json``, its config and ``chat_template.jinja`` are written.
    vocab_size: size of the vocabulary, special tokens included.
    template: the chat template variant, "small" or "large" (see ``chat_template``).
    RETURNS (PreTrainedTokenizerFast): the tokenizer, as ``AutoTokenizer`` will load it.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer=trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<bos>",
        eos_token="<eos>",
        unk_token="<unk>",
        pad_token="<pad>",
        mask_token="<mask>",
        extra_special_tokens={"eot_token": END_OF_TURN},
        chat_template=chat_template(template),
        padding_side="left",
    )
    tokenizer.save_pretrained(str(output_dir))
    return tokenizer


def build_tiny_model(kind: str, tokenizer, output_dir: Union[str, Path], seed: int = 0):
    """Build a randomly initialised tiny Gemma 4 causal LM and save it (safetensors) with the tokenizer.

    kind: "student" (E2B-like) or "teacher" (26B-A4B-like, mixture of experts).
    tokenizer: the tokenizer (its vocabulary and special-token ids define the model's); it is saved
        with the model and the chat template variant of `kind` (``TINY_CHAT_TEMPLATES``).
    output_dir: target directory.
    seed: torch seed for the random weights.
    RETURNS (Gemma4ForCausalLM): the model.
    """
    import torch
    from transformers import Gemma4ForCausalLM, Gemma4TextConfig, GenerationConfig

    from spacy_dgemma.errors import Errors

    if kind not in TINY_PRESETS:
        raise ValueError(Errors.E161.format(kind=kind, kinds=sorted(TINY_PRESETS)))
    preset = dict(TINY_PRESETS[kind])
    vocab = len(tokenizer)
    eot_id = tokenizer.convert_tokens_to_ids(END_OF_TURN)
    config = Gemma4TextConfig(
        vocab_size=vocab,
        vocab_size_per_layer_input=vocab,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=[tokenizer.eos_token_id, eot_id],
        max_position_embeddings=32768,
        tie_word_embeddings=True,
        **preset,
    )
    torch.manual_seed(seed)
    model = Gemma4ForCausalLM(config)
    model.generation_config = GenerationConfig(
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=[tokenizer.eos_token_id, eot_id],
        pad_token_id=tokenizer.pad_token_id,
        do_sample=False,
    )
    output_dir = Path(output_dir)
    model.save_pretrained(str(output_dir))
    template = tokenizer.chat_template
    tokenizer.chat_template = chat_template(TINY_CHAT_TEMPLATES[kind])
    try:
        tokenizer.save_pretrained(str(output_dir))
    finally:
        tokenizer.chat_template = template
    n_params = sum(p.numel() for p in model.parameters())
    logger.info("Built tiny %s (%d parameters) in %s", kind, n_params, output_dir)
    return model


def build_tiny_models(
    train_paths: Iterable[Union[str, Path]],
    output_dir: Union[str, Path],
    vocab_size: int = 4096,
    seed: int = 0,
) -> Dict[str, Path]:
    """Train the tokenizer on HIPE texts and build the tiny teacher and student under `output_dir`.

    train_paths: HIPE JSONL files whose article texts train the tokenizer.
    output_dir: gets ``tokenizer/``, ``teacher/`` and ``student/``.
    vocab_size: tokenizer vocabulary size.
    seed: seed of the random weights.
    RETURNS (Dict[str, Path]): the directory of each built artefact.
    """
    from spacy_dgemma.errors import InputError

    train_paths = [Path(p) for p in train_paths]
    if not train_paths:
        raise InputError.of("E162", "--train")
    for path in train_paths:
        if not path.exists():
            raise InputError.of("E007", path)
    output_dir = Path(output_dir)
    tokenizer = train_tokenizer(iter_hipe_texts(train_paths), output_dir / "tokenizer", vocab_size)
    paths = {"tokenizer": output_dir / "tokenizer"}
    for i, kind in enumerate(("teacher", "student")):
        build_tiny_model(kind, tokenizer, output_dir / kind, seed=seed + i)
        paths[kind] = output_dir / kind
    return paths
