"""The official HIPE-2026 metric, as a library function and a registered spaCy scorer.

Per relation (`at`, `isAt`): macro-averaged recall over its labels, with scikit-learn's
semantics (``recall_score(average="macro")``): the label set is the union of the labels seen
in gold and prediction, and a label that is only predicted counts with recall 0. A missing
document, a missing pair or a null label counts as FALSE. A file's score is the mean of the two
relations; a set of files is scored per (language) file and averaged over files. The binary
variant folds PROBABLE into TRUE in gold and prediction.

Only numpy is needed at runtime; scikit-learn is a test dependency.
"""
from collections import defaultdict
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

import numpy
from spacy.training import Example
from spacy.util import registry

from spacy_dgemma.errors import Errors, InputError
from spacy_dgemma.labels import label_or_false

# A pair's key: (document_id, pers_entity_id, loc_entity_id).
PairKey = Tuple[str, str, str]
# Labels of one pair: (at, isAt), nulls already read as FALSE.
PairLabels = Tuple[str, str]

SCORE_KEYS = ("at", "isAt", "mean", "at_binary", "isAt_binary", "binary_mean")


def macro_recall(gold: Sequence[Optional[str]], pred: Sequence[Optional[str]]) -> float:
    """Macro-averaged recall, as ``sklearn.metrics.recall_score(gold, pred, average="macro")``.

    gold / pred: labels of the same items, in the same order; None is read as FALSE.
    RETURNS: the mean over the labels in gold ∪ pred of TP / support; a label with no gold
        support counts 0. An empty input gives 0.0 (scikit-learn raises instead). Invalid
        labels (e.g. ``1``) count as labels of their own, so they never crash the metric.
    """
    if len(gold) != len(pred):
        raise ValueError(Errors.E064.format(n_gold=len(gold), n_pred=len(pred)))
    if not gold:
        return 0.0
    gold_arr = numpy.asarray([_label(g) for g in gold], dtype=object)
    pred_arr = numpy.asarray([_label(p) for p in pred], dtype=object)
    labels = sorted(set(gold_arr.tolist()) | set(pred_arr.tolist()))
    recalls = []
    for label in labels:
        is_gold = gold_arr == label
        support = int(is_gold.sum())
        hits = int((is_gold & (pred_arr == label)).sum())
        recalls.append(hits / support if support else 0.0)
    return float(numpy.mean(recalls))


def _label(label: Any) -> str:
    """A label as the metric reads it: null is FALSE; a non-string (invalid) label its str()."""
    return label_or_false(label) if label is None or isinstance(label, str) else str(label)


def fold_probable(label: Optional[str]) -> str:
    """The binary reading of an `at` label: PROBABLE counts as TRUE, null as FALSE."""
    label = _label(label)
    return "TRUE" if label == "PROBABLE" else label


def score_pairs(gold: Sequence[PairLabels], pred: Sequence[PairLabels]) -> Dict[str, float]:
    """The metric on aligned (at, isAt) label pairs: the keys of ``SCORE_KEYS``."""
    gold_at, gold_is_at = [g[0] for g in gold], [g[1] for g in gold]
    pred_at, pred_is_at = [p[0] for p in pred], [p[1] for p in pred]
    at = macro_recall(gold_at, pred_at)
    is_at = macro_recall(gold_is_at, pred_is_at)
    at_bin = macro_recall([fold_probable(x) for x in gold_at], [fold_probable(x) for x in pred_at])
    is_at_bin = macro_recall([fold_probable(x) for x in gold_is_at], [fold_probable(x) for x in pred_is_at])
    return {
        "at": at,
        "isAt": is_at,
        "mean": (at + is_at) / 2,
        "at_binary": at_bin,
        "isAt_binary": is_at_bin,
        "binary_mean": (at_bin + is_at_bin) / 2,
    }


def _keyed_labels(records: Iterable[Mapping[str, Any]]) -> Dict[Tuple[PairKey, int], PairLabels]:
    """(pair key, occurrence number) → labels, for the pairs of HIPE records.

    The occurrence number makes repeated keys within a document match in order.
    """
    keyed: Dict[Tuple[PairKey, int], PairLabels] = {}
    seen: Dict[PairKey, int] = defaultdict(int)
    for record in records:
        doc_id = record.get("document_id")
        for pair in record.get("sampled_pairs") or []:
            key = (doc_id, pair.get("pers_entity_id"), pair.get("loc_entity_id"))
            keyed[(key, seen[key])] = (_label(pair.get("at")), _label(pair.get("isAt")))
            seen[key] += 1
    return keyed


def align_records(
    gold_records: Iterable[Mapping[str, Any]], pred_records: Iterable[Mapping[str, Any]]
) -> Tuple[List[PairLabels], List[PairLabels], int]:
    """Gold and predicted labels of every gold pair, in gold order, and the number of documents.

    Pairs match on (document_id, pers_entity_id, loc_entity_id), in order for repeated keys.
    A gold pair without a prediction is predicted FALSE/FALSE; predicted pairs or documents that
    are not in gold are ignored.
    """
    gold_records = list(gold_records)
    gold = _keyed_labels(gold_records)
    pred = _keyed_labels(pred_records)
    missing: PairLabels = ("FALSE", "FALSE")
    gold_labels = list(gold.values())
    pred_labels = [pred.get(key, missing) for key in gold]
    return gold_labels, pred_labels, len(gold_records)


