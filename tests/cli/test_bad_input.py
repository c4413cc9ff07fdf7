"""Bad input: one line ``file:line: what — fix``, exit code 2, no traceback; --skip-invalid counts."""
import copy
import json
import re
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from spacy_dgemma.cli import app
from spacy_dgemma.errors import Errors, InputError
from spacy_dgemma.hipe import ReadStats, iter_records
from tests.util import strip_labels

runner = CliRunner()
ONE_LINE = re.compile(r"^(?P<file>[^\n]+?)(:(?P<line>\d+))?: \[(?P<code>E\d{3})\] [^\n]+ — [^\n]+\n$")


def dumps(record):
    return json.dumps(record, ensure_ascii=False)


def good(hipe_records, lang="en"):
    return dumps(strip_labels(hipe_records[lang]))


def broken(hipe_records, change):
    record = copy.deepcopy(strip_labels(hipe_records["en"]))
    change(record)
    return dumps(record)


def _set_pair(key, value):
    return lambda r: r["sampled_pairs"][1].__setitem__(key, value)


CASES = {
    # name: (file content as a function of the records, error code, line)
    "malformed JSON": (lambda h: good(h, "de") + "\n" + good(h)[:-5] + "\n", "E001", 2),
    "not an object": (lambda h: "[1, 2]\n", "E004", 1),
    "missing field": (lambda h: broken(h, lambda r: r.pop("date")) + "\n", "E002", 1),
    "missing pair field": (lambda h: broken(h, lambda r: r["sampled_pairs"][0].pop("loc_entity_id")) + "\n", "E002", 1),
    "wrong label": (lambda h: broken(h, _set_pair("at", "MAYBE")) + "\n", "E003", 1),
    "wrong isAt label": (lambda h: broken(h, _set_pair("isAt", "PROBABLE")) + "\n", "E003", 1),
    "wrong type": (lambda h: broken(h, lambda r: r.__setitem__("text", 42)) + "\n", "E004", 1),
    "wrong type of mentions": (lambda h: broken(h, _set_pair("pers_mentions_list", "Smith")) + "\n", "E004", 1),
    "wrong type of date": (lambda h: broken(h, lambda r: r.__setitem__("date", 1900)) + "\n", "E004", 1),
    "empty file": (lambda h: "", "E005", None),
    "blank file": (lambda h: "\n  \n", "E005", None),
}


@pytest.fixture
def make_file(tmp_path, hipe_records):
    def make(name, content):
        path = tmp_path / f"{name.replace(' ', '_')}.jsonl"
        path.write_text(content(hipe_records), encoding="utf-8")
        return path

    return make


def assert_one_line(result, path, code, line):
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    match = ONE_LINE.match(result.stderr)
    assert match, repr(result.stderr)
    assert match["file"] == str(path) and match["code"] == code
    assert (int(match["line"]) if match["line"] else None) == line


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("command", ["predict", "validate", "convert", "evaluate"])
def test_bad_file(make_file, tmp_path, case, command):
    content, code, line = CASES[case]
    path = make_file(case, content)
    out = tmp_path / "out.jsonl"
    args = {
        "predict": ["predict", str(path), str(out), "--model", "baseline"],
        "validate": ["validate", str(path)],
        "convert": ["convert", str(path), str(tmp_path / "spacy")],
        "evaluate": ["evaluate", str(path), str(path)],
    }[command]
    result = runner.invoke(app, args)
    assert_one_line(result, path, code, line)
    assert not out.exists()


def test_non_utf8_file(tmp_path, hipe_records):
    path = tmp_path / "latin1.jsonl"
    path.write_bytes((good(hipe_records) + "\n").encode("utf-8") + (good(hipe_records, "de") + "\n").encode("latin-1"))
    result = runner.invoke(app, ["predict", str(path), str(tmp_path / "out.jsonl"), "-m", "baseline"])
    assert_one_line(result, path, "E006", 2)
    assert "UTF-8" in result.stderr


def test_missing_file(tmp_path):
    path = tmp_path / "nowhere.jsonl"
    for args in (["predict", str(path), str(tmp_path / "out.jsonl"), "-m", "baseline"], ["validate", str(path)], ["evaluate", str(path), str(path)]):
        assert_one_line(runner.invoke(app, args), path, "E007", None)


