"""Input listing, indexing and the prediction of one shard, without Ray."""
import bz2
import codecs
import gzip
import hashlib
import json
import pickle
import tempfile
import traceback

import pytest
import spacy
from spacy.language import Language
from typer.testing import CliRunner

from spacy_dgemma.cli import app
from spacy_dgemma.errors import InputError
from spacy_dgemma.hipe.read import iter_raw_lines, nonblank_lines
from spacy_dgemma.hipe.write import doc_to_record, dumps
from spacy_dgemma.predict import load_pipeline
from spacy_dgemma.scale.inputs import HIPE, TEXT, index_hipe_file, iter_lines, list_inputs, open_input
from spacy_dgemma.scale.job import read_code
from spacy_dgemma.scale.shards import JobLayout, Shard, drop_documents, run_shard
from spacy_dgemma.scale.worker import import_code
from tests.util import HIPE_RECORDS, strip_labels


def test_list_inputs_folders_globs_and_kinds(tmp_path):
    (tmp_path / "b" / "1900").mkdir(parents=True)
    for name in ("a.jsonl", "b/z.jsonl.gz", "b/1900/x.txt", "b/1900/y.txt.bz2", "b/notes.md"):
        (tmp_path / name).write_bytes(b"x")
    files = list_inputs([str(tmp_path / "b"), str(tmp_path / "*.jsonl"), str(tmp_path / "a.jsonl")])
    assert [(f.url[len(str(tmp_path)) + 1 :], f.kind, f.doc_id) for f in files] == [
        ("b/1900/x.txt", TEXT, "1900/x"), ("b/1900/y.txt.bz2", TEXT, "1900/y"), ("b/z.jsonl.gz", HIPE, ""), ("a.jsonl", HIPE, "")
    ]  # each file once, even when named twice
    with pytest.raises(ValueError, match="E202"):
        list_inputs([str(tmp_path / "*.csv")])
    with pytest.raises(ValueError, match="E203"):
        list_inputs([str(tmp_path / "b" / "notes.md")])
    with pytest.raises(ValueError, match="E007"):
        list_inputs([str(tmp_path / "missing")])


@pytest.mark.parametrize("compress", [None, "gz", "bz2"])
def test_shards_read_the_lines_that_the_hipe_reader_reads(tmp_path, compress):
    data = b'{"a": 1}\r\n\r\n{"b": 2}\r{"c": 3}\n \n{"d": 4}\n{"e": 5}'  # CRLF, CR, LF, blank lines, no final end
    path = tmp_path / "in.jsonl"
    if compress:
        path = path.with_name(f"in.jsonl.{compress}")
        data = gzip.compress(data) if compress == "gz" else bz2.compress(data)
    path.write_bytes(data)
    index = index_hipe_file(str(path), shard_size=2)
    assert index["records"] == 5 and index["error"] == ""
    assert [n for _, _, n in index["shards"]] == [2, 2, 1]
    got = [item for line, offset, n in index["shards"] for item in iter_lines(str(path), line, offset, n)]
    with open_input(str(path)) as handle:
        expected = [(line, raw) for line, raw in iter_raw_lines(handle, str(path)) if raw.strip()]
    assert got == expected and [line for line, _ in got] == [1, 3, 4, 6, 7]


def test_shards_keep_what_the_hipe_reader_keeps(tmp_path):
    # A shard that starts with the bytes of a byte order mark is not decoded as UTF-16 (only a
    # file's start can carry one), and a line of other whitespace is a record, not a blank line.
    path = tmp_path / "odd.jsonl"
    path.write_bytes(b'{"a": 1}\n\xff\xfe{"b": 2}\n{"c": 3}\n{"d": 4}\n')
    wide = tmp_path / "wide-nbsp.jsonl"
    wide.write_bytes(codecs.BOM_UTF16_LE + '{"a": 1}\n\u00a0\n{"b": 2}\n'.encode("utf-16-le"))
    for file in (path, wide):
        index = index_hipe_file(str(file), shard_size=1)
        got = [item for line, offset, n in index["shards"] for item in iter_lines(str(file), line, offset, n)]
        expected = list(nonblank_lines(file))
        assert index["records"] == len(expected) and got == expected


