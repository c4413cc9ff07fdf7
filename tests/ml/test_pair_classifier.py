"""The compact pair classifier (``spacy_dgemma.PairClassifier.v1``) inside ``dgemma_relations``."""
from typing import List

import numpy
import pytest
import spacy
from spacy.language import Language
from spacy.tokens import Doc
from spacy.training import Example
from thinc.api import fix_random_seed

from spacy_dgemma.ml.pair_classifier import build_pair_classifier
from spacy_dgemma.ml.pair_features import N_NUMBERS, NUMBER_NAMES, DocContext, featurize, pair_features
from tests.util import HIPE_RECORDS, build_hipe_doc, strip_labels

MODEL = {"@architectures": "spacy_dgemma.PairClassifier.v1", "width": 16, "hidden_width": 32, "embed_rows": 500, "dropout": 0.0}
TRAIN_LANGS = ("en", "fr")


def _nlp(model: dict = MODEL) -> Language:
    nlp = spacy.blank("xx")
    nlp.add_pipe("dgemma_relations", config={"model": model})
    return nlp


def _train(nlp: Language, examples: List[Example], optimizer, learn_rate: float, n_updates: int) -> List[float]:
    """`n_updates` updates on the same examples; the relation loss of each."""
    optimizer.learn_rate = learn_rate
    losses = []
    for _ in range(n_updates):
        step = {}
        nlp.update(examples, sgd=optimizer, losses=step)
        losses.append(step["dgemma_relations"])
    return losses


def _examples(nlp: Language) -> List[Example]:
    return [
        Example(build_hipe_doc(nlp, strip_labels(HIPE_RECORDS[lang])), build_hipe_doc(nlp, HIPE_RECORDS[lang]))
        for lang in TRAIN_LANGS
    ]


def _inputs(nlp: Language) -> List[Doc]:
    return [build_hipe_doc(nlp, strip_labels(HIPE_RECORDS[lang])) for lang in TRAIN_LANGS]


def _labels(docs: List[Doc]) -> List[tuple]:
    return [(r.pair_index, r.at, r.is_at) for doc in docs for r in doc._.dgemma_relations]


def _gold() -> List[tuple]:
    return [(i, p["at"], p["isAt"]) for lang in TRAIN_LANGS for i, p in enumerate(HIPE_RECORDS[lang]["sampled_pairs"])]


def _scores(docs: List[Doc]) -> numpy.ndarray:
    return numpy.array([list(r.at_scores.values()) + list(r.is_at_scores.values()) for d in docs for r in d._.dgemma_relations])


@pytest.fixture(scope="module")
def trained():
    """A pipeline overfitted on two documents, with its losses."""
    fix_random_seed(0)
    nlp = _nlp()
    examples = _examples(nlp)
    optimizer = nlp.initialize(lambda: examples)
    return nlp, _train(nlp, examples, optimizer, learn_rate=0.01, n_updates=50)


def test_architecture_is_registered():
    model = spacy.registry.resolve({"m": MODEL})["m"]
    assert model.name == "pair_classifier"


def test_overfit_loss_falls_and_labels_right(trained):
    nlp, losses = trained
    assert losses[-1] < losses[0] / 10
    docs = list(nlp.pipe(_inputs(nlp)))
    assert _labels(docs) == _gold()
    for doc in docs:
        for rel in doc._.dgemma_relations:
            assert abs(sum(rel.at_scores.values()) - 1.0) < 1e-4
            assert abs(sum(rel.is_at_scores.values()) - 1.0) < 1e-4


def test_explanations_quote_the_text(trained):
    nlp, _ = trained
    doc = nlp(build_hipe_doc(nlp, strip_labels(HIPE_RECORDS["en"])))
    smith_london = doc._.dgemma_relations[0]
    assert smith_london.at_explanation.startswith("Evidence: ")
    assert "Mr. John Smith arrived in London" in smith_london.at_explanation
    # The person of the last pair is not in the text: still decided, no evidence quoted from it.
    napoleon = doc._.dgemma_relations[-1]
    assert napoleon.person_id == "en-napoleon" and napoleon.at in ("TRUE", "PROBABLE", "FALSE")