def score_documents(
    gold_records: Iterable[Mapping[str, Any]], pred_records: Iterable[Mapping[str, Any]]
) -> Dict[str, Any]:
    """Score the records of one (language) file, as the official HIPE-2026 scorer does.

    gold_records / pred_records: HIPE documents (dicts with ``document_id`` and
        ``sampled_pairs``), e.g. the parsed lines of a JSONL file.
    RETURNS: ``at``, ``isAt``, ``mean``, ``at_binary``, ``isAt_binary``, ``binary_mean``,
        ``n_docs`` (gold documents) and ``n_pairs`` (gold pairs).
    """
    gold, pred, n_docs = align_records(gold_records, pred_records)
    result: Dict[str, Any] = score_pairs(gold, pred)
    result["n_docs"] = n_docs
    result["n_pairs"] = len(gold)
    return result


def average_scores(per_file: Mapping[str, Mapping[str, Any]]) -> Dict[str, Any]:
    """Unweighted mean of the ``SCORE_KEYS`` over files, with summed counts (0.0 when empty)."""
    result: Dict[str, Any] = {
        key: float(numpy.mean([s[key] for s in per_file.values()])) if per_file else 0.0 for key in SCORE_KEYS
    }
    result["n_docs"] = sum(int(s.get("n_docs", 0)) for s in per_file.values())
    result["n_pairs"] = sum(int(s.get("n_pairs", 0)) for s in per_file.values())
    return result


def score_languages(
    gold_by_file: Mapping[str, Iterable[Mapping[str, Any]]],
    pred_by_file: Mapping[str, Iterable[Mapping[str, Any]]],
) -> Dict[str, Any]:
    """Score several files (one per language) and average over them.

    gold_by_file: name (e.g. language) → gold records of that file.
    pred_by_file: name → predicted records; a file missing here is scored as all FALSE.
    RETURNS: the mean ``SCORE_KEYS`` over files with summed counts, plus ``per_file``
        (name → the ``score_documents`` result).
    """
    per_file = {name: score_documents(gold, pred_by_file.get(name, [])) for name, gold in gold_by_file.items()}
    result = average_scores(per_file)
    result["per_file"] = per_file
    return result


def group_by_language(records: Iterable[Mapping[str, Any]]) -> Dict[str, List[Mapping[str, Any]]]:
    """Split HIPE records by their ``language`` field (input order kept within a language)."""
    groups: Dict[str, List[Mapping[str, Any]]] = defaultdict(list)
    for record in records:
        groups[record.get("language") or "xx"].append(record)
    return dict(groups)


def _example_records(i: int, eg: Example) -> Tuple[str, Dict[str, Any], Dict[str, Any]]:
    """Language, gold record and predicted record of one Example (doc id: its index)."""
    from spacy_dgemma.pipeline.records import relation_to_hipe_pair

    meta = eg.reference._.dgemma_hipe or {}
    lang = meta.get("language") or eg.reference.lang_
    doc_id = str(i)
    gold = {"document_id": doc_id, "sampled_pairs": list(eg.reference._.dgemma_hipe_pairs or [])}
    relations = sorted(
        eg.predicted._.dgemma_relations, key=lambda r: (r.pair_index is None, r.pair_index if r.pair_index is not None else 0)
    )
    pred = {"document_id": doc_id, "sampled_pairs": [relation_to_hipe_pair(r) for r in relations]}
    return lang, gold, pred


def score_relations(examples: Iterable[Example], **kwargs: Any) -> Dict[str, Any]:
    """The HIPE-2026 metric over Examples, per language and averaged over languages.

    The reference Docs carry the gold pairs in ``doc._.dgemma_hipe_pairs``; the predicted Docs carry
    ``doc._.dgemma_relations``, matched to gold pairs by (person id, place id). Examples without gold
    pairs are skipped. Scores are 0.0 when there is no gold pair at all.
    RETURNS: ``rel_score`` (mean over languages of the file score), ``rel_at_macro_recall``,
        ``rel_isat_macro_recall``, ``rel_binary_score`` and ``rel_per_lang`` (language → the
        ``score_documents`` result).
    """
    gold_by_lang: Dict[str, List[Dict[str, Any]]] = defaultdict(list)
    pred_by_lang: Dict[str, List[Dict[str, Any]]] = defaultdict(list)
    for i, eg in enumerate(examples):
        lang, gold, pred = _example_records(i, eg)
        if not gold["sampled_pairs"]:
            continue
        gold_by_lang[lang].append(gold)
        pred_by_lang[lang].append(pred)
    result = score_languages(gold_by_lang, pred_by_lang)
    return {
        "rel_score": result["mean"],
        "rel_at_macro_recall": result["at"],
        "rel_isat_macro_recall": result["isAt"],
        "rel_binary_score": result["binary_mean"],
        "rel_per_lang": result["per_file"],
    }


