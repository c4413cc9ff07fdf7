"""The dev split and the HipeCorpus.v1 reader."""
import copy
import json
from pathlib import Path

import pytest
import spacy
from spacy.util import registry

from spacy_dgemma.hipe import iter_records, record_to_doc, write_docbin
from spacy_dgemma.hipe.corpus import HipeCorpus, dev_ids, make_predicted, split_documents
from spacy_dgemma.keys import PERSONS_KEY, PLACES_KEY
from spacy_dgemma.pipeline.records import Relation
from spacy_dgemma.util import stable_key

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "hipe2026"


def write_lines(path, records):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    return path


def numbered(record, n, prefix="doc"):
    """`n` copies of a record with distinct document ids."""
    copies = []
    for i in range(n):
        r = copy.deepcopy(record)
        r["document_id"] = f"{prefix}-{record['language']}-{i:03d}"
        copies.append(r)
    return copies


def test_dev_ids_are_stable_and_a_quarter():
    ids = [f"doc-{i}" for i in range(35)]
    dev = dev_ids(ids)
    assert len(dev) == 9  # round(35 / 4)
    assert dev == dev_ids(reversed(ids)) == dev_ids(ids + ids[:3])
    assert dev == sorted(ids, key=stable_key)[:9]
    assert len(dev_ids([f"doc-{i}" for i in range(34)])) == 9  # 8.5 rounds up
    assert dev_ids([]) == [] and dev_ids(ids, 0.0) == []


def test_split_documents(tmp_path, hipe_records):
    gold_dir, silver_dir, out = tmp_path / "gold", tmp_path / "sandbox", tmp_path / "corpus"
    gold = {lang: numbered(hipe_records[lang], 8) for lang in ("en", "de")}
    write_lines(gold_dir / "train-en.jsonl", gold["en"])
    write_lines(gold_dir / "train-de.jsonl", gold["de"])
    # silver train: 3 new documents and 2 that are also in gold train (left out)
    silver_train = numbered(hipe_records["en"], 3, "silver") + gold["en"][:2]
    write_lines(silver_dir / "en-train.jsonl", silver_train)
    write_lines(silver_dir / "en-dev.jsonl", numbered(hipe_records["en"], 2, "silverdev"))
    summary = split_documents(gold_dir, silver_dir, out)
    names = {p.name: n for p, n in summary.files.items()}
    assert names == {
        "gold-train-en.jsonl": 6, "gold-dev-en.jsonl": 2, "gold-train-de.jsonl": 6, "gold-dev-de.jsonl": 2,
        "silver-train-en.jsonl": 3, "silver-dev-en.jsonl": 2,
    }  # no empty silver files for German
    assert summary.n_silver_excluded == 2
    read = lambda name: [item.record for item in iter_records(out / name)]  # noqa: E731
    dev_en = read("gold-dev-en.jsonl")
    assert {r["document_id"] for r in dev_en} == set(dev_ids(r["document_id"] for r in gold["en"]))
    # input order is kept and records are written as read
    train_en = read("gold-train-en.jsonl")
    assert train_en == [r for r in gold["en"] if r["document_id"] not in {d["document_id"] for d in dev_en}]
    assert all(r["document_id"].startswith("silver-") for r in read("silver-train-en.jsonl"))
    # the same split again: the same files
    before = {p: p.read_bytes() for p in out.iterdir()}
    split_documents(gold_dir, silver_dir, out)
    assert {p: p.read_bytes() for p in out.iterdir()} == before


@pytest.mark.slow
def test_split_of_the_shared_data(tmp_path):
    if not (SHARED / "newspapers").exists():
        pytest.skip(f"shared data not found at {SHARED}")
    summary = split_documents(SHARED / "newspapers", SHARED / "sandbox", tmp_path)
    names = {p.name: n for p, n in summary.files.items()}
    assert {names[f"gold-dev-{lang}.jsonl"] for lang in ("de", "en", "fr")} == {9}
    assert names["gold-train-de.jsonl"] == 25 and names["gold-train-en.jsonl"] == 26
    assert summary.n_silver_excluded == 81
    assert sum(n for name, n in names.items() if name.startswith("silver-")) == 617 - 81


def labelled_doc(record):
    doc = record_to_doc(record)
    doc._.dgemma_relations = [Relation(p["pers_entity_id"], p["loc_entity_id"], at=p["at"], is_at=p["isAt"], pair_index=i) for i, p in enumerate(doc._.dgemma_hipe_pairs)]
    return doc


def test_make_predicted_hides_labels_only(hipe_records):
    reference = labelled_doc(hipe_records["en"])
    predicted = make_predicted(reference)
    assert predicted.text == reference.text and [t.text for t in predicted] == [t.text for t in reference]
    for key in (PERSONS_KEY, PLACES_KEY):
        assert [(s.start, s.end, s.id_, s.kb_id_) for s in predicted.spans[key]] == [(s.start, s.end, s.id_, s.kb_id_) for s in reference.spans[key]]
    assert predicted._.dgemma_hipe == reference._.dgemma_hipe
    assert predicted._.dgemma_unaligned == reference._.dgemma_unaligned
    assert predicted._.dgemma_relations == []
    for gold, pair in zip(reference._.dgemma_hipe_pairs, predicted._.dgemma_hipe_pairs):
        assert all(pair[k] is None for k in ("at", "isAt", "at_explanation", "isAt_explanation"))
        assert {k: v for k, v in pair.items() if k not in ("at", "isAt")} == {k: v for k, v in gold.items() if k not in ("at", "isAt")}
    assert reference._.dgemma_hipe_pairs[0]["at"] == "TRUE"  # the reference keeps its labels


@pytest.mark.parametrize("suffix", [".jsonl", ".spacy"])
def test_hipe_corpus_reads_jsonl_and_docbin(tmp_path, hipe_records, suffix):
    records = [hipe_records[lang] for lang in ("en", "de", "fr")]
    path = tmp_path / f"train{suffix}"
    if suffix == ".jsonl":
        write_lines(path, records)
    else:
        write_docbin(path, [record_to_doc(r) for r in records])
    nlp = spacy.blank("xx")
    reader = registry.readers.get("spacy_dgemma.HipeCorpus.v1")(path)
    examples = list(reader(nlp))
    assert len(examples) == 3
    for eg, record in zip(examples, records):
        assert eg.reference.vocab is nlp.vocab and eg.predicted.vocab is nlp.vocab
        assert eg.reference._.dgemma_hipe_pairs == record["sampled_pairs"]
        assert all(p["at"] is None and p["isAt"] is None for p in eg.predicted._.dgemma_hipe_pairs)
        assert len(eg.predicted.spans[PERSONS_KEY]) == len(eg.reference.spans[PERSONS_KEY]) > 0
        assert eg.predicted._.dgemma_hipe["document_id"] == record["document_id"]
    assert len(list(HipeCorpus(path, limit=2)(nlp))) == 2
    # a folder is read too
    assert len(list(HipeCorpus(tmp_path)(nlp))) == 3


def test_hipe_corpus_in_nlp_evaluate(tmp_path, hipe_records):
    path = write_lines(tmp_path / "dev.jsonl", [hipe_records[lang] for lang in ("en", "de")])
    nlp = spacy.blank("xx")
    nlp.add_pipe("dgemma_relations")
    scores = nlp.evaluate(list(HipeCorpus(path)(nlp)))
    assert 0.0 <= scores["rel_score"] <= 1.0
    assert set(scores["rel_per_lang"]) == {"en", "de"}


def test_hipe_corpus_needs_a_path():
    with pytest.raises(ValueError, match="E063.*needs a path"):
        HipeCorpus(None)
