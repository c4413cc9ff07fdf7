"""Annotate: a stream into a locked, resumable cache keyed on everything that changes an answer;
kill -9 and restart gives every pair once; shards; fallbacks retried and marked; official output."""
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from spacy_dgemma.errors import InputError
from spacy_dgemma.hipe.validate import is_valid
from spacy_dgemma.llm.annotate import (
    AnnotationCache,
    AnswerKeys,
    CacheLock,
    annotate,
    annotated_records,
    in_shard,
    parse_shard,
    related_caches,
    shard_cache_path,
    write_traces,
)
from spacy_dgemma.llm.engines import GenerationSettings
from spacy_dgemma.llm.engines.hf import HFEngine
from spacy_dgemma.llm.labeller import RelationLabeller
from tests.util import HIPE_RECORDS

REPO = Path(__file__).resolve().parents[2]
RECORDS = [HIPE_RECORDS["en"], HIPE_RECORDS["fr"]]
N_PAIRS = sum(len(r["sampled_pairs"]) for r in RECORDS)


@pytest.fixture(scope="module")
def teacher(tiny_models):
    from spacy_dgemma.llm.loading import load_model, load_tokenizer

    path = str(tiny_models["teacher"])
    return load_model(path, device="cpu"), load_tokenizer(path)


def labeller_for(teacher, max_new_tokens=8, template_dir=None, identity="tiny"):
    model, tokenizer = teacher
    engine = HFEngine(model, tokenizer, GenerationSettings(max_new_tokens=max_new_tokens), batch_size=4, identity=identity)
    return RelationLabeller(engine=engine, template_dir=template_dir)


def lines(path):
    return [json.loads(line) for line in Path(path).read_text().splitlines()]


def pair_ids(path):
    return [(r["document_id"], r["pair_index"]) for r in lines(path)]


def test_stop_restart_gives_one_record_per_pair(teacher, tmp_path):
    labeller = labeller_for(teacher)
    cache = tmp_path / "cache.jsonl"
    first = annotate(labeller, iter(RECORDS), cache, limit=4, progress=False)
    assert (first.new, first.stopped_early) == (4, True)
    assert len(pair_ids(cache)) == 4
    # A run killed while writing leaves half a line behind.
    with cache.open("a", encoding="utf8") as file:
        file.write('{"key": "00", "document_id": "test-fr-1900-05-12-a-i0001", "pair_ind')
    second = annotate(labeller, iter(RECORDS), cache, progress=False, docs_per_batch=1)
    assert (second.new, second.cached) == (N_PAIRS - 4, 4)
    found = pair_ids(cache)
    assert len(found) == len(set(found)) == N_PAIRS
    assert annotate(labeller, iter(RECORDS), cache, progress=False).new == 0
    # A model id given by the user is part of the key.
    assert annotate(labeller, iter(RECORDS[:1]), cache, model_id="other", limit=1, progress=False).new == 1


def test_everything_that_changes_an_answer_changes_the_key(teacher, tmp_path):
    from spacy_dgemma.llm.prompts import TEMPLATE_DIR

    record = HIPE_RECORDS["de"]
    n = len(record["sampled_pairs"])
    cache = tmp_path / "cache.jsonl"

    def run(labeller):
        return annotate(labeller, [record], cache, progress=False).new

    assert run(labeller_for(teacher)) == n
    assert run(labeller_for(teacher)) == 0
    assert run(labeller_for(teacher, max_new_tokens=9)) == n  # generation settings
    assert run(labeller_for(teacher, identity="sha256:other-weights")) == n  # weights (or adapter) content
    templates = tmp_path / "templates"
    shutil.copytree(TEMPLATE_DIR, templates, ignore=shutil.ignore_patterns("chat"))
    assert run(labeller_for(teacher, template_dir=templates)) == 0  # the same template content elsewhere
    pair_template = templates / "relations.v1.pair.jinja"
    pair_template.write_text(pair_template.read_text() + "\nAnswer briefly.")
    assert run(labeller_for(teacher, template_dir=templates)) == n  # a template edited in place
    edited = json.loads(json.dumps(record))
    edited["text"] = edited["text"].replace("Die Ernte", "Die reiche Ernte")
    assert annotate(labeller_for(teacher), [edited], cache, progress=False).new == n  # the document itself
    assert len(lines(cache)) == 5 * n


def test_a_second_run_on_the_same_cache_refuses(teacher, tmp_path):
    cache = tmp_path / "cache.jsonl"
    holder = CacheLock(cache)
    try:
        with pytest.raises(InputError, match=rf"E183.*pid {os.getpid()}"):
            annotate(labeller_for(teacher), iter(RECORDS), cache, progress=False)
    finally:
        holder.release()
    assert annotate(labeller_for(teacher), iter(RECORDS[:1]), cache, limit=1, progress=False).new == 1


