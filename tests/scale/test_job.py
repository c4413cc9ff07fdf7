"""`dgemma predict --engine ray` on a local 2-CPU Ray: same output as the local engine, nothing
lost or duplicated when a worker or the driver is killed, bad records in rejects.jsonl."""
import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Dict, List, Optional

import pytest
import spacy

from spacy_dgemma.scale import JobOptions, iter_output, output_files, run_job
from spacy_dgemma.scale.inputs import split_suffixes
from tests.scale.conftest import corpus_records

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]


def shard_bytes_by_input(out: Path, inputs: Path) -> Dict[str, bytes]:
    """Input file name (as in the plain corpus) → the concatenated bytes of its shards."""
    result = {}
    for url, shards in output_files(out).items():
        name = split_suffixes(str(Path(url).relative_to(inputs)))[0] + ".jsonl"
        result[name] = b"".join(path.read_bytes() for path in shards)
    return result


def assert_exactly_once(out: Path) -> None:
    """Every input document once in the output, in input order; no temporary file left."""
    expected = [r["document_id"] for records in corpus_records().values() for r in records]
    assert [r["document_id"] for r in iter_output(out)] == expected
    assert not list(out.rglob(".*.tmp"))


def test_same_output_as_local_engine_with_manifest(ray_address, corpus, local_output, tmp_path):
    inputs, _ = corpus
    out = tmp_path / "out"
    summary = run_job([str(inputs)], out, JobOptions(model="baseline", shard_size=7, workers=2, progress=False))
    assert summary.complete and not summary.failed and summary.rejects == 0
    assert summary.documents == 72 and summary.workers == 2
    assert shard_bytes_by_input(out, inputs) == local_output
    assert_exactly_once(out)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["complete"] and manifest["totals"]["documents"] == 72 and manifest["totals"]["records"] == 72
    assert manifest["totals"]["pairs"] == summary.pairs == sum(len(r["sampled_pairs"]) for r in iter_output(out))
    for entry in manifest["inputs"]:
        assert entry["sha256"] == hashlib.sha256(Path(entry["file"]).read_bytes()).hexdigest()
    # shards: 24 en (4 shards of 7), 24 de-fr (4), 24 mixed (4), each checksummed
    assert len(manifest["shards"]) == 12
    for shard in manifest["shards"]:
        assert shard["sha256"] == hashlib.sha256((out / shard["file"]).read_bytes()).hexdigest()
    assert (out / "rejects.jsonl").read_text() == ""

    # The same job again: nothing to do, nothing rewritten; another shard size is refused.
    before = {p: p.stat().st_mtime_ns for p in (out / "shards").iterdir()}
    again = run_job([str(inputs)], out, JobOptions(model="baseline", shard_size=7, progress=False))
    assert again.shards_skipped == 12 and again.run_documents == 0 and again.documents == 72
    assert {p: p.stat().st_mtime_ns for p in (out / "shards").iterdir()} == before
    with pytest.raises(ValueError, match="E201"):
        run_job([str(inputs)], out, JobOptions(model="baseline", shard_size=8, progress=False))


def test_bad_records_go_to_rejects(ray_address, tmp_path):
    good = [json.dumps(records[0]) for records in corpus_records().values()]
    missing_text = json.loads(good[1])
    del missing_text["text"]
    lines = [good[0].encode(), b'{"document_id": "broken", "text": ', json.dumps(missing_text).encode(), b'{"document_id": "latin1 \xe9"}', good[2].encode()]
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "bad.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    (tmp_path / "in" / "empty.jsonl").write_bytes(b"\n")
    out = tmp_path / "out"
    summary = run_job([str(tmp_path / "in")], out, JobOptions(model="baseline", shard_size=2, workers=1, progress=False))
    assert summary.complete and summary.documents == 2 and summary.rejects == 4
    assert [r["document_id"] for r in iter_output(out)] == [json.loads(good[0])["document_id"], json.loads(good[2])["document_id"]]
    rejects = [json.loads(line) for line in (out / "rejects.jsonl").read_text().splitlines()]
    assert [(Path(r["file"]).name, r["line"], r["code"]) for r in rejects] == [
        ("empty.jsonl", None, "E005"), ("bad.jsonl", 2, "E001"), ("bad.jsonl", 3, "E002"), ("bad.jsonl", 4, "E006")
    ]
    assert rejects[2]["document_id"] == missing_text["document_id"] and "'text'" in rejects[2]["reason"]


