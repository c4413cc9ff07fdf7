"""How well the recogniser finds persons and places in raw OCR text: the project's NER metric.

`evaluate_raw_text` scores a pipeline as ``../shared/tools/ner_eval.py`` does: each document of a
HIPE-2022 TSV file is rebuilt as the text a user has (`hipe2022.printed_text`: the tokens with
their spacing, line breaks kept, line-end hyphenation as printed), the pipeline reads that text
through its own tokenizer, and a predicted entity counts when its character span and type match
a gold one exactly. Persons and places only (streets and buildings are places); topres19th
annotates places only, so only places are scored there. Micro P/R/F1 per file and per language;
the headline is the mean F1 over the languages. The errors are sorted by kind, to show where
the F1 is lost.

`make_ner_scorer` is what ``spacy train`` reports and picks model-best by: the same exact
character match on the training corpus's gold Docs, with predictions over tokens whose gold
annotation is missing (partially annotated documents) counted neither way.
"""
import re
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Optional, Set, Tuple, Union

from spacy.language import Language
from spacy.scorer import PRFScore
from spacy.tokens import Doc
from spacy.training import Example
from spacy.util import registry

from spacy_dgemma.errors import InputError
from spacy_dgemma.ner.hipe2022 import NerDocument, printed_text, read_hipe2022

SCORED_LABELS = ("pers", "loc")
# HIPE-2022 coarse types (any case) → scored kind; streets and buildings are places (topres19th).
GOLD_KINDS: Dict[str, str] = {"pers": "pers", "per": "pers", "loc": "loc", "building": "loc", "street": "loc"}
# Datasets that annotate places only: predicted and gold persons are left out there.
PLACES_ONLY = ("topres19th",)
_FILE_LANGUAGE = re.compile(r"-(de|en|fr)\.tsv$")
Entity = Tuple[int, int, str]  # start char, end char, kind
# Why a prediction is wrong (fp_*) or a gold entity is not found (fn_*).
ERROR_KINDS = (
    "fp_wrong_type",  # the span of a gold entity, the other type
    "fp_boundary",  # overlaps a gold entity of its type, other boundaries
    "fp_boundary_and_type",  # overlaps a gold entity of the other type, other boundaries
    "fp_unscored_type",  # overlaps only a gold entity of a type not scored (org, prod, time, ...)
    "fp_spurious",  # overlaps no gold entity
    "fn_unreachable",  # the pipeline's tokens cannot make the gold span (it starts or ends inside a token)
    "fn_overlapped",  # a prediction overlaps it (with other boundaries or type)
    "fn_missed",  # no prediction overlaps it
)


def predicted_kind(label: str) -> Optional[str]:
    """A pipeline label → scored kind, by its lower-case prefix: per… → pers, loc…/gpe… → loc."""
    label = label.lower()
    if label.startswith("per"):
        return "pers"
    if label.startswith(("loc", "gpe")):
        return "loc"
    return None


def file_language(path: Union[str, Path], documents: Iterable[NerDocument] = ()) -> str:
    """The language of a HIPE-2022 file: from its name (…-de.tsv), else from its documents.

    RAISES: InputError (E234) when neither names one.
    """
    match = _FILE_LANGUAGE.search(Path(path).name)
    if match:
        return match.group(1)
    for document in documents:
        if document.language:
            return document.language
    raise InputError.of("E234", str(path))


def gold_entities(document: NerDocument, places_only: bool = False) -> Tuple[str, Set[Entity], List[Tuple[int, int]]]:
    """The printed text of a document, its gold persons and places, and its other gold entities.

    places_only: leave the persons out (a dataset that annotates places only).
    RETURNS: (text, {(start, end, kind)}, [(start, end)] of entities of unscored types).
    """
    printed = printed_text(document, GOLD_KINDS)
    gold = {(s, e, k) for s, e, k in printed.entities if k in SCORED_LABELS and (k == "loc" or not places_only)}
    other = [(s, e) for s, e, k in printed.entities if k is None]
    return printed.text, gold, other


def predicted_entities(doc: Doc, places_only: bool = False) -> Set[Entity]:
    """The persons and places of ``doc.ents`` as (start char, end char, kind)."""
    found = {(e.start_char, e.end_char, predicted_kind(e.label_)) for e in doc.ents}
    return {(s, e, k) for s, e, k in found if k is not None and (k == "loc" or not places_only)}


class RawTextCounts:
    """True positives, predictions and gold entities per kind, and the errors by `ERROR_KINDS`."""

    def __init__(self) -> None:
        self.tp: Counter = Counter()
        self.n_pred: Counter = Counter()
        self.n_gold: Counter = Counter()
        self.errors: Counter = Counter()
        self.n_docs = 0

    def add(self, doc: Doc, gold: Set[Entity], pred: Set[Entity], other: List[Tuple[int, int]]) -> None:
        """Count one document: `doc` as the pipeline made it, its gold and predicted entities."""
        self.n_docs += 1
        for _, _, kind in gold:
            self.n_gold[kind] += 1
        for _, _, kind in pred:
            self.n_pred[kind] += 1
        for _, _, kind in gold & pred:
            self.tp[kind] += 1
        for entity in pred - gold:
            self.errors[_fp_kind(entity, gold, other)] += 1
        for entity in gold - pred:
            self.errors[_fn_kind(entity, pred, doc)] += 1

    def __iadd__(self, other: "RawTextCounts") -> "RawTextCounts":
        self.tp += other.tp
        self.n_pred += other.n_pred
        self.n_gold += other.n_gold
        self.errors += other.errors
        self.n_docs += other.n_docs
        return self

    def scores(self) -> Dict[str, Any]:
        """Micro P/R/F1 over persons and places, the same per kind, counts and errors."""
        out: Dict[str, Any] = _prf(sum(self.tp.values()), sum(self.n_pred.values()), sum(self.n_gold.values()))
        for kind in SCORED_LABELS:
            for key, value in _prf(self.tp[kind], self.n_pred[kind], self.n_gold[kind]).items():
                out[f"{kind}_{key}"] = value
        out["n_docs"] = self.n_docs
        out["errors"] = {kind: self.errors[kind] for kind in ERROR_KINDS}
        return out


