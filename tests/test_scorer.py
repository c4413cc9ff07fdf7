"""The official HIPE-2026 metric: hand-worked cases, scikit-learn equivalence, spaCy scorer."""
import copy
import json
import warnings

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.exceptions import UndefinedMetricWarning
from sklearn.metrics import recall_score
from spacy.training import Example
from spacy.util import registry
from typer.testing import CliRunner

from spacy_dgemma.cli import app
from spacy_dgemma.errors import InputError
from spacy_dgemma.pipeline.records import Relation
from spacy_dgemma.scorer import (
    evaluate_files,
    group_by_language,
    macro_recall,
    make_relations_scorer,
    score_documents,
    score_languages,
)

AT = ["TRUE", "PROBABLE", "FALSE"]


def _doc(doc_id, labels, lang="en"):
    """A HIPE record whose pairs (p{i}, l{i}) carry the given (at, isAt) labels."""
    pairs = [
        {"pers_entity_id": f"p{i}", "loc_entity_id": f"l{i}", "at": at, "isAt": is_at}
        for i, (at, is_at) in enumerate(labels)
    ]
    return {"document_id": doc_id, "language": lang, "sampled_pairs": pairs}


# --- macro_recall: hand-worked cases ------------------------------------------------------


def test_macro_recall_hand_worked():
    # TRUE: 1 of 2, PROBABLE: 1 of 1, FALSE: 1 of 1 → (0.5 + 1 + 1) / 3
    gold = ["TRUE", "TRUE", "PROBABLE", "FALSE"]
    pred = ["TRUE", "FALSE", "PROBABLE", "FALSE"]
    assert macro_recall(gold, pred) == pytest.approx(2.5 / 3)


def test_macro_recall_label_only_predicted_counts_zero():
    # Labels {FALSE, TRUE}: FALSE 1 of 2, TRUE has no support → 0 → (0.5 + 0) / 2
    assert macro_recall(["FALSE", "FALSE"], ["FALSE", "TRUE"]) == pytest.approx(0.25)


def test_macro_recall_label_never_seen_is_ignored():
    # PROBABLE appears nowhere, so it is not part of the average: (1 + 1) / 2
    assert macro_recall(["TRUE", "FALSE"], ["TRUE", "FALSE"]) == 1.0


def test_macro_recall_null_reads_as_false():
    # Null prediction = FALSE: TRUE 0 of 1, FALSE 1 of 1 → 0.5; a null gold label too.
    assert macro_recall(["TRUE", "FALSE"], [None, "FALSE"]) == pytest.approx(0.5)
    assert macro_recall([None, "TRUE"], ["FALSE", "TRUE"]) == 1.0


def test_macro_recall_edge_cases():
    assert macro_recall([], []) == 0.0
    with pytest.raises(ValueError, match="E064.*one of each per item"):
        macro_recall(["TRUE"], [])


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.tuples(st.sampled_from(AT + [None]), st.sampled_from(AT + [None])), min_size=1, max_size=40)
)
def test_macro_recall_matches_sklearn(items):
    gold = [g for g, _ in items]
    pred = [p for _, p in items]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UndefinedMetricWarning)
        expected = recall_score(
            [g or "FALSE" for g in gold], [p or "FALSE" for p in pred], average="macro", zero_division=0
        )
    assert macro_recall(gold, pred) == pytest.approx(expected)


# --- score_documents: one language file ------------------------------------------------


def test_score_documents_hand_worked():
    gold = [
        _doc("d1", [("TRUE", "TRUE"), ("PROBABLE", "FALSE"), ("FALSE", "FALSE")]),
        _doc("d2", [("TRUE", "FALSE"), ("FALSE", "FALSE")]),
    ]
    pred = [
        _doc("d1", [("TRUE", "TRUE"), ("TRUE", "FALSE"), ("FALSE", "TRUE")]),
        _doc("d2", [("PROBABLE", "FALSE"), ("FALSE", "FALSE")]),
    ]
    # at: TRUE 1/2, PROBABLE 0/1, FALSE 2/2 → 0.5
    # isAt: TRUE 1/1, FALSE 3/4 → 0.875
    # binary at (PROBABLE→TRUE): gold T T F T F, pred T T F T F → 1.0; isAt as above.
    result = score_documents(gold, pred)
    assert result["at"] == pytest.approx(0.5)
    assert result["isAt"] == pytest.approx(0.875)
    assert result["mean"] == pytest.approx(0.6875)
    assert result["at_binary"] == pytest.approx(1.0)
    assert result["isAt_binary"] == pytest.approx(0.875)
    assert result["binary_mean"] == pytest.approx(0.9375)
    assert (result["n_docs"], result["n_pairs"]) == (2, 5)