def test_shards_split_the_corpus_and_outputs_read_every_shard(teacher, tmp_path):
    records = list(HIPE_RECORDS.values())
    assert parse_shard("1/3") == (1, 3) and parse_shard(None) is None
    for bad in ("3/3", "x", "1/0"):
        with pytest.raises(InputError, match="E184"):
            parse_shard(bad)
    assert all(sum(in_shard(r["document_id"], (i, 2)) for i in range(2)) == 1 for r in records)
    cache = tmp_path / "cache.jsonl"
    labeller = labeller_for(teacher)
    done = [annotate(labeller, iter(records), shard_cache_path(cache, (i, 2)), shard=(i, 2), progress=False)
            for i in range(2)]
    total = sum(len(r["sampled_pairs"]) for r in records)
    assert sum(s.new for s in done) == total and done[0].new + done[0].other_shards == total
    assert related_caches(cache) == [tmp_path / "cache.shard0of2.jsonl", tmp_path / "cache.shard1of2.jsonl"]
    # The run without --shard finds every answer in the shard caches, and writes everything.
    rest = annotate(labeller, iter(records), cache, progress=False, also_read=related_caches(cache))
    assert (rest.new, rest.cached) == (0, total)
    counts: Counter = Counter()
    with AnnotationCache(related_caches(cache), write=False) as store:
        out = list(annotated_records(records, store, AnswerKeys(labeller.answer_key()), counts))
    assert counts["annotated"] == total and counts["missing"] == 0
    assert all(p["at"] is not None for r in out for p in r["sampled_pairs"])


def test_fallbacks_are_retried_and_marked(teacher, tmp_path):
    labeller = labeller_for(teacher)
    cache = tmp_path / "cache.jsonl"
    records = [HIPE_RECORDS["en"]]
    n = len(records[0]["sampled_pairs"])
    first = annotate(labeller, records, cache, progress=False)
    assert first.parse["fallback"] == n  # a tiny random model writes no JSON
    again = annotate(labeller, records, cache, retry_fallbacks=True, progress=False)
    assert (again.new, again.retried) == (n, n)
    retried = lines(cache)[n:]
    assert {(r["attempt"], r["temperature"], r["seed"]) for r in retried} == {(1, 0.7, 1)}
    # The latest answer of a key wins; a third run retries with the next seed.
    keys = AnswerKeys(labeller.answer_key())
    with AnnotationCache(cache, write=False) as store:
        assert len(store) == n
        out = list(annotated_records(records, store, keys))
        hit = store.get(retried[0]["key"])
    assert hit["attempt"] == 1 and hit["raw"] == retried[0]["raw"]
    assert annotate(labeller, records, cache, retry_fallbacks=True, limit=1, progress=False).retried == 1
    assert lines(cache)[-1]["seed"] == 2
    for pair in out[0]["sampled_pairs"]:
        assert pair["at_explanation"].startswith("[fallback] at guessed by the parser's rule (missing_at")
        assert pair["isAt_explanation"].startswith("[fallback] isAt guessed")
    assert is_valid(out[0])


def test_official_output_and_traces(teacher, tmp_path):
    labeller = labeller_for(teacher)
    records = [HIPE_RECORDS["de"]]
    cache_path = tmp_path / "cache.jsonl"
    annotate(labeller, records, cache_path, limit=3, progress=False)
    counts: Counter = Counter()
    keys = AnswerKeys(labeller.answer_key())
    with AnnotationCache(cache_path, write=False) as cache:
        output = list(annotated_records(records, cache, keys, counts))
        traces = write_traces(records, cache, labeller, keys, tmp_path / "traces.jsonl", include_fallback=True)
        strict = write_traces(records, cache, labeller, keys, tmp_path / "strict.jsonl")
    n = len(records[0]["sampled_pairs"])
    assert counts == Counter(annotated=3, missing=n - 3, fallback=3)
    assert is_valid(output[0])
    pairs = output[0]["sampled_pairs"]
    assert all(p["at"] in ("TRUE", "PROBABLE", "FALSE") for p in pairs[:3]) and all(p["at"] is None for p in pairs[3:])
    for key in set(records[0]) - {"sampled_pairs"}:
        assert output[0][key] == records[0][key]
    assert traces["written"] == 3
    assert strict == Counter(skipped=n)  # fallback answers stay out of the default traces
    trace = json.loads((tmp_path / "traces.jsonl").read_text().splitlines()[0])
    assert [m["role"] for m in trace["messages"]] == ["user", "assistant"]
    assert json.loads(trace["messages"][1]["content"])["at"] in ("TRUE", "PROBABLE", "FALSE")
    # A broken line in the middle of a cache is reported with its file and line.
    broken = tmp_path / "broken.jsonl"
    broken.write_text(cache_path.read_text().replace("}\n", "}\n{oops\n", 1))
    with pytest.raises(InputError, match="broken.jsonl:2: \\[E185\\]"):
        AnnotationCache(broken, write=False)


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
    assert f"{n - 2} pairs annotated (0 retried), 2 already in the cache" in second.output
    assert "W082" in second.output
    out = [json.loads(line) for line in (tmp_path / "out" / "in.jsonl").read_text().splitlines()]
    assert is_valid(out[0]) and all(p["at"] is not None for p in out[0]["sampled_pairs"])
    assert len((tmp_path / "traces.jsonl").read_text().splitlines()) == n
    summary = json.loads((tmp_path / "out" / "annotate-summary.json").read_text())
    assert summary["files"][str(tmp_path / "out" / "in.jsonl")] == {"documents": 1, "annotated": n, "missing": 0, "fallback": n}
    assert summary["run"]["new"] == n - 2
    # Outputs belong to a run over every shard; a shard worker refuses them.
    refused = CliRunner().invoke(app, args + ["--shard", "0/2"])
    assert refused.exit_code == 2 and "E190" in refused.output