def _prf(tp: int, n_pred: int, n_gold: int) -> Dict[str, Any]:
    p = tp / n_pred if n_pred else 0.0
    r = tp / n_gold if n_gold else 0.0
    return {"p": p, "r": r, "f": 2 * p * r / (p + r) if p + r else 0.0, "tp": tp, "n_pred": n_pred, "n_gold": n_gold}


def _overlaps(a: Tuple[int, int], b: Tuple[int, int]) -> bool:
    return a[0] < b[1] and b[0] < a[1]


def _fp_kind(entity: Entity, gold: Set[Entity], other: List[Tuple[int, int]]) -> str:
    start, end, kind = entity
    overlapping = [g for g in gold if _overlaps((start, end), g[:2])]
    if any(g[:2] == (start, end) for g in overlapping):
        return "fp_wrong_type"
    if any(g[2] == kind for g in overlapping):
        return "fp_boundary"
    if overlapping:
        return "fp_boundary_and_type"
    if any(_overlaps((start, end), o) for o in other):
        return "fp_unscored_type"
    return "fp_spurious"


def _fn_kind(entity: Entity, pred: Set[Entity], doc: Doc) -> str:
    start, end, _ = entity
    if doc.char_span(start, end) is None:
        return "fn_unreachable"
    if any(_overlaps((start, end), p[:2]) for p in pred):
        return "fn_overlapped"
    return "fn_missed"


def evaluate_raw_text(nlp: Language, paths: Iterable[Union[str, Path]], batch_size: int = 16) -> Dict[str, Any]:
    """Raw-text scores of `nlp`'s entities on HIPE-2022 TSV files (see the module docstring).

    nlp: a pipeline that sets ``doc.ents`` (labels read by `predicted_kind`).
    paths: HIPE-2022 TSV files (e.g. ``corpus/ner/heldout-dev/*.tsv``).
    batch_size: documents per ``nlp.pipe`` batch.
    RETURNS: {"mean_f": mean F1 over the languages, "languages": [...], "<lang>": scores,
        "all": scores, "files": {file name: scores}}; each scores dict has p, r, f, tp, n_pred,
        n_gold, the same per kind (``pers_f``, ``loc_n_gold``, ...), n_docs and errors.
    """
    by_file: Dict[str, RawTextCounts] = {}
    by_language: Dict[str, RawTextCounts] = defaultdict(RawTextCounts)
    for path in paths:
        path = Path(path)
        documents = list(read_hipe2022(path))
        language = file_language(path, documents)
        places_only = [any(name in path.name for name in PLACES_ONLY) or d.dataset in PLACES_ONLY for d in documents]
        golds = [gold_entities(d, only) for d, only in zip(documents, places_only)]
        counts = RawTextCounts()
        docs = nlp.pipe((text for text, _, _ in golds), batch_size=batch_size)
        for doc, (_, gold, other), only in zip(docs, golds, places_only):
            counts.add(doc, gold, predicted_entities(doc, only), other)
        by_file[path.name] = counts
        by_language[language] += counts
    total = RawTextCounts()
    for counts in by_language.values():
        total += counts
    languages = sorted(by_language)
    result: Dict[str, Any] = {lang: by_language[lang].scores() for lang in languages}
    result["all"] = total.scores()
    result["mean_f"] = sum(result[lang]["f"] for lang in languages) / len(languages) if languages else 0.0
    result["languages"] = languages
    result["files"] = {name: counts.scores() for name, counts in sorted(by_file.items())}
    return result


def _char_counts(examples: Iterable[Example], labels: Iterable[str] = SCORED_LABELS) -> Dict[str, PRFScore]:
    """tp/fp/fn per label in `labels`, exact character span and label; a prediction over a
    token whose gold annotation is missing counts neither way."""
    labels = set(labels)
    per_type: Dict[str, PRFScore] = defaultdict(PRFScore)
    for eg in examples:
        gold = eg.reference
        golds = {(e.start_char, e.end_char, e.label_) for e in gold.ents if e.label_ in labels}
        for ent in eg.predicted.ents:
            if ent.label_ not in labels:
                continue
            key = (ent.start_char, ent.end_char, ent.label_)
            if key in golds:
                per_type[ent.label_].tp += 1
                golds.remove(key)
                continue
            covered = gold.char_span(ent.start_char, ent.end_char, alignment_mode="expand")
            if covered is not None and any(token.ent_iob == 0 for token in covered):
                continue
            per_type[ent.label_].fp += 1
        for _, _, label in golds:
            per_type[label].fn += 1
    return per_type


@registry.scorers("spacy_dgemma.ner_scorer.v1")
def make_ner_scorer(labels: List[str] = list(SCORED_LABELS)) -> Callable[..., Dict[str, Any]]:
    """spaCy's ``ents_p/r/f`` and ``ents_per_type`` over `labels` only, by exact character span:
    what picks model-best."""

    def score(examples: Iterable[Example], **kwargs) -> Dict[str, Any]:
        per_type = _char_counts(examples, labels)
        totals = PRFScore()
        for prf in per_type.values():
            totals += prf
        return {
            "ents_p": totals.precision,
            "ents_r": totals.recall,
            "ents_f": totals.fscore,
            "ents_per_type": {label: prf.to_dict() for label, prf in per_type.items()},
        }

    return score


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