def test_duplicate_ids_are_set_aside_as_by_the_local_engine(ray_address, tmp_path):
    """The first predicted document with an id stays, later ones go to rejects.jsonl (E008), as
    `dgemma predict --skip-invalid` leaves them out; one whose first is itself bad stays."""
    from spacy_dgemma.hipe.read import ReadStats
    from spacy_dgemma.predict import load_pipeline, predict_files

    base = [json.dumps(records[0]) for records in corpus_records().values()]
    records = [dict(json.loads(base[i % 3]), document_id=doc_id) for i, doc_id in enumerate("ABCCBAD")]
    del records[1]["text"]  # the first B is bad: the second B stays
    folder = tmp_path / "in"
    folder.mkdir()
    first, second = folder / "first.jsonl", folder / "second.jsonl"
    first.write_text("".join(json.dumps(r) + "\n" for r in records[:3]), encoding="utf-8")
    second.write_text("".join(json.dumps(r) + "\n" for r in records[3:] + [records[-1]]), encoding="utf-8")
    for name in ("t1", "t2"):  # raw text: both files have the id "x"
        (tmp_path / name).mkdir()
        (tmp_path / name / "x.txt").write_text("Nothing here.", encoding="utf-8")
    out = tmp_path / "out"
    inputs = [str(first), str(second), str(tmp_path / "t1"), str(tmp_path / "t2")]
    summary = run_job(inputs, out, JobOptions(model="baseline", shard_size=1, workers=2, progress=False))
    assert summary.complete and not summary.failed and summary.documents == 5 and summary.rejects == 5
    rejects = [json.loads(line) for line in (out / "rejects.jsonl").read_text().splitlines()]
    assert [(Path(r["file"]).name, r["line"], r["document_id"], r["code"]) for r in rejects] == [
        ("first.jsonl", 2, "B", "E002"), ("second.jsonl", 1, "C", "E008"), ("second.jsonl", 3, "A", "E008"),
        ("second.jsonl", 5, "D", "E008"), ("x.txt", None, "x", "E008"),
    ]
    assert f"(first seen in {first}:3)" in rejects[1]["reason"] and f"(first seen in {tmp_path / 't1' / 'x.txt'})" in rejects[4]["reason"]
    assert [r["document_id"] for r in iter_output(out)] == ["A", "C", "B", "D", "x"]
    # The same as the local engine with --skip-invalid: outputs byte for byte, and what it skips.
    stats = ReadStats()
    predict_files([first, second], tmp_path / "local", load_pipeline("baseline"), skip_invalid=True, progress=False, stats=stats)
    assert {Path(url).name: b"".join(p.read_bytes() for p in paths) for url, paths in output_files(out).items()} == {
        name: (tmp_path / "local" / name).read_bytes() for name in ("first.jsonl", "second.jsonl")
    }
    assert [r["reason"] for r in rejects[:4]] == [str(problem) for problem in stats.skipped]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["totals"]["documents"] == 5 and manifest["totals"]["rejects"] == 5
    for shard in manifest["shards"]:
        assert shard["sha256"] == hashlib.sha256((out / shard["file"]).read_bytes()).hexdigest()
    # A rerun has nothing to do and finds the job as it was.
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file() and p.name != "manifest.json"}
    again = run_job(inputs, out, JobOptions(model="baseline", shard_size=1, progress=False))
    assert again.run_documents == 0 and again.documents == 5 and again.rejects == 5
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file() and p.name != "manifest.json"} == before


def test_raw_text_documents(ray_address, tmp_path):
    nlp = spacy.blank("xx")
    ruler = nlp.add_pipe("entity_ruler")
    ruler.add_patterns([{"label": "PER", "pattern": "John Smith"}, {"label": "LOC", "pattern": "London"}, {"label": "LOC", "pattern": "Paris"}])
    nlp.add_pipe("dgemma_relations")
    nlp.to_disk(tmp_path / "model")
    folder = tmp_path / "texts" / "1900" / "08"
    folder.mkdir(parents=True)
    (folder / "a1.txt").write_text("Mr. John Smith arrived in London yesterday from Paris.", encoding="utf-8")
    (folder / "a2.txt").write_text("Nothing about anybody here.", encoding="utf-8")
    (folder / "a3.txt").write_text("  \n", encoding="utf-8")
    out = tmp_path / "out"
    summary = run_job([str(tmp_path / "texts")], out, JobOptions(model=str(tmp_path / "model"), shard_size=2, progress=False))
    assert summary.complete and summary.documents == 2 and summary.rejects == 1
    records = list(iter_output(out))
    assert [r["document_id"] for r in records] == ["1900/08/a1", "1900/08/a2"]
    relations = records[0]["relations"]
    assert {(r["person_mentions"][0], r["place_mentions"][0]) for r in relations} == {("John Smith", "London"), ("John Smith", "Paris")}
    assert all(r["at"] in ("TRUE", "PROBABLE", "FALSE") for r in relations) and records[1]["relations"] == []
    assert [json.loads(line)["code"] for line in (out / "rejects.jsonl").read_text().splitlines()] == ["E005"]
    manifest = json.loads((out / "manifest.json").read_text())
    assert [e["document_id"] for e in manifest["inputs"]] == ["1900/08/a1", "1900/08/a2", "1900/08/a3"]
    assert manifest["inputs"][0]["sha256"] == hashlib.sha256((folder / "a1.txt").read_bytes()).hexdigest()


