"""Persons and places on a Doc, entities, candidate pairs, and what the generator says when it finds none."""
import itertools
import random
import time
import warnings

import pytest
import spacy
from spacy.tokens import Span

from spacy_dgemma.candidates.entities import get_entities, make_group_by_surface, normalise_surface, spans_by_entity
from spacy_dgemma.candidates.pairs import ALL_COUPLES_UP_TO, make_pair_candidates, mention_distance, mention_gap, nearest_mentions
from tests.util import HIPE_RECORDS, build_hipe_doc, strip_labels


@pytest.fixture
def en_doc(blank_nlps):
    return build_hipe_doc(blank_nlps["en"], strip_labels(HIPE_RECORDS["en"]))



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


def test_normalise_surface_options():
    assert normalise_surface("Né à Genève, l'an 1900.", keep_accents=True, keep="'’.-") == "né à genève l'an 1900."
    assert normalise_surface("Né à Genève, l'an 1900.") == "ne a geneve l an 1900"


def test_nearest_mentions_gap_in_tokens_or_words_and_ranked(blank_nlps):
    doc = blank_nlps["en"]("Ann , , Rome . Bob in Oslo")
    ann, rome, bob, oslo = doc[0:1], doc[3:4], doc[5:6], doc[7:8]
    assert mention_gap(ann, rome) == mention_gap(rome, ann) == 2
    assert mention_gap(ann, doc[0:2]) == 0  # overlapping
    words = [0] + list(itertools.accumulate(not t.is_punct for t in doc))
    assert mention_gap(ann, rome, words) == 0  # only punctuation between them
    assert nearest_mentions([ann, bob], [rome, oslo])[:2] == (bob, rome)  # gap 1 beats 2
    assert nearest_mentions([ann], []) is None
    assert nearest_mentions([bob], [rome, oslo]) == (bob, rome, 1)  # a tie: the first in order
    assert nearest_mentions([bob], [rome, oslo], prefer_following=True) == (bob, oslo, 1)  # the place after wins
    sentences = [0, 0, 0, 0, 0, 1, 1, 1]
    assert nearest_mentions([ann], [rome, oslo], sentences=sentences)[:2] == (ann, rome)
    assert nearest_mentions([bob], [rome, oslo], sentences=sentences, prefer_following=True)[:2] == (bob, oslo)


def _brute_force(firsts, seconds, positions=None, sentences=None, prefer_following=False):
    """Every couple compared: what nearest_mentions must agree with."""
    best, best_key = None, None
    for i, a in enumerate(firsts):
        for j, b in enumerate(seconds):
            gap = mention_gap(a, b, positions)
            across = sentences is not None and sentences[a.start] != sentences[b.start]
            key = (across, gap, prefer_following and b.start < a.start, i, j)
            if best_key is None or key < best_key:
                best, best_key = (a, b, gap), key
    return best


@pytest.mark.parametrize("all_couples_up_to", [0, ALL_COUPLES_UP_TO])  # the indexes, or every couple when few
def test_nearest_mentions_equals_comparing_every_couple(blank_nlps, monkeypatch, all_couples_up_to):
    monkeypatch.setattr("spacy_dgemma.candidates.pairs.ALL_COUPLES_UP_TO", all_couples_up_to)
    rng = random.Random(0)
    doc = blank_nlps["en"](" ".join(rng.choice(["a", "b", ",", "."]) for _ in range(60)))
    words = [0] + list(itertools.accumulate(not t.is_punct for t in doc))
    sentences = [0] + list(itertools.accumulate(t.text == "." for t in doc))[:-1]

    def spans(n):
        starts = [rng.randrange(len(doc) - 3) for _ in range(n)]
        return [doc[s : s + rng.randint(1, 3)] for s in starts]

    for _ in range(300):
        firsts, seconds = spans(rng.randint(1, 6)), spans(rng.randint(1, 6))
        for options in ({}, {"positions": words}, {"sentences": sentences, "prefer_following": True},
                        {"positions": words, "sentences": sentences, "prefer_following": True}):
            assert nearest_mentions(firsts, seconds, **options) == _brute_force(firsts, seconds, **options)


def test_nearest_mentions_is_not_quadratic(blank_nlps):
    doc = blank_nlps["en"]("Ann went to Rome . " * 3000)
    persons = [doc[i : i + 1] for i in range(0, len(doc), 5)]
    places = [doc[i + 3 : i + 4] for i in range(0, len(doc), 5)]
    start = time.perf_counter()
    assert nearest_mentions(persons, places) == (persons[1], places[0], 1)  # "Rome . Ann"
    assert time.perf_counter() - start < 5.0  # 9 million couples compared one by one take minutes


def _raw(text, ents=None):
    nlp = spacy.blank("en")
    doc = nlp(text)
    if ents is not None:
        doc.ents = [Span(doc, s, e, label) for s, e, label in ents]
    return doc


def test_w010_no_recogniser_has_run():
    with pytest.warns(UserWarning, match=r"W010.*no persons or places.*No recogniser has run"):
        assert make_pair_candidates()(_raw("Mr. Gladstone left London.")) == []


def test_w010_recogniser_found_no_places():
    with pytest.warns(UserWarning, match=r"W010.*no places.*A recogniser has run \(doc.ents is set\)"):
        assert make_pair_candidates()(_raw("Mr. Gladstone left.", [(1, 2, "PER")])) == []


def test_w011_unmapped_labels_name_the_config_key():
    doc = _raw("Mr. Gladstone left London.", [(1, 2, "PERSON_NAME"), (3, 4, "CITY")])
    with pytest.warns(UserWarning, match=r"W011.*CITY, PERSON_NAME.*components.dgemma_relations.candidates.person_labels"):
        assert make_pair_candidates()(doc) == []
    mapped = make_pair_candidates(person_labels=["PERSON_NAME"], place_labels=["CITY"])(doc)
    assert [(p.person_id, p.place_id) for p in mapped] == [("person:gladstone", "place:london")]


def test_w012_the_pair_cap_says_how_many_it_dropped():
    doc = _raw("Ann and Bob met in Rome , Oslo and Bern .", [(0, 1, "PER"), (2, 3, "PER"), (5, 6, "LOC"), (7, 8, "LOC"), (9, 10, "LOC")])
    with pytest.warns(UserWarning, match=r"W012.*kept the 4 closest of 6 .* dropped 2"):
        assert len(make_pair_candidates(max_pairs=4)(doc)) == 4
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert len(make_pair_candidates()(doc)) == 6  # under the cap: no warning
        make_pair_candidates()(_raw(""))  # an empty Doc: nothing to say


def test_hipe_input_gives_no_warning(en_doc):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert len(make_pair_candidates(max_pairs=1)(en_doc)) == 6


@pytest.mark.parametrize("max_pairs", [-3, 0, 2.5, True])
def test_nonsensical_max_pairs_is_rejected(max_pairs):
    with pytest.raises(ValueError, match="E060.*max_pairs"):
        make_pair_candidates(max_pairs=max_pairs)


@pytest.mark.parametrize("labels", [{"person_labels": []}, {"person_labels": ["PER", "LOC"]}])
def test_empty_or_overlapping_label_sets_are_rejected(labels):
    with pytest.raises(ValueError, match="E062"):
        make_pair_candidates(**labels)


def test_config_validation_reaches_add_pipe():
    nlp = spacy.blank("en")
    with pytest.raises(ValueError, match="E060.*max_pairs"):
        nlp.add_pipe("dgemma_relations", config={"candidates": {"@misc": "spacy_dgemma.pair_candidates.v1", "max_pairs": -3}})
