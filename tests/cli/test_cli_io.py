"""The data commands of `dgemma`: convert, split, predict, evaluate, validate, demo."""
import copy
import json
import subprocess
import sys
from pathlib import Path

import pytest
import spacy
from typer.testing import CliRunner

from spacy_dgemma.cli import app
from spacy_dgemma.errors import InputError
from spacy_dgemma.hipe import is_valid, iter_records, read_docbin
from spacy_dgemma.predict import load_pipeline, output_paths
from tests.util import strip_labels

LABELS = ("at", "at_explanation", "isAt", "isAt_explanation")
runner = CliRunner()


def write_lines(path, records):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    return path


def read_lines(path):
    return [json.loads(line) for line in Path(path).read_text(encoding="utf-8").splitlines()]


def without_labels(record):
    record = copy.deepcopy(record)
    for pair in record["sampled_pairs"]:
        for key in LABELS:
            pair.pop(key, None)
    return record


@pytest.fixture
def inputs(tmp_path, strip_labels_records):
    """Two input files: English (with an unaligned mention and a document without pairs), German."""
    en, de = strip_labels_records["en"], strip_labels_records["de"]
    empty = dict(copy.deepcopy(en), document_id="no-pairs", sampled_pairs=[])
    return write_lines(tmp_path / "in" / "en.jsonl", [en, empty]), write_lines(tmp_path / "in" / "de.jsonl", [de])


@pytest.fixture
def strip_labels_records(hipe_records):
    return {lang: strip_labels(record) for lang, record in hipe_records.items()}


def test_predict_keeps_every_document_and_pair(tmp_path, inputs):
    en, _ = inputs
    out = tmp_path / "pred.jsonl"
    result = runner.invoke(app, ["predict", str(en), str(out), "--model", "baseline"])
    assert result.exit_code == 0, result.output
    given, predicted = read_lines(en), read_lines(out)
    assert [r["document_id"] for r in predicted] == [r["document_id"] for r in given]
    for before, after in zip(given, predicted):
        assert is_valid(after)
        assert list(after) == list(before)
        assert without_labels(after) == without_labels(before)
        assert len(after["sampled_pairs"]) == len(before["sampled_pairs"])
        for pair in after["sampled_pairs"]:
            assert pair["at"] in ("TRUE", "PROBABLE", "FALSE") and pair["isAt"] in ("TRUE", "FALSE")
    # the pair whose person is not in the text is still predicted
    assert any(p["pers_entity_id"] == "en-napoleon" for p in predicted[0]["sampled_pairs"])
    assert predicted[1]["sampled_pairs"] == []


def test_predict_several_inputs_to_a_folder_or_one_file(tmp_path, inputs):
    out_dir = tmp_path / "preds"
    result = runner.invoke(app, ["predict", *map(str, inputs), str(out_dir), "-m", "baseline"])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out_dir.iterdir()) == ["de.jsonl", "en.jsonl"]
    assert len(read_lines(out_dir / "en.jsonl")) == 2 and len(read_lines(out_dir / "de.jsonl")) == 1
    one = tmp_path / "all.jsonl"
    result = runner.invoke(app, ["predict", str(inputs[0].parent), str(one), "-m", "baseline"])
    assert result.exit_code == 0, result.output
    assert [r["language"] for r in read_lines(one)] == ["de", "en", "en"]  # folder: files in name order


def test_predict_with_two_processes_gives_the_same_output(tmp_path, inputs):
    en, _ = inputs
    one, two = tmp_path / "one.jsonl", tmp_path / "two.jsonl"
    assert runner.invoke(app, ["predict", str(en), str(one), "-m", "baseline"]).exit_code == 0
    result = runner.invoke(app, ["predict", str(en), str(two), "-m", "baseline", "--n-process", "2", "--batch-size", "1"])
    assert result.exit_code == 0, result.output
    assert one.read_bytes() == two.read_bytes()


def test_predict_with_a_saved_pipeline(tmp_path, inputs):
    nlp = spacy.blank("xx")
    nlp.add_pipe("dgemma_relations")
    nlp.to_disk(tmp_path / "model")
    out = tmp_path / "pred.jsonl"
    result = runner.invoke(app, ["predict", str(inputs[1]), str(out), "--model", str(tmp_path / "model")])
    assert result.exit_code == 0, result.output
    assert len(read_lines(out)) == 1


def test_a_pipeline_without_the_component_is_refused(tmp_path, inputs):
    spacy.blank("en").to_disk(tmp_path / "ner-only")
    out = tmp_path / "pred.jsonl"
    result = runner.invoke(app, ["predict", str(inputs[0]), str(out), "--model", str(tmp_path / "ner-only")])
    assert result.exit_code == 2
    assert "E021" in result.stderr and "dgemma_relations" in result.stderr
    assert not out.exists()
    with pytest.raises(InputError, match="E020"):
        load_pipeline(str(tmp_path / "missing"))


def test_output_paths(tmp_path):
    a, b = tmp_path / "x" / "a.jsonl", tmp_path / "y" / "a.jsonl"
    assert output_paths([a], tmp_path / "out.json") == [tmp_path / "out.json"]
    with pytest.raises(InputError, match="same name"):
        output_paths([a, b], tmp_path / "out")
    with pytest.raises(InputError, match="overwrite"):
        output_paths([a], a)