def test_missing_document_pair_and_null_count_as_false():
    gold = [
        _doc("d1", [("TRUE", "TRUE"), ("FALSE", "FALSE")]),
        _doc("d2", [("TRUE", "FALSE"), ("FALSE", "FALSE")]),
    ]
    # d2 is missing; d1's second pair is missing; an extra document and pair are ignored.
    pred = [_doc("d1", [("TRUE", "TRUE")]), _doc("d9", [("TRUE", "TRUE")])]
    pred[0]["sampled_pairs"].append({"pers_entity_id": "px", "loc_entity_id": "lx", "at": "TRUE", "isAt": "TRUE"})
    # at: gold T F T F, pred T F F F → TRUE 1/2, FALSE 2/2 → 0.75
    # isAt: gold T F F F, pred T F F F → 1.0
    result = score_documents(gold, pred)
    assert result["at"] == pytest.approx(0.75)
    assert result["isAt"] == pytest.approx(1.0)
    nulls = [_doc("d1", [("TRUE", "TRUE"), (None, None)]), _doc("d2", [(None, None), (None, None)])]
    assert score_documents(gold, nulls) == result
    assert score_documents(gold, [])["at"] == pytest.approx(0.5)  # all FALSE


def test_pairs_match_by_key_not_position():
    gold = [_doc("d1", [("TRUE", "TRUE"), ("FALSE", "FALSE")])]
    pred = copy.deepcopy(gold)
    pred[0]["sampled_pairs"].reverse()
    assert score_documents(gold, pred)["mean"] == 1.0


def test_repeated_keys_match_in_order():
    gold = [_doc("d1", [("TRUE", "TRUE"), ("FALSE", "FALSE")])]
    for pair in gold[0]["sampled_pairs"]:
        pair["pers_entity_id"], pair["loc_entity_id"] = "p", "l"
    pred = copy.deepcopy(gold)
    assert score_documents(gold, pred)["mean"] == 1.0
    pred[0]["sampled_pairs"].reverse()
    # Now the first gold (TRUE, TRUE) meets (FALSE, FALSE) and vice versa: all recalls 0.
    assert score_documents(gold, pred)["mean"] == 0.0


def test_binary_folds_probable_in_gold_and_prediction():
    gold = [_doc("d1", [("PROBABLE", "FALSE"), ("TRUE", "FALSE"), ("FALSE", "FALSE")])]
    pred = [_doc("d1", [("TRUE", "FALSE"), ("PROBABLE", "FALSE"), ("TRUE", "FALSE")])]
    result = score_documents(gold, pred)
    # 3-way: PROBABLE 0/1, TRUE 0/1, FALSE 0/1 → 0. Binary: TRUE 2/2, FALSE 0/1 → 0.5.
    assert result["at"] == 0.0
    assert result["at_binary"] == pytest.approx(0.5)


def test_unknown_predicted_label_counts_as_extra_label():
    # As scikit-learn: an invalid label is one more label, with recall 0.
    gold = [_doc("d1", [("TRUE", "TRUE"), ("FALSE", "FALSE")])]
    pred = [_doc("d1", [("TRUE", "TRUE"), ("MAYBE", "FALSE")])]
    assert score_documents(gold, pred)["at"] == pytest.approx((1 + 0 + 0) / 3)


# --- several files ------------------------------------------------------------------------


def test_score_languages_is_unweighted_mean_over_files():
    gold = {
        "en": [_doc("e1", [("TRUE", "TRUE")] * 1 + [("FALSE", "FALSE")])],
        "de": [_doc("g1", [("TRUE", "TRUE"), ("FALSE", "FALSE")] * 5)],
    }
    pred = {
        "en": copy.deepcopy(gold["en"]),  # perfect: 1.0
        "de": [_doc("g1", [("FALSE", "FALSE")] * 10)],  # at 0.5, isAt 0.5
    }
    result = score_languages(gold, pred)
    assert result["per_file"]["en"]["mean"] == 1.0
    assert result["per_file"]["de"]["mean"] == pytest.approx(0.5)
    assert result["mean"] == pytest.approx(0.75)  # not weighted by the 2 vs 10 pairs
    assert result["n_pairs"] == 12
    assert score_languages(gold, {"en": pred["en"]})["per_file"]["de"]["mean"] == pytest.approx(0.5)


