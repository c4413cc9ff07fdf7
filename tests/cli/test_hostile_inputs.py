"""Hostile but fair input: every case gives a result or one coded line, never a traceback or a hang.

JSON-level damage, non-standard constants, duplicate keys, numbers, nesting, lone surrogates,
encodings and byte order marks, line endings, sizes, unicode edge cases, paths and corrupt
models, through the CLI (typer's CliRunner) or the library; only the signal cases start
processes of their own.
"""
import codecs
import copy
import json
import os
import re
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
import spacy
from spacy.language import Language
from typer.testing import CliRunner

from spacy_dgemma.cli import app
from spacy_dgemma.errors import InputError
from spacy_dgemma.hipe import iter_records
from spacy_dgemma.predict import load_pipeline, predict_files
from tests.util import HIPE_RECORDS, strip_labels

runner = CliRunner()
CODE_LINE = re.compile(r"^(?P<file>[^\n]+?)(:(?P<line>\d+))?: \[(?P<code>E\d{3})\] [^\n]+ — [^\n]+$")


def record(lang):
    """A label-free test record whose mentions are all in its text (so no W001 lines on stderr)."""
    rec = strip_labels(copy.deepcopy(HIPE_RECORDS[lang]))
    rec["sampled_pairs"] = [p for p in rec["sampled_pairs"] if p["pers_entity_id"] != "en-napoleon"]
    return rec


def line(rec):
    return json.dumps(rec, ensure_ascii=False)


def with_field(**fields):
    """An English record with `fields` set, as ASCII JSON (a lone surrogate as its escape, as files hold it)."""
    rec = record("en")
    rec.update(fields)
    return json.dumps(rec)


def assert_coded(result, path, code, line_no):
    """Exit 2, no traceback, and the last line of stderr is `path:line: [code] what — fix`."""
    assert result.exit_code == 2, (result.exit_code, result.output, result.exception)
    assert "Traceback" not in result.output
    last = result.stderr.strip().splitlines()[-1]
    match = CODE_LINE.match(last)
    assert match, repr(result.stderr)
    assert (match["file"], match["code"]) == (str(path), code), last
    assert (int(match["line"]) if match["line"] else None) == line_no, last


def read_strict(path):
    """The records of a JSONL file, read as a strict parser would (no NaN, no lone surrogates)."""
    def refuse(name):
        raise AssertionError(f"non-standard constant {name}")

    text = Path(path).read_bytes().decode("utf-8")  # strict: a lone surrogate cannot be encoded
    return [json.loads(row, parse_constant=refuse) for row in text.split("\n") if row]


# name: (the damaged line, as bytes, the error code)
DAMAGED = {
    "NaN": (with_field(extra=float("nan")).encode(), "E102"),
    "Infinity": (with_field(extra=float("inf")).encode(), "E102"),
    "-Infinity": (with_field(extra=float("-inf")).encode(), "E102"),
    "NaN in a pair": (line(record("en")).replace('"at": null', '"at": NaN', 1).encode(), "E102"),
    "duplicate key": ((line(record("en"))[:-1] + ', "document_id": "other"}').encode(), "E101"),
    "duplicate key in a pair": (line(record("en")).replace('"at": null', '"at": null, "at": "TRUE"', 1).encode(), "E101"),
    "5000-digit integer": (with_field(extra=0).replace('"extra": 0', '"extra": ' + "7" * 5000).encode(), "E103"),
    "1e999": (with_field(extra=0.5).replace('"extra": 0.5', '"extra": 1e999').encode(), "E103"),
    "100000-deep object": (b'{"a":' * 100_000 + b"1" + b"}" * 100_000, "E100"),
    "100000-deep array": (b"[" * 100_000 + b"]" * 100_000, "E100"),
    "deep extra field": (with_field(extra=0).replace('"extra": 0', '"extra": ' + "[" * 200 + "]" * 200).encode(), "E100"),
    "lone surrogate in text": (with_field(text=HIPE_RECORDS["en"]["text"] + " \ud800").encode(), "E104"),
    "lone surrogate in source": (with_field(source="paper-\udfff.tsv").encode(), "E104"),
    "lone surrogate in a mention": (json.dumps(record("en")).replace('"Bath"', '"Ba\\udc00th"').encode(), "E104"),
    "lone surrogate in a key": (with_field(**{"k\udbff": 1}).encode(), "E104"),
    "truncated line": (line(record("en"))[:-40].encode(), "E001"),
    "trailing garbage": ((line(record("en")) + " x").encode(), "E001"),
    "two documents on a line": ((line(record("en")) + line(record("en"))).encode(), "E001"),
    "a JSON string": (b'"just a string"', "E004"),
    "a JSON number": (b"42", "E004"),
    "null": (b"null", "E004"),
    "raw control character": (line(record("en")).replace("Aug. 18", "Aug.\x0c18").encode(), "E001"),
    "NUL bytes": (b'{"document_id":\x00 1}', "E006"),
    "Latin-1": (line(record("de")).encode("latin-1"), "E006"),
    "invalid UTF-8 (surrogate bytes)": (line(record("en")).encode().replace(b"Bath", b"Ba\xed\xa0\x80th"), "E006"),
    "UTF-16 without BOM": (line(record("en")).encode("utf-16-le"), "E006"),
}


