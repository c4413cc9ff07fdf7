"""project.yml: `all` starts with the CUDA guard; `smoke` runs end-to-end on CPU with tiny models."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import srsly
from typer.testing import CliRunner

from spacy_dgemma.cli import app

REPO = Path(__file__).resolve().parents[2]
SHARED = REPO / ".." / "shared" / "hipe2026" / "newspapers"


def test_all_workflow_is_the_papers_pipeline_behind_a_cuda_guard():
    project = srsly.read_yaml(REPO / "project.yml")
    assert project["workflows"]["all"] == [
        "require-cuda", "assets", "corpus", "sft-data", "teacher", "annotate", "distill", "evaluate-llm", "package-llm"]
    assert project["vars"]["teacher_model"] == "google/gemma-4-26B-A4B-it"
    assert project["vars"]["student_model"] == "google/gemma-4-E2B-it"
    commands = {c["name"]: c for c in project["commands"]}
    for name in project["workflows"]["smoke"]:
        assert name in commands, name


def test_require_cuda_stops_with_advice_on_cpu():
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a CUDA GPU")
    result = CliRunner().invoke(app, ["llm", "require-cuda"])
    assert result.exit_code == 1
    assert "spacy project run smoke" in result.output and "--vars.teacher_model" in result.output


@pytest.mark.slow
def test_smoke_workflow_runs_end_to_end(tmp_path):
    if not SHARED.exists():
        pytest.skip(f"the shared HIPE-2026 data is not beside the repository ({SHARED})")
    env = dict(os.environ, OMP_NUM_THREADS="1")
    smoke = tmp_path / "smoke"
    result = subprocess.run(
        [sys.executable, "-m", "spacy", "project", "run", "smoke", str(REPO), "--vars.smoke_dir", str(smoke)],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=900,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert (smoke / "teacher" / "adapter" / "adapter_model.safetensors").exists()
    assert (smoke / "student" / "merged" / "model.safetensors").exists()
    cache = [json.loads(line) for line in (smoke / "annotate-cache.jsonl").read_text().splitlines()]
    keys = {(r["document_id"], r["pair_index"]) for r in cache}
    assert len(keys) == len(cache) > 0
    predictions = [json.loads(line) for line in (smoke / "pred-dev-en.jsonl").read_text().splitlines()]
    assert len(predictions) == 2
    assert all(p["at"] in ("TRUE", "PROBABLE", "FALSE") for doc in predictions for p in doc["sampled_pairs"])
    assert list((smoke / "packages").rglob("*.tar.gz"))
