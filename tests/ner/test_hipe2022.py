"""The HIPE-2022 TSV reader and converter: printed text, line ends, hyphenation, sentences, entities, split."""
import importlib.util
from pathlib import Path

import pytest
import spacy
from spacy.tokens import DocBin

from spacy_dgemma.errors import InputError
from spacy_dgemma.ner.convert import HELDOUT_DEV_DIR, convert_hipe2022, is_heldout
from spacy_dgemma.ner.hipe2022 import printed_text, read_hipe2022, read_hipe2022_docs

HEADER = "TOKEN\tNE-COARSE-LIT\tNE-COARSE-METO\tNE-FINE-LIT\tNE-FINE-METO\tNE-FINE-COMP\tNE-NESTED\tNEL-LIT\tNEL-METO\tMISC"
SHARED = Path(__file__).resolve().parents[2].parent / "shared"
HARNESS = SHARED / "tools" / "ner_eval.py"


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
    path = tmp_path / "HIPE-2022-v2.1-sample-dev-fr.tsv"
    path.write_text("\n".join(lines) + "\n", encoding="utf8")
    return path


def test_read_documents_and_metadata(tsv):
    docs = list(read_hipe2022(tsv))
    assert [d.document_id for d in docs] == ["doc-1", "doc-2"]
    assert docs[0].language == "fr" and docs[1].dataset == "topres19th"
    assert docs[0].tokens[0].no_space_after and docs[0].tokens[1].end_of_line


def test_doc_has_the_printed_text_with_its_hyphenation_line_ends_and_entities(tsv):
    nlp = spacy.blank("xx")
    doc = next(read_hipe2022_docs([tsv], nlp.vocab))
    assert doc.text == "M.\nPoin¬\ncaré est à Paris. La Banque de France\nferme¬\nra. "
    assert doc.text == printed_text(next(read_hipe2022(tsv))).text
    assert [(e.text, e.label_) for e in doc.ents] == [("M.\nPoin¬\ncaré", "pers"), ("Paris", "loc"), ("Banque de France", "org")]
    assert [e.kb_id_ for e in doc.ents] == ["Q1", "", ""]
    assert [s.text for s in doc.sents] == ["M.\nPoin¬\ncaré est à Paris.", "La Banque de France\nferme¬\nra."]
    assert doc.user_data["hipe2022"]["document_id"] == "doc-1"
    # Line breaks are tokens of their own, as spaCy's tokenizer makes them from raw text.
    assert [t.text for t in doc].count("\n") == 4


def test_printed_text_spans_follow_the_tags():
    from spacy_dgemma.ner.hipe2022 import NerDocument, NerToken

    tokens = [NerToken("Herr", "B-pers"), NerToken("Lutz", "I-pers"), NerToken("in", "O"), NerToken("Bern", "I-loc"),
              NerToken("Wien", "B-loc", ("NoSpaceAfter",)), NerToken("Messe", "I-prod")]
    printed = printed_text(NerDocument("d", tokens=tokens))
    assert printed.text == "Herr Lutz in Bern WienMesse "
    # An I- tag after another type starts a new entity; types the map lacks are kept as None.
    assert [(printed.text[s:e], label) for s, e, label in printed.entities] == [
        ("Herr Lutz", "pers"), ("Bern", "loc"), ("Wien", "loc"), ("Messe", None)
    ]


def test_upper_case_types_are_mapped_and_unannotated_types_missing(tsv):
    nlp = spacy.blank("xx")
    doc = list(read_hipe2022_docs([tsv], nlp.vocab))[1]
    assert [(e.text, e.label_) for e in doc.ents] == [("London", "loc"), ("Bridge", "loc")]
    # topres19th marks no persons: capitalised tokens outside places are unknown, not O.
    assert [t.ent_iob_ for t in doc] == ["", "", "O", "B", "B"]


def test_bad_line_names_file_and_line(tmp_path):
    path = tmp_path / "bad.tsv"
    path.write_text(HEADER + "\n# hipe2022:document_id = d\nword\tO\n", encoding="utf8")
    with pytest.raises(InputError, match=r"bad.tsv:3: \[E231\] 2 columns where the header has 10"):
        list(read_hipe2022(path))
    path.write_text("word\tO\n", encoding="utf8")
    with pytest.raises(InputError, match=r"bad.tsv:1: \[E230\]"):
        list(read_hipe2022(path))


def test_heldout_split_is_stable_and_uses_the_shared_helper():
    from spacy_dgemma.util import stable_fraction

    ids = [f"doc-{i}" for i in range(400)]
    held = [i for i in ids if is_heldout(i, 0.25)]
    assert held == [i for i in ids if stable_fraction(i) < 0.25]
    assert 60 < len(held) < 140


