"""dgemma_propagate_entities: more occurrences of the predicted names, never a changed entity."""
import spacy
from spacy.tokens import Span


def _doc(nlp, text, ents):
    doc = nlp.make_doc(text)
    spans = []
    for words, label, nth in ents:
        starts = [i for i in range(len(doc)) if doc[i : i + len(words.split())].text == words]
        spans.append(Span(doc, starts[nth], starts[nth] + len(words.split()), label=label))
    doc.ents = spans
    return doc


def _ents(doc):
    return [(e.start, e.text, e.label_) for e in doc.ents]


def test_other_occurrences_and_last_words_are_marked():
    nlp = spacy.blank("de")
    propagate = nlp.add_pipe("dgemma_propagate_entities")
    doc = _doc(nlp, "Stadtrat Lutz traf Chautemps in Bern . Chautemps und Lutz verließen Bern .",
               [("Stadtrat Lutz", "pers", 0), ("Chautemps", "pers", 0), ("Bern", "loc", 0)])
    assert _ents(propagate(doc)) == [
        (0, "Stadtrat Lutz", "pers"), (3, "Chautemps", "pers"), (5, "Bern", "loc"),
        (7, "Chautemps", "pers"), (9, "Lutz", "pers"), (11, "Bern", "loc"),
    ]


def test_given_entities_stay_and_weak_strings_do_not_spread():
    nlp = spacy.blank("en")
    propagate = nlp.add_pipe("dgemma_propagate_entities")
    # "Mr" is too short, "paris" is not capitalised, a place's last word does not spread, and
    # "Lord Rosebery" stays one entity where it overlaps an occurrence of "Rosebery".
    doc = _doc(nlp, "Mr Smith saw New York and paris . Lord Rosebery met Rosebery , Mr and York and paris .",
               [("Mr Smith", "pers", 0), ("New York", "loc", 0), ("paris", "loc", 0), ("Lord Rosebery", "pers", 0)])
    before = _ents(doc)
    after = _ents(propagate(doc))
    assert [e for e in after if e in before] == before
    assert [e for e in after if e not in before] == [(11, "Rosebery", "pers")]


def test_majority_label_wins_and_a_doc_without_entities_is_unchanged():
    nlp = spacy.blank("fr")
    propagate = nlp.add_pipe("dgemma_propagate_entities", config={"labels": ["pers", "loc"], "last_word_labels": []})
    doc = _doc(nlp, "Berne , Berne , Berne et Berne .", [("Berne", "loc", 0), ("Berne", "loc", 1), ("Berne", "pers", 2)])
    assert [e.label_ for e in propagate(doc).ents] == ["loc", "loc", "pers", "loc"]
    empty = propagate(nlp.make_doc("Rien ici ."))
    assert empty.ents == ()


def test_the_component_round_trips_in_a_pipeline(tmp_path):
    nlp = spacy.blank("en")
    nlp.add_pipe("dgemma_propagate_entities", config={"min_word_length": 4})
    nlp.to_disk(tmp_path / "p")
    loaded = spacy.load(tmp_path / "p")
    assert loaded.get_pipe("dgemma_propagate_entities").min_word_length == 4
    doc = _doc(loaded, "Lutz and Lutz", [("Lutz", "pers", 0)])
    assert len(loaded.get_pipe("dgemma_propagate_entities")(doc).ents) == 2