def test_group_by_language_keeps_order():
    records = [_doc("a", [], "fr"), _doc("b", [], "en"), _doc("c", [], "fr")]
    groups = group_by_language(records)
    assert [r["document_id"] for r in groups["fr"]] == ["a", "c"]
    assert list(groups) == ["fr", "en"]


# --- the registered spaCy scorer -----------------------------------------------------------


def _example(nlp, record, predicted_labels):
    """An Example: reference = gold record; predicted doc carries relations with given labels."""
    from tests.util import build_hipe_doc, strip_labels

    reference = build_hipe_doc(nlp, record)
    predicted = build_hipe_doc(nlp, strip_labels(record))
    relations = []
    for i, (pair, (at, is_at)) in enumerate(zip(record["sampled_pairs"], predicted_labels)):
        relations.append(
            Relation(person_id=pair["pers_entity_id"], place_id=pair["loc_entity_id"], at=at, is_at=is_at, pair_index=i)
        )
    predicted._.dgemma_relations = relations
    return Example(predicted, reference)


def test_registered_scorer_per_language(blank_nlps, hipe_records):
    scorer = registry.scorers.get("spacy_dgemma.relations_scorer.v1")()
    assert scorer is make_relations_scorer()
    en_gold = [(p["at"], p["isAt"]) for p in hipe_records["en"]["sampled_pairs"]]
    # en: perfect. de: all FALSE (gold at T T P F, isAt T F T F) → at (0+0+1)/3, isAt 0.5.
    examples = [
        _example(blank_nlps["en"], hipe_records["en"], en_gold),
        _example(blank_nlps["de"], hipe_records["de"], [("FALSE", "FALSE")] * 4),
    ]
    scores = scorer(examples)
    assert scores["rel_per_lang"]["en"]["mean"] == 1.0
    assert scores["rel_per_lang"]["de"]["at"] == pytest.approx(1 / 3)
    assert scores["rel_per_lang"]["de"]["isAt"] == pytest.approx(0.5)
    assert scores["rel_at_macro_recall"] == pytest.approx((1 + 1 / 3) / 2)
    assert scores["rel_isat_macro_recall"] == pytest.approx(0.75)
    assert scores["rel_score"] == pytest.approx((1 + (1 / 3 + 0.5) / 2) / 2)
    # Binary de: at gold T T T F vs F F F F → 0.5; isAt 0.5.
    assert scores["rel_binary_score"] == pytest.approx((1 + 0.5) / 2)


def test_registered_scorer_matches_by_ids_and_tolerates_missing(blank_nlps, hipe_records):
    record = hipe_records["fr"]
    eg = _example(blank_nlps["fr"], record, [(p["at"], p["isAt"]) for p in record["sampled_pairs"]])
    relations = eg.predicted._.dgemma_relations
    for rel in relations:
        rel.pair_index = None  # e.g. relations found on raw text: matched by entity ids
    eg.predicted._.dgemma_relations = list(reversed(relations))[:-1]  # one gold pair has no prediction
    scores = make_relations_scorer()([eg])
    # Missing (fr-dupont, fr-paris) = TRUE/TRUE → FALSE/FALSE.
    # at: gold T T P F → pred F T P F: TRUE 1/2, PROBABLE 1, FALSE 1 → 2.5/3; isAt: T 0/1, F 3/3 → 0.5
    assert scores["rel_at_macro_recall"] == pytest.approx(2.5 / 3)
    assert scores["rel_isat_macro_recall"] == pytest.approx(0.5)


def test_registered_scorer_without_gold_pairs(blank_nlps):
    doc = blank_nlps["en"]("No pairs here.")
    scores = make_relations_scorer()([Example(doc, doc)])
    assert scores["rel_score"] == 0.0
    assert scores["rel_per_lang"] == {}


def test_non_string_labels_do_not_crash():
    gold = [_doc("d1", [("TRUE", "TRUE"), ("FALSE", "FALSE")])]
    pred = [_doc("d1", [(1, True), ("FALSE", "FALSE")])]
    result = score_documents(gold, pred)
    assert result["at"] == pytest.approx((0 + 1 + 0) / 3)  # TRUE 0, FALSE 1, "1" 0
    assert result["isAt"] == pytest.approx((0 + 1 + 0) / 3)  # "True" is not "TRUE"


_pair_labels = st.tuples(st.sampled_from(AT), st.sampled_from(["TRUE", "FALSE"]))
_prediction = st.one_of(st.none(), st.tuples(st.sampled_from(AT + [None]), st.sampled_from(["TRUE", "FALSE", None])))


