"""The ``dgemma_relations`` component with the rule baseline (and a tiny trainable model)."""
import numpy
import pytest
import spacy
from spacy.tokens import Doc, DocBin
from spacy.training import Example
from thinc.api import Adam, Linear, Model, fix_random_seed

from spacy_dgemma.keys import RELATIONS_KEY
from spacy_dgemma.labels import AT_LABELS, IS_AT_LABELS, N_AT, SCORE_COLUMNS, decide_labels
from spacy_dgemma.ml.types import RelationScores
from spacy_dgemma.pipeline import DgemmaRelations
from spacy_dgemma.pipeline.records import relations_to_hipe_pairs
from spacy_dgemma.scorer import score_documents
from tests.util import HIPE_RECORDS, build_hipe_doc, strip_labels

RAW_TEXT = "Mr. John Smith arrived in London yesterday. Mrs. Mary Brown lives in Bath. Smith left Paris."


def _labels(doc):
    return [(r.person_id, r.place_id, r.at, r.is_at) for r in doc._.dgemma_relations]


def _ruler_nlp(person_label="PER", place_label="LOC", config=None):
    nlp = spacy.blank("en")
    ruler = nlp.add_pipe("entity_ruler")
    persons = ["Mr. John Smith", "Mrs. Mary Brown", "Smith"]
    places = ["London", "Bath", "Paris"]
    ruler.add_patterns(
        [{"label": person_label, "pattern": [{"ORTH": t.text} for t in nlp.make_doc(p)]} for p in persons]
        + [{"label": place_label, "pattern": p} for p in places]
    )
    nlp.add_pipe("dgemma_relations", config=config or {})
    return nlp


# --- construction ---------------------------------------------------------------------


def test_add_pipe_without_config(relations_nlp):
    nlp = relations_nlp("en")
    pipe = nlp.get_pipe("dgemma_relations")
    assert isinstance(pipe, DgemmaRelations)
    config = nlp.config["components"]["dgemma_relations"]
    assert config["model"]["@architectures"] == "spacy_dgemma.ProximityBaseline.v1"
    assert config["candidates"]["@misc"] == "spacy_dgemma.pair_candidates.v1"
    assert config["scorer"]["@scorers"] == "spacy_dgemma.relations_scorer.v1"
    meta = nlp.get_pipe_meta("dgemma_relations")
    assert "doc._.dgemma_relations" in meta.assigns
    assert meta.default_score_weights["rel_score"] == 1.0
    assert pipe.labels == SCORE_COLUMNS


# --- HIPE Docs --------------------------------------------------------------------------


@pytest.mark.parametrize("lang", list(HIPE_RECORDS))
def test_hipe_doc_gets_one_relation_per_input_pair(relations_nlp, lang):
    nlp = relations_nlp(lang)
    record = strip_labels(HIPE_RECORDS[lang])
    doc = nlp(build_hipe_doc(nlp, record))
    relations = doc._.dgemma_relations
    assert [r.pair_index for r in relations] == list(range(len(record["sampled_pairs"])))
    for rel, pair in zip(relations, record["sampled_pairs"]):
        assert (rel.person_id, rel.place_id) == (pair["pers_entity_id"], pair["loc_entity_id"])
        assert rel.at in AT_LABELS and rel.is_at in IS_AT_LABELS
        assert rel.at_explanation and rel.is_at_explanation
        assert rel.at_scores[rel.at] == max(rel.at_scores.values())
        assert sum(rel.at_scores.values()) == pytest.approx(1.0, abs=1e-5)
    # The labels the rules give on the hand-built texts.
    first = relations[0]
    assert (first.at, first.is_at) == ("TRUE", "TRUE")
    assert first.person_spans and first.place_spans


def test_unaligned_pair_is_still_decided(relations_nlp):
    nlp = relations_nlp("en")
    doc = nlp(build_hipe_doc(nlp, strip_labels(HIPE_RECORDS["en"])))
    napoleon = [r for r in doc._.dgemma_relations if r.person_id == "en-napoleon"]
    assert len(napoleon) == 1
    rel = napoleon[0]
    assert rel.person_spans == [] and rel.person_mentions == ["Napoleon Bonaparte"]
    assert (rel.at, rel.is_at) == ("FALSE", "FALSE")
    assert rel.at_explanation == "mentions not found in text"


