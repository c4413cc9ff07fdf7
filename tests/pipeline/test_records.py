"""Relation records on the Doc, candidate pairs and entity grouping (no model involved)."""
import pytest
from spacy.tokens import Doc, DocBin, Span

from spacy_dgemma.candidates.entities import get_entities, make_group_by_surface, normalise_surface, spans_by_entity
from spacy_dgemma.candidates.pairs import make_pair_candidates, mention_distance
from spacy_dgemma.keys import RELATIONS_KEY, RELATIONS_USER_DATA_KEY
from spacy_dgemma.pipeline.records import Relation, relation_to_hipe_pair, relations_to_hipe_pairs
from tests.util import HIPE_RECORDS, build_hipe_doc, strip_labels


@pytest.fixture
def en_doc(blank_nlps):
    return build_hipe_doc(blank_nlps["en"], strip_labels(HIPE_RECORDS["en"]))


def _relation(doc, person_id, place_id, at, is_at, pair_index=None):
    persons, places = get_entities(doc, make_group_by_surface())
    return Relation(
        person_id=person_id,
        place_id=place_id,
        person_spans=persons.get(person_id, []),
        place_spans=places.get(place_id, []),
        at=at,
        is_at=is_at,
        at_explanation=f"at {at}",
        is_at_explanation=f"isAt {is_at}",
        at_scores={"TRUE": 0.7, "PROBABLE": 0.2, "FALSE": 0.1},
        is_at_scores={"TRUE": 0.6, "FALSE": 0.4},
        pair_index=pair_index,
    )


def test_record_round_trip_through_plain_dicts(en_doc):
    rel = _relation(en_doc, "en-smith", "en-london", "TRUE", "TRUE", pair_index=0)
    data = rel.to_dict()
    assert data["person_spans"] == [(en_doc.text.index("Mr. John Smith"), en_doc.text.index("Mr. John Smith") + 14)]
    back = Relation.from_dict(en_doc, data)
    assert back.to_dict() == data
    assert [s.text for s in back.place_spans] == ["LONDON", "London"]


def test_doc_extension_stores_plain_data_and_span_group(en_doc):
    relations = [
        _relation(en_doc, "en-smith", "en-london", "TRUE", "TRUE", 0),
        _relation(en_doc, "en-brown", "en-london", "FALSE", "FALSE", 4),
        _relation(en_doc, "en-brown", "en-bath", "PROBABLE", "FALSE", 3),
    ]
    en_doc._.dgemma_relations = relations
    stored = en_doc.user_data[RELATIONS_USER_DATA_KEY]
    assert isinstance(stored, list) and all(isinstance(d, dict) for d in stored)
    assert [r.to_dict() for r in en_doc._.dgemma_relations] == [r.to_dict() for r in relations]
    # FALSE/FALSE relations are not displayed; each shown relation gives its first mentions.
    group = en_doc.spans[RELATIONS_KEY]
    assert [(s.text, s.label_) for s in group] == [
        ("Mr. John Smith", "at=TRUE isAt=TRUE"),
        ("LONDON", "at=TRUE isAt=TRUE"),
        ("Mrs. Mary Brown", "at=PROBABLE isAt=FALSE"),
        ("Bath", "at=PROBABLE isAt=FALSE"),
    ]


def test_getter_returns_copies(en_doc):
    en_doc._.dgemma_relations = [_relation(en_doc, "en-smith", "en-paris", "TRUE", "FALSE", 1)]
    en_doc._.dgemma_relations[0].at = "FALSE"  # a copy: assign the list back to change it
    assert en_doc._.dgemma_relations[0].at == "TRUE"
    changed = en_doc._.dgemma_relations
    changed[0].at = "FALSE"
    en_doc._.dgemma_relations = changed
    assert en_doc._.dgemma_relations[0].at == "FALSE"


def test_relations_survive_docbin_and_bytes(en_doc, blank_nlps):
    en_doc._.dgemma_relations = [_relation(en_doc, "en-smith", "en-london", "TRUE", "TRUE", 0)]
    data = DocBin(docs=[en_doc], store_user_data=True).to_bytes()
    restored = next(DocBin().from_bytes(data).get_docs(blank_nlps["en"].vocab))
    assert [r.to_dict() for r in restored._.dgemma_relations] == [r.to_dict() for r in en_doc._.dgemma_relations]
    again = Doc(blank_nlps["en"].vocab).from_bytes(en_doc.to_bytes())
    assert again._.dgemma_relations[0].place_spans[1].text == "London"
    assert len(again.spans[RELATIONS_KEY]) == 2


def test_hipe_pairs_keep_input_and_null_for_undecided(en_doc):
    en_doc._.dgemma_relations = [
        _relation(en_doc, "en-brown", "en-bath", "PROBABLE", "FALSE", 3),
        _relation(en_doc, "en-smith", "en-london", "TRUE", "TRUE", 0),
    ]
    pairs = relations_to_hipe_pairs(en_doc)
    assert len(pairs) == 6
    assert (pairs[0]["at"], pairs[0]["isAt"], pairs[0]["at_explanation"]) == ("TRUE", "TRUE", "at TRUE")
    assert (pairs[3]["at"], pairs[3]["isAt"]) == ("PROBABLE", "FALSE")
    assert all(pairs[i]["at"] is None and pairs[i]["isAt"] is None for i in (1, 2, 4, 5))
    assert pairs[0]["loc_wikidata_QID"] == "Q84" and pairs[0]["loc_mentions_list"] == ["LONDON", "London"]


