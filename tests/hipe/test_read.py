"""Reading HIPE-2026 JSONL into Docs: metadata, pairs, mention spans, tokenizers, DocBin."""
import copy
import json
import logging

import pytest
import spacy
from spacy.vocab import Vocab

from spacy_dgemma.hipe import (
    AlignmentReport,
    ReadStats,
    expand_paths,
    iter_records,
    read_docbin,
    read_docs,
    record_to_doc,
    tokenizer_language,
    write_docbin,
)
from spacy_dgemma.keys import PERSONS_KEY, PLACES_KEY
from spacy_dgemma.pipeline.records import Relation


def write_lines(path, records):
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    return path


def test_metadata_and_pairs_are_kept(hipe_records):
    record = hipe_records["en"]
    record["extra_field"] = {"kept": True}
    doc = record_to_doc(record)
    assert doc.text == record["text"]
    assert doc._.dgemma_hipe == {k: v for k, v in record.items() if k not in ("text", "sampled_pairs")}
    assert doc._.dgemma_hipe_pairs == record["sampled_pairs"]
    # the Doc owns its copy: changing the record afterwards does not change the Doc
    record["sampled_pairs"][0]["at"] = "FALSE"
    record["media"]["publication_title"] = "Other"
    assert doc._.dgemma_hipe_pairs[0]["at"] == "TRUE"
    assert doc._.dgemma_hipe["media"]["publication_title"] == "Test Gazette"


def test_one_span_per_mention_occurrence(hipe_records):
    doc = record_to_doc(hipe_records["en"])
    persons, places = doc.spans[PERSONS_KEY], doc.spans[PLACES_KEY]
    london = [s for s in places if s.id_ == "en-london"]
    # "LONDON" (dateline) and "London": two surface forms, one occurrence each
    assert [s.text for s in london] == ["LONDON", "London"]
    assert {s.kb_id_ for s in london} == {"Q84"}
    assert {s.label_ for s in places} == {"place"} and {s.label_ for s in persons} == {"person"}
    paris = [s for s in places if s.id_ == "en-paris"]
    assert [s.text for s in paris] == ["Paris"] and paris[0].kb_id_ == "Q90"
    dublin = [s for s in places if s.id_ == "en-dublin"]
    assert dublin[0].kb_id_ == ""
    assert [s.text for s in persons if s.id_ == "en-smith"] == ["Mr. John Smith"]


def test_unaligned_mentions_are_reported_not_dropped(hipe_records, caplog):
    report = AlignmentReport()
    with caplog.at_level(logging.WARNING, logger="spacy_dgemma"):
        doc = record_to_doc(hipe_records["en"], report=report)
    assert doc._.dgemma_unaligned == [{"entity_id": "en-napoleon", "mention": "Napoleon Bonaparte", "kind": "person"}]
    assert "W001" in caplog.text and "Napoleon Bonaparte" in caplog.text
    assert report.unaligned == [(hipe_records["en"]["document_id"], "person", "en-napoleon", "Napoleon Bonaparte")]
    # the pair of the unaligned mention is still one of the Doc's pairs
    assert any(p["pers_entity_id"] == "en-napoleon" for p in doc._.dgemma_hipe_pairs)
    assert report.n_docs == 1 and report.n_aligned == report.n_mentions - 1


def test_offsets_snap_to_token_boundaries(hipe_records):
    record = hipe_records["en"]
    record["text"] = "The Parisians welcomed Mr. John Smith."
    record["sampled_pairs"] = [dict(record["sampled_pairs"][1], loc_mentions_list=["Paris"])]
    doc = record_to_doc(record)
    assert [s.text for s in doc.spans[PLACES_KEY]] == ["Parisians"]


def test_overlapping_occurrences_are_kept(hipe_records):
    record = hipe_records["en"]
    pair = dict(record["sampled_pairs"][0], pers_mentions_list=["Mr. John Smith", "John Smith"])
    record["sampled_pairs"] = [pair]
    doc = record_to_doc(record)
    assert [s.text for s in doc.spans[PERSONS_KEY]] == ["Mr. John Smith", "John Smith"]