@pytest.fixture
def damaged_file(tmp_path):
    def make(name):
        data, code = DAMAGED[name]
        path = tmp_path / "input.jsonl"
        path.write_bytes(line(record("de")).encode() + b"\n" + data + b"\n" + line(record("fr")).encode() + b"\n")
        return path, code

    return make


@pytest.mark.parametrize("name", list(DAMAGED))
def test_damaged_line_is_refused_and_the_others_are_kept(tmp_path, damaged_file, name):
    path, code = damaged_file(name)
    assert_coded(runner.invoke(app, ["validate", str(path)]), path, code, 2)
    out = tmp_path / "out.jsonl"
    result = runner.invoke(app, ["predict", str(path), str(out), "-m", "baseline", "--skip-invalid"])
    assert result.exit_code == 0, (result.output, result.exception)
    assert "Traceback" not in result.output
    assert f"{path}:2: [{code}]" in result.stderr
    assert [r["language"] for r in read_strict(out)] == ["de", "fr"]


@pytest.mark.parametrize("name", ["NaN", "duplicate key", "lone surrogate in text", "100000-deep array", "5000-digit integer"])
@pytest.mark.parametrize("n_process", [1, 2])
def test_damaged_line_stops_predict_without_output(tmp_path, damaged_file, name, n_process):
    path, code = damaged_file(name)
    out = tmp_path / "out.jsonl"
    result = runner.invoke(app, ["predict", str(path), str(out), "-m", "baseline", "--n-process", str(n_process), "--batch-size", "1"])
    assert_coded(result, path, code, 2)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["input.jsonl"]  # no output, no temporary file


def test_a_valid_surrogate_pair_and_other_unicode_are_kept_verbatim(tmp_path):
    """Astral characters (escaped as a surrogate pair or raw), combining marks, right-to-left text,
    zero-width and line/paragraph separators inside strings, an escaped NUL and escaped carriage
    returns: read and written back unchanged, as standard JSON."""
    rec = record("fr")
    rec["text"] += " 😀 e\u0301 \u05e9\u05dc\u05d5\u05dd \u200d\u200b \u2028 \u2029 \u0085 \ufeff \x00 \r\n\r fin"
    rec["media"]["publication_title"] = "Le Temps \U0001d4af"
    raw = line(rec).replace("😀", "\\ud83d\\ude00").encode()  # the same character as an escaped pair
    path = tmp_path / "unicode.jsonl"
    path.write_bytes(raw + b"\n")
    out = tmp_path / "out.jsonl"
    result = runner.invoke(app, ["predict", str(path), str(out), "-m", "baseline"])
    assert result.exit_code == 0, (result.output, result.exception)
    (written,) = read_strict(out)
    assert written["text"] == rec["text"] and written["media"] == rec["media"]
    assert out.read_bytes().count(b"\n") == 1  # U+2028/U+2029/NEL are not line breaks