def test_evaluate_prints_per_file_and_mean(tmp_path, hipe_records):
    gold_en = write_lines(tmp_path / "gold-en.jsonl", [hipe_records["en"]])
    gold_de = write_lines(tmp_path / "gold-de.jsonl", [hipe_records["de"]])
    result = runner.invoke(app, ["evaluate", str(gold_en), str(gold_de), str(gold_en), str(gold_de), "--json"])
    assert result.exit_code == 0, result.output
    scores = json.loads(result.stdout)
    assert [f["language"] for f in scores["files"]] == ["en", "de"]
    assert scores["mean"]["mean"] == pytest.approx(1.0) and scores["files"][0]["at"] == pytest.approx(1.0)
    assert scores["mean"]["n_pairs"] == 10
    result = runner.invoke(app, ["evaluate", str(gold_en), str(gold_en)])
    assert result.exit_code == 0 and "mean over files" in result.stdout and "1.0000" in result.stdout


def test_evaluate_matches_the_scorer_on_predictions(tmp_path, hipe_records, strip_labels_records):
    from spacy_dgemma.scorer import score_documents

    gold = write_lines(tmp_path / "gold.jsonl", [hipe_records["en"]])
    given = write_lines(tmp_path / "in.jsonl", [strip_labels_records["en"]])
    pred = tmp_path / "pred.jsonl"
    assert runner.invoke(app, ["predict", str(given), str(pred), "-m", "baseline"]).exit_code == 0
    result = runner.invoke(app, ["evaluate", str(gold), str(pred), "--json"])
    expected = score_documents(read_lines(gold), read_lines(pred))
    assert json.loads(result.stdout)["files"][0]["mean"] == pytest.approx(expected["mean"])
    # null labels (an unlabelled input used as prediction) count as FALSE, no crash
    result = runner.invoke(app, ["evaluate", str(gold), str(given), "--json"])
    assert result.exit_code == 0, result.output


def test_validate(tmp_path, hipe_records):
    good = write_lines(tmp_path / "good.jsonl", list(hipe_records.values()))
    result = runner.invoke(app, ["validate", str(good)])
    assert result.exit_code == 0 and "3 documents" in result.stdout


def test_convert_reports_alignment(tmp_path, inputs):
    result = runner.invoke(app, ["convert", *map(str, inputs), str(tmp_path / "spacy")])
    assert result.exit_code == 0, result.output
    assert "not found: test-en-1900-08-18-a-i0001" in result.stdout and "Napoleon Bonaparte" in result.stdout
    docs = list(read_docbin(tmp_path / "spacy" / "en.spacy"))
    assert [d._.dgemma_hipe["document_id"] for d in docs] == ["test-en-1900-08-18-a-i0001", "no-pairs"]
    assert docs[0]._.dgemma_unaligned[0]["mention"] == "Napoleon Bonaparte"


def make_data_dir(root, hipe_records):
    """A small copy of the shared data layout: newspapers/ (gold) and sandbox/ (silver)."""
    for lang in ("en", "de"):
        records = []
        for i in range(4):
            r = copy.deepcopy(hipe_records[lang])
            r["document_id"] = f"{lang}-{i}"
            records.append(r)
        write_lines(root / "newspapers" / f"train-{lang}.jsonl", records)
        write_lines(root / "sandbox" / f"{lang}-train.jsonl", records[:1] + [dict(records[1], document_id=f"{lang}-silver")])
        write_lines(root / "sandbox" / f"{lang}-dev.jsonl", [dict(records[2], document_id=f"{lang}-silverdev")])
    return root


def test_split(tmp_path, hipe_records):
    data = make_data_dir(tmp_path / "data", hipe_records)
    out = tmp_path / "corpus"
    result = runner.invoke(app, ["split", "--gold", str(data / "newspapers"), "--silver", str(data / "sandbox"), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == sorted(
        f"{kind}-{lang}.jsonl" for kind in ("gold-train", "gold-dev", "silver-train", "silver-dev") for lang in ("de", "en")
    )
    assert "2 silver documents left out" in result.stdout


def test_demo(tmp_path, hipe_records):
    data = make_data_dir(tmp_path / "data", hipe_records)
    out = tmp_path / "corpus"
    result = runner.invoke(app, ["demo", "--data", str(data), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert "mean over files" in result.stdout
    for lang in ("de", "en"):
        pred = out / "predictions" / f"baseline-gold-dev-{lang}.jsonl"
        assert [i.record["document_id"] for i in iter_records(pred)] == [i.record["document_id"] for i in iter_records(out / f"gold-dev-{lang}.jsonl")]


def test_python_m_spacy_dgemma():
    result = subprocess.run([sys.executable, "-m", "spacy_dgemma", "--help"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    for command in ("convert", "split", "predict", "evaluate", "validate", "demo"):
        assert command in result.stdout


def test_gpu_id_without_a_gpu_is_one_coded_line(tmp_path, hipe_records):
    path = tmp_path / "en.jsonl"
    path.write_text(json.dumps(strip_labels(hipe_records["en"])) + "\n", encoding="utf8")
    result = runner.invoke(app, ["predict", str(path), str(tmp_path / "out.jsonl"), "-m", "baseline", "--gpu-id", "0"])
    assert result.exit_code == 2, result.output
    assert "[E023]" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "out.jsonl").exists()
    ray = runner.invoke(app, ["predict", str(path), "-o", str(tmp_path / "o"), "-m", "baseline", "--engine", "ray", "--gpu-id", "0"])
    assert ray.exit_code == 2 and "[E207]" in ray.output