def test_same_after_to_disk(trained, tmp_path):
    nlp, _ = trained
    before = list(nlp.pipe(_inputs(nlp)))
    nlp.to_disk(tmp_path / "pipeline")
    loaded = spacy.load(tmp_path / "pipeline")
    after = list(loaded.pipe(_inputs(loaded)))
    assert _labels(after) == _labels(before)
    numpy.testing.assert_allclose(_scores(after), _scores(before), atol=1e-5)


def test_multiprocessing_agrees(trained):
    nlp, _ = trained
    single = list(nlp.pipe(_inputs(nlp)))
    multi = list(nlp.pipe(_inputs(nlp), n_process=2, batch_size=1))
    assert _labels(multi) == _labels(single)
    numpy.testing.assert_allclose(_scores(multi), _scores(single), atol=1e-5)


def test_raw_text_with_upstream_ents(trained):
    nlp, _ = trained
    doc = nlp.make_doc("Mr. John Smith arrived in London yesterday from Paris.")
    doc.ents = [doc.char_span(0, 14, "PER"), doc.char_span(26, 32, "LOC"), doc.char_span(48, 53, "LOC")]
    doc = nlp(doc)
    assert {(r.person_id, r.place_id) for r in doc._.dgemma_relations} == {
        ("person:mr john smith", "place:london"),
        ("person:mr john smith", "place:paris"),
    }


def test_empty_and_pairless_docs(trained):
    nlp, _ = trained
    empty = nlp("")
    assert empty._.dgemma_relations == []
    no_places = nlp.make_doc("Mr. John Smith wrote a letter.")
    no_places.ents = [no_places.char_span(0, 14, "PER")]
    assert nlp(no_places)._.dgemma_relations == []
    # A mixed batch: empty, pairless and HIPE docs together keep rows aligned.
    docs = list(nlp.pipe(["", "Nothing here."] + _inputs(nlp)))
    assert [len(d._.dgemma_relations) for d in docs] == [0, 0, 6, 4]
    assert _labels(docs[2:]) == _gold()


def test_update_on_pairless_batch_is_a_no_op(trained):
    nlp, _ = trained
    doc = nlp.make_doc("Nothing here.")
    losses = nlp.update([Example(doc, doc.copy())], losses={})
    assert losses["dgemma_relations"] == 0.0


def test_features_read_the_text(blank_nlps):
    nlp = blank_nlps["en"]
    doc = build_hipe_doc(nlp, HIPE_RECORDS["en"])
    pairs = spacy.registry.misc.get("spacy_dgemma.pair_candidates.v1")()(doc)
    ctx = DocContext(doc)
    smith_london = pair_features(ctx, pairs[0])
    value = lambda f, name: f.numbers[NUMBER_NAMES.index(name)]  # noqa: E731
    assert smith_london.numbers.shape == (N_NUMBERS,)
    assert value(smith_london, "lang_en") == 1.0
    assert value(smith_london, "place_in_dateline") == 1.0  # "LONDON, Aug. 18."
    assert value(smith_london, "same_sentence") == 1.0 and value(smith_london, "distance_le_3") == 1.0
    assert value(smith_london, "cue_arrive") > 0 and value(smith_london, "cue_recent") > 0
    napoleon = pair_features(ctx, pairs[-1])
    assert value(napoleon, "person_aligned") == 0.0 and value(napoleon, "place_aligned") == 1.0
    assert all(len(w) >= 1 for w in napoleon.windows)
    assert len(featurize([(doc, pairs), (nlp(""), [])])) == len(pairs)


def test_long_document_is_linear(blank_nlps):
    """A document far longer than any train article is handled, in time linear in its length."""
    nlp = blank_nlps["en"]
    record = strip_labels(HIPE_RECORDS["en"])
    record["text"] = " ".join([record["text"]] * 60)  # ~27,000 characters
    doc = build_hipe_doc(nlp, record)
    model = build_pair_classifier(width=16, hidden_width=32, embed_rows=500)
    pairs = spacy.registry.misc.get("spacy_dgemma.pair_candidates.v1")()(doc)
    model.initialize()
    out = model.predict([(doc, pairs)])
    assert out.scores.shape == (len(pairs), 5)
    assert numpy.isfinite(out.scores).all()