LINE_ENDINGS = {"LF": b"\n", "CRLF": b"\r\n", "CR": b"\r"}


@pytest.mark.parametrize("ending", list(LINE_ENDINGS))
@pytest.mark.parametrize("final", [True, False])
def test_line_endings(tmp_path, ending, final):
    rows = [line(record(lang)).encode() for lang in ("en", "de", "fr")]
    path = tmp_path / "input.jsonl"
    path.write_bytes(LINE_ENDINGS[ending].join(rows) + (LINE_ENDINGS[ending] if final else b""))
    assert [(item.line, item.record["language"]) for item in iter_records(path)] == [(1, "en"), (2, "de"), (3, "fr")]
    out = tmp_path / "out.jsonl"
    result = runner.invoke(app, ["predict", str(path), str(out), "-m", "baseline", "--skip-invalid"])
    assert result.exit_code == 0 and "W002" not in result.output
    assert len(read_strict(out)) == 3


def test_mixed_line_endings_keep_line_numbers(tmp_path):
    path = tmp_path / "input.jsonl"
    path.write_bytes(line(record("en")).encode() + b"\r\n\r" + line(record("de")).encode() + b"\n{broken\r" + line(record("fr")).encode())
    result = runner.invoke(app, ["validate", str(path)])
    assert_coded(result, path, "E001", 4)
    assert "3 valid documents" in result.stdout
    assert [item.line for item in iter_records(path, skip_invalid=True)] == [1, 3, 5]


ENCODINGS = {
    "UTF-8 with BOM": lambda text: codecs.BOM_UTF8 + text.encode("utf-8"),
    "UTF-16 LE with BOM": lambda text: codecs.BOM_UTF16_LE + text.encode("utf-16-le"),
    "UTF-16 BE with BOM": lambda text: codecs.BOM_UTF16_BE + text.encode("utf-16-be"),
    "UTF-32 LE with BOM": lambda text: codecs.BOM_UTF32_LE + text.encode("utf-32-le"),
    "UTF-32 BE with BOM": lambda text: codecs.BOM_UTF32_BE + text.encode("utf-32-be"),
}


@pytest.mark.parametrize("encoding", list(ENCODINGS))
def test_byte_order_marks_and_wide_encodings(tmp_path, encoding):
    text = "\r\n".join(line(record(lang)) for lang in ("en", "de", "fr")) + "\r\n"
    plain, marked = tmp_path / "plain.jsonl", tmp_path / "marked.jsonl"
    plain.write_bytes(text.replace("\r\n", "\n").encode("utf-8"))
    marked.write_bytes(ENCODINGS[encoding](text))
    outs = []
    for path in (plain, marked):
        outs.append(tmp_path / f"{path.stem}-out.jsonl")
        result = runner.invoke(app, ["predict", str(path), str(outs[-1]), "-m", "baseline"])
        assert result.exit_code == 0, (result.output, result.exception)
    assert outs[0].read_bytes() == outs[1].read_bytes()  # output is UTF-8 without a BOM, whatever the input


def test_a_byte_order_mark_before_a_later_line_is_ignored(tmp_path):
    path = tmp_path / "concatenated.jsonl"
    path.write_bytes(codecs.BOM_UTF8 + line(record("en")).encode() + b"\n" + codecs.BOM_UTF8 + line(record("de")).encode() + b"\n")
    assert [item.record["language"] for item in iter_records(path)] == ["en", "de"]


def test_a_lone_surrogate_in_a_utf16_file_is_refused_with_its_line(tmp_path):
    rows = [line(record("en")), line(record("de")).replace("Wien", "Wi\ud800en"), line(record("fr"))]
    path = tmp_path / "utf16.jsonl"
    path.write_bytes(codecs.BOM_UTF16_LE + "\n".join(rows).encode("utf-16-le", "surrogatepass"))
    assert_coded(runner.invoke(app, ["validate", str(path)]), path, "E104", 2)


