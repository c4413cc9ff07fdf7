"""Precision/recall/F1 of the recogniser per language (and dataset), exact span and type.

Only persons and places are scored (`SCORED_LABELS`): the recogniser also learns organisations,
which count as "outside" here, as in the HIPE-2022 pers/loc evaluation.
"""
from collections import defaultdict
from pathlib import Path
from typing import Any, Callable, Collection, Dict, Iterable, List, Union

from spacy.language import Language
from spacy.scorer import PRFScore
from spacy.tokens import Doc, DocBin
from spacy.training import Example
from spacy.util import registry

from spacy_dgemma.ner.hipe2022 import USER_DATA_KEY

Scores = Dict[str, Dict[str, float]]  # group → {"p", "r", "f", "pers_f", ...}
SCORED_LABELS = ("pers", "loc")


def _counts(examples: List[Example], labels: Collection[str] = SCORED_LABELS) -> Dict[str, PRFScore]:
    """tp/fp/fn per type in `labels`, exact span and type, as ``spacy.scorer.get_ner_prf`` counts
    them: a prediction over tokens whose gold annotation is missing counts neither way."""
    per_type: Dict[str, PRFScore] = defaultdict(PRFScore)
    for eg in examples:
        golds = {(e.label_, e.start, e.end) for e in eg.y.ents if e.label_ in labels}
        for pred in eg.x.ents:
            if pred.label_ not in labels:
                continue
            indices = eg.alignment.x2y[pred.start : pred.end]
            if not len(indices):
                per_type[pred.label_].fp += 1
                continue
            gold_span = eg.y[indices[0] : indices[-1] + 1]
            if any(token.ent_iob == 0 for token in gold_span):
                continue
            key = (pred.label_, int(indices[0]), int(indices[-1]) + 1)
            if key in golds:
                per_type[pred.label_].tp += 1
                golds.remove(key)
            else:
                per_type[pred.label_].fp += 1
        for label, _, _ in golds:
            per_type[label].fn += 1
    return per_type


def _total(per_type: Dict[str, PRFScore]) -> PRFScore:
    """tp/fp/fn summed over the types (micro average)."""
    total = PRFScore()
    for prf in per_type.values():
        total += prf
    return total


def _prf(examples: List[Example]) -> Dict[str, float]:
    """Micro P/R/F over all types and per type."""
    per_type = _counts(examples)
    total = _total(per_type)
    tp, fp, fn = total.tp, total.fp, total.fn
    p = tp / (tp + fp) if tp + fp else 0.0
    r = tp / (tp + fn) if tp + fn else 0.0
    out = {"p": p, "r": r, "f": 2 * p * r / (p + r) if p + r else 0.0, "n_gold": float(tp + fn)}
    for label, prf in sorted(per_type.items()):
        out[f"{label}_p"], out[f"{label}_r"], out[f"{label}_f"] = prf.precision, prf.recall, prf.fscore
        out[f"{label}_n_gold"] = float(prf.tp + prf.fn)
    return out


@registry.scorers("spacy_dgemma.ner_scorer.v1")
def make_ner_scorer(labels: List[str] = list(SCORED_LABELS)) -> Callable[..., Dict[str, Any]]:
    """spaCy's ``ents_p/r/f`` and ``ents_per_type`` over `labels` only: what picks model-best."""

    def score(examples: Iterable[Example], **kwargs) -> Dict[str, Any]:
        per_type = _counts(list(examples), labels)
        totals = _total(per_type)
        return {
            "ents_p": totals.precision,
            "ents_r": totals.recall,
            "ents_f": totals.fscore,
            "ents_per_type": {label: prf.to_dict() for label, prf in per_type.items()},
        }

    return score


def evaluate_ner(nlp: Language, gold_docs: Iterable[Doc], batch_size: int = 32) -> Scores:
    """Scores of `nlp`'s entities against gold Docs, overall, per language and per language/dataset.

    gold_docs: Docs with gold ``doc.ents`` and ``user_data["hipe2022"]`` (from `convert_hipe2022`).
    RETURNS: group name ("all", "de", "de/newseye", ...) → scores.
    """
    gold_docs = list(gold_docs)
    predicted = nlp.pipe((nlp.make_doc(d.text) for d in gold_docs), batch_size=batch_size)
    groups: Dict[str, List[Example]] = defaultdict(list)
    for pred, gold in zip(predicted, gold_docs):
        meta = gold.user_data.get(USER_DATA_KEY, {})
        example = Example(pred, gold)
        groups["all"].append(example)
        lang = meta.get("language") or "unknown"
        groups[lang].append(example)
        groups[f"{lang}/{meta.get('dataset') or 'unknown'}"].append(example)
    return {name: _prf(examples) for name, examples in sorted(groups.items())}


def evaluate_ner_files(nlp: Language, paths: Iterable[Union[str, Path]]) -> Scores:
    """`evaluate_ner` on the Docs of DocBin files (``heldout.spacy`` from `dgemma ner convert`)."""
    docs: List[Doc] = []
    for path in paths:
        docs.extend(DocBin(store_user_data=True).from_disk(path).get_docs(nlp.vocab))
    return evaluate_ner(nlp, docs)


def grouping_scores(docs: Iterable[Doc], grouper, labels: Dict[str, str] = None) -> Dict[str, float]:
    """Pairwise precision/recall/F1 of a grouping function against Wikidata links.

    Within each document, two gold mentions (``doc.ents`` with a QID in ``kb_id_``) of the same
    kind are the same entity when their QIDs are equal; the grouper says so when it gives
    them the same id. Counted over all mention pairs of all documents.
    labels: entity label → kind (default pers → person, loc → place).
    """
    labels = labels or {"pers": "person", "loc": "place"}
    tp = fp = fn = 0
    for doc in docs:
        for label, kind in labels.items():
            mentions = [e for e in doc.ents if e.label_ == label and e.kb_id_]
            ids = grouper(doc, mentions, kind)
            for i in range(len(mentions)):
                for j in range(i + 1, len(mentions)):
                    same_gold = mentions[i].kb_id_ == mentions[j].kb_id_
                    same_pred = ids[i] == ids[j]
                    tp += same_gold and same_pred
                    fp += same_pred and not same_gold
                    fn += same_gold and not same_pred
    p = tp / (tp + fp) if tp + fp else 0.0
    r = tp / (tp + fn) if tp + fn else 0.0
    return {"p": p, "r": r, "f": 2 * p * r / (p + r) if p + r else 0.0, "gold_pairs": float(tp + fn)}
