"""Relation records on the Doc: plain data, JSON, DocBin, the span group, HIPE pairs (no model involved)."""
import json

import pytest
from spacy.tokens import Doc, DocBin

from spacy_dgemma.candidates.entities import get_entities, make_group_by_surface
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
    assert data["person_spans"] == [[en_doc.text.index("Mr. John Smith"), en_doc.text.index("Mr. John Smith") + 14]]
    back = Relation.from_dict(en_doc, data)
    assert back.to_dict() == data
    assert json.loads(json.dumps(data)) == data  # plain and JSON-ready
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
    # Scores per span, as SpanCategorizer keeps them (the product of the two labels' scores), and
    # the person–place links: [person span, place span, relation index].
    assert group.attrs["scores"] == pytest.approx([0.42, 0.42, 0.08, 0.08])
    assert group.attrs["pairs"] == [[0, 1, 0], [2, 3, 2]]


def test_span_group_links_a_relation_with_an_unaligned_mention(en_doc):
    en_doc._.dgemma_relations = [_relation(en_doc, "en-napoleon", "en-paris", "TRUE", "FALSE", 5)]
    group = en_doc.spans[RELATIONS_KEY]
    assert [s.text for s in group] == ["Paris"] and group.attrs["pairs"] == [[None, 0, 0]]


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
    assert restored._.dgemma_relations_data == en_doc._.dgemma_relations_data
    assert restored.spans[RELATIONS_KEY].attrs == en_doc.spans[RELATIONS_KEY].attrs
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


def test_relations_round_trip_through_doc_to_json(en_doc, blank_nlps):
    en_doc._.dgemma_relations = [
        _relation(en_doc, "en-smith", "en-london", "TRUE", "TRUE", 0),
        _relation(en_doc, "en-napoleon", "en-paris", "FALSE", "FALSE", 5),
    ]
    with pytest.raises(ValueError, match="E107"):  # the objects are not JSON: use the data extension
        en_doc.to_json(underscore=["dgemma_relations"])
    text = json.dumps(en_doc.to_json(underscore=["dgemma_relations_data"]))
    restored = Doc(blank_nlps["en"].vocab).from_json(json.loads(text))
    assert [r.to_dict() for r in restored._.dgemma_relations] == [r.to_dict() for r in en_doc._.dgemma_relations]
    assert [s.text for s in restored._.dgemma_relations[0].place_spans] == ["LONDON", "London"]
    assert restored.spans[RELATIONS_KEY].attrs == en_doc.spans[RELATIONS_KEY].attrs


def test_relations_data_setter_rejects_other_values(en_doc):
    with pytest.raises(ValueError, match="E065"):
        en_doc._.dgemma_relations_data = {"person_id": "p"}