def test_truncated_utf16_is_refused(tmp_path):
    path = tmp_path / "odd.jsonl"
    path.write_bytes(codecs.BOM_UTF16_LE + (line(record("en")) + "\n").encode("utf-16-le") + b"{")
    assert_coded(runner.invoke(app, ["validate", str(path)]), path, "E006", 2)


@pytest.mark.parametrize("content", [b"", b"\n\n  \r\n", bytes(range(256)) * 8, b"\xff\xfe\x00" * 100, b"not json at all\n" * 3])
def test_empty_or_binary_input_never_replaces_the_previous_output(tmp_path, content):
    path = tmp_path / "input.jsonl"
    path.write_bytes(content)
    out = tmp_path / "out.jsonl"
    out.write_text("PREVIOUS\n", encoding="utf-8")
    for args in ([], ["--skip-invalid"], ["--skip-invalid", "--n-process", "2"]):
        result = runner.invoke(app, ["predict", str(path), str(out), "-m", "baseline", *args])
        assert result.exit_code == 2 and "Traceback" not in result.output
        last = result.stderr.strip().splitlines()[-1]
        assert re.search(r"\[E00[156]\]" if not args else r"\[E105\]", last), last
        assert out.read_text(encoding="utf-8") == "PREVIOUS\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["input.jsonl", "out.jsonl"]


def test_convert_refuses_to_write_an_empty_docbin(tmp_path):
    path = tmp_path / "input.jsonl"
    path.write_bytes(b"{oops\n")
    result = runner.invoke(app, ["convert", str(path), str(tmp_path / "spacy"), "--skip-invalid"])
    assert_coded(result, path, "E105", None)
    assert not (tmp_path / "spacy" / "input.spacy").exists()


def test_a_document_over_a_million_characters_is_processed(tmp_path):
    rec = record("en")
    filler = "The harvest of the county was good, as the farmers report. " * 20_000
    rec["text"] = rec["text"] + "\n" + filler + "Mrs. Mary Brown wrote again from Bath."
    assert len(rec["text"]) > 1_000_000
    path = tmp_path / "long.jsonl"
    path.write_text(line(rec) + "\n" + line(record("de")) + "\n", encoding="utf-8")
    outs = []
    for n_process in ("1", "2"):
        outs.append(tmp_path / f"out-{n_process}.jsonl")
        result = runner.invoke(app, ["predict", str(path), str(outs[-1]), "-m", "baseline", "--n-process", n_process])
        assert result.exit_code == 0, (result.output, result.exception)
    long, _ = read_strict(outs[0])
    assert long["text"] == rec["text"]
    assert all(p["at"] in ("TRUE", "PROBABLE", "FALSE") for p in long["sampled_pairs"])
    assert outs[0].read_bytes() == outs[1].read_bytes()


def test_an_empty_text_and_no_pairs(tmp_path):
    rec = dict(record("en"), text="", sampled_pairs=[])
    path = tmp_path / "input.jsonl"
    path.write_text(line(rec) + "\n", encoding="utf-8")
    out = tmp_path / "out.jsonl"
    assert runner.invoke(app, ["predict", str(path), str(out), "-m", "baseline"]).exit_code == 0
    assert read_strict(out) == [rec]


# --- paths


@pytest.fixture
def one_input(tmp_path):
    path = tmp_path / "input.jsonl"
    path.write_text(line(record("de")) + "\n", encoding="utf-8")
    return path


def test_output_name_too_long(tmp_path, one_input):
    out = tmp_path / ("n" * 300 + ".jsonl")
    assert_coded(runner.invoke(app, ["predict", str(one_input), str(out), "-m", "baseline"]), out, "E106", None)


def test_output_name_just_under_the_limit_is_written(tmp_path, one_input):
    out = tmp_path / ("n" * 249 + ".jsonl")  # 255 bytes: the temporary name must still fit
    assert runner.invoke(app, ["predict", str(one_input), str(out), "-m", "baseline"]).exit_code == 0
    assert len(read_strict(out)) == 1