def test_relations_to_hipe_pairs_keeps_every_input_field(relations_nlp):
    nlp = relations_nlp("fr")
    record = strip_labels(HIPE_RECORDS["fr"])
    doc = nlp(build_hipe_doc(nlp, record))
    pairs = relations_to_hipe_pairs(doc)
    assert len(pairs) == len(record["sampled_pairs"])
    for out, inp in zip(pairs, record["sampled_pairs"]):
        assert list(out) == list(inp)  # same keys, same order
        for key in inp:
            if key not in ("at", "isAt", "at_explanation", "isAt_explanation"):
                assert out[key] == inp[key]
        assert out["at"] in AT_LABELS and out["isAt"] in IS_AT_LABELS and out["at_explanation"]
    assert doc._.dgemma_hipe_pairs[0]["at"] is None  # the input pairs are not modified


def test_visualisation_span_group(relations_nlp):
    nlp = relations_nlp("en")
    doc = nlp(build_hipe_doc(nlp, strip_labels(HIPE_RECORDS["en"])))
    group = doc.spans[RELATIONS_KEY]
    shown = [r for r in doc._.dgemma_relations if not (r.at == "FALSE" and r.is_at == "FALSE")]
    assert shown and len(group) == 2 * len(shown)
    first = shown[0]
    assert group[0].text == first.person_spans[0].text == "Mr. John Smith"
    assert group[0].label_ == f"at={first.at} isAt={first.is_at}"
    assert group[1].text in ("London", "LONDON")


# --- raw text with an upstream NER ---------------------------------------------------------


@pytest.mark.parametrize("person_label,place_label", [("PER", "LOC"), ("PERSON", "GPE"), ("pers", "loc")])
def test_raw_text_with_entity_ruler(person_label, place_label):
    nlp = _ruler_nlp(person_label, place_label)
    doc = nlp(RAW_TEXT)
    assert {e.label_ for e in doc.ents} == {person_label, place_label}
    relations = doc._.dgemma_relations
    # 3 person entities (surface-grouped: "Mr. John Smith" and "Smith" differ) x 3 places.
    assert len(relations) == 9
    assert all(r.pair_index is None for r in relations)
    by_ids = {(r.person_id, r.place_id): r for r in relations}
    smith_london = by_ids[("person:mr john smith", "place:london")]
    assert (smith_london.at, smith_london.is_at) == ("TRUE", "TRUE")
    assert "'arrived'" in smith_london.at_explanation
    # Closest pairs first (HIPE samples pairs by proximity).
    assert relations[0].place_spans[0].start - relations[0].person_spans[0].end <= 2
    pairs = relations_to_hipe_pairs(doc)
    assert len(pairs) == 9 and pairs[0]["pers_mentions_list"] and pairs[0]["loc_wikidata_QID"] is None
    assert doc.ents and all(not e.id_ for e in doc.ents)  # doc.ents are left untouched


def test_label_map_and_max_pairs_from_config():
    config = {"candidates": {"@misc": "spacy_dgemma.pair_candidates.v1", "max_pairs": 2,
                             "person_labels": ["HUMAN"], "place_labels": ["TOWN"]}}
    nlp = _ruler_nlp("HUMAN", "TOWN", config=config)
    doc = nlp(RAW_TEXT)
    assert len(doc._.dgemma_relations) == 2
    ignored = _ruler_nlp("PER", "LOC", config=config)(RAW_TEXT)
    assert ignored.ents and ignored._.dgemma_relations == []


def test_empty_and_pairless_docs_pass_through(relations_nlp):
    nlp = relations_nlp("en")
    empty = nlp("")
    assert empty._.dgemma_relations == [] and len(empty.spans[RELATIONS_KEY]) == 0
    assert nlp("No names in this text at all.")._.dgemma_relations == []
    no_pairs = build_hipe_doc(nlp, {**strip_labels(HIPE_RECORDS["en"]), "sampled_pairs": []})
    assert nlp(no_pairs)._.dgemma_relations == []
    assert relations_to_hipe_pairs(no_pairs) == []


def test_mixed_batch_matches_single_docs(relations_nlp):
    nlp = relations_nlp("en")
    record = strip_labels(HIPE_RECORDS["en"])
    texts = [build_hipe_doc(nlp, record), nlp.make_doc(""), build_hipe_doc(nlp, {**record, "sampled_pairs": []}),
             build_hipe_doc(nlp, record)]
    batched = list(nlp.pipe(texts, batch_size=4))
    single = [nlp(doc.copy()) for doc in texts]
    assert [_labels(d) for d in batched] == [_labels(d) for d in single]
    assert len(batched[0]._.dgemma_relations) == 6 and batched[1]._.dgemma_relations == []


