"""The HIPE-2022 TSV reader and converter: text, hyphenation, newlines, sentences, entities, split."""
from pathlib import Path

import pytest
import spacy
from spacy.tokens import DocBin
from spacy.training import Example
from spacy.util import registry

from spacy_dgemma.ner.convert import convert_hipe2022, is_heldout
from spacy_dgemma.ner.evaluate import evaluate_ner
from spacy_dgemma.ner.hipe2022 import Hipe2022FormatError, read_docs, read_hipe2022

HEADER = "TOKEN\tNE-COARSE-LIT\tNE-COARSE-METO\tNE-FINE-LIT\tNE-FINE-METO\tNE-FINE-COMP\tNE-NESTED\tNEL-LIT\tNEL-METO\tMISC"
SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "hipe2022-ner"


def _row(token: str, tag: str = "O", misc: str = "_", link: str = "_") -> str:
    return "\t".join([token, tag, "O", "O", "O", "O", "O", link, "_", misc])


def _doc_lines(doc_id: str, rows, dataset: str = "hipe2020", lang: str = "fr"):
    return [
        f"# hipe2022:document_id = {doc_id}",
        f"# hipe2022:language = {lang}",
        f"# hipe2022:dataset = {dataset}",
        *rows,
        "",
    ]


@pytest.fixture
def tsv(tmp_path):
    rows = [
        _row("M", "B-pers", "NoSpaceAfter", "Q1"),
        _row(".", "I-pers", "EndOfLine"),
        _row("Poin", "I-pers", "NoSpaceAfter"),
        _row("¬", "I-pers", "EndOfLine"),
        _row("caré", "I-pers"),
        _row("est"),
        _row("à"),
        _row("Paris", "B-loc", "NoSpaceAfter"),
        _row(".", "O", "EndOfSentence"),
        _row("La"),
        _row("Banque", "B-org"),
        _row("de", "I-org"),
        _row("France", "I-org", "EndOfLine"),
        _row("ferme¬", "O", "NoSpaceAfter|EndOfLine"),
        _row("ra", "O", "NoSpaceAfter"),
        _row(".", "O", "EndOfSentence"),
    ]
    rows2 = [_row("Mr"), _row("Smith"), _row("left"), _row("London", "B-LOC"), _row("Bridge", "B-BUILDING")]
    lines = [HEADER, *_doc_lines("doc-1", rows), *_doc_lines("doc-2", rows2, "topres19th", "en")]
    path = tmp_path / "HIPE-2022-test-sample.tsv"
    path.write_text("\n".join(lines) + "\n", encoding="utf8")
    return path


def test_read_documents_and_metadata(tsv):
    docs = list(read_hipe2022(tsv))
    assert [d.document_id for d in docs] == ["doc-1", "doc-2"]
    assert docs[0].language == "fr" and docs[1].dataset == "topres19th"
    assert docs[0].tokens[0].no_space_after and docs[0].tokens[1].end_of_line


def test_doc_text_hyphenation_newlines_and_entities(tsv):
    nlp = spacy.blank("xx")
    doc = next(read_docs([tsv], nlp.vocab))
    assert doc.text == "M.\nPoincaré est à Paris. La Banque de France\nfermera."
    assert [(e.text, e.label_) for e in doc.ents] == [("M.\nPoincaré", "pers"), ("Paris", "loc"), ("Banque de France", "org")]
    assert [e.kb_id_ for e in doc.ents] == ["Q1", "", ""]
    assert [s.text for s in doc.sents] == ["M.\nPoincaré est à Paris.", "La Banque de France\nfermera."]
    assert doc.user_data["hipe2022"]["document_id"] == "doc-1"
    # Newlines are tokens of their own, as spaCy's tokenizer makes them from raw text.
    assert [t.text for t in doc].count("\n") == [t.text for t in nlp(doc.text)].count("\n") == 2


def test_upper_case_types_are_mapped_and_unannotated_types_missing(tsv):
    nlp = spacy.blank("xx")
    doc = list(read_docs([tsv], nlp.vocab))[1]
    assert [(e.text, e.label_) for e in doc.ents] == [("London", "loc"), ("Bridge", "loc")]
    # topres19th marks no persons: capitalised tokens outside places are unknown, not O.
    assert [t.ent_iob_ for t in doc] == ["", "", "O", "B", "B"]


def test_rejoin_can_be_switched_off(tsv):
    doc = next(read_docs([tsv], spacy.blank("xx").vocab, rejoin_hyphens=False))
    assert "Poin¬" in doc.text.replace("\n", "") or "¬" in doc.text


def test_bad_line_names_file_and_line(tmp_path):
    path = tmp_path / "bad.tsv"
    path.write_text(HEADER + "\n# hipe2022:document_id = d\nword\tO\n", encoding="utf8")
    with pytest.raises(Hipe2022FormatError, match=r"bad.tsv:3: 2 columns"):
        list(read_hipe2022(path))


def test_heldout_split_is_stable():
    ids = [f"doc-{i}" for i in range(400)]
    held = [i for i in ids if is_heldout(i, 0.25)]
    assert held == [i for i in ids if is_heldout(i, 0.25)]
    assert 60 < len(held) < 140


def test_convert_writes_docbins(tsv, tmp_path):
    out = tmp_path / "out"
    stats = convert_hipe2022([tsv], out, heldout_fraction=0.0)
    assert stats["train"]["fr docs"] == 1 and stats["train"]["en loc"] == 2
    nlp = spacy.blank("xx")
    docs = list(DocBin().from_disk(out / "train.spacy").get_docs(nlp.vocab))
    assert len(docs) == 2 and docs[0].user_data["hipe2022"]["language"] == "fr"
    assert len(list(DocBin().from_disk(out / "train-en.spacy").get_docs(nlp.vocab))) == 1
    assert (out / "heldout.tsv").exists()


