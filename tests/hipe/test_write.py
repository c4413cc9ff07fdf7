"""Writing Docs back as official-format HIPE-2026 JSONL: round trips, labels, atomic files."""
import copy
import json
import os
from pathlib import Path

import pytest
import spacy

from spacy_dgemma.hipe import (
    AtomicWriter,
    doc_to_record,
    dumps,
    is_valid,
    iter_records,
    read_docs,
    record_to_doc,
    write_docs,
    write_jsonl,
)
from spacy_dgemma.pipeline.records import Relation

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "hipe2026"
LABELS = ("at", "at_explanation", "isAt", "isAt_explanation")


def copy_labels_through(doc):
    """Relations that carry the gold labels of the Doc's input pairs (a perfect prediction)."""
    doc._.dgemma_relations = [
        Relation(
            person_id=p["pers_entity_id"],
            place_id=p["loc_entity_id"],
            at=p.get("at"),
            is_at=p.get("isAt"),
            at_explanation=p.get("at_explanation"),
            is_at_explanation=p.get("isAt_explanation"),
            pair_index=i,
        )
        for i, p in enumerate(doc._.dgemma_hipe_pairs)
    ]
    return doc


def test_round_trip_with_labels_copied_through(hipe_records):
    for record in hipe_records.values():
        doc = copy_labels_through(record_to_doc(record))
        assert dumps(doc_to_record(doc)) == dumps(record)


def test_only_the_labels_are_filled(hipe_records):
    record = hipe_records["de"]
    doc = record_to_doc(record)
    doc._.dgemma_relations = [Relation("de-weber", "de-zuerich", at="FALSE", is_at="TRUE", at_explanation="why", pair_index=2)]
    out = doc_to_record(doc)
    for i, (before, after) in enumerate(zip(record["sampled_pairs"], out["sampled_pairs"])):
        assert {k: v for k, v in after.items() if k not in LABELS} == {k: v for k, v in before.items() if k not in LABELS}
        assert list(after) == list(before)
        if i == 2:
            assert (after["at"], after["isAt"], after["at_explanation"], after["isAt_explanation"]) == ("FALSE", "TRUE", "why", None)
        else:  # an undecided pair is written with null labels, never dropped
            assert all(after[k] is None for k in LABELS)
    assert len(out["sampled_pairs"]) == len(record["sampled_pairs"])


def test_key_order_and_unknown_fields_are_kept(hipe_records):
    record = hipe_records["en"]
    reordered = {"date": record["date"], "document_id": record["document_id"], "text": record["text"],
                 "x_note": {"b": 1, "a": [1, 2]}, **{k: v for k, v in record.items() if k not in ("date", "document_id", "text")},
                 "x_last": None}
    out = doc_to_record(copy_labels_through(record_to_doc(reordered)))
    assert list(out) == list(reordered)
    assert dumps(out) == dumps(reordered)


def test_non_ascii_is_kept_verbatim(tmp_path, hipe_records):
    path = tmp_path / "out.jsonl"
    write_docs(path, [record_to_doc(hipe_records["fr"])])
    raw = path.read_text(encoding="utf-8")
    assert "Genève" in raw and "\\u00e8" not in raw
    assert raw.endswith("\n") and raw.count("\n") == 1


def test_docs_not_from_hipe_are_refused():
    with pytest.raises(ValueError, match="E030"):
        doc_to_record(spacy.blank("en")("Just text."))


def test_atomic_write_leaves_the_old_file_on_failure(tmp_path, hipe_records):
    path = tmp_path / "out.jsonl"
    path.write_text("old\n")

    def records():
        yield hipe_records["en"]
        raise RuntimeError("model crashed")

    with pytest.raises(RuntimeError):
        write_jsonl(path, records())
    assert path.read_text() == "old\n"
    assert os.listdir(tmp_path) == ["out.jsonl"]  # no temporary file left behind


def test_atomic_write_replaces_and_has_normal_permissions(tmp_path, hipe_records):
    path = tmp_path / "sub" / "out.jsonl"
    assert write_jsonl(path, [hipe_records["en"], hipe_records["de"]]) == 2
    assert [item.record for item in iter_records(path)] == [hipe_records["en"], hipe_records["de"]]
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask
    with AtomicWriter(path, "wb") as out:
        out.write(b"replaced\n")
    assert path.read_bytes() == b"replaced\n"


