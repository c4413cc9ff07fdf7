"""Per-document loss weights: silver documents added by the reader at a weight."""
import copy
import json

import numpy
import pytest
import spacy
from spacy.training import Example
from spacy.util import registry

from spacy_dgemma.hipe.corpus import HipeCorpus
from spacy_dgemma.keys import LOSS_WEIGHT_KEY
from tests.util import HIPE_RECORDS, build_hipe_doc, strip_labels


def _example(nlp, record, weight=None):
    reference = build_hipe_doc(nlp, record)
    if weight is not None:
        reference.user_data[LOSS_WEIGHT_KEY] = weight
    return Example(build_hipe_doc(nlp, strip_labels(record)), reference)


@pytest.fixture
def pipe_and_examples():
    nlp = spacy.blank("en")
    pipe = nlp.add_pipe("dgemma_relations")
    record = HIPE_RECORDS["en"]
    nlp.initialize(lambda: [_example(nlp, record)])
    return nlp, pipe, record


def _loss(pipe, examples):
    doc_pairs, output = pipe.predict([eg.predicted for eg in examples])
    loss, d_scores = pipe.get_loss(examples, (doc_pairs, output))
    return loss, numpy.asarray(d_scores)


def test_weight_zero_gives_no_loss_and_no_gradient(pipe_and_examples):
    nlp, pipe, record = pipe_and_examples
    loss1, d1 = _loss(pipe, [_example(nlp, record)])
    assert loss1 > 0 and numpy.abs(d1).sum() > 0
    loss0, d0 = _loss(pipe, [_example(nlp, record, 0.0)])
    assert loss0 == 0.0 and not d0.any()
    # In a batch, the weight-0 document's rows are zero and the other's are untouched.
    _, d_mix = _loss(pipe, [_example(nlp, record, 1.0), _example(nlp, record, 0.0)])
    n = len(d1)
    assert not d_mix[n:].any()
    numpy.testing.assert_allclose(d_mix[:n], d1 / 2, rtol=1e-6)  # mean over twice the pairs


def test_weight_half_halves_gradient_and_loss(pipe_and_examples):
    nlp, pipe, record = pipe_and_examples
    loss1, d1 = _loss(pipe, [_example(nlp, record, 1.0)])
    loss_half, d_half = _loss(pipe, [_example(nlp, record, 0.5)])
    numpy.testing.assert_allclose(d_half, d1 / 2, rtol=1e-6)
    assert loss_half == pytest.approx(loss1 / 2)
    # No weight stored: 1.0, the behaviour without silver data.
    loss_default, d_default = _loss(pipe, [_example(nlp, record)])
    numpy.testing.assert_allclose(d_default, d1)
    assert loss_default == pytest.approx(loss1)


def test_class_weights_count_documents_by_their_weight():
    nlp = spacy.blank("en")
    pipe = nlp.add_pipe("dgemma_relations")
    gold = _example(nlp, HIPE_RECORDS["en"])
    nlp.initialize(lambda: [gold])
    expected = (list(pipe.cfg["at_weights"]), list(pipe.cfg["is_at_weights"]))
    other = copy.deepcopy(HIPE_RECORDS["en"])
    for pair in other["sampled_pairs"]:
        pair["at"], pair["isAt"] = "PROBABLE", "TRUE"
    nlp.initialize(lambda: [gold, _example(nlp, other, 0.0)])
    assert pipe.cfg["at_weights"] == pytest.approx(expected[0])
    assert pipe.cfg["is_at_weights"] == pytest.approx(expected[1])
    nlp.initialize(lambda: [gold, _example(nlp, other, 1.0)])
    assert pipe.cfg["at_weights"] != pytest.approx(expected[0])


def _write(path, records):
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    return path


def test_reader_marks_silver_with_its_weight_and_skips_gold_ids(tmp_path, hipe_records):
    gold = _write(tmp_path / "gold.jsonl", [hipe_records["en"], hipe_records["de"]])
    new = copy.deepcopy(hipe_records["fr"])
    duplicate = copy.deepcopy(hipe_records["en"])  # same document id as a gold document
    for pair in duplicate["sampled_pairs"]:
        pair["at"] = "FALSE"
    silver = _write(tmp_path / "silver.jsonl", [new, duplicate])
    nlp = spacy.blank("xx")
    reader = registry.readers.get("spacy_dgemma.HipeCorpus.v1")(gold, silver_path=silver, silver_weight=0.25)
    weights = {eg.reference._.dgemma_hipe["document_id"]: eg.reference.user_data[LOSS_WEIGHT_KEY] for eg in reader(nlp)}
    assert weights == {hipe_records["en"]["document_id"]: 1.0, hipe_records["de"]["document_id"]: 1.0, new["document_id"]: 0.25}
    egs = {eg.reference._.dgemma_hipe["document_id"]: eg for eg in reader(nlp)}
    assert egs[hipe_records["en"]["document_id"]].reference._.dgemma_hipe_pairs == hipe_records["en"]["sampled_pairs"]  # gold labels win
    # weight 0 or no silver path: the gold documents only
    assert len(list(HipeCorpus(gold, silver_path=silver, silver_weight=0.0)(nlp))) == 2
    assert [eg.reference.user_data[LOSS_WEIGHT_KEY] for eg in HipeCorpus(gold)(nlp)] == [1.0, 1.0]
    (tmp_path / "empty").mkdir()
    assert len(list(HipeCorpus(gold, silver_path=tmp_path / "empty", silver_weight=0.5)(nlp))) == 2
    with pytest.raises(ValueError, match="E060.*silver_weight"):
        HipeCorpus(gold, silver_path=silver, silver_weight=-1)