# --- serialisation -------------------------------------------------------------------------


def _processed(nlp):
    return nlp(build_hipe_doc(nlp, strip_labels(HIPE_RECORDS["en"])))


def _full(doc):
    return [r.to_dict() for r in doc._.dgemma_relations]


def test_relations_survive_docbin(relations_nlp):
    nlp = relations_nlp("en")
    doc = _processed(nlp)
    data = DocBin(docs=[doc], store_user_data=True).to_bytes()
    restored = list(DocBin().from_bytes(data).get_docs(nlp.vocab))[0]
    assert _full(restored) == _full(doc)
    assert restored._.dgemma_relations[0].person_spans[0].text == "Mr. John Smith"
    assert [s.label_ for s in restored.spans[RELATIONS_KEY]] == [s.label_ for s in doc.spans[RELATIONS_KEY]]
    assert relations_to_hipe_pairs(restored) == relations_to_hipe_pairs(doc)


def test_relations_survive_to_bytes(relations_nlp):
    nlp = relations_nlp("en")
    doc = _processed(nlp)
    restored = Doc(nlp.vocab).from_bytes(doc.to_bytes())
    assert _full(restored) == _full(doc)


def test_pipeline_to_disk_and_back(relations_nlp, tmp_path):
    nlp = relations_nlp("en")
    nlp.to_disk(tmp_path / "pipeline")
    loaded = spacy.load(tmp_path / "pipeline")
    assert _labels(_processed(loaded)) == _labels(_processed(nlp))


def test_multiprocess_pipe_keeps_relations(relations_nlp):
    nlp = relations_nlp("de")
    docs = [build_hipe_doc(nlp, strip_labels(HIPE_RECORDS["de"])) for _ in range(3)] + [nlp.make_doc("")]
    expected = [_full(nlp(d.copy())) for d in docs]
    got = [_full(d) for d in nlp.pipe(docs, n_process=2, batch_size=1)]
    assert got == expected
    assert len(got[0]) == 4


# --- scoring ---------------------------------------------------------------------------------


def test_evaluate_reports_the_official_metric(relations_nlp):
    nlp = relations_nlp("en")
    examples = []
    for lang, record in HIPE_RECORDS.items():
        reference = build_hipe_doc(nlp, record)
        reference._.dgemma_hipe = {**reference._.dgemma_hipe, "language": lang}
        examples.append(Example(build_hipe_doc(nlp, strip_labels(record)), reference))
    scores = nlp.evaluate(examples)
    assert set(scores["rel_per_lang"]) == {"en", "de", "fr"}
    # Same numbers as the file-level metric on the predictions written back as HIPE records.
    per_lang = {}
    for lang, record in HIPE_RECORDS.items():
        doc = nlp(build_hipe_doc(nlp, strip_labels(record)))
        per_lang[lang] = score_documents([record], [{**record, "sampled_pairs": relations_to_hipe_pairs(doc)}])
        assert scores["rel_per_lang"][lang]["mean"] == pytest.approx(per_lang[lang]["mean"])
    assert scores["rel_score"] == pytest.approx(numpy.mean([s["mean"] for s in per_lang.values()]))
    assert 0.0 < scores["rel_score"] < 1.0


# --- the TrainablePipe path with a tiny trainable model -----------------------------------


def _pair_features(doc_pairs):
    """Two features per pair: closeness of the mentions, and whether both were found."""
    rows = []
    for _, pairs in doc_pairs:
        for pair in pairs:
            gaps = [abs(p.start - q.start) for p in pair.person_spans for q in pair.place_spans]
            rows.append([1.0 / (1.0 + min(gaps)) if gaps else 0.0, 1.0 if gaps else 0.0])
    return numpy.asarray(rows, dtype="f").reshape((-1, 2))