def test_validation_on_write(tmp_path, hipe_records):
    record = copy.deepcopy(hipe_records["en"])
    record["sampled_pairs"][0]["at"] = "YES"
    with pytest.raises(ValueError, match="not valid HIPE-2026"):
        write_jsonl(tmp_path / "out.jsonl", [record], validate=True)
    assert not (tmp_path / "out.jsonl").exists()
    assert is_valid(hipe_records["en"]) and not is_valid(record)


def test_written_predictions_validate(tmp_path, hipe_records):
    docs = [copy_labels_through(record_to_doc(r)) for r in hipe_records.values()]
    path = tmp_path / "pred.jsonl"
    assert write_docs(path, docs, validate=True) == 3
    assert all(is_valid(item.record) for item in iter_records(path))


@pytest.mark.slow
def test_shared_files_round_trip_byte_for_byte(tmp_path):
    """JSONL → Doc → JSONL on the 9 shared files, gold labels copied through.

    The release writes most lines as ``json.dumps(record, ensure_ascii=False)`` does; a few
    lines use compact separators, which the writer normalises: for those, the output must be
    the same JSON and byte-identical to the standard serialisation.
    """
    files = sorted(SHARED.glob("*/*.jsonl"))
    if not files:
        pytest.skip(f"shared data not found at {SHARED}")
    n_lines = n_verbatim = 0
    for file in files:
        out = tmp_path / file.name
        write_docs(out, (copy_labels_through(doc) for doc in read_docs(file)))
        raw_lines = file.read_bytes().splitlines()
        out_lines = out.read_bytes().splitlines()
        assert len(out_lines) == len(raw_lines)
        for raw, written in zip(raw_lines, out_lines):
            record = json.loads(raw)
            assert written == json.dumps(record, ensure_ascii=False).encode("utf-8")
            assert json.loads(written) == record
            n_lines += 1
            n_verbatim += written == raw
    assert n_lines == 721
    assert n_verbatim == 713  # the other 8 lines use compact separators in the release


def test_dumps_writes_standard_json_only(hipe_records):
    from spacy_dgemma.hipe import dumps

    with pytest.raises(ValueError):
        dumps(dict(hipe_records["en"], score=float("nan")))
    assert json.loads(dumps(hipe_records["de"])) == hipe_records["de"]


def test_atomic_writer_with_a_name_of_255_bytes(tmp_path):
    from spacy_dgemma.util import AtomicWriter

    path = tmp_path / ("é" * 124 + "x.jsonl")  # 255 bytes in UTF-8
    assert len(path.name.encode("utf-8")) == 255
    with AtomicWriter(path) as out:
        out.write("ok\n")
        assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")]  # the temporary name fits too
    assert path.read_text(encoding="utf-8") == "ok\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]


def test_atomic_writer_writes_devices_and_pipes_in_place(tmp_path):
    import stat

    from spacy_dgemma.util import AtomicWriter

    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    try:
        with AtomicWriter(fifo) as out:
            out.write("through the pipe\n")
        assert os.read(reader, 100) == b"through the pipe\n"
    finally:
        os.close(reader)
    assert stat.S_ISFIFO(fifo.stat().st_mode)  # not replaced by a regular file
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pipe"]


@pytest.mark.skipif(not Path("/dev/full").is_char_device(), reason="needs /dev/full")
def test_record_writer_names_the_file_when_writing_fails(tmp_path, hipe_records):
    from spacy_dgemma.errors import InputError

    with pytest.raises(InputError) as full:  # a full disk shows when the buffer is written out
        write_jsonl("/dev/full", [hipe_records["en"]] * 2000)
    assert "E109" in full.value.message and full.value.file == "/dev/full"
    folder = tmp_path / "read-only"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        if os.access(folder, os.W_OK):
            return  # root ignores permissions: nothing more to see
        with pytest.raises(InputError) as refused:
            write_jsonl(folder / "out.jsonl", [hipe_records["en"]])
        assert "E108" in refused.value.message
    finally:
        folder.chmod(0o700)