@pytest.mark.parametrize("option", ["--output-dir", "--traces"])
def test_a_shard_refuses_outputs_in_one_line(tmp_path, option):
    from typer.testing import CliRunner

    from spacy_dgemma.cli import app

    source = tmp_path / "in.jsonl"
    source.write_text(json.dumps(HIPE_RECORDS["en"]) + "\n", encoding="utf8")
    args = ["llm", "annotate", str(source), "--cache", str(tmp_path / "cache.jsonl"), "--shard", "0/2", option, str(tmp_path / "out")]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert re.fullmatch(rf"{option}: \[E190\] {option} cannot be given with --shard: the outputs are written from the caches "
                        r"of every shard — leave it out of the shard runs; once they are done, the same command without "
                        r"--shard, with --limit 0, writes the outputs\n", result.stderr), result.stderr
    assert not (tmp_path / "cache.jsonl").exists() and not (tmp_path / "out").exists()


def test_annotate_command_reads_each_cache_once(tiny_models, tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from spacy_dgemma.cli import app

    source = tmp_path / "in.jsonl"
    source.write_text("".join(json.dumps(r) + "\n" for r in HIPE_RECORDS.values()), encoding="utf8")
    args = ["llm", "annotate", str(source), "--cache", str(tmp_path / "cache.jsonl"), "--model", str(tiny_models["teacher"]),
            "--device", "cpu", "--max-new-tokens", "2", "--threads", "1"]
    assert CliRunner().invoke(app, args + ["--limit", "2"]).exit_code == 0
    assert CliRunner().invoke(app, args + ["--limit", "1", "--shard", "1/2"]).exit_code == 0
    scans: Counter = Counter()
    scan = AnnotationCache._scan

    def counting_scan(self, number, path, complete_only):
        scans[path.name] += 1
        return scan(self, number, path, complete_only)

    monkeypatch.setattr(AnnotationCache, "_scan", counting_scan)
    out = tmp_path / "out"
    result = CliRunner().invoke(app, args + ["--limit", "0", "--output-dir", str(out), "--traces", str(tmp_path / "traces.jsonl"),
                                             "--include-fallback"])
    assert result.exit_code == 0, result.output
    assert scans == {"cache.jsonl": 1, "cache.shard1of2.jsonl": 1}
    summary = json.loads((out / "annotate-summary.json").read_text())
    assert summary["cache"] == [str(tmp_path / "cache.jsonl"), str(tmp_path / "cache.shard1of2.jsonl")]
    assert summary["files"][str(out / "in.jsonl")]["annotated"] == 3 and summary["traces"]["written"] == 3


@pytest.mark.slow
def test_kill_9_and_restart_annotates_every_pair_once(tiny_models, tmp_path):
    """A real process killed with SIGKILL while it writes; the rerun finishes; no pair twice."""
    source = tmp_path / "in.jsonl"
    records = list(HIPE_RECORDS.values())
    source.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf8")
    total = sum(len(r["sampled_pairs"]) for r in records)
    cache = tmp_path / "cache.jsonl"
    args = [sys.executable, "-m", "spacy_dgemma", "llm", "annotate", str(source), "--cache", str(cache), "--model",
            str(tiny_models["teacher"]), "--device", "cpu", "--max-new-tokens", "24", "--threads", "1",
            "--batch-size", "1", "--docs-per-batch", "1"]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    process = subprocess.Popen(args, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and process.poll() is None:
        if cache.exists() and len(cache.read_bytes().splitlines()) >= 2:
            break
        time.sleep(0.05)
    assert process.poll() is None, "the run finished before it could be killed"
    process.send_signal(signal.SIGKILL)
    process.wait(30)
    text = cache.read_text()
    killed = [(r["document_id"], r["pair_index"]) for r in map(json.loads, text[: text.rfind("\n") + 1].splitlines())]
    assert 2 <= len(killed) < total
    rerun = subprocess.run(args, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    found = pair_ids(cache)
    assert len(found) == len(set(found)) == total
    assert f"{total - len(set(killed))} pairs annotated" in rerun.stdout.replace("\n", " ")