def _softmax(x):
    e = numpy.exp(x - x.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def build_tiny_model() -> Model:
    """Linear layer over 2 pair features → two softmax heads (at, isAt)."""
    linear = Linear(nO=len(SCORE_COLUMNS), nI=2)

    def forward(model, doc_pairs, is_train):
        X = model.ops.asarray2f(_pair_features(doc_pairs))
        logits, bp_linear = model.layers[0](X, is_train)
        logits = model.ops.to_numpy(logits)
        probs = numpy.concatenate([_softmax(logits[:, :N_AT]), _softmax(logits[:, N_AT:])], axis=1)

        def backprop(d_logits):  # get_loss returns the gradient w.r.t. the logits
            bp_linear(model.ops.asarray2f(d_logits))
            return []

        return RelationScores(model.ops.asarray2f(probs)), backprop

    def init(model, X=None, Y=None):
        model.layers[0].initialize()

    return Model("tiny_pair_model", forward, init=init, layers=[linear])


def test_update_and_get_loss_with_a_trainable_model():
    fix_random_seed(0)
    nlp = spacy.blank("en")
    pipe = nlp.add_pipe("dgemma_relations")
    pipe.model = build_tiny_model()
    record = HIPE_RECORDS["en"]
    examples = [Example(build_hipe_doc(nlp, strip_labels(record)), build_hipe_doc(nlp, record))]
    nlp.initialize(lambda: examples)
    optimizer = Adam(0.1)
    # Class weights n / (k · count) with add-one counts: gold at T T T P F F → 4, 2, 3 (n=9);
    # isAt T F F F F F → 2, 6 (n=8).
    assert pipe.cfg["at_weights"] == pytest.approx([9 / 12, 9 / 6, 9 / 9])
    assert pipe.cfg["is_at_weights"] == pytest.approx([8 / 4, 8 / 12])
    before = pipe.model.layers[0].get_param("W").copy()
    losses = []
    for _ in range(50):
        losses.append(nlp.update(examples, sgd=optimizer)["dgemma_relations"])
    assert losses[-1] < losses[0] * 0.8
    assert not numpy.allclose(before, pipe.model.layers[0].get_param("W"))
    # get_loss: the gradient is (probabilities − truth) weighted, zero for pairs without gold.
    doc_pairs, output = pipe.predict([examples[0].predicted])
    loss, d_scores = pipe.get_loss(examples, (doc_pairs, output))
    assert loss > 0 and d_scores.shape == (6, len(SCORE_COLUMNS))
    unlabelled = Example(build_hipe_doc(nlp, strip_labels(record)), build_hipe_doc(nlp, strip_labels(record)))
    loss0, d0 = pipe.get_loss([unlabelled], (doc_pairs, output))
    assert loss0 == 0.0 and not d0.any()


def test_update_with_the_baseline_learns_nothing_but_runs():
    nlp = spacy.blank("en")
    nlp.add_pipe("dgemma_relations")
    record = HIPE_RECORDS["en"]
    examples = [Example(build_hipe_doc(nlp, strip_labels(record)), build_hipe_doc(nlp, record))]
    optimizer = nlp.initialize(lambda: examples)
    losses = nlp.update(examples, sgd=optimizer)
    assert losses["dgemma_relations"] > 0
    empty = [Example(nlp.make_doc(""), nlp.make_doc(""))]
    assert nlp.update(empty, sgd=optimizer)["dgemma_relations"] == 0.0


def test_model_with_wrong_number_of_rows_fails_clearly():
    nlp = spacy.blank("en")
    pipe = nlp.add_pipe("dgemma_relations")

    def forward(model, doc_pairs, is_train):
        return RelationScores(model.ops.alloc2f(1, len(SCORE_COLUMNS))), lambda d: []

    pipe.model = Model("one_row_model", forward)
    with pytest.raises(ValueError, match=r"E040.*one_row_model.*\(1, 5\) for 6 candidate pairs"):
        nlp(build_hipe_doc(nlp, strip_labels(HIPE_RECORDS["en"])))


def test_update_rejects_non_examples():
    nlp = spacy.blank("en")
    pipe = nlp.add_pipe("dgemma_relations")
    with pytest.raises(TypeError, match="Example"):
        pipe.update([nlp.make_doc("text")])


def _constant_scores_model(row):
    """Every candidate pair gets the same score row."""

    def forward(model, doc_pairs, is_train):
        n = sum(len(pairs) for _, pairs in doc_pairs)
        return RelationScores(model.ops.asarray2f(numpy.tile(numpy.asarray(row, dtype="f"), (n, 1)))), lambda d: []

    return Model("constant_scores", forward)


@pytest.mark.parametrize("consistent,expected", [(True, ("TRUE", "TRUE")), (False, ("FALSE", "TRUE"))])
def test_consistent_labels_never_say_there_now_but_never_there(consistent, expected):
    # at: FALSE 0.40 > TRUE 0.35 > PROBABLE 0.25; isAt: TRUE 0.90. Alone, FALSE / TRUE; together,
    # TRUE / TRUE (0.35 · 0.90 = 0.315) beats FALSE / FALSE (0.40 · 0.10 = 0.04).
    nlp = spacy.blank("en")
    pipe = nlp.add_pipe("dgemma_relations", config={"consistent_labels": consistent})
    pipe.model = _constant_scores_model([0.35, 0.25, 0.40, 0.90, 0.10])
    doc = nlp(build_hipe_doc(nlp, strip_labels(HIPE_RECORDS["en"])))
    assert doc._.dgemma_relations and {(r.at, r.is_at) for r in doc._.dgemma_relations} == {expected}
    assert doc._.dgemma_relations[0].at_scores["FALSE"] == pytest.approx(0.40)  # scores are kept as they are


def test_decide_labels_keeps_each_best_label_when_they_agree():
    assert decide_labels({"TRUE": 0.2, "PROBABLE": 0.1, "FALSE": 0.7}, {"TRUE": 0.4, "FALSE": 0.6}) == ("FALSE", "FALSE")
    assert decide_labels({"TRUE": 0.2, "PROBABLE": 0.5, "FALSE": 0.3}, {"TRUE": 0.6, "FALSE": 0.4}) == ("PROBABLE", "TRUE")
    # isAt TRUE loses to at FALSE when the at evidence is strong: 0.9 · 0.45 > 0.05 · 0.55.
    assert decide_labels({"TRUE": 0.05, "PROBABLE": 0.05, "FALSE": 0.9}, {"TRUE": 0.55, "FALSE": 0.45}) == ("FALSE", "FALSE")


def test_decision_offsets_move_the_threshold_not_the_scores():
    # at FALSE 0.40 against TRUE 0.35: FALSE alone; with FALSE's score times e^-0.2 (0.33), TRUE.
    nlp = spacy.blank("en")
    pipe = nlp.add_pipe("dgemma_relations", config={"consistent_labels": False, "decision_offsets": {"at_FALSE": -0.2}})
    pipe.model = _constant_scores_model([0.35, 0.25, 0.40, 0.30, 0.70])
    doc = nlp(build_hipe_doc(nlp, strip_labels(HIPE_RECORDS["en"])))
    assert {(r.at, r.is_at) for r in doc._.dgemma_relations} == {("TRUE", "FALSE")}
    assert doc._.dgemma_relations[0].at_scores["FALSE"] == pytest.approx(0.40)
    assert decide_labels({"TRUE": 0.35, "PROBABLE": 0.25, "FALSE": 0.40}, {"TRUE": 0.3, "FALSE": 0.7}, False) == ("FALSE", "FALSE")
    # A small offset leaves the decision: 0.40 · e^-0.1 = 0.362 > 0.35.
    assert decide_labels({"TRUE": 0.35, "PROBABLE": 0.25, "FALSE": 0.40}, {"TRUE": 0.3, "FALSE": 0.7}, False, {"at_FALSE": -0.1}) == ("FALSE", "FALSE")


def test_decision_offsets_name_the_score_columns():
    with pytest.raises(ValueError, match="E061.*unknown score column.*at_false.*use at_TRUE"):
        spacy.blank("en").add_pipe("dgemma_relations", config={"decision_offsets": {"at_false": -0.2}})


def test_analyze_pipes_says_the_component_needs_entities():
    nlp = spacy.blank("en")
    nlp.add_pipe("dgemma_relations")
    analysis = nlp.analyze_pipes()
    assert analysis["problems"]["dgemma_relations"] == ["doc.ents"]
    assert "doc._.dgemma_relations_data" in analysis["summary"]["dgemma_relations"]["assigns"]
    with_ner = spacy.blank("en")
    with_ner.add_pipe("entity_ruler")
    with_ner.add_pipe("dgemma_relations")
    assert with_ner.analyze_pipes()["problems"]["dgemma_relations"] == []


@pytest.mark.parametrize(
    "model",
    [{"width": -1}, {"embed_rows": 0}, {"hidden_width": -8}, {"window": -1}, {"max_between": -2}, {"dropout": 1.0}],
)
def test_nonsensical_model_settings_are_rejected(model):
    config = {"model": {"@architectures": "spacy_dgemma.PairClassifier.v1", **model}}
    with pytest.raises(ValueError, match=f"E060.*{next(iter(model))}"):
        spacy.blank("en").add_pipe("dgemma_relations", config=config)


@pytest.mark.parametrize("value", [float("nan"), float("inf"), True, "-0.2"])
def test_decision_offsets_must_be_finite_numbers(value):
    from spacy_dgemma.labels import check_offsets

    with pytest.raises(ValueError, match=r"E060.*decision_offsets\['at_FALSE'\]"):
        check_offsets({"at_FALSE": value})