@pytest.mark.parametrize("below", ["out.jsonl", "deeper/out.jsonl"])
def test_output_parent_is_a_file(tmp_path, one_input, below):
    (tmp_path / "afile").write_text("x", encoding="utf-8")
    out = tmp_path / "afile" / below
    result = runner.invoke(app, ["predict", str(one_input), str(out), "-m", "baseline"])
    assert_coded(result, out, "E107", None)
    assert str(tmp_path / "afile") in result.stderr


def test_output_folder_not_writable(tmp_path, one_input):
    folder = tmp_path / "locked"
    folder.mkdir()
    folder.chmod(stat.S_IRUSR | stat.S_IXUSR)
    out = folder / "out.jsonl"
    try:
        if os.access(folder, os.W_OK):  # root ignores permissions: sysfs takes no new files, even from root
            if not Path("/sys/kernel").is_dir():
                pytest.skip("no unwritable folder here")
            out = Path("/sys/dgemma-test-output.jsonl")
        assert_coded(runner.invoke(app, ["predict", str(one_input), str(out), "-m", "baseline"]), out, "E108", None)
    finally:
        folder.chmod(stat.S_IRWXU)


@pytest.mark.skipif(not Path("/dev/full").is_char_device(), reason="needs /dev/full")
def test_full_disk_and_devices(tmp_path, one_input):
    result = runner.invoke(app, ["predict", str(one_input), "/dev/full", "-m", "baseline"])
    assert_coded(result, "/dev/full", "E109", None)
    assert Path("/dev/full").is_char_device()  # written in place, never renamed over
    assert runner.invoke(app, ["predict", str(one_input), "/dev/null", "-m", "baseline"]).exit_code == 0
    assert Path("/dev/null").is_char_device()


def test_read_errors(tmp_path):
    assert_coded(runner.invoke(app, ["validate", str(tmp_path / ("i" * 300 + ".jsonl"))]), tmp_path / ("i" * 300 + ".jsonl"), "E011", None)
    if Path("/proc/self/mem").exists():  # reading it from the start is an I/O error
        assert_coded(runner.invoke(app, ["validate", "/proc/self/mem"]), "/proc/self/mem", "E011", 1)


# --- corrupt models


def _corrupt(folder):
    return {
        "config garbage": lambda: (folder / "config.cfg").write_text("[nlp\nlang = ", encoding="utf-8"),
        "config missing": lambda: (folder / "config.cfg").unlink(),
        "meta garbage": lambda: (folder / "meta.json").write_text("{", encoding="utf-8"),
        "strings of the wrong type": lambda: (folder / "vocab" / "strings.json").write_text("[1, 2]", encoding="utf-8"),
        "component cfg of the wrong type": lambda: (folder / "dgemma_relations" / "cfg").write_text("[1, 2]", encoding="utf-8"),
        "unknown factory": lambda: (folder / "config.cfg").write_text(
            (folder / "config.cfg").read_text(encoding="utf-8").replace('factory = "dgemma_relations"', 'factory = "no_such_factory"'), encoding="utf-8"),
    }


@pytest.mark.parametrize("damage", list(_corrupt(Path("model"))))
def test_corrupt_model_folder(tmp_path, one_input, damage):
    model = tmp_path / "model"
    nlp = spacy.blank("xx")
    nlp.add_pipe("dgemma_relations")
    nlp.to_disk(model)
    _corrupt(model)[damage]()
    result = runner.invoke(app, ["predict", str(one_input), str(tmp_path / "out.jsonl"), "-m", str(model)])
    assert_coded(result, model, "E020", None)


def test_a_model_that_is_a_file(tmp_path, one_input):
    model = tmp_path / "model.bin"
    model.write_bytes(os.urandom(64))
    assert_coded(runner.invoke(app, ["predict", str(one_input), str(tmp_path / "out.jsonl"), "-m", str(model)]), model, "E020", None)


# --- a pipeline that fails on a document, a worker that dies


@Language.component("hostile_test_trap")
def hostile_test_trap(doc):
    """Fails on a text with BOOM; ends its process on DIE (only ever run in a worker)."""
    if "BOOM" in doc.text:
        raise RuntimeError("boom on purpose")
    if "DIE" in doc.text:
        os._exit(3)
    return doc


