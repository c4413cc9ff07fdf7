"""HIPE-2026 mentions as partially annotated recogniser training data (`spacy_dgemma.ner.partial`)."""
import json

import pytest
import spacy
from spacy.tokens import DocBin
from spacy.training import Example

from spacy_dgemma.ner.convert import convert_hipe2022
from spacy_dgemma.ner.partial import is_test_source, merge_mentions, partial_docs, project_mentions
from spacy_dgemma.ner.reader import create_ner_corpus
from spacy_dgemma.tokenizer import TOKENIZER
from tests.ner.test_training import _tsv

TRAIN_SOURCE = "v2.1/letemps/fr/HIPE-2022-v2.1-letemps-train-fr.tsv"
TEST_SOURCE = "v2.1/letemps/fr/HIPE-2022-v2.1-letemps-test-fr.tsv"


def _record(doc_id, text, pairs, source=TRAIN_SOURCE):
    return {
        "document_id": doc_id,
        "language": "fr",
        "source": source,
        "text": text,
        "sampled_pairs": [{"pers_mentions_list": pers, "loc_mentions_list": loc} for pers, loc in pairs],
    }


@pytest.fixture(scope="module")
def nlp():
    return spacy.blank("xx", config={"nlp": {"tokenizer": {"@tokenizers": TOKENIZER}}})


def _ents(doc):
    return [(e.text, e.label_) for e in doc.ents]


def test_mentions_are_projected_longest_first_on_token_boundaries(nlp):
    doc = nlp("M. Poincaré à Paris. Les Parisiens saluent Poincaré, puis l'Allemagne.")
    spans = project_mentions(doc, {"pers": {"M. Poincaré", "Poincaré"}, "loc": {"Paris", "Allemagne"}})
    assert [(s.text, s.label_) for s in spans] == [
        ("M. Poincaré", "pers"), ("Paris", "loc"), ("Poincaré", "pers"), ("Allemagne", "loc"),
    ]


def test_a_string_listed_as_person_and_place_is_left_out(nlp):
    doc = nlp("Washington parle à Washington.")
    assert project_mentions(doc, {"pers": {"Washington"}, "loc": {"Washington"}}) == []


def test_unlisted_tokens_are_missing_not_outside(nlp):
    record = _record("d1", "Le général Foch arrive à Lyon. Jean reste à Berne.", [(["Foch"], ["Lyon"])])
    doc = next(partial_docs(nlp, [record]))
    assert _ents(doc) == [("Foch", "pers"), ("Lyon", "loc")]
    assert [t.ent_iob_ for t in doc if t.text in ("Jean", "Berne", "général")] == ["", "", ""]
    assert doc.has_annotation("SENT_START") and len(list(doc.sents)) == 2
    assert doc.user_data["hipe2022"] == {
        "document_id": "d1", "language": "fr", "dataset": "letemps", "path": TRAIN_SOURCE, "partial": True,
    }


def test_records_of_a_document_are_merged_and_test_files_never_used():
    records = [
        _record("d1", "Foch à Lyon et Metz.", [(["Foch"], ["Lyon"])]),
        _record("d1", "Foch à Lyon et Metz.", [(["Foch"], ["Metz"])]),
        _record("d2", "Joffre à Reims.", [(["Joffre"], ["Reims"])], source=TEST_SOURCE),
        _record("d3", "Pétain à Verdun.", [(["Pétain"], ["Verdun"])]),
    ]
    merged = merge_mentions(records, skip_ids={"d3"})
    assert list(merged) == ["d1"]
    assert merged["d1"]["loc"] == {"Lyon", "Metz"}
    assert is_test_source(TEST_SOURCE) and not is_test_source(TRAIN_SOURCE)


def test_convert_writes_partial_docs_only_for_documents_in_no_tsv_and_not_held_out(tmp_path):
    records = [
        _record("d0", "M. Poincaré est arrivé à Lyon.", [(["M. Poincaré"], ["Lyon"])]),  # in the TSV
        _record("new", "Mr. Smith went to Paris.", [(["Mr. Smith"], ["Paris"])]),
        _record("dev", "Herr Müller fuhr nach Berlin.", [(["Herr Müller"], ["Berlin"])]),
    ]
    stats = convert_hipe2022(
        [_tsv(tmp_path / "tiny.tsv", n_docs=2)], tmp_path / "corpus", heldout_fraction=0.0,
        hold_out_ids={"dev"}, partial_records=records,
    )
    nlp = spacy.blank("xx")
    docs = list(DocBin(store_user_data=True).from_disk(tmp_path / "corpus" / "partial-train.spacy").get_docs(nlp.vocab))
    assert [d.user_data["hipe2022"]["document_id"] for d in docs] == ["new"]
    assert _ents(docs[0]) == [("Mr. Smith", "pers"), ("Paris", "loc")]
    assert stats["partial"]["fr docs"] == 1 and stats["partial"]["fr pers"] == 1


