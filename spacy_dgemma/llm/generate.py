"""Greedy generation for many pairs of one document, reusing the document prefix's KV cache.

``generate_cached`` reads the document prefix once, keeps its key/value cache, and decodes the
pairs in batches from copies of it. Pair suffixes of different lengths are right-padded; the
attention masks are built from token *positions* (not cache indices), per layer type (full and
sliding-window attention), so padding never shifts a sliding window and every row computes what
a single unpadded prompt computes. The cache is a plain ``DynamicCache`` (no sliding-window
eviction) so that padded rows keep all the keys their window needs.

``generate_naive`` is the reference: one ``model.generate`` call per pair on the full prompt.
Both return the generated token ids and, for label scoring, the raw logits of a few watched token
ids (the first tokens of the label strings) at every step. Decoding is greedy unless a temperature
is given (``--retry-fallbacks`` samples), seeded per call so that a rerun writes the same answer.

This path relies on the model accepting a per-layer-type dict of 4D masks as
``attention_mask`` (Gemma 4 and most decoder models of transformers 5 do); it needs an
attention implementation that takes explicit masks ("sdpa" or "eager"), not flash attention.
"""
import copy
import inspect
import logging
from dataclasses import dataclass, field
from typing import Dict, Iterable, List, Optional, Sequence

logger = logging.getLogger("spacy_dgemma")


@dataclass
class Generation:
    """One generated answer: token ids (stop token excluded), the watched logits per step."""

    token_ids: List[int]
    watched_logits: List[List[float]] = field(default_factory=list)


@dataclass
class GenerationStats:
    """Positions run through the model (padding included), per path."""

    prompt_tokens: int = 0
    generated_tokens: int = 0

    @property
    def total(self) -> int:
        return self.prompt_tokens + self.generated_tokens


def text_config(model):
    """The text model's config (for causal LMs, multimodal wrappers and PEFT models alike)."""
    config = model.config
    return getattr(config, "text_config", None) or config


def stop_token_ids(model, tokenizer) -> List[int]:
    """End-of-sequence ids: the generation config's, the tokenizer's, and Gemma's end of turn."""
    ids = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    ids = list(ids) if isinstance(ids, (list, tuple)) else ([] if ids is None else [ids])
    if tokenizer.eos_token_id is not None:
        ids.append(tokenizer.eos_token_id)
    eot = tokenizer.convert_tokens_to_ids("<turn|>")
    if isinstance(eot, int) and eot != tokenizer.unk_token_id:
        ids.append(eot)
    return sorted(set(ids))