@settings(max_examples=100, deadline=None)
@given(st.lists(st.lists(st.tuples(_pair_labels, _prediction), min_size=1, max_size=5), min_size=1, max_size=5), st.randoms())
def test_score_documents_matches_sklearn_on_shuffled_partial_predictions(docs, rnd):
    """Predictions in any order, some pairs missing (None), some labels null."""
    gold, pred, y_true_at, y_pred_at, y_true_is, y_pred_is = [], [], [], [], [], []
    for d, items in enumerate(docs):
        gold.append(_doc(f"d{d}", [g for g, _ in items]))
        kept = [(i, p) for i, (_, p) in enumerate(items) if p is not None]
        rnd.shuffle(kept)
        pred.append({"document_id": f"d{d}", "sampled_pairs": [
            {"pers_entity_id": f"p{i}", "loc_entity_id": f"l{i}", "at": p[0], "isAt": p[1]} for i, p in kept]})
        for (g_at, g_is), p in items:
            p_at, p_is = p if p is not None else (None, None)
            y_true_at.append(g_at)
            y_pred_at.append(p_at or "FALSE")
            y_true_is.append(g_is)
            y_pred_is.append(p_is or "FALSE")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UndefinedMetricWarning)
        at = recall_score(y_true_at, y_pred_at, average="macro", zero_division=0)
        is_at = recall_score(y_true_is, y_pred_is, average="macro", zero_division=0)
    result = score_documents(gold, pred)
    assert result["at"] == pytest.approx(at)
    assert result["isAt"] == pytest.approx(is_at)
    assert result["mean"] == pytest.approx((at + is_at) / 2)


# --- dgemma evaluate refuses files that do not hold the same documents and pairs (issue 17, item 6)


def _files(tmp_path, gold, pred):
    paths = []
    for name, records in (("gold.jsonl", gold), ("pred.jsonl", pred)):
        path = tmp_path / name
        path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf8")
        paths.append(path)
    return paths


def test_evaluate_refuses_documents_of_another_file(tmp_path, hipe_records):
    gold, pred = _files(tmp_path, [hipe_records["en"]], [hipe_records["de"]])
    with pytest.raises(InputError, match=r"E066.*1 of its 1 document\(s\) are not in gold.jsonl, e.g. 'test-de") as err:
        evaluate_files([gold], [pred])
    assert err.value.file == str(pred)
    result = CliRunner().invoke(app, ["evaluate", str(gold), str(pred)])
    assert result.exit_code == 2 and "[E066]" in result.output and "Traceback" not in result.output


def test_evaluate_refuses_renamed_or_missing_pairs(tmp_path, hipe_records):
    renamed = copy.deepcopy(hipe_records["en"])
    renamed["sampled_pairs"][2]["loc_entity_id"] = "en-dublin-2"
    gold, pred = _files(tmp_path, [hipe_records["en"]], [renamed])
    with pytest.raises(InputError, match=r"E067.*1 of its 6 pair\(s\) are not in gold.jsonl.*\(en-smith, en-dublin-2\)"):
        evaluate_files([gold], [pred])
    fewer = copy.deepcopy(hipe_records["en"])
    del fewer["sampled_pairs"][3:]
    gold, pred = _files(tmp_path, [hipe_records["en"]], [fewer])
    with pytest.raises(InputError, match=r"E067.*3 of its 6 pair\(s\) are not in pred.jsonl") as err:
        evaluate_files([gold], [pred])
    assert err.value.file == str(gold)


def test_evaluate_allow_missing_scores_missing_predictions_as_false(tmp_path, hipe_records):
    fewer = copy.deepcopy(hipe_records["en"])
    del fewer["sampled_pairs"][3:]
    gold, pred = _files(tmp_path, [hipe_records["en"], hipe_records["de"]], [fewer])
    entry = evaluate_files([gold], [pred], allow_missing=True)["files"][0]
    assert (entry["n_missing_docs"], entry["n_missing_pairs"]) == (1, 3 + len(hipe_records["de"]["sampled_pairs"]))
    official = score_documents([hipe_records["en"], hipe_records["de"]], [fewer])  # the official reading
    assert entry["mean"] == official["mean"]
    result = CliRunner().invoke(app, ["evaluate", str(gold), str(pred), "--allow-missing", "--json"])
    assert result.exit_code == 0 and "W014" in result.stderr
    assert json.loads(result.stdout)["files"][0]["n_missing_pairs"] == entry["n_missing_pairs"]
    # Predictions of documents that are not in gold are refused even so.
    gold, pred = _files(tmp_path, [hipe_records["en"]], [hipe_records["en"], hipe_records["fr"]])
    with pytest.raises(InputError, match="E066"):
        evaluate_files([gold], [pred], allow_missing=True)
