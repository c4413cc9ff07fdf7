"""dgemma_relations with the generative student (spacy_dgemma.GenerativeStudent.v1) on HIPE Docs."""
import pytest
import spacy

import spacy_dgemma.ml.generative  # noqa: F401  (registers the architecture without the entry point)
from tests.util import HIPE_RECORDS, build_hipe_doc


def student_nlp(path, lang="en", **model_cfg):
    nlp = spacy.blank(lang)
    config = {"@architectures": "spacy_dgemma.GenerativeStudent.v1", "name_or_path": str(path), "device": "cpu",
              "max_new_tokens": 96, "batch_size": 3, **model_cfg}
    nlp.add_pipe("dgemma_relations", config={"model": config})
    return nlp


def predictions(doc):
    return [(r.person_id, r.place_id, r.at, r.is_at, r.at_explanation, r.is_at_explanation) for r in doc._.dgemma_relations]


@pytest.mark.slow
def test_generative_student_fills_relations_with_explanations(answering_student, tmp_path):
    nlp = student_nlp(answering_student)
    nlp.initialize()
    doc = nlp(build_hipe_doc(spacy.blank("en"), HIPE_RECORDS["en"]))
    relations = doc._.dgemma_relations
    assert len(relations) == len(HIPE_RECORDS["en"]["sampled_pairs"])
    assert [r.pair_index for r in relations] == list(range(len(relations)))
    # The trained answer: labels parsed, reasoning kept as explanations.
    assert {(r.at, r.is_at) for r in relations} == {("TRUE", "FALSE")}
    assert all(r.at_explanation == "He came to the town." for r in relations)
    assert all(r.is_at_explanation == "It was long ago." for r in relations)
    # Scores are the label tokens' probabilities, not one-hot rows.
    for r in relations:
        assert sum(r.at_scores.values()) == pytest.approx(1.0)
        assert max(r.at_scores, key=r.at_scores.get) == "TRUE" and 0.0 < r.at_scores["TRUE"] < 1.0
    # to_disk / spacy.load keep the reference to the weights; predictions are the same.
    nlp.to_disk(tmp_path / "pipeline")
    loaded = spacy.load(tmp_path / "pipeline")
    assert loaded.get_pipe("dgemma_relations").model.attrs["name_or_path"] == str(answering_student)
    again = loaded(build_hipe_doc(spacy.blank("en"), HIPE_RECORDS["en"]))
    assert predictions(again) == predictions(doc)


def test_random_student_falls_back_and_docs_without_pairs(tiny_models):
    nlp = student_nlp(tiny_models["student"], max_new_tokens=6)
    docs = [build_hipe_doc(spacy.blank("en"), HIPE_RECORDS["en"]), nlp.make_doc("No people or places here.")]
    first, empty = list(nlp.pipe(docs))
    assert empty._.dgemma_relations == []
    assert len(first._.dgemma_relations) == len(HIPE_RECORDS["en"]["sampled_pairs"])
    for r in first._.dgemma_relations:  # a random model writes no JSON: the documented fallback, flagged one-hot
        assert (r.at, r.is_at) == ("PROBABLE", "TRUE") and r.at_scores["PROBABLE"] == 1.0


def test_not_trainable_in_spacy(tiny_models):
    from spacy.training import Example

    nlp = student_nlp(tiny_models["student"], max_new_tokens=2)
    doc = build_hipe_doc(spacy.blank("en"), HIPE_RECORDS["en"])
    with pytest.raises(NotImplementedError, match="dgemma llm distill"):
        nlp.update([Example(doc, doc)])