def test_features_of_raw_text_use_all_mentions_of_the_pairs():
    nlp = spacy.blank("xx")
    doc = nlp.make_doc("Mr. John Smith arrived in London yesterday from Paris.")
    doc.ents = [doc.char_span(0, 14, "PER"), doc.char_span(26, 32, "LOC"), doc.char_span(48, 53, "LOC")]
    pairs = spacy.registry.misc.get("spacy_dgemma.pair_candidates.v1")()(doc)
    feats = {pair.place_id: f for pair, f in zip(pairs, featurize([(doc, pairs)]))}
    nearest = NUMBER_NAMES.index("place_nearest_to_person")
    between = NUMBER_NAMES.index("places_between")
    assert feats["place:london"].numbers[nearest] == 1.0 and feats["place:paris"].numbers[nearest] == 0.0
    assert feats["place:paris"].numbers[between] > 0.0


LINEAR = {"@architectures": "spacy_dgemma.PairClassifier.v1", "width": 0, "hidden_width": 0, "dropout": 0.0}


def test_linear_numbers_only_model_learns_and_round_trips(tmp_path):
    """width = 0, hidden_width = 0 (training/compact.cfg): linear heads of the numeric features."""
    fix_random_seed(0)
    nlp = _nlp(LINEAR)
    model = nlp.get_pipe("dgemma_relations").model
    examples = _examples(nlp)
    optimizer = nlp.initialize(lambda: examples)
    assert model.layers[-2].get_dim("nI") == N_NUMBERS  # no token windows, no hidden layer
    assert not any(layer.name == "hashembed" for layer in model.walk())
    losses = _train(nlp, examples, optimizer, learn_rate=0.05, n_updates=60)
    assert losses[-1] < losses[0] / 2
    before = list(nlp.pipe(_inputs(nlp)))
    assert _scores(before).shape == (len(_gold()), 5)
    assert numpy.isfinite(_scores(before)).all()
    # The features of the two documents distinguish most pairs: the model fits most labels.
    assert sum(a == b for a, b in zip(_labels(before), _gold())) >= 0.7 * len(_gold())
    nlp.to_disk(tmp_path / "linear")
    after = list(spacy.load(tmp_path / "linear").pipe(_inputs(nlp)))
    numpy.testing.assert_allclose(_scores(after), _scores(before), atol=1e-5)


def test_compact_config_is_the_linear_model():
    from pathlib import Path

    from spacy.util import load_config

    cfg = load_config(Path(__file__).resolve().parents[2] / "training" / "compact.cfg")
    model_cfg = cfg["components"]["dgemma_relations"]["model"]
    assert model_cfg["width"] == 0 and model_cfg["hidden_width"] == 0 and model_cfg["baseline_features"]


def test_baseline_features_append_the_rule_evidence(blank_nlps):
    from spacy_dgemma.ml.pair_features import BASELINE_NAMES, N_BASELINE

    nlp = blank_nlps["en"]
    doc = build_hipe_doc(nlp, HIPE_RECORDS["en"])
    pairs = spacy.registry.misc.get("spacy_dgemma.pair_candidates.v1")()(doc)
    plain = featurize([(doc, pairs)])
    extended = featurize([(doc, pairs)], baseline=True)
    assert all(f.numbers.shape == (N_NUMBERS + N_BASELINE,) for f in extended)
    for p, e in zip(plain, extended):
        numpy.testing.assert_array_equal(e.numbers[:N_NUMBERS], p.numbers)
        assert e.numbers[N_NUMBERS : N_NUMBERS + 5].sum() == 1.0  # one evidence tier
    value = lambda f, name: f.numbers[N_NUMBERS + BASELINE_NAMES.index(name)]  # noqa: E731
    # "Mr. John Smith arrived in London" under the dateline "LONDON": strong evidence.
    assert value(extended[0], "tier_strong") == 1.0 and value(extended[0], "rule_dateline") == 1.0
    # The person of the last pair is not in the text.
    assert value(extended[-1], "tier_not_found") == 1.0
    model = build_pair_classifier(width=0, hidden_width=0, baseline_features=True)
    model.initialize()
    assert model.layers[-1].get_dim("nI") == N_NUMBERS + N_BASELINE
    assert model.predict([(doc, pairs)]).scores.shape == (len(pairs), 5)


