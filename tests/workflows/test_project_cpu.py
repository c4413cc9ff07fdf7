"""The project's `cpu` workflow end to end on a tiny subset of the shared HIPE-2026 data (slow)."""
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import spacy

REPO = Path(__file__).resolve().parents[2]
DATA = REPO.parent / "shared" / "hipe2026"
# One small HIPE-2022 file for the fast recogniser (8 documents; 2 held out).
NER_DATA = REPO.parent / "shared" / "hipe2022-ner" / "HIPE-2022-v2.1-sonar-dev-de.tsv"


@pytest.mark.slow
@pytest.mark.skipif(not (DATA / "newspapers").exists() or not NER_DATA.exists(), reason="needs ../shared/hipe2026 and hipe2022-ner")
def test_cpu_workflow_on_tiny_subset(tmp_path):
    project = tmp_path / "project"
    project.mkdir()
    shutil.copy(REPO / "project.yml", project)
    shutil.copytree(REPO / "scripts", project / "scripts")
    (project / "training").mkdir()
    shutil.copy(REPO / "training" / "compact.cfg", project / "training")
    shutil.copy(REPO / "training" / "ner_fast.cfg", project / "training")
    cmd = [sys.executable, "-m", "weasel", "run", "cpu", str(project), "--vars.hipe_data", str(DATA),
           "--vars.limit", "3", "--vars.max_epochs", "1", "--vars.eval_frequency", "2", "--vars.repo", str(REPO),
           "--vars.ner_data", str(NER_DATA), "--vars.ner_fast_max_steps", "2"]
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=project)
    assert out.returncode == 0, (out.stdout[-3000:], out.stderr[-3000:])
    assert (project / "training" / "compact" / "model-best" / "dgemma_relations" / "model").exists()
    # The packaged model: the same config fit on gold train + dev.
    assert (project / "training" / "compact-all" / "model-last" / "dgemma_relations" / "model").exists()
    for name in ("scores.json", "confusion.json", "confusion.png"):
        assert (project / "metrics" / "compact" / name).exists()
    assert list((project / "packages" / "xx_dgemma_relations-0.1.0" / "dist").glob("*.whl"))
    # The raw-text package: the fast recogniser before the relations; its raw-text F1 printed and kept.
    assert list((project / "packages" / "xx_dgemma_relations_text-0.1.0" / "dist").glob("*.whl"))
    text_model = next((project / "packages" / "xx_dgemma_relations_text-0.1.0").glob("xx_dgemma_relations_text/xx_dgemma_relations_text-*"))
    assert "ner" in spacy.load(text_model).pipe_names
    assert "mean over languages" in out.stdout and "HIPE-2022-v2.1-sonar-dev-de.tsv" in out.stdout
    assert json.loads((project / "metrics" / "ner-fast" / "scores.json").read_text())["languages"] == ["de"]
    for lang in ("en", "de", "fr"):
        assert f"{lang}: " in out.stdout
    # The withheld test sets are `extra` assets: not fetched, and no step needs them (the step says so).
    assert "The test sets (newspapers test A, surprise test B) are `extra` assets" in " ".join(out.stdout.split())
    assert not (project / "assets" / "hipe2026" / "newspapers" / "HIPE-2026-v1.0-impresso-test-en.jsonl").exists()
    assert (project / "assets" / "hipe2026" / "sandbox" / "fr-dev.jsonl").exists()
    # Every step ran with complete deps: a second run skips them (no --force needed). The package
    # steps are left out: they depend on the library's source folder, which a run may change
    # (__pycache__), and then rightly build again.
    again = subprocess.run(cmd, capture_output=True, text=True, cwd=project)
    assert again.returncode == 0, again.stderr[-3000:]
    for step in ("corpus", "train-compact", "evaluate-compact", "train-compact-all", "convert-ner", "train-ner-fast"):
        assert f"Skipping '{step}': nothing changed" in again.stdout, again.stdout[-3000:]


@pytest.mark.skipif(not (DATA / "newspapers").exists(), reason="needs ../shared/hipe2026")
def test_fetch_data_without_a_copy_of_the_release_says_how_to_get_it(tmp_path):
    shutil.copy(REPO / "project.yml", tmp_path)
    out = subprocess.run([sys.executable, str(REPO / "scripts" / "fetch_data.py"), str(tmp_path), "--source", str(tmp_path / "nowhere")],
                         capture_output=True, text=True, cwd=tmp_path)
    assert out.returncode == 2 and "[E070]" in out.stderr and "Traceback" not in out.stderr
    assert "--vars.hipe_data https://raw.githubusercontent.com/hipe-eval/HIPE-2026-data/v1.0/data" in out.stderr


def test_dev_evaluation_without_matplotlib_writes_scores_and_says_why_no_plot(monkeypatch, tmp_path):
    import importlib.util

    spec = importlib.util.spec_from_file_location("evaluate_dev", REPO / "scripts" / "evaluate_dev.py")
    evaluate_dev = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(evaluate_dev)
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib now raises ImportError
    matrices = {"en": {"at": [[1, 0, 0], [0, 1, 0], [0, 0, 1]], "isAt": [[1, 0], [0, 1]]}}
    assert evaluate_dev.plot(matrices, tmp_path / "confusion.png") is False
    assert not (tmp_path / "confusion.png").exists()


def test_every_dep_and_output_is_one_path_after_weasel_substitutes_the_variables():
    # weasel joins adjacent list items that are only a variable ("${vars.a}", "${vars.b}") into one
    # string; such a dep can never exist, and the step would stop with "Missing dependency".
    from weasel.util import load_project_config

    config = load_project_config(REPO, overrides={"vars.repo": "/some/where"})
    for command in config["commands"]:
        for path in command.get("deps", []) + command.get("outputs", []):
            assert ", " not in path, (command["name"], path)