def test_a_wide_file_is_one_shard_and_a_broken_file_an_error(tmp_path):
    wide = tmp_path / "wide.jsonl"
    wide.write_bytes(codecs.BOM_UTF16_LE + '{"a": 1}\n\n{"b": 2}\n{"c": 3}\n'.encode("utf-16-le"))
    index = index_hipe_file(str(wide), shard_size=2)
    assert index["records"] == 3 and index["shards"] == [[1, 0, 3]]
    broken = tmp_path / "broken.jsonl.gz"
    data = gzip.compress(b"".join(b'{"a": %d}\n' % i for i in range(1000)))
    broken.write_bytes(data[: len(data) // 2])  # a truncated download
    index = index_hipe_file(str(broken), shard_size=2)
    assert index["error"] and index["shards"] == []


@Language.component("test_fail_on_boom")
def fail_on_boom(doc):
    if "BOOM" in doc.text:
        raise RuntimeError("boom")
    return doc


def test_run_shard_writes_output_rejects_and_done_record(tmp_path):
    records = [strip_labels(HIPE_RECORDS[lang]) for lang in ("en", "de", "fr")]
    records[1]["text"] += " BOOM"
    lines = [json.dumps(records[0]), "[1, 2", json.dumps(records[1]), "", json.dumps(records[2])]
    path = tmp_path / "in.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    nlp = load_pipeline("baseline")
    nlp.add_pipe("test_fail_on_boom")
    layout = JobLayout(tmp_path / "out")
    shard = Shard("s0", HIPE, [str(path)], first_line=1, offset=0, records=4)
    done = run_shard(nlp, shard, layout, batch_size=8)
    out = layout.shard_file("s0").read_text(encoding="utf-8").splitlines()
    # the good documents, as the local engine writes them
    expected = [dumps(doc_to_record(nlp(doc))) for doc in _docs(nlp, [records[0], records[2]])]
    assert out == expected
    rejects = [json.loads(line) for line in layout.rejects_file("s0").read_text().splitlines()]
    assert [(r["line"], r["code"], r["document_id"]) for r in rejects] == [(2, "E001", None), (3, "E110", records[1]["document_id"])]
    assert "RuntimeError: boom" in rejects[1]["reason"]
    assert json.loads(layout.done_file("s0").read_text()) == done
    assert (done["documents"], done["rejects"], done["bytes"]) == (2, 2, layout.shard_file("s0").stat().st_size)


def test_rejects_carry_the_code_of_the_error(tmp_path):
    # The code is data of the error (also across processes), not read back from its wording.
    problem = pickle.loads(pickle.dumps(InputError.of("E006", "in.jsonl", 3, detail="byte 0xe9 at offset 2")))
    assert problem.code == "E006"
    path = tmp_path / "in.jsonl"
    path.write_bytes(b'{"document_id": "latin1 \xe9"}\n{"document_id": "x", "text": "[E999] in the text"}\n')
    layout = JobLayout(tmp_path / "out")
    done = run_shard(load_pipeline("baseline"), Shard("s0", HIPE, [str(path)], records=2), layout)
    rejects = [json.loads(line) for line in layout.rejects_file("s0").read_text().splitlines()]
    assert done["rejects"] == 2 and [(r["line"], r["code"]) for r in rejects] == [(1, "E006"), (2, "E002")]


def test_drop_documents_moves_them_to_the_rejects(tmp_path):
    records = [dict(strip_labels(HIPE_RECORDS[lang]), document_id=doc_id) for lang, doc_id in (("en", "A"), ("de", "B"), ("fr", "C"))]
    path = tmp_path / "in.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records) + "[1, 2\n", encoding="utf-8")
    layout = JobLayout(tmp_path / "out")
    shard = Shard("s0", HIPE, [str(path)], records=4)
    done = run_shard(load_pipeline("baseline"), shard, layout)
    lines = layout.shard_file("s0").read_bytes().splitlines(keepends=True)
    assert [entry[1:3] for entry in done["ids"]] == [[1, "A"], [2, "B"], [3, "C"]]
    problem = InputError.of("E008", str(path), 2, doc_id="B", first="other.jsonl:1")
    # A reject left by an interrupted earlier call is not written twice.
    with layout.rejects_file("s0").open("a", encoding="utf-8") as out:
        out.write(json.dumps({"file": str(path), "line": 2, "document_id": "B", "code": "E008", "reason": "", "shard": "s0"}) + "\n")
    record = drop_documents(layout, shard, done, {1: problem})
    assert layout.shard_file("s0").read_bytes() == lines[0] + lines[2]
    rejects = [json.loads(line) for line in layout.rejects_file("s0").read_text().splitlines()]
    assert [(r["line"], r["code"], r["document_id"], r["reason"]) for r in rejects] == [(2, "E008", "B", str(problem)), (4, "E001", None, rejects[1]["reason"])]
    assert json.loads(layout.done_file("s0").read_text()) == record
    assert (record["documents"], record["rejects"], record["bytes"]) == (2, 2, len(lines[0] + lines[2]))
    assert record["pairs"] == done["pairs"] - done["ids"][1][3] and [e[2] for e in record["ids"]] == ["A", "C"]
    assert record["sha256"] == hashlib.sha256(lines[0] + lines[2]).hexdigest()


@pytest.mark.filterwarnings("ignore:.*W010")  # no recogniser: no pairs, which does not matter here
@pytest.mark.parametrize("suffix", [".txt", ".txt.gz", ".txt.bz2"])
def test_text_checksum_is_of_the_stored_bytes(tmp_path, suffix):
    text = "Mr. Smith arrived in London.".encode("utf-8")
    data = {".txt": text, ".txt.gz": gzip.compress(text), ".txt.bz2": bz2.compress(text)}[suffix]
    path = tmp_path / f"a{suffix}"
    path.write_bytes(data)
    shard = Shard("text-0", TEXT, [str(path)], records=1, doc_ids=["a"])
    done = run_shard(load_pipeline("baseline"), shard, JobLayout(tmp_path / "out"))
    assert done["documents"] == 1 and done["inputs"] == {str(path): hashlib.sha256(data).hexdigest()}  # as sha256sum gives it


CODE = """
from spacy.language import Language

@Language.component("test_code_component")
def code_component(doc):
    raise RuntimeError("from the code file")
"""


def test_code_files_leave_no_temporary_folder(tmp_path, monkeypatch):
    temp = tmp_path / "temp"
    temp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    good = tmp_path / "good_code.py"
    good.write_text(CODE, encoding="utf-8")
    bad = tmp_path / "bad_code.py"
    bad.write_text("raise RuntimeError('nope')\n", encoding="utf-8")
    import_code([("elsewhere/good_code.py", CODE)])  # as a worker on another node: no such file
    read_code([good])
    read_code([good])  # the same component again (spaCy compares the sources: they must be found)
    with pytest.raises(InputError, match="E208"):
        read_code([good, bad])
    assert list(temp.iterdir()) == []  # also when an import fails
    nlp = spacy.blank("xx")
    nlp.add_pipe("test_code_component")
    with pytest.raises(RuntimeError) as info:
        nlp("text")
    assert 'raise RuntimeError("from the code file")' in "".join(traceback.format_exception(info.value))


def _docs(nlp, records):
    from spacy_dgemma.hipe.read import DocMaker, record_to_doc

    make_doc = DocMaker(vocab=nlp.vocab)
    return [record_to_doc(r, make_doc=make_doc) for r in records]


def test_cli_refuses_options_of_the_other_engine(tmp_path):
    path = tmp_path / "in.jsonl"
    path.write_text(json.dumps(HIPE_RECORDS["en"]) + "\n", encoding="utf-8")
    runner = CliRunner()
    result = runner.invoke(app, ["predict", str(path), str(tmp_path / "out.jsonl"), "-m", "baseline", "--workers", "2"])
    assert result.exit_code == 2 and "[E207] --workers applies to --engine ray only" in result.output
    result = runner.invoke(app, ["predict", str(path), "--output", str(path), "-m", "baseline", "--engine", "ray"])
    assert result.exit_code == 2 and "[E209]" in result.output
    result = runner.invoke(app, ["predict", str(path), "-o", str(tmp_path / "o"), "-m", "baseline", "--engine", "ray", "--n-process", "2"])
    assert result.exit_code == 2 and "[E207] --n-process applies to --engine local only" in result.output
    code = tmp_path / "broken_code.py"
    code.write_text("raise RuntimeError('nope')\n", encoding="utf-8")
    result = runner.invoke(app, ["predict", str(path), str(tmp_path / "out.jsonl"), "-m", "baseline", "--code", str(code)])
    assert result.exit_code == 2 and "[E208] cannot import the code file (RuntimeError: nope)" in result.output


def test_inputs_on_another_filesystem():
    """URLs of an fsspec filesystem (here the in-memory one) are listed, indexed and read as URLs."""
    import fsspec

    fs = fsspec.filesystem("memory")
    fs.pipe("/dgemma-test/archive/1900/a.txt.gz", gzip.compress("Mr. Smith in London.".encode()))
    fs.pipe("/dgemma-test/archive/b.jsonl", b'{"a": 1}\n\n{"b": 2}\n')
    try:
        files = list_inputs(["memory://dgemma-test/archive"])
        assert [(f.url, f.kind, f.doc_id, f.size) for f in files] == [
            ("memory:///dgemma-test/archive/1900/a.txt.gz", TEXT, "1900/a", len(fs.cat("/dgemma-test/archive/1900/a.txt.gz"))),
            ("memory:///dgemma-test/archive/b.jsonl", HIPE, "", 19),
        ]
        index = index_hipe_file(files[1].url, shard_size=1)
        assert index["shards"] == [[1, 0, 1], [3, 10, 1]]
        assert list(iter_lines(files[1].url, 3, 10, 1)) == [(3, b'{"b": 2}')]
    finally:
        fs.rm("/dgemma-test", recursive=True)