def _hipe_features(nlp, text: str, pairs: List[tuple]) -> dict:
    """Features of hand-written HIPE pairs (person id, person mentions, place id, place mentions)."""
    from tests.util import make_pair as _pair
    from tests.util import make_record as _record

    record = _record("test-en-1900-03-14-a-i0001", "en", "1900-03-14", text, [_pair(a, b, c, d, "FALSE", "FALSE") for a, b, c, d in pairs])
    doc = build_hipe_doc(nlp, record)
    candidates = spacy.registry.misc.get("spacy_dgemma.pair_candidates.v1")()(doc)
    ctx = DocContext(doc)
    return {(c.person_id, c.place_id): pair_features(ctx, c).numbers for c in candidates}


def _value(numbers, name: str) -> float:
    return float(numbers[NUMBER_NAMES.index(name)])


def test_dated_datelines_and_the_person_under_them():
    """'LONDON, 12 March.' starts a section: persons after it are under London's dateline."""
    nlp = spacy.blank("xx")
    text = "LONDON, 12 March. Mr. Smith spoke at the meeting.\nPARIS, 13 mars. M. Dupont est arrivé."
    pairs = [("smith", ["Mr. Smith"], "london", ["LONDON"]), ("smith", ["Mr. Smith"], "paris", ["PARIS"]),
             ("dupont", ["M. Dupont"], "london", ["LONDON"]), ("dupont", ["M. Dupont"], "paris", ["PARIS"])]
    feats = _hipe_features(nlp, text, pairs)
    assert len(feats) == 4
    for key, f in feats.items():
        assert _value(f, "place_dated_dateline") == 1.0, key
        assert _value(f, "log_doc_datelines") > 0.0
    assert _value(feats["smith", "london"], "person_under_place_dateline") == 1.0
    assert _value(feats["smith", "london"], "person_under_other_dateline") == 0.0
    assert _value(feats["smith", "paris"], "person_under_place_dateline") == 0.0
    assert _value(feats["smith", "paris"], "person_under_other_dateline") == 1.0
    assert _value(feats["dupont", "paris"], "person_under_place_dateline") == 1.0
    assert _value(feats["dupont", "london"], "person_under_other_dateline") == 1.0


def test_no_dated_dateline_without_day_and_month():
    """A place followed by no date, or by 'may' without a day number, is not a dateline."""
    nlp = spacy.blank("xx")
    text = "London may be cold. Mr. Smith spoke in Berlin on Monday, 1900."
    pairs = [("smith", ["Mr. Smith"], "london", ["London"]), ("smith", ["Mr. Smith"], "berlin", ["Berlin"])]
    for f in _hipe_features(nlp, text, pairs).values():
        for name in ("place_dated_dateline", "person_under_place_dateline", "person_under_other_dateline", "log_doc_datelines"):
            assert _value(f, name) == 0.0, name


def test_shared_sentences_of_person_and_place():
    """The share of the person's mentions whose sentence names the place, and how many sentences."""
    nlp = spacy.blank("xx")
    text = "Mr. Smith lives in Berlin. Later Smith met Jones. Jones saw Paris and Smith was happy. Smith left."
    pairs = [("smith", ["Smith"], "berlin", ["Berlin"]), ("jones", ["Jones"], "berlin", ["Berlin"]),
             ("smith", ["Smith"], "paris", ["Paris"])]
    feats = _hipe_features(nlp, text, pairs)
    smith_berlin, jones_berlin, smith_paris = (feats[k] for k in [(a, c) for a, _, c, _ in pairs])
    n_smith = 4  # four "Smith", one in each sentence
    assert _value(smith_berlin, "person_share_with_place") == pytest.approx(1 / n_smith)
    assert _value(smith_paris, "person_share_with_place") == pytest.approx(1 / n_smith)
    assert _value(smith_berlin, "log_shared_sentences") == pytest.approx(numpy.log1p(1) / 2.0)
    assert _value(jones_berlin, "person_share_with_place") == 0.0
    assert _value(jones_berlin, "log_shared_sentences") == 0.0
