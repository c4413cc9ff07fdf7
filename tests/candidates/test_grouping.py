"""Mention grouping for raw text: titles stripped, last names, initials, genitives, stable ids."""
from typing import List

import spacy
from spacy.tokens import Doc, Span
from spacy.util import registry

from spacy_dgemma.candidates.entities import get_entities
from spacy_dgemma.candidates.grouping import make_group_mentions, mention_core

NLP = spacy.blank("xx")


def _spans(doc: Doc, mentions: List[str]) -> List[Span]:
    spans, offset = [], 0
    for mention in mentions:
        start = doc.text.index(mention, offset)
        spans.append(doc.char_span(start, start + len(mention), alignment_mode="expand"))
        offset = start + len(mention)
    return spans


def _group(text: str, mentions: List[str], kind: str = "person", **kwargs) -> List[str]:
    doc = NLP(text)
    return make_group_mentions(**kwargs)(doc, _spans(doc, mentions), kind)


def test_french_president_variants_are_one_person():
    text = "M. Poincaré est arrivé. Le président Poincaré a parlé ; Raymond Poincaré repart. M. Briand reste."
    ids = _group(text, ["M. Poincaré", "président Poincaré", "Raymond Poincaré", "M. Briand"])
    assert ids == ["person:raymond poincare"] * 3 + ["person:briand"]


def test_last_name_initials_and_genitive():
    text = "Admiral Nelson met Horatio Nelson. Nelsons Flotte. J. Smith and John Smith; Mary Smith spoke, then Smith."
    mentions = ["Admiral Nelson", "Horatio Nelson", "Nelsons", "J. Smith", "John Smith", "Mary Smith", "Smith"]
    ids = _group(text, mentions)
    assert ids[:3] == ["person:horatio nelson"] * 3
    assert ids[3] == ids[4] == "person:john smith"
    assert ids[5] == "person:mary smith"
    # An ambiguous last name goes to the person mentioned last before it.
    assert ids[6] == "person:mary smith"


def test_german_titles_and_appositions():
    text = "Herr Reichskanzler von Bülow, der Nachfolger, sprach. Bülow ging. Graf Bülow kam."
    ids = _group(text, ["Herr Reichskanzler von Bülow, der Nachfolger", "Bülow", "Graf Bülow"])
    assert len(set(ids)) == 1 and ids[0] == "person:bulow"


def test_places_articles_prefixes_and_genitive():
    text = "Frankreich und Frankreichs Heer. La ville de Paris et Paris. Lyon."
    ids = _group(text, ["Frankreich", "Frankreichs", "ville de Paris", "Paris", "Lyon"], "place")
    assert ids == ["place:frankreich", "place:frankreich", "place:paris", "place:paris", "place:lyon"]


def test_places_are_not_joined_by_last_word():
    ids = _group("New York and York.", ["New York", "York"], "place")
    assert ids[0] != ids[1]


def test_options_switch_matching_off():
    text = "Raymond Poincaré et Poincaré."
    assert len(set(_group(text, ["Raymond Poincaré", "Poincaré"]))) == 1
    assert len(set(_group(text, ["Raymond Poincaré", "Poincaré"], match_last_names=False))) == 2
    # Custom titles replace the default list.
    assert mention_core("Doktor Faust", {"doktor"}) == ["faust"]
    assert _group("Kommissar Maigret.", ["Kommissar Maigret"], person_titles=["kommissar"]) == ["person:maigret"]


def test_ids_are_stable_and_independent_of_order():
    text = "Poincaré. M. Raymond Poincaré. Poincaré."
    first = _group(text, ["Poincaré", "M. Raymond Poincaré", "Poincaré."[:-1]])
    assert first == _group(text, ["Poincaré", "M. Raymond Poincaré", "Poincaré"])
    assert set(first) == {"person:raymond poincare"}


def test_empty_and_registered():
    assert make_group_mentions()(NLP(""), [], "person") == []
    grouper = registry.misc.get("spacy_dgemma.group_mentions.v1")()
    doc = NLP("M. Poincaré à Paris, puis Poincaré à Lyon.")
    labels = {"Poincaré": "pers", "Paris": "loc", "Lyon": "loc"}
    doc.ents = [Span(doc, t.i, t.i + 1, label=labels[t.text]) for t in doc if t.text in labels]
    persons, places = get_entities(doc, grouper)
    assert list(persons) == ["person:poincare"] and len(persons["person:poincare"]) == 2
    assert sorted(places) == ["place:lyon", "place:paris"]


def test_abbreviations_and_ocr_slips():
    text = "Die Schweiz und die Schw. Bundesbahnen; Schwciz. Wien und Bern."
    ids = _group(text, ["Schweiz", "Schw.", "Schwciz", "Wien", "Bern"], "place")
    assert ids[:3] == ["place:schweiz"] * 3
    assert ids[3] != ids[4]
    assert len(set(_group(text, ["Schweiz", "Schwciz"], "place", match_ocr_variants=False))) == 2


def test_grouping_scores_against_links():
    from spacy_dgemma.ner.evaluate import grouping_scores

    doc = NLP("M. Poincaré et Poincaré ; Briand.")
    spans = [doc[0:2], doc[3:4], doc[5:6]]
    doc.ents = [Span(doc, s.start, s.end, label="pers", kb_id=q) for s, q in zip(spans, ["Q1", "Q1", "Q2"])]
    assert grouping_scores([doc], make_group_mentions())["f"] == 1.0
    surface = registry.misc.get("spacy_dgemma.group_by_surface.v1")()
    assert grouping_scores([doc], surface)["r"] == 0.0


def test_a_name_hyphenated_at_a_line_end_is_grouped_with_its_one_line_form():
    nlp = spacy.blank("de")
    doc = nlp("Frank¬\nreich und Frankreich")
    spans = [doc.char_span(0, 12), doc.char_span(17, 27)]
    assert [s.text for s in spans] == ["Frank¬\nreich", "Frankreich"]
    for grouper in (make_group_mentions(), registry.misc.get("spacy_dgemma.group_by_surface.v1")()):
        assert grouper(doc, spans, "place") == ["place:frankreich", "place:frankreich"]