@registry.scorers("spacy_dgemma.relations_scorer.v1")
def make_relations_scorer() -> Callable[..., Dict[str, Any]]:
    """The scorer of ``dgemma_relations``: the official HIPE-2026 metric (see ``score_relations``)."""
    return score_relations


def evaluate_files(gold_files: List[Path], pred_files: List[Path], *, allow_missing: bool = False) -> Dict[str, Any]:
    """Score prediction files against gold files, paired in order, with the official metric.

    Each prediction file must hold the documents and pairs of its gold file: a document or a
    pair present on one side only stops the evaluation (InputError E066 / E067, naming the file
    and the first difference), since a wrong file, a wrong order or renamed ids would otherwise
    score quietly as all FALSE.
    allow_missing: score gold documents and pairs without a prediction as FALSE, as the official
        scorer does (counted in ``n_missing_docs`` / ``n_missing_pairs``); predictions that are
        not in gold still stop it.
    RETURNS: ``files`` (one entry per pair: gold, prediction, language, the ``score_documents``
        keys and the missing counts) and ``mean`` (the average over files).
    """
    if len(gold_files) != len(pred_files):
        raise InputError.of("E022", "evaluate", n=len(gold_files) + len(pred_files))
    gold = _records_by_file(gold_files)
    pred = _records_by_file(pred_files)
    files = []
    for gold_file, pred_file in zip(gold_files, pred_files):
        missing = check_same_pairs(gold_file, gold[gold_file], pred_file, pred[pred_file], allow_missing=allow_missing)
        languages = [r.get("language") for r in gold[gold_file]]
        language = max(set(languages), key=languages.count)
        scores = score_documents(gold[gold_file], pred[pred_file])
        files.append({"gold": str(gold_file), "prediction": str(pred_file), "language": language, **scores, **missing})
    mean = average_scores({str(i): entry for i, entry in enumerate(files)})
    return {"files": files, "mean": mean}


def check_same_pairs(
    gold_file: Path,
    gold_records: Sequence[Mapping[str, Any]],
    pred_file: Path,
    pred_records: Sequence[Mapping[str, Any]],
    *,
    allow_missing: bool = False,
) -> Dict[str, int]:
    """Check that a prediction file has the documents and pairs of its gold file.

    allow_missing: gold documents and pairs without a prediction are counted, not refused.
    RETURNS: ``n_missing_docs`` and ``n_missing_pairs`` (gold ones without a prediction).
    RAISES: InputError E066 for documents, E067 for pairs that are on one side only.
    """
    gold_docs = [r.get("document_id") for r in gold_records]
    pred_docs = [r.get("document_id") for r in pred_records]
    gold_doc_set, pred_doc_set = set(gold_docs), set(pred_docs)
    extra_docs = [d for d in pred_docs if d not in gold_doc_set]
    if extra_docs:
        raise InputError.of("E066", str(pred_file), n=len(extra_docs), total=len(pred_docs), other=gold_file.name, first=extra_docs[0])
    missing_docs = [d for d in gold_docs if d not in pred_doc_set]
    if missing_docs and not allow_missing:
        raise InputError.of("E066", str(gold_file), n=len(missing_docs), total=len(gold_docs), other=pred_file.name, first=missing_docs[0])
    gold_keys, pred_keys = list(_keyed_labels(gold_records)), list(_keyed_labels(pred_records))
    gold_key_set, pred_key_set = set(gold_keys), set(pred_keys)
    extra_pairs = [k for k in pred_keys if k not in gold_key_set]
    if extra_pairs:
        raise InputError.of("E067", str(pred_file), n=len(extra_pairs), total=len(pred_keys), other=gold_file.name, first=_pair_name(extra_pairs[0]))
    unpredicted = [k for k in gold_keys if k not in pred_key_set]
    missing_pairs = [k for k in unpredicted if k[0][0] in pred_doc_set]  # pairs of documents that were predicted
    if missing_pairs and not allow_missing:
        raise InputError.of("E067", str(gold_file), n=len(missing_pairs), total=len(gold_keys), other=pred_file.name, first=_pair_name(missing_pairs[0]))
    return {"n_missing_docs": len(missing_docs), "n_missing_pairs": len(unpredicted)}


def _pair_name(key: Tuple[PairKey, int]) -> str:
    (doc_id, person, place), occurrence = key
    repeat = f" (occurrence {occurrence + 1})" if occurrence else ""
    return f"document {doc_id!r}: pair ({person}, {place}){repeat}"


def _records_by_file(files: List[Path]) -> Dict[Path, List[Dict[str, Any]]]:
    """The records of each file, read and checked together (document ids unique across them)."""
    from spacy_dgemma.hipe.read import iter_records

    records: Dict[Path, List[Dict[str, Any]]] = {file: [] for file in files}
    for item in iter_records(files):
        records[item.file].append(item.record)
    return records