def test_hipe_pair_for_raw_text_relation(blank_nlps):
    doc = blank_nlps["en"]("Smith met Smith in Rome.")
    rel = Relation("person:smith", "place:rome", [doc[0:1], doc[2:3]], [doc[4:5]], "TRUE", "FALSE")
    pair = relation_to_hipe_pair(rel)
    assert pair["pers_mentions_list"] == ["Smith"]  # distinct surface forms
    assert pair["loc_mentions_list"] == ["Rome"]
    assert pair["pers_wikidata_QID"] is None and (pair["at"], pair["isAt"]) == ("TRUE", "FALSE")
    no_spans = Relation("p", "l", person_mentions=["A", "A"], place_mentions=["B"])
    assert relation_to_hipe_pair(no_spans)["pers_mentions_list"] == ["A"]
    doc._.dgemma_relations = [rel]
    assert relations_to_hipe_pairs(doc) == [pair]


# --- entities and candidate pairs -----------------------------------------------------------


def test_normalise_surface():
    assert normalise_surface("  Genève ") == normalise_surface("GENEVE") == "geneve"
    assert normalise_surface("M. Jean-Pierre") == "m jean pierre"


def test_entities_from_span_groups_keep_ids_and_qids(en_doc):
    persons, places = get_entities(en_doc, make_group_by_surface())
    assert set(persons) == {"en-smith", "en-brown"}  # Napoleon is not in the text
    assert [s.text for s in places["en-london"]] == ["LONDON", "London"]
    assert places["en-london"][0].kb_id_ == "Q84"


def test_entities_from_doc_ents_grouped_by_surface(blank_nlps):
    doc = blank_nlps["en"]("Smith saw SMITH in Rome and Paris.")
    doc.ents = [Span(doc, 0, 1, "PER"), Span(doc, 2, 3, "PERSON"), Span(doc, 4, 5, "GPE"), Span(doc, 6, 7, "ORG")]
    persons, places = get_entities(doc, make_group_by_surface())
    assert list(persons) == ["person:smith"] and len(persons["person:smith"]) == 2
    assert list(places) == ["place:rome"]  # ORG is neither
    persons, places = get_entities(doc, make_group_by_surface(), person_labels=["ORG"], place_labels=["PER"])
    assert list(persons) == ["person:paris"] and list(places) == ["place:smith"]


def test_spans_by_entity_sorts_by_position(blank_nlps):
    doc = blank_nlps["en"]("a b c d")
    spans = [Span(doc, 3, 4, span_id="x"), Span(doc, 0, 1, span_id="x"), Span(doc, 1, 2, span_id="y")]
    grouped = spans_by_entity(spans)
    assert [s.start for s in grouped["x"]] == [0, 3] and list(grouped) == ["x", "y"]


def test_candidates_from_hipe_pairs_are_never_capped(en_doc):
    pairs = make_pair_candidates(max_pairs=1)(en_doc)
    assert [p.pair_index for p in pairs] == list(range(6))
    assert pairs[5].person_spans == [] and pairs[5].person_mentions == ["Napoleon Bonaparte"]


def test_candidates_from_ents_closest_first_and_capped(blank_nlps):
    doc = blank_nlps["en"]("Ann went to Rome . Bob stayed far away in a small town called Oslo .")
    doc.ents = [Span(doc, 0, 1, "PER"), Span(doc, 3, 4, "LOC"), Span(doc, 5, 6, "PER"), Span(doc, 14, 15, "LOC")]
    pairs = make_pair_candidates()(doc)
    # Token gaps: Bob–Rome 1 ("."), Ann–Rome 2, Bob–Oslo 8, Ann–Oslo 13.
    assert [(p.person_id, p.place_id, mention_distance(p)) for p in pairs] == [
        ("person:bob", "place:rome", 1),
        ("person:ann", "place:rome", 2),
        ("person:bob", "place:oslo", 8),
        ("person:ann", "place:oslo", 13),
    ]
    assert all(p.pair_index is None and p.person_mentions and p.place_mentions for p in pairs)
    assert len(make_pair_candidates(max_pairs=3)(doc)) == 3
    assert make_pair_candidates()(blank_nlps["en"]("Nobody anywhere.")) == []


def test_mention_distance_unknown_is_large(en_doc):
    pairs = {p.person_id: p for p in make_pair_candidates()(en_doc)}
    assert mention_distance(pairs["en-napoleon"]) >= 10**9


def test_span_group_mentions_without_ids_are_grouped(blank_nlps):
    doc = blank_nlps["en"]("Ann met ANN and Bob in Rome.")
    doc.spans["persons"] = [Span(doc, 0, 1, "person"), Span(doc, 2, 3, "person"), Span(doc, 4, 5, "person", span_id="bob-1")]
    doc.spans["places"] = [Span(doc, 6, 7, "place")]
    persons, places = get_entities(doc, make_group_by_surface())
    assert {k: len(v) for k, v in persons.items()} == {"person:ann": 2, "bob-1": 1}
    assert list(places) == ["place:rome"]
    assert not doc.spans["persons"][0].id_  # the Doc's own spans are untouched
