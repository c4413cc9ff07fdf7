"""Label every pair of a document with a generative model: prompt → generate → parse → scores."""
import logging
import math
import re
from dataclasses import dataclass
from typing import List, Optional, Sequence

from spacy_dgemma.labels import AT_LABELS, IS_AT_LABELS
from spacy_dgemma.llm.chat import encode_prompt
from spacy_dgemma.llm.generate import Generation, GenerationStats, PrefixCachedGenerator, label_first_token_ids
from spacy_dgemma.llm.parse import ParsedOutput, ParseStats, parse_output
from spacy_dgemma.llm.prompts import PROMPT_VERSION, PromptDocument, PromptPair, build_prompts

logger = logging.getLogger("spacy_dgemma")


@dataclass
class PairResult:
    """A pair's raw output, its parse, and its score row (columns of ``labels.SCORE_COLUMNS``)."""

    raw: str
    parsed: ParsedOutput
    scores: List[float]


class RelationLabeller:
    """Prompts a causal LM for the `at`/`isAt` labels of every pair of a document.

    model / tokenizer: the loaded model (any causal LM with a chat template).
    prompt_version: the template version. max_article_tokens: budget of the article text.
    max_new_tokens / batch_size: generation settings. cache_prefix: reuse the document prefix's
    KV cache (default) instead of one full prompt per pair (the reference path).
    """

    def __init__(self, model, tokenizer, prompt_version: str = PROMPT_VERSION,
                 max_article_tokens: int = 6000, max_new_tokens: int = 256, batch_size: int = 8,
                 cache_prefix: bool = True):
        self.tokenizer = tokenizer
        self.prompt_version = prompt_version
        self.max_article_tokens = max_article_tokens
        self.cache_prefix = cache_prefix
        self.at_ids = label_first_token_ids(tokenizer, AT_LABELS)
        self.is_at_ids = label_first_token_ids(tokenizer, IS_AT_LABELS)
        watch = sorted(set(self.at_ids.values()) | set(self.is_at_ids.values()))
        self.generator = PrefixCachedGenerator(model, tokenizer, max_new_tokens, batch_size, watch)
        self.parse_stats = ParseStats()
        self.gen_stats = GenerationStats()

    def count_tokens(self, text: str) -> int:
        return len(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def label_document(self, document: PromptDocument, pairs: Optional[Sequence[PromptPair]] = None,
                       rationalise: bool = False) -> List[PairResult]:
        """Results for `pairs` (default: all pairs of `document`), in order."""
        prompts = build_prompts(document, self.prompt_version, self.max_article_tokens, self.count_tokens,
                                rationalise=rationalise, pairs=pairs)
        if not prompts:
            return []
        encoded = [encode_prompt(self.tokenizer, p) for p in prompts]
        prefix = encoded[0][0]
        if any(e[0] != prefix for e in encoded):
            raise RuntimeError("Prompts of one document must share their document prefix.")
        suffixes = [e[1] for e in encoded]
        generate = self.generator.generate_cached if self.cache_prefix else self.generator.generate_naive
        generations = generate(prefix, suffixes, self.gen_stats)
        results = []
        for gen in generations:
            raw = self.tokenizer.decode(gen.token_ids, skip_special_tokens=True)
            logger.debug("Raw output for %s: %s", document.document_id, raw)
            parsed = parse_output(raw)
            self.parse_stats.add(parsed)
            results.append(PairResult(raw, parsed, self._scores(gen, raw, parsed)))
        return results

    def _scores(self, gen: Generation, raw: str, parsed: ParsedOutput) -> List[float]:
        at = self._field_probs(gen, raw, "at", parsed.at, self.at_ids, parsed.at_fallback)
        is_at = self._field_probs(gen, raw, "isAt", parsed.is_at, self.is_at_ids, parsed.is_at_fallback)
        return [at[label] for label in AT_LABELS] + [is_at[label] for label in IS_AT_LABELS]

    def _field_probs(self, gen: Generation, raw: str, key: str, label: str, first_ids, fallback: bool):
        """Label probabilities from the logits of the labels' first tokens where the label was
        written; one-hot when they cannot be read (fallback, shared first tokens, no match)."""
        one_hot = {name: float(name == label) for name in first_ids}
        ids = list(first_ids.values())
        if fallback or len(set(ids)) != len(ids):
            return one_hot
        match = re.search(rf'"{key}"\s*:\s*"', raw)
        if not match:
            return one_hot
        step = self._token_at_char(gen.token_ids, match.end())
        if step is None or step >= len(gen.watched_logits) or gen.token_ids[step] != first_ids[label]:
            return one_hot
        watch = self.generator.watch_ids
        logits = [gen.watched_logits[step][watch.index(first_ids[name])] for name in first_ids]
        top = max(logits)
        exp = [math.exp(x - top) for x in logits]
        return {name: e / sum(exp) for name, e in zip(first_ids, exp)}

    def _token_at_char(self, token_ids: List[int], char: int) -> Optional[int]:
        """Index of the generated token whose decoded text covers character `char`."""
        lo, hi = 0, len(token_ids)
        while lo < hi:  # smallest k with len(decode(ids[:k+1])) > char
            mid = (lo + hi) // 2
            if len(self.tokenizer.decode(token_ids[: mid + 1], skip_special_tokens=True)) > char:
                hi = mid
            else:
                lo = mid + 1
        return lo if lo < len(token_ids) else None
