"""Label the pairs of documents with a generative model: prompt → engine → parse → scores.

The labeller renders each document's prompts (``prompts.py``), tokenises them segment-wise
(``chat.py``), hands them to an engine (``engines/``: Hugging Face in-process, a vLLM or other
OpenAI-compatible server, or vLLM in-process) and parses every answer (``parse.py``). Label
scores are the softmax over the label strings' first tokens at the step where the model wrote
the label (raw logits from ``hf``, log-probabilities from servers; the same softmax).
"""
import logging
import math
import re
from dataclasses import dataclass
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple

from spacy_dgemma.errors import Errors
from spacy_dgemma.labels import AT_LABELS, IS_AT_LABELS
from spacy_dgemma.llm.chat import encode_prompt
from spacy_dgemma.llm.engines import Engine, GenerationSettings, PromptGroup, settings_key
from spacy_dgemma.llm.generate import Generation, GenerationStats, label_first_token_ids
from spacy_dgemma.llm.parse import ParsedOutput, ParseStats, parse_output
from spacy_dgemma.llm.prompts import PROMPT_VERSION, PromptDocument, PromptPair, build_prompts, template_digest
from spacy_dgemma.util import stable_key

logger = logging.getLogger("spacy_dgemma")
Item = Tuple[PromptDocument, Optional[Sequence[PromptPair]]]


@dataclass
class PairResult:
    """A pair's raw output, its parse, and its score row (columns of ``labels.SCORE_COLUMNS``)."""

    raw: str
    parsed: ParsedOutput
    scores: List[float]


class RelationLabeller:
    """Prompts a model for the `at`/`isAt` labels of every pair of documents.

    model / tokenizer: a loaded Hugging Face causal LM and its tokenizer (builds an ``hf`` engine);
        or leave them out and pass `engine`.
    prompt_version: the template version. max_article_tokens: budget of the article text.
    max_new_tokens / batch_size / cache_prefix: the ``hf`` engine's settings (ignored with `engine`).
    engine: any engine (``engines.open_engine``). template_dir: a declared folder of templates.
    """

    def __init__(self, model=None, tokenizer=None, prompt_version: str = PROMPT_VERSION,
                 max_article_tokens: int = 6000, max_new_tokens: int = 256, batch_size: int = 8,
                 cache_prefix: bool = True, engine: Optional[Engine] = None, template_dir=None):
        if engine is None:
            from spacy_dgemma.llm.engines.hf import HFEngine

            engine = HFEngine(model, tokenizer, GenerationSettings(max_new_tokens=max_new_tokens), batch_size=batch_size,
                              cache_prefix=cache_prefix)
        self.engine = engine
        self.tokenizer = engine.tokenizer
        self.prompt_version = prompt_version
        self.max_article_tokens = max_article_tokens
        self.template_dir = template_dir
        self.at_ids = label_first_token_ids(self.tokenizer, AT_LABELS)
        self.is_at_ids = label_first_token_ids(self.tokenizer, IS_AT_LABELS)
        self.watch_ids = sorted(set(self.at_ids.values()) | set(self.is_at_ids.values()))
        self.parse_stats = ParseStats()

    @property
    def gen_stats(self) -> GenerationStats:
        return self.engine.stats

    def count_tokens(self, text: str) -> int:
        return len(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def prompts(self, document: PromptDocument, pairs: Optional[Sequence[PromptPair]] = None, rationalise: bool = False):
        """The prompts of `pairs` (default: all pairs of `document`), as the model sees them."""
        return build_prompts(document, self.prompt_version, self.max_article_tokens, self.count_tokens,
                             rationalise=rationalise, pairs=pairs, template_dir=self.template_dir)

    def answer_key(self, settings: Optional[GenerationSettings] = None) -> Dict[str, Any]:
        """Everything besides the document that decides an answer: template version and content,
        the chat template, the article budget, the decoding settings, the weights' identity."""
        return {
            "prompt_version": self.prompt_version,
            "template": template_digest(self.prompt_version, self.template_dir),
            "chat_template": stable_key(str(self.tokenizer.chat_template or "")),
            "max_article_tokens": self.max_article_tokens,
            "generation": settings_key(self.engine.effective(settings)),
            "model": self.engine.identity,
        }

    def _group(self, document: PromptDocument, pairs, rationalise: bool) -> PromptGroup:
        encoded = [encode_prompt(self.tokenizer, p) for p in self.prompts(document, pairs, rationalise)]
        if not encoded:
            return PromptGroup([], [])
        prefix = encoded[0][0]
        if any(e[0] != prefix for e in encoded):
            raise ValueError(Errors.E191.format(doc=document.document_id))
        return PromptGroup(prefix, [e[1] for e in encoded])

    def label_stream(self, items: Sequence[Item], rationalise: bool = False,
                     settings: Optional[GenerationSettings] = None) -> Iterator[Tuple[int, int, PairResult]]:
        """Yield (item index, pair position, result) for every pair of every item, as answers come.

        items: (document, pairs or None for all its pairs). rationalise: ask to explain the gold
        labels. settings: decoding settings [default: the engine's].
        """
        groups = [self._group(document, pairs, rationalise) for document, pairs in items]
        for g, i, generation in self.engine.generate(groups, self.watch_ids, settings):
            raw = self.tokenizer.decode(generation.token_ids, skip_special_tokens=True)
            logger.debug("Raw output for %s: %s", items[g][0].document_id, raw)
            parsed = parse_output(raw)
            self.parse_stats.add(parsed)
            yield g, i, PairResult(raw, parsed, self._scores(generation, raw, parsed))

    def label_documents(self, items: Sequence[Item], rationalise: bool = False,
                        settings: Optional[GenerationSettings] = None) -> List[List[PairResult]]:
        """The results of every item's pairs, in order (see ``label_stream``)."""
        results: List[List[Optional[PairResult]]] = [
            [None] * len(document.pairs if pairs is None else pairs) for document, pairs in items
        ]
        for g, i, result in self.label_stream(items, rationalise, settings):
            results[g][i] = result
        return results  # type: ignore[return-value]

    def label_document(self, document: PromptDocument, pairs: Optional[Sequence[PromptPair]] = None,
                       rationalise: bool = False, settings: Optional[GenerationSettings] = None) -> List[PairResult]:
        """Results for `pairs` (default: all pairs of `document`), in order."""
        return self.label_documents([(document, pairs)], rationalise, settings)[0]

    def _scores(self, gen: Generation, raw: str, parsed: ParsedOutput) -> List[float]:
        at = self._field_probs(gen, raw, "at", parsed.at, self.at_ids, parsed.at_fallback)
        is_at = self._field_probs(gen, raw, "isAt", parsed.is_at, self.is_at_ids, parsed.is_at_fallback)
        return [at[label] for label in AT_LABELS] + [is_at[label] for label in IS_AT_LABELS]

    def _field_probs(self, gen: Generation, raw: str, key: str, label: str, first_ids, fallback: bool):
        """Label probabilities from the scores of the labels' first tokens where the label was
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
        logits = [gen.watched_logits[step][self.watch_ids.index(first_ids[name])] for name in first_ids]
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