def test_duplicate_document_ids_across_inputs(tmp_path, hipe_records):
    a = tmp_path / "a.jsonl"
    b = tmp_path / "b.jsonl"
    a.write_text(good(hipe_records) + "\n", encoding="utf-8")
    b.write_text(good(hipe_records, "de") + "\n" + good(hipe_records) + "\n", encoding="utf-8")
    result = runner.invoke(app, ["predict", str(a), str(b), str(tmp_path / "out"), "-m", "baseline"])
    assert_one_line(result, b, "E008", 2)
    assert f"{a}:1" in result.stderr  # where it was first seen
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_odd_number_of_evaluate_files(tmp_path, hipe_records):
    path = tmp_path / "gold.jsonl"
    path.write_text(good(hipe_records) + "\n", encoding="utf-8")
    result = runner.invoke(app, ["evaluate", str(path), str(path), str(path)])
    assert result.exit_code == 2 and "E022" in result.stderr and "Traceback" not in result.output


def test_bad_prediction_file(tmp_path, hipe_records):
    gold = tmp_path / "gold.jsonl"
    gold.write_text(dumps(hipe_records["en"]) + "\n", encoding="utf-8")
    pred = tmp_path / "pred.jsonl"
    pred.write_text(broken(hipe_records, _set_pair("at", "yes")) + "\n", encoding="utf-8")
    assert_one_line(runner.invoke(app, ["evaluate", str(gold), str(pred)]), pred, "E003", 1)


def test_skip_invalid_skips_and_counts(tmp_path, hipe_records):
    path = tmp_path / "mixed.jsonl"
    lines = [good(hipe_records, "en"), "{not json", broken(hipe_records, _set_pair("at", "MAYBE")).replace(hipe_records["en"]["document_id"], "other-id"), good(hipe_records, "de")]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    out = tmp_path / "out.jsonl"
    result = runner.invoke(app, ["predict", str(path), str(out), "-m", "baseline", "--skip-invalid"])
    assert result.exit_code == 0, result.output
    written = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [r["language"] for r in written] == ["en", "de"]
    assert "W002" in result.output and "Skipped 2 invalid" in result.output
    assert f"{path}:2:" in result.stderr and f"{path}:3:" in result.stderr


def test_validate_lists_every_problem(tmp_path, hipe_records):
    path = tmp_path / "mixed.jsonl"
    path.write_text("\n".join([good(hipe_records), "{", "[]"]) + "\n", encoding="utf-8")
    result = runner.invoke(app, ["validate", str(path)])
    assert result.exit_code == 2
    assert [line.split(": ")[0] for line in result.stderr.splitlines()] == [f"{path}:2", f"{path}:3"]


def test_input_error_carries_file_line_and_fix(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text("{\n", encoding="utf-8")
    with pytest.raises(InputError) as info:
        list(iter_records(path))
    err = info.value
    assert (err.file, err.line) == (str(path), 1)
    assert err.message.startswith("[E001]") and err.fix
    assert str(err) == f"{path}:1: {err.message} — {err.fix}"
    stats = ReadStats()
    assert list(iter_records(path, skip_invalid=True, stats=stats)) == []
    assert [e.line for e in stats.skipped] == [1]


def test_error_codes_are_prefixed():
    assert Errors.E005.startswith("[E005] ")


def test_real_process_prints_one_line_and_no_traceback(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"document_id": \n', encoding="utf-8")
    result = subprocess.run(
        [sys.executable, "-m", "spacy_dgemma", "predict", str(path), str(tmp_path / "out.jsonl"), "--model", "baseline"],
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert ONE_LINE.match(result.stderr), result.stderr


def test_bad_line_with_two_processes_does_not_hang(tmp_path, hipe_records):
    path = tmp_path / "late.jsonl"
    lines = [good(hipe_records, lang) for lang in ("en", "de", "fr")] + ["{oops"]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    out = tmp_path / "out.jsonl"
    result = runner.invoke(app, ["predict", str(path), str(out), "-m", "baseline", "--n-process", "2", "--batch-size", "1"])
    assert_one_line(result, path, "E001", 4)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["late.jsonl"]  # no output, no temporary file
