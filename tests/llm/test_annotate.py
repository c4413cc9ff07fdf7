"""Annotate: resumable cache (kill, restart: nothing lost, nothing duplicated), official output, traces."""
import json
from collections import Counter

import pytest

from spacy_dgemma.hipe.validate import is_valid
from spacy_dgemma.llm.annotate import AnnotationCache, annotate, annotated_records, write_traces
from tests.util import HIPE_RECORDS


@pytest.fixture(scope="module")
def labeller(tiny_models):
    from spacy_dgemma.llm.labeller import RelationLabeller
    from spacy_dgemma.llm.loading import load_model, load_tokenizer

    path = str(tiny_models["teacher"])
    return RelationLabeller(load_model(path, device="cpu"), load_tokenizer(path), max_new_tokens=8, batch_size=4)


def keys(path):
    return [tuple(json.loads(line)[k] for k in ("document_id", "pair_index")) for line in path.read_text().splitlines()]


def test_stop_restart_gives_one_record_per_pair(labeller, tmp_path):
    records = [HIPE_RECORDS["en"], HIPE_RECORDS["fr"]]
    n_pairs = sum(len(r["sampled_pairs"]) for r in records)
    cache = tmp_path / "cache.jsonl"
    first = annotate(labeller, records, cache, model_id="tiny", limit=4, progress=False)
    assert (first.new, first.stopped_early) == (4, True)
    assert len(keys(cache)) == 4
    # A run killed while writing leaves half a line behind.
    with cache.open("a", encoding="utf8") as file:
        file.write('{"document_id": "test-fr-1900-05-12-a-i0001", "pair_ind')
    second = annotate(labeller, records, cache, model_id="tiny", progress=False)
    assert (second.new, second.cached) == (n_pairs - 4, 4)
    found = keys(cache)
    assert len(found) == len(set(found)) == n_pairs
    # Nothing left to do; another model id is another key.
    assert annotate(labeller, records, cache, model_id="tiny", progress=False).new == 0
    assert annotate(labeller, records[:1], cache, model_id="other", limit=1, progress=False).new == 1


def test_official_output_and_traces(labeller, tmp_path):
    records = [HIPE_RECORDS["de"]]
    cache_path = tmp_path / "cache.jsonl"
    annotate(labeller, records, cache_path, model_id="tiny", limit=3, progress=False)
    counts: Counter = Counter()
    with AnnotationCache(cache_path) as cache:
        output = list(annotated_records(records, cache, labeller.prompt_version, "tiny", counts))
        traces = write_traces(records, cache, labeller, tmp_path / "traces.jsonl", "tiny", include_fallback=True)
        strict = write_traces(records, cache, labeller, tmp_path / "strict.jsonl", "tiny")
    n = len(records[0]["sampled_pairs"])
    assert counts == Counter(annotated=3, missing=n - 3)
    assert is_valid(output[0])
    pairs = output[0]["sampled_pairs"]
    assert all(p["at"] in ("TRUE", "PROBABLE", "FALSE") for p in pairs[:3]) and all(p["at"] is None for p in pairs[3:])
    for key in set(records[0]) - {"sampled_pairs"}:
        assert output[0][key] == records[0][key]
    assert traces["written"] == 3
    # A tiny random model writes no valid JSON: its fallback answers stay out of the default traces.
    assert strict["written"] + strict["skipped"] == n
    trace = json.loads((tmp_path / "traces.jsonl").read_text().splitlines()[0])
    assert [m["role"] for m in trace["messages"]] == ["user", "assistant"]
    assert json.loads(trace["messages"][1]["content"])["at"] in ("TRUE", "PROBABLE", "FALSE")


def test_annotate_command_resumes_and_writes_official_jsonl(tiny_models, tmp_path):
    from typer.testing import CliRunner

    from spacy_dgemma.cli import app

    source = tmp_path / "in.jsonl"
    source.write_text(json.dumps(HIPE_RECORDS["en"]) + "\n", encoding="utf8")
    args = ["llm", "annotate", str(source), "--cache", str(tmp_path / "cache.jsonl"), "--output-dir", str(tmp_path / "out"),
            "--traces", str(tmp_path / "traces.jsonl"), "--model", str(tiny_models["teacher"]), "--device", "cpu",
            "--max-new-tokens", "4", "--include-fallback"]
    first = CliRunner().invoke(app, args + ["--limit", "2"])
    assert first.exit_code == 0, first.output
    assert "stopped at --limit" in first.output and "Parser:" in first.output
    second = CliRunner().invoke(app, args)
    assert second.exit_code == 0, second.output
    n = len(HIPE_RECORDS["en"]["sampled_pairs"])
    assert f"{n - 2} pairs annotated, 2 already in" in second.output
    out = [json.loads(line) for line in (tmp_path / "out" / "in.jsonl").read_text().splitlines()]
    assert is_valid(out[0]) and all(p["at"] is not None for p in out[0]["sampled_pairs"])
    assert len((tmp_path / "traces.jsonl").read_text().splitlines()) == n