class PrefixCachedGenerator:
    """Greedy decoding of many pair suffixes that share one document prefix.

    model / tokenizer: a Hugging Face causal LM (or a PEFT model around one) and its tokenizer.
    max_new_tokens: generation limit per pair. batch_size: pairs decoded together.
    watch_ids: token ids whose raw logits are recorded at every step (label scoring).
    temperature: 0 decodes greedily; above 0 samples (seeded with `seed` on every call).
    """

    def __init__(self, model, tokenizer, max_new_tokens: int = 256, batch_size: int = 8,
                 watch_ids: Sequence[int] = (), temperature: float = 0.0, seed: int = 0):
        self.model = model
        self.tokenizer = tokenizer
        self.max_new_tokens = max_new_tokens
        self.temperature = temperature
        self.seed = seed
        self._rng = None
        self.batch_size = max(1, batch_size)
        self.watch_ids = list(watch_ids)
        self.stop_ids = stop_token_ids(model, tokenizer)
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else self.stop_ids[0]
        config = text_config(model)
        self.layer_types = sorted(set(getattr(config, "layer_types", None) or ["full_attention"]))
        self.sliding_window = getattr(config, "sliding_window", None)
        self._cache_kw = self._cache_keyword(model)

    @staticmethod
    def _cache_keyword(model) -> str:
        base = model.get_base_model() if hasattr(model, "get_base_model") else model
        return "cache" if "cache" in inspect.signature(base.forward).parameters else "past_key_values"

    @property
    def device(self):
        return next(self.model.parameters()).device

    def _masks(self, q_pos, kv_pos, kv_valid) -> Dict[str, "object"]:
        import torch

        causal = kv_valid[:, None, None, :] & (kv_pos[:, None, None, :] <= q_pos[:, None, :, None])
        masks = {}
        for layer_type in self.layer_types:
            mask = causal
            if layer_type == "sliding_attention" and self.sliding_window:
                mask = causal & (q_pos[:, None, :, None] - kv_pos[:, None, None, :] < self.sliding_window)
            if text_config(self.model)._attn_implementation == "eager":
                dtype = next(self.model.parameters()).dtype
                dtype = dtype if dtype.is_floating_point else torch.float32
                mask = torch.zeros(mask.shape, dtype=dtype, device=mask.device).masked_fill(
                    ~mask, torch.finfo(dtype).min
                )
            masks[layer_type] = mask
        return masks

    def _forward(self, input_ids, q_pos, kv_pos, kv_valid, cache, logits_to_keep: int = 0):
        out = self.model(
            input_ids=input_ids,
            position_ids=q_pos,
            attention_mask=self._masks(q_pos, kv_pos, kv_valid),
            use_cache=True,
            logits_to_keep=logits_to_keep,
            **{self._cache_kw: cache},
        )
        return out.logits

    def generate_cached(self, prefix_ids: Sequence[int], suffixes: Sequence[Sequence[int]],
                        stats: Optional[GenerationStats] = None) -> List[Generation]:
        """Greedy answers for every suffix, reading the prefix once."""
        import torch
        from transformers import DynamicCache

        if not suffixes:
            return []
        stats = stats if stats is not None else GenerationStats()
        device = self.device
        n_prefix = len(prefix_ids)
        prefix_cache = DynamicCache()
        self._rng = torch.Generator(device=device).manual_seed(self.seed) if self.temperature > 0 else None
        with torch.inference_mode():
            if n_prefix:
                # One unpadded sequence: positions equal cache indices, so the model's own masks
                # (and its fast causal kernels) compute exactly what the position-based masks would.
                self.model(input_ids=torch.tensor([list(prefix_ids)], device=device), use_cache=True,
                           logits_to_keep=1, **{self._cache_kw: prefix_cache})
                stats.prompt_tokens += n_prefix
            results: List[Generation] = []
            for start in range(0, len(suffixes), self.batch_size):
                batch = [list(s) for s in suffixes[start : start + self.batch_size]]
                cache = copy.deepcopy(prefix_cache)
                if n_prefix and len(batch) > 1:
                    cache.batch_repeat_interleave(len(batch))
                results.extend(self._decode_batch(batch, n_prefix, cache, stats))
        return results

    def _decode_batch(self, batch: List[List[int]], n_prefix: int, cache, stats: GenerationStats) -> List[Generation]:
        import torch

        device = self.device
        size, width = len(batch), max(len(s) for s in batch)
        lengths = torch.tensor([len(s) for s in batch], device=device)
        input_ids = torch.full((size, width), self.pad_id, dtype=torch.long, device=device)
        for i, ids in enumerate(batch):
            input_ids[i, : len(ids)] = torch.tensor(ids, device=device)
        offsets = torch.arange(width, device=device)[None, :]
        valid = offsets < lengths[:, None]
        # Padding repeats the row's last real position, so its query always sees some key.
        q_pos = n_prefix + torch.minimum(offsets, (lengths - 1)[:, None])
        prefix_pos = torch.arange(n_prefix, device=device)[None, :].expand(size, -1)
        kv_pos = torch.cat([prefix_pos, q_pos], dim=1)
        kv_valid = torch.cat([torch.ones_like(prefix_pos, dtype=torch.bool), valid], dim=1)
        logits = self._forward(input_ids, q_pos, kv_pos, kv_valid, cache)
        logits = logits[torch.arange(size, device=device), lengths - 1].float()
        stats.prompt_tokens += size * width
        next_pos = n_prefix + lengths
        out = [Generation([]) for _ in range(size)]
        done = torch.zeros(size, dtype=torch.bool, device=device)
        stop = torch.tensor(self.stop_ids, device=device)
        for step in range(self.max_new_tokens):
            tokens = self._pick(logits)
            watched = logits[:, self.watch_ids].tolist() if self.watch_ids else [[]] * size
            is_stop = torch.isin(tokens, stop)
            for i in range(size):
                if not done[i]:
                    out[i].watched_logits.append(watched[i])
                    if not is_stop[i]:
                        out[i].token_ids.append(int(tokens[i]))
            done |= is_stop
            if bool(done.all()) or step == self.max_new_tokens - 1:
                break
            q = next_pos[:, None]
            kv_pos = torch.cat([kv_pos, q], dim=1)
            kv_valid = torch.cat([kv_valid, torch.ones_like(q, dtype=torch.bool)], dim=1)
            tokens = torch.where(done, torch.full_like(tokens, self.pad_id), tokens)
            logits = self._forward(tokens[:, None], q, kv_pos, kv_valid, cache)[:, -1].float()
            stats.generated_tokens += size
            next_pos = next_pos + 1
        return out

    def _pick(self, logits):
        """The next token of each row: the argmax, or a sample at `temperature`."""
        import torch

        if self.temperature <= 0:
            return logits.argmax(-1)
        probs = torch.softmax(logits / self.temperature, dim=-1)
        return torch.multinomial(probs, 1, generator=self._rng)[:, 0]

    def generate_naive(self, prefix_ids: Sequence[int], suffixes: Sequence[Sequence[int]],
                       stats: Optional[GenerationStats] = None) -> List[Generation]:
        """Reference path: one full prompt per pair, ``model.generate`` (greedy, or sampled at `temperature`)."""
        import torch

        stats = stats if stats is not None else GenerationStats()
        results = []
        sampling = {"do_sample": False}
        if self.temperature > 0:
            torch.manual_seed(self.seed)
            sampling = {"do_sample": True, "temperature": self.temperature, "top_k": 0, "top_p": 1.0}
        with torch.inference_mode():
            for suffix in suffixes:
                ids = torch.tensor([list(prefix_ids) + list(suffix)], device=self.device)
                out = self.model.generate(
                    input_ids=ids,
                    attention_mask=torch.ones_like(ids),
                    max_new_tokens=self.max_new_tokens,
                    **sampling,
                    eos_token_id=self.stop_ids,
                    pad_token_id=self.pad_id,
                    return_dict_in_generate=True,
                    output_logits=True,
                )
                new = out.sequences[0, ids.shape[1] :].tolist()
                tokens = []  # up to the first stop token, as the cached path keeps them
                for t in new:
                    if t in self.stop_ids:
                        break
                    tokens.append(t)
                steps = out.logits[: len(tokens) + 1]
                watched = [s[0, self.watch_ids].float().tolist() if self.watch_ids else [] for s in steps]
                gen = Generation(tokens, watched)
                results.append(gen)
                stats.prompt_tokens += ids.shape[1]
                stats.generated_tokens += max(len(new) - 1, 0)
        return results


def label_first_token_ids(tokenizer, labels: Iterable[str]) -> Dict[str, int]:
    """The first token id of each label string as it follows a JSON quote."""
    return {label: tokenizer(label, add_special_tokens=False)["input_ids"][0] for label in labels}