def _our_workers() -> List[int]:
    """Pids of the job's actor processes that descend from this test process."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if b"ShardPredictor" in cmdline and _descends_from(int(entry.name), os.getpid()):
                pids.append(int(entry.name))
    return pids


def _descends_from(pid: int, ancestor: int) -> bool:
    while pid > 1:
        if pid == ancestor:
            return True
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            return False
        pid = int(stat.rsplit(")", 1)[1].split()[1])
    return False


def _wait_for_done(out: Path, n: int, timeout: float = 120) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done = len(list((out / "_state" / "done").glob("*.json"))) if (out / "_state" / "done").is_dir() else 0
        if done >= n:
            return done
        time.sleep(0.05)
    raise AssertionError(f"fewer than {n} shards done after {timeout} s")


def test_killed_worker_loses_and_duplicates_nothing(ray_address, corpus, local_output, slow_pipeline, tmp_path):
    inputs, _ = corpus
    model, code = slow_pipeline
    out = tmp_path / "out"
    killed: Dict[str, Optional[float]] = {"pid": None, "done_then": None, "at": None}

    def kill_a_worker() -> None:
        killed["done_then"] = _wait_for_done(out, 1)
        workers = _our_workers()
        if workers:
            os.kill(workers[0], signal.SIGKILL)
            killed["pid"], killed["at"] = workers[0], time.time()

    killer = threading.Thread(target=kill_a_worker)
    killer.start()
    summary = run_job([str(inputs)], out, JobOptions(model=str(model), code=[code], shard_size=6, workers=2, progress=False))
    killer.join()
    assert killed["pid"] is not None and killed["done_then"] < summary.shards  # killed mid-run
    assert summary.complete and not summary.failed
    assert shard_bytes_by_input(out, inputs) == local_output
    assert_exactly_once(out)
    after = [json.loads(p.read_text()) for p in (out / "_state" / "done").glob("*.json") if p.stat().st_mtime > killed["at"] + 1]
    assert after and all(int(record["worker"].rsplit(":", 1)[1]) != killed["pid"] for record in after)  # it did die


def test_killed_driver_rerun_resumes(ray_address, corpus, local_output, slow_pipeline, tmp_path):
    inputs, _ = corpus
    model, code = slow_pipeline
    out = tmp_path / "out"
    command = [sys.executable, "-m", "spacy_dgemma", "predict", str(inputs), "--output", str(out), "--engine", "ray", "--address", ray_address,
               "--model", str(model), "--code", str(code), "--shard-size", "4", "--workers", "2"]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    # Ctrl-C: the driver stops, writes an incomplete manifest, and says how to resume.
    driver = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    _wait_for_done(out, 1)
    driver.send_signal(signal.SIGINT)
    output, _ = driver.communicate(timeout=120)
    assert driver.returncode == 130, output
    assert "run the same command again to resume" in " ".join(output.split())
    assert json.loads((out / "manifest.json").read_text())["complete"] is False
    # A killed driver: no manifest update, maybe shards half-written.
    driver = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    done_before = _wait_for_done(out, len(list((out / "_state" / "done").glob("*.json"))) + 2)
    driver.kill()
    driver.wait(timeout=60)
    assert done_before < 18  # 72 documents in shards of 4
    kept = {p.name: p.stat().st_mtime_ns for p in (out / "_state" / "done").glob("*.json")}
    result = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    skipped = re.search(r"\((\d+) done by an earlier run\)", " ".join(result.stdout.split()))
    assert skipped and int(skipped.group(1)) >= len(kept), result.stdout
    # The shards done before were kept as they were (a shard a dying worker was still writing
    # may have been finished after the kill: it is kept too).
    assert all((out / "_state" / "done" / name).stat().st_mtime_ns == mtime for name, mtime in kept.items())
    assert shard_bytes_by_input(out, inputs) == local_output
    assert_exactly_once(out)
    assert json.loads((out / "manifest.json").read_text())["complete"] is True