def test_convert_places_mentions_in_glued_words_as_the_recogniser_tokenises(tmp_path):
    # The recogniser trains with split_glued (training/ner.cfg); without it "Napoléon.13" is one
    # token and its mention cannot be placed.
    records = [_record("new", "Victoire contre Napoléon.13 octobre à Leipzig.", [(["Napoléon"], ["Leipzig"])])]
    convert_hipe2022([_tsv(tmp_path / "tiny.tsv", n_docs=1)], tmp_path / "corpus", partial_records=records)
    docs = list(DocBin(store_user_data=True).from_disk(tmp_path / "corpus" / "partial-train.spacy").get_docs(spacy.blank("xx").vocab))
    assert _ents(docs[0]) == [("Napoléon", "pers"), ("Leipzig", "loc")]


def test_reader_adds_the_partial_docs_with_their_missing_tokens(tmp_path, nlp):
    convert_hipe2022(
        [_tsv(tmp_path / "tiny.tsv", n_docs=2)], tmp_path / "corpus", heldout_fraction=0.0,
        partial_records=[_record("new", "Mr. Smith went to Paris with Jones.", [(["Mr. Smith"], ["Paris"])])],
    )
    corpus = tmp_path / "corpus"
    examples = list(create_ner_corpus(corpus / "train.spacy", corpus / "partial-train.spacy")(nlp))
    assert len(examples) == 3
    partial: Example = examples[-1]
    assert _ents(partial.reference) == [("Mr. Smith", "pers"), ("Paris", "loc")]
    assert partial.reference[-2].text == "Jones" and partial.reference[-2].ent_iob == 0
    assert len(list(create_ner_corpus(corpus / "train.spacy")(nlp))) == 2
    with pytest.raises(ValueError, match="E246"):
        create_ner_corpus(corpus / "train.spacy", corpus / "nothing.spacy")


def test_convert_ner_cli_reads_partial_files(tmp_path, hipe_records):
    from typer.testing import CliRunner

    from spacy_dgemma.cli import app

    record = dict(hipe_records["fr"], document_id="new", source=TRAIN_SOURCE)
    data = tmp_path / "silver-train-fr.jsonl"
    data.write_text(json.dumps(record) + "\n", encoding="utf8")
    tsv = _tsv(tmp_path / "tiny.tsv", n_docs=2)
    result = CliRunner().invoke(app, ["ner", "convert", str(tsv), "--output", str(tmp_path / "out"), "--partial", str(data)])
    assert result.exit_code == 0, result.output
    assert "partial: fr docs 1" in result.output
    docs = list(DocBin(store_user_data=True).from_disk(tmp_path / "out" / "partial-train.spacy").get_docs(spacy.blank("xx").vocab))
    mentions = {m for pair in record["sampled_pairs"] for key in ("pers_mentions_list", "loc_mentions_list") for m in pair[key]}
    assert docs[0].ents and {e.text for e in docs[0].ents} <= mentions


def test_convert_ner_cli_names_a_bad_partial_file_and_line(tmp_path):
    from typer.testing import CliRunner

    from spacy_dgemma.cli import app

    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"document_id": "x", "text": 3}\n', encoding="utf8")
    result = CliRunner().invoke(app, ["ner", "convert", str(_tsv(tmp_path / "tiny.tsv", n_docs=1)), "--output", str(tmp_path / "out"), "--partial", str(bad)])
    assert result.exit_code == 2
    assert f"{bad}:1:" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "out").exists()


def test_reader_repeats_the_documents_of_a_language(tmp_path, nlp):
    convert_hipe2022([_tsv(tmp_path / "tiny.tsv", n_docs=2)], tmp_path / "corpus", heldout_fraction=0.0)
    train = tmp_path / "corpus" / "train.spacy"
    once = list(create_ner_corpus(train)(nlp))
    twice = list(create_ner_corpus(train, repeat={"fr": 2, "de": 5})(nlp))
    assert len(once) == 2 and len(twice) == 4  # the tiny file is French
    assert [eg.reference.text for eg in twice] == [once[0].reference.text] * 2 + [once[1].reference.text] * 2
    assert twice[0] is not twice[1]