@pytest.mark.parametrize("language,expected", [("en", "en"), ("de", "de"), ("fr", "fr"), ("it", "xx"), ("EN", "en"), (None, "xx")])
def test_tokenizer_by_language(language, expected):
    assert tokenizer_language(language) == expected


def test_doc_language_follows_the_record(hipe_records):
    record = hipe_records["de"]
    assert record_to_doc(record).lang_ == "de"
    record["language"] = "lb"
    assert record_to_doc(record).lang_ == "xx"


def test_callers_can_pass_nlp_or_vocab(tmp_path, hipe_records):
    path = write_lines(tmp_path / "in.jsonl", [hipe_records["en"], hipe_records["de"]])
    nlp = spacy.blank("xx")
    docs = list(read_docs(path, nlp=nlp))
    assert all(doc.vocab is nlp.vocab for doc in docs)
    vocab = Vocab()
    docs = list(read_docs(path, vocab=vocab))
    assert all(doc.vocab is vocab for doc in docs)
    # still tokenized by their language
    assert [t.text for t in docs[1]] == [t.text for t in spacy.blank("de")(hipe_records["de"]["text"])]
    assert docs[1].spans[PERSONS_KEY][0].text == "Herr Karl Müller"


def test_folders_are_streamed_in_order(tmp_path, hipe_records):
    folder = tmp_path / "data"
    folder.mkdir()
    write_lines(folder / "a.jsonl", [hipe_records["en"]])
    write_lines(folder / "b.jsonl", [hipe_records["de"], hipe_records["fr"]])
    (folder / "notes.txt").write_text("not data")
    assert [p.name for p in expand_paths(folder)] == ["a.jsonl", "b.jsonl"]
    stats = ReadStats()
    stream = read_docs(folder, stats=stats)
    assert next(stream)._.dgemma_hipe["language"] == "en"
    assert [doc._.dgemma_hipe["language"] for doc in stream] == ["de", "fr"]
    assert stats.n_docs == 3 and stats.skipped == []


def test_iter_records_gives_file_and_line(tmp_path, hipe_records):
    path = tmp_path / "in.jsonl"
    path.write_text("\n" + json.dumps(hipe_records["en"]) + "\n\n" + json.dumps(hipe_records["de"]) + "\n", encoding="utf-8")
    items = list(iter_records(path))
    assert [(item.file, item.line) for item in items] == [(path, 2), (path, 4)]
    assert items[0].record == hipe_records["en"]


def test_record_without_pairs(hipe_records):
    record = hipe_records["fr"]
    record["sampled_pairs"] = []
    doc = record_to_doc(record)
    assert doc._.dgemma_hipe_pairs == [] and len(doc.spans[PERSONS_KEY]) == 0 and doc._.dgemma_unaligned == []


def test_docbin_keeps_everything(tmp_path, hipe_records):
    docs = [record_to_doc(hipe_records[lang]) for lang in ("en", "de", "fr")]
    docs[0]._.dgemma_relations = [Relation("en-smith", "en-london", [docs[0].spans[PERSONS_KEY][0]], [], at="TRUE", is_at="TRUE", pair_index=0)]
    path = tmp_path / "docs.spacy"
    assert write_docbin(path, docs) == 3
    loaded = list(read_docbin(path))
    for before, after in zip(docs, loaded):
        assert after.text == before.text
        assert after._.dgemma_hipe == before._.dgemma_hipe
        assert after._.dgemma_hipe_pairs == before._.dgemma_hipe_pairs
        assert after._.dgemma_unaligned == before._.dgemma_unaligned
        for key in (PERSONS_KEY, PLACES_KEY):
            spans = lambda d: [(s.start, s.end, s.label_, s.id_, s.kb_id_) for s in d.spans[key]]  # noqa: E731
            assert spans(after) == spans(before)
    assert [r.to_dict() for r in loaded[0]._.dgemma_relations] == [r.to_dict() for r in docs[0]._.dgemma_relations]


def test_input_records_are_not_modified(hipe_records):
    original = copy.deepcopy(hipe_records["en"])
    record_to_doc(hipe_records["en"])
    assert hipe_records["en"] == original