@pytest.fixture
def trap_nlp():
    nlp = load_pipeline("baseline")
    nlp.add_pipe("hostile_test_trap", first=True)
    return nlp


def trap_input(tmp_path, word, n=12, at=7):
    rows = []
    for i in range(n):
        rec = record(("en", "de", "fr")[i % 3])
        rec["document_id"] = f"doc-{i}"
        if i == at:
            rec["text"] += f" {word}"
        rows.append(line(rec))
    path = tmp_path / f"{word}.jsonl"
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path


@pytest.mark.parametrize("n_process", [1, 2])
def test_a_document_the_pipeline_fails_on(tmp_path, trap_nlp, n_process):
    path = trap_input(tmp_path, "BOOM")
    out = tmp_path / "out.jsonl"
    with pytest.raises(InputError, match=r"E110.*RuntimeError: boom on purpose") as info:
        predict_files([path], out, trap_nlp, n_process=n_process, batch_size=3, progress=False)
    assert (info.value.file, info.value.line) == (str(path), 8)
    assert not out.exists()
    summary = predict_files([path], out, trap_nlp, n_process=n_process, batch_size=3, skip_invalid=True, progress=False)
    assert [e.line for e in summary.skipped] == [8]
    assert [r["document_id"] for r in read_strict(out)] == [f"doc-{i}" for i in range(12) if i != 7]


def test_a_worker_that_dies(tmp_path, trap_nlp):
    path = trap_input(tmp_path, "DIE")
    out = tmp_path / "out.jsonl"
    start = time.monotonic()
    with pytest.raises(InputError, match=r"E111.*exit code 3") as info:
        predict_files([path], out, trap_nlp, n_process=2, batch_size=3, skip_invalid=True, progress=False)
    assert time.monotonic() - start < 60
    assert (info.value.file, info.value.line) == (str(path), 7)  # the first line of the lost batch
    assert sorted(p.name for p in tmp_path.iterdir()) == ["DIE.jsonl"]


# --- signals (processes of their own)

SLOW_DRIVER = '''
import sys, time
from spacy.language import Language

@Language.component("hostile_test_slow")
def slow(doc):
    time.sleep(0.02)
    return doc

from spacy_dgemma.cli import app
app(sys.argv[1:], prog_name="dgemma")
'''


def _children(pid):
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


@Language.component("hostile_test_slow")
def hostile_test_slow(doc):
    """Stands for the driver's slow component when the test saves the pipeline."""
    return doc


@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="needs Linux /proc")
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_stops_workers_and_leaves_no_trace(tmp_path, signum):
    driver = tmp_path / "driver.py"
    driver.write_text(SLOW_DRIVER, encoding="utf-8")
    nlp = spacy.blank("xx")
    nlp.add_pipe("hostile_test_slow")
    nlp.add_pipe("dgemma_relations")
    nlp.to_disk(tmp_path / "model")
    path = trap_input(tmp_path, "calm", n=600)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    out = out_dir / "predictions.jsonl"
    out.write_text("PREVIOUS\n", encoding="utf-8")
    cmd = [sys.executable, str(driver), "predict", str(path), str(out), "-m", str(tmp_path / "model"), "--n-process", "2", "--batch-size", "4"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        workers = []
        while time.monotonic() < deadline and proc.poll() is None:
            workers = _children(proc.pid)
            if len(workers) >= 2 and list(out_dir.glob(".*.tmp")):
                break
            time.sleep(0.1)
        assert proc.poll() is None and len(workers) >= 2, proc.stderr.read() if proc.poll() is not None else workers
        time.sleep(0.5)  # mid-run
        proc.send_signal(signum)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 128 + signum, err
    assert "Traceback" not in err
    assert re.search(rf"\[E112\] interrupted by {signum.name}", err.strip().splitlines()[-1]), err
    assert out.read_text(encoding="utf-8") == "PREVIOUS\n"
    assert sorted(p.name for p in out_dir.iterdir()) == ["predictions.jsonl"]  # no temporary file
    time.sleep(0.2)
    assert [pid for pid in workers if Path(f"/proc/{pid}").exists()] == []