@pytest.mark.skipif(not SHARED.exists(), reason="../shared/hipe2022-ner is not beside the repo")
def test_shared_file_reads_cleanly():
    path = SHARED / "HIPE-2022-v2.1-newseye-dev-fr.tsv"
    docs = list(read_docs([path], spacy.blank("xx").vocab))
    assert len(docs) == 34
    assert all("¬" not in d.text for d in docs)
    labels = {e.label_ for d in docs for e in d.ents}
    assert labels == {"pers", "loc", "org"}


def test_newseye_glued_line_ends_become_newlines(tmp_path):
    rows = [_row("gestern", "O", "NoSpaceAfter"), _row("vor"), _row("Jahrgang", "O", "NoSpaceAfter"),
            _row(".", "O", "NoSpaceAfter"), _row("Samstag", "B-PER", "NoSpaceAfter"), _row(","), _row("1", "O", "NoSpaceAfter"),
            _row(".", "O", "NoSpaceAfter"), _row("000")]
    path = tmp_path / "newseye.tsv"
    path.write_text("\n".join([HEADER, *_doc_lines("n1", rows, "newseye", "de")]) + "\n", encoding="utf8")
    doc = next(read_docs([path], spacy.blank("xx").vocab))
    assert doc.text == "gestern\nvor Jahrgang.\nSamstag, 1.000"
    other = next(read_docs([path], spacy.blank("xx").vocab, glued_line_ends=()))
    assert other.text == "gesternvor Jahrgang.Samstag, 1.000"


def test_long_documents_without_any_tag_are_left_out(tmp_path):
    # A 1,200-token page without a single tag is unannotated, not name-free; a short untagged
    # document and a long one with only an org tag are kept.
    untagged_long = [_row(f"Wort{i}") for i in range(1200)]
    untagged_short = [_row("Rien"), _row("ici"), _row(".", "O", "EndOfSentence")]
    org_only = [_row("Banque", "B-org")] + [_row(f"mot{i}") for i in range(1199)]
    lines = [
        HEADER,
        *_doc_lines("page-empty", untagged_long, "newseye", "de"),
        *_doc_lines("short-empty", untagged_short),
        *_doc_lines("org-only", org_only),
    ]
    path = tmp_path / "HIPE-2022-unannotated.tsv"
    path.write_text("\n".join(lines) + "\n", encoding="utf8")
    out = tmp_path / "out"
    stats = convert_hipe2022([path], out, heldout_fraction=0.0)
    assert stats["train"]["de docs"] == 0 and stats["train"]["fr docs"] == 2
    assert (out / "unannotated.tsv").read_text(encoding="utf8") == f"{path.name}\tpage-empty\n"
    kept = convert_hipe2022([path], tmp_path / "all", heldout_fraction=0.0, skip_unannotated=False)
    assert kept["train"]["de docs"] == 1


@pytest.mark.skipif(not SHARED.exists(), reason="../shared/hipe2022-ner is not beside the repo")
def test_shared_newseye_de_unannotated_pages_are_found():
    from spacy_dgemma.ner.hipe2022 import is_unannotated

    path = SHARED / "HIPE-2022-v2.1-newseye-dev-de.tsv"
    docs = list(read_docs([path], spacy.blank("xx").vocab))
    empty = sorted(d.user_data["hipe2022"]["document_id"] for d in docs if is_unannotated(d))
    assert empty == ["dev_de_2", "dev_de_3", "dev_de_4", "dev_de_5", "dev_de_9"]


def test_convert_holds_out_given_document_ids(tsv, tmp_path):
    everything = convert_hipe2022([tsv], tmp_path / "all", heldout_fraction=0.0)
    nlp = spacy.blank("xx")
    first_id = next(DocBin().from_disk(tmp_path / "all" / "train.spacy").get_docs(nlp.vocab)).user_data["hipe2022"]["document_id"]
    stats = convert_hipe2022([tsv], tmp_path / "out", heldout_fraction=0.0, hold_out_ids={first_id})
    assert sum(v for k, v in stats["heldout"].items() if k.endswith(" docs")) == 1
    assert sum(v for k, v in stats["train"].items() if k.endswith(" docs")) == sum(
        v for k, v in everything["train"].items() if k.endswith(" docs")
    ) - 1
    assert first_id in (tmp_path / "out" / "heldout.tsv").read_text(encoding="utf8")


def test_only_persons_and_places_are_scored(tsv):
    """An organisation, gold or predicted, is neither a hit nor a miss; a place predicted over
    it is a false positive; the training scorer reports the same numbers."""
    nlp = spacy.blank("xx")
    gold = next(read_docs([tsv], nlp.vocab))
    ruler = nlp.add_pipe("entity_ruler")
    ruler.add_patterns([
        {"label": "pers", "pattern": "M.\nPoincaré"},
        {"label": "loc", "pattern": "Paris"},
        {"label": "loc", "pattern": "Banque de France"},
        {"label": "org", "pattern": "fermera"},
    ])
    scores = evaluate_ner(nlp, [gold])["all"]
    assert scores["n_gold"] == 2 and scores["r"] == 1.0 and scores["p"] == pytest.approx(2 / 3)
    assert "org_f" not in scores
    scorer = registry.scorers.get("spacy_dgemma.ner_scorer.v1")()
    trained = scorer([Example(nlp(gold.text), gold)])
    assert trained["ents_p"] == pytest.approx(2 / 3) and set(trained["ents_per_type"]) == {"pers", "loc"}
