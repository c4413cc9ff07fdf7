"""Document-prefix KV-cache reuse gives exactly the one-prompt-per-pair outputs."""
import pytest

from spacy_dgemma.llm.chat import encode_prompt
from spacy_dgemma.llm.generate import GenerationStats, PrefixCachedGenerator
from spacy_dgemma.llm.labeller import RelationLabeller
from spacy_dgemma.llm.prompts import build_prompts, document_from_hipe
from tests.util import HIPE_RECORDS


def load(path):
    from spacy_dgemma.llm.loading import load_model, load_tokenizer

    return load_model(str(path), device="cpu"), load_tokenizer(str(path))


@pytest.mark.parametrize("kind,batch_size", [("student", 4), ("teacher", 6)])
def test_cached_equals_naive(tiny_models, kind, batch_size):
    model, tokenizer = load(tiny_models[kind])
    document = document_from_hipe(HIPE_RECORDS["en"])
    encoded = [encode_prompt(tokenizer, p) for p in build_prompts(document)]
    prefix, suffixes = encoded[0][0], [s for _, s in encoded]
    # The prefix is longer than the sliding window, and the suffixes differ in length (padding).
    assert len(prefix) > model.config.sliding_window
    assert len({len(s) for s in suffixes}) > 1
    generator = PrefixCachedGenerator(model, tokenizer, max_new_tokens=12, batch_size=batch_size, watch_ids=[5, 6, 40])
    cached_stats, naive_stats = GenerationStats(), GenerationStats()
    cached = generator.generate_cached(prefix, suffixes, cached_stats)
    naive = generator.generate_naive(prefix, suffixes, naive_stats)
    assert [g.token_ids for g in cached] == [g.token_ids for g in naive]
    for c, n in zip(cached, naive):
        assert len(c.watched_logits) == len(n.watched_logits)
        for row_c, row_n in zip(c.watched_logits, n.watched_logits):
            assert row_c == pytest.approx(row_n, abs=1e-4)
    assert cached_stats.prompt_tokens < naive_stats.prompt_tokens / 2


def test_labeller_paths_agree_and_score_rows_are_distributions(tiny_models):
    model, tokenizer = load(tiny_models["student"])
    document = document_from_hipe(HIPE_RECORDS["de"])
    cached = RelationLabeller(model, tokenizer, max_new_tokens=10, batch_size=2).label_document(document)
    naive = RelationLabeller(model, tokenizer, max_new_tokens=10, cache_prefix=False).label_document(document)
    assert [r.raw for r in cached] == [r.raw for r in naive]
    for result in cached:
        assert len(result.scores) == 5
        assert sum(result.scores[:3]) == pytest.approx(1.0) and sum(result.scores[3:]) == pytest.approx(1.0)


def test_empty_suffix_list(tiny_models):
    model, tokenizer = load(tiny_models["student"])
    assert PrefixCachedGenerator(model, tokenizer).generate_cached([2, 5, 6], []) == []


def test_sampling_is_seeded(tiny_models):
    """--retry-fallbacks samples: the same seed writes the same answer, another seed another one."""
    model, tokenizer = load(tiny_models["student"])
    document = document_from_hipe(HIPE_RECORDS["en"])
    encoded = [encode_prompt(tokenizer, p) for p in build_prompts(document)][:3]
    prefix, suffixes = encoded[0][0], [s for _, s in encoded]

    def sample(seed, temperature=1.0):
        generator = PrefixCachedGenerator(model, tokenizer, max_new_tokens=12, batch_size=3, temperature=temperature, seed=seed)
        return [g.token_ids for g in generator.generate_cached(prefix, suffixes)]

    assert sample(1) == sample(1)
    assert sample(1) != sample(2)
    greedy = [g.token_ids for g in PrefixCachedGenerator(model, tokenizer, max_new_tokens=12).generate_cached(prefix, suffixes)]
    assert sample(1, temperature=0.0) == sample(2, temperature=0.0) == greedy