def test_convert_writes_docbins_and_the_held_out_dev_documents_as_tsv(tsv, tmp_path):
    out = tmp_path / "out"
    stats = convert_hipe2022([tsv], out, heldout_fraction=0.0)
    assert stats["train"]["fr docs"] == 1 and stats["train"]["en loc"] == 2
    nlp = spacy.blank("xx")
    docs = list(DocBin().from_disk(out / "train.spacy").get_docs(nlp.vocab))
    assert len(docs) == 2 and docs[0].user_data["hipe2022"]["language"] == "fr"
    assert len(list(DocBin().from_disk(out / "train-en.spacy").get_docs(nlp.vocab))) == 1
    assert (out / "heldout.tsv").exists() and not list((out / HELDOUT_DEV_DIR).iterdir())
    # Held out: the header and the document's lines exactly as in the file.
    convert_hipe2022([tsv], out, heldout_fraction=0.0, hold_out_ids={"doc-2"})
    written = (out / HELDOUT_DEV_DIR / tsv.name).read_text(encoding="utf8")
    original = tsv.read_text(encoding="utf8")
    assert written == HEADER + "\n" + original[original.index("# hipe2022:document_id = doc-2"):]


@pytest.mark.skipif(not HARNESS.exists(), reason="../shared is not beside the repo")
def test_shared_files_read_as_the_reference_harness_rebuilds_them():
    spec = importlib.util.spec_from_file_location("ner_eval", HARNESS)
    harness = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(harness)
    from spacy_dgemma.ner.evaluate import gold_entities

    for name in ("HIPE-2022-v2.1-newseye-dev-fr.tsv", "HIPE-2022-v2.1-hipe2020-dev-de.tsv"):
        path = SHARED / "hipe2022-ner" / name
        ours = list(read_hipe2022(path))
        theirs = harness.read_docs(str(path))
        assert len(ours) == len(theirs) > 0
        for document, reference in zip(ours, theirs):
            text, gold = harness.rebuild(reference)
            assert gold_entities(document)[:2] == (text, gold)
    docs = list(read_hipe2022_docs([SHARED / "hipe2022-ner" / "HIPE-2022-v2.1-newseye-dev-fr.tsv"], spacy.blank("xx").vocab))
    assert len(docs) == 34 and {e.label_ for d in docs for e in d.ents} == {"pers", "loc", "org"}


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


@pytest.mark.skipif(not HARNESS.exists(), reason="../shared is not beside the repo")
def test_shared_newseye_de_unannotated_pages_are_found():
    from spacy_dgemma.ner.hipe2022 import is_unannotated

    path = SHARED / "hipe2022-ner" / "HIPE-2022-v2.1-newseye-dev-de.tsv"
    docs = list(read_hipe2022_docs([path], spacy.blank("xx").vocab))
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


def test_places_only_dataset_gives_negative_place_spans_that_survive_sentence_splitting(tsv, tmp_path):
    from spacy_dgemma.ner.hipe2022 import NEGATIVE_SPANS_KEY
    from spacy_dgemma.ner.reader import create_ner_corpus

    nlp = spacy.blank("xx")
    doc = list(read_hipe2022_docs([tsv], nlp.vocab))[1]  # topres19th: "Mr Smith left London Bridge"
    # "Mr" and "Smith" may be persons (missing), but they are no places, alone or together.
    assert [(s.text, s.label_) for s in doc.spans[NEGATIVE_SPANS_KEY]] == [("Mr", "loc"), ("Smith", "loc"), ("Mr Smith", "loc")]
    assert NEGATIVE_SPANS_KEY not in list(read_hipe2022_docs([tsv], nlp.vocab))[0].spans  # hipe2020 marks persons
    rows = [_row("Mr"), _row("Smith"), _row("left"), _row("York", "B-LOC", "NoSpaceAfter"), _row(".", "O", "EndOfSentence"),
            _row("Then"), _row("Lord"), _row("Nelson"), _row("came"), _row("to"), _row("Kent", "B-LOC", "NoSpaceAfter"), _row(".")]
    path = tmp_path / "topres.tsv"
    path.write_text("\n".join([HEADER, *_doc_lines("t2", rows, "topres19th", "en")]) + "\n", encoding="utf8")
    convert_hipe2022([path], tmp_path / "out", heldout_fraction=0.0)
    split = [eg.reference for eg in create_ner_corpus(tmp_path / "out" / "train.spacy", max_length=10)(nlp)]
    assert [d.text for d in split] == ["Mr Smith left York. ", "Then Lord Nelson came to Kent. "]
    assert [s.text for s in split[1].spans[NEGATIVE_SPANS_KEY]] == ["Then", "Lord", "Nelson", "Then Lord Nelson"]
    assert [(e.text, e.label_) for e in split[1].ents] == [("Kent", "loc")]
