"""Recognisers voting (spacy_dgemma/ner/ensemble.py): entity rulers stand in for trained
members here; tests/test_ner_training.py builds an ensemble of trained recognisers."""
import pytest
import spacy

from spacy_dgemma.ner.ensemble import choose_entities


def test_majority_keeps_what_two_of_three_found():
    votes = [("loc", 4, 5), ("pers", 0, 2), ("loc", 4, 5), ("pers", 1, 2), ("loc", 7, 8)]
    assert choose_entities(votes, min_votes=2) == [("loc", 4, 5)]
    assert choose_entities(votes, min_votes=3) == []


def test_overlaps_go_to_more_votes_then_the_longer_span():
    # "Mr. Smith" (0-2) twice beats "Smith" (1-2) once; with one vote each the longer one wins.
    assert choose_entities([("pers", 0, 2), ("pers", 1, 2), ("pers", 0, 2)], 1) == [("pers", 0, 2)]
    assert choose_entities([("pers", 1, 2), ("pers", 0, 2)], 1) == [("pers", 0, 2)]
    assert choose_entities([("pers", 1, 2), ("pers", 1, 2), ("pers", 0, 2)], 1) == [("pers", 1, 2)]
    # The same tokens under two labels: the label with more votes.
    assert choose_entities([("org", 3, 4), ("loc", 3, 4), ("loc", 3, 4)], 1) == [("loc", 3, 4)]


def _members(nlp, patterns_per_member, min_votes=2, keep_votes=False):
    for i, patterns in enumerate(patterns_per_member):
        ruler = nlp.add_pipe("entity_ruler", name=f"ruler_{i}")
        ruler.add_patterns(patterns)
        nlp.add_pipe("dgemma_collect_entities", name=f"collect_{i}")
    nlp.add_pipe("dgemma_vote_entities", config={"min_votes": min_votes, "keep_votes": keep_votes})
    return nlp


PARIS = {"label": "loc", "pattern": "Paris"}
SMITH = {"label": "pers", "pattern": "Smith"}
MR_SMITH = {"label": "pers", "pattern": [{"ORTH": "Mr."}, {"ORTH": "Smith"}]}


def test_pipeline_of_members_votes():
    nlp = _members(spacy.blank("en"), [[PARIS, SMITH], [SMITH], [MR_SMITH, PARIS]])
    doc = nlp("Mr. Smith went to Paris.")
    assert [(e.text, e.label_) for e in doc.ents] == [("Smith", "pers"), ("Paris", "loc")]
    assert "entity_votes" not in doc.spans


def test_each_member_starts_without_the_previous_members_entities():
    # A ruler keeps entities already on the Doc; were the first member's "Smith" left there, the
    # second member could not add "Mr. Smith" over it.
    nlp = _members(spacy.blank("en"), [[SMITH], [MR_SMITH]], min_votes=1, keep_votes=True)
    doc = nlp("Mr. Smith went to Paris.")
    assert sorted(s.text for s in doc.spans["entity_votes"]) == ["Mr. Smith", "Smith"]
    assert [e.text for e in doc.ents] == ["Mr. Smith"]


def test_collect_leaves_tokens_unannotated_for_the_next_member():
    nlp = _members(spacy.blank("en"), [[PARIS]], min_votes=1)
    collect = nlp.get_pipe("collect_0")
    doc = nlp.get_pipe("ruler_0")(nlp.make_doc("to Paris"))
    collect(doc)
    assert [t.ent_iob_ for t in doc] == ["", ""] and len(doc.spans["entity_votes"]) == 1


def test_vote_without_members_and_bad_settings():
    nlp = spacy.blank("en")
    nlp.add_pipe("dgemma_vote_entities")
    assert nlp("Paris").ents == ()
    with pytest.raises(ValueError, match="E242"):
        spacy.blank("en").add_pipe("dgemma_vote_entities", config={"min_votes": 0})
