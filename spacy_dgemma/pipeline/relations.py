"""The ``dgemma_relations`` component: (person, place) pairs → `at` / `isAt` with evidence."""
import warnings
from itertools import islice
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Optional, Tuple

import numpy
from spacy.language import Language
from spacy.pipeline import TrainablePipe
from spacy.tokens import Doc
from spacy.training import Example, validate_examples, validate_get_examples
from spacy.vocab import Vocab
from thinc.api import Config, Model, Optimizer, set_dropout_rate
from thinc.types import Floats2d

from spacy_dgemma.candidates.pairs import CandidatePair, PairGenerator
from spacy_dgemma.errors import Errors, Warnings
from spacy_dgemma.keys import LOSS_WEIGHT_KEY
from spacy_dgemma.labels import AT_LABELS, IS_AT_LABELS, N_AT, SCORE_COLUMNS, check_offsets, decide_labels, scores_to_dicts
from spacy_dgemma.ml.types import DocPairs, RelationScores
from spacy_dgemma.pipeline.records import Relation

DEFAULT_MODEL_CONFIG = """
[model]
@architectures = "spacy_dgemma.ProximityBaseline.v1"
"""
DEFAULT_MODEL = Config().from_str(DEFAULT_MODEL_CONFIG)["model"]


@Language.factory(
    "dgemma_relations",
    # Persons and places: the `persons` / `places` span groups of the HIPE reader, else doc.ents of
    # a recogniser earlier in the pipeline; `nlp.analyze_pipes()` warns when none sets doc.ents.
    requires=["doc.ents"],
    assigns=["doc._.dgemma_relations", "doc._.dgemma_relations_data", "doc.spans"],
    default_config={
        "model": DEFAULT_MODEL,
        "candidates": {"@misc": "spacy_dgemma.pair_candidates.v1"},
        "class_weighting": True,
        "consistent_labels": True,
        "decision_offsets": {},
        "scorer": {"@scorers": "spacy_dgemma.relations_scorer.v1"},
    },
    default_score_weights={
        "rel_score": 1.0,
        "rel_at_macro_recall": 0.0,
        "rel_isat_macro_recall": 0.0,
        "rel_binary_score": 0.0,
    },
)
def make_dgemma_relations(
    nlp: Language,
    name: str,
    model: Model[List[DocPairs], RelationScores],
    candidates: PairGenerator,
    class_weighting: bool,
    consistent_labels: bool,
    decision_offsets: Dict[str, float],
    scorer: Optional[Callable],
) -> "DgemmaRelations":
    """Create a ``dgemma_relations`` component.

    model: the relation model (compact classifier, rule baseline or generative student).
    candidates: function giving the candidate pairs of a Doc.
    class_weighting: weight the loss by inverse label frequency (the metric is macro recall).
    consistent_labels: never answer isAt TRUE with at FALSE (`labels.decide_labels`).
    decision_offsets: log-score offsets per score column applied when deciding the labels
        (e.g. ``{"at_FALSE": -0.2}``); the reported scores stay the model's.
    scorer: the scoring method (default: the official HIPE-2026 metric).
    """
    return DgemmaRelations(
        nlp.vocab,
        model,
        name,
        candidates=candidates,
        class_weighting=class_weighting,
        consistent_labels=consistent_labels,
        decision_offsets=decision_offsets,
        scorer=scorer,
    )


class DgemmaRelations(TrainablePipe):
    """Decide `at` and `isAt` for each candidate (person, place) pair of a Doc."""

    def __init__(
        self,
        vocab: Vocab,
        model: Model,
        name: str = "dgemma_relations",
        *,
        candidates: PairGenerator,
        class_weighting: bool = True,
        consistent_labels: bool = True,
        decision_offsets: Optional[Dict[str, float]] = None,
        scorer: Optional[Callable] = None,
    ) -> None:
        self.vocab = vocab
        self.model = model
        self.name = name
        self.candidates = candidates
        self.scorer = scorer
        self.consistent_labels = consistent_labels
        self.decision_offsets = check_offsets(decision_offsets or {})
        self.cfg: Dict = {
            "class_weighting": class_weighting,
            "at_weights": [1.0] * len(AT_LABELS),
            "is_at_weights": [1.0] * len(IS_AT_LABELS),
        }

    @property
    def labels(self) -> Tuple[str, ...]:
        return SCORE_COLUMNS

    def _doc_pairs(self, docs: Iterable[Doc]) -> List[DocPairs]:
        return [(doc, self.candidates(doc)) for doc in docs]

    def predict(self, docs: Iterable[Doc]) -> Tuple[List[DocPairs], RelationScores]:
        """Candidate pairs of each Doc and the model's scores for them (no side effects)."""
        doc_pairs = self._doc_pairs(docs)
        if not any(pairs for _, pairs in doc_pairs):
            return doc_pairs, RelationScores(numpy.zeros((0, len(SCORE_COLUMNS)), dtype="f"))
        return doc_pairs, self.model.predict(doc_pairs)

    def set_annotations(self, docs: Iterable[Doc], predictions: Tuple[List[DocPairs], RelationScores]) -> None:
        """Write ``doc._.dgemma_relations`` (and the visualisation span group)."""
        doc_pairs, output = predictions
        scores = self.model.ops.to_numpy(output.scores)
        n_pairs = sum(len(pairs) for _, pairs in doc_pairs)
        if scores.shape != (n_pairs, len(SCORE_COLUMNS)):
            raise ValueError(
                Errors.E040.format(model=self.model.name, shape=scores.shape, n_pairs=n_pairs, n_cols=len(SCORE_COLUMNS))
            )
        row = 0
        for doc, pairs in doc_pairs:
            relations = []
            for pair in pairs:
                explanation = output.explanations[row] if output.explanations else (None, None)
                relations.append(self._relation(pair, scores[row], explanation, self.consistent_labels, self.decision_offsets))
                row += 1
            doc._.dgemma_relations = relations

    @staticmethod
    def _relation(pair: CandidatePair, score_row, explanation, consistent: bool, offsets: Optional[Dict[str, float]] = None) -> Relation:
        at_scores, is_at_scores = scores_to_dicts(score_row)
        at, is_at = decide_labels(at_scores, is_at_scores, consistent, offsets)
        return Relation(
            person_id=pair.person_id,
            place_id=pair.place_id,
            person_spans=pair.person_spans,
            place_spans=pair.place_spans,
            at=at,
            is_at=is_at,
            at_explanation=explanation[0],
            is_at_explanation=explanation[1],
            at_scores=at_scores,
            is_at_scores=is_at_scores,
            pair_index=pair.pair_index,
            person_mentions=pair.person_mentions,
            place_mentions=pair.place_mentions,
        )

    def update(
        self,
        examples: Iterable[Example],
        *,
        drop: float = 0.0,
        sgd: Optional[Optimizer] = None,
        losses: Optional[Dict[str, float]] = None,
    ) -> Dict[str, float]:
        """Learn from a batch of examples whose reference Docs carry gold ``hipe_pairs``."""
        losses = {} if losses is None else losses
        losses.setdefault(self.name, 0.0)
        examples = list(examples)
        validate_examples(examples, "DgemmaRelations.update")
        doc_pairs = self._doc_pairs(eg.predicted for eg in examples)
        if not any(pairs for _, pairs in doc_pairs):
            return losses
        set_dropout_rate(self.model, drop)
        output, backprop = self.model.begin_update(doc_pairs)
        loss, d_scores = self.get_loss(examples, (doc_pairs, output))
        backprop(d_scores)
        if sgd is not None:
            self.finish_update(sgd)
        losses[self.name] += loss
        return losses

    def get_loss(self, examples: Iterable[Example], predictions: Tuple[List[DocPairs], RelationScores]) -> Tuple[float, Floats2d]:
        """Weighted cross-entropy of both softmax heads.

        Returns the loss and its gradient with respect to the heads' logits
        (``probabilities - truth``, weighted), which is what a softmax output layer's
        backprop expects. Pairs without a gold label get no gradient. Each pair's loss and
        gradient are scaled by its reference Doc's loss weight (``loss_weight``: 1.0 unless
        the reader set one, e.g. for silver documents); the mean is over labelled pairs.
        """
        doc_pairs, output = predictions
        examples = list(examples)
        probs = self.model.ops.to_numpy(output.scores)
        truth, mask = self._gold_matrix(examples, doc_pairs)
        doc_w = numpy.asarray(
            [loss_weight(eg) for eg, (_, pairs) in zip(examples, doc_pairs) for _ in pairs], dtype="f"
        ).reshape((-1, 1))
        at_w = numpy.asarray(self.cfg["at_weights"], dtype="f")
        is_at_w = numpy.asarray(self.cfg["is_at_weights"], dtype="f")
        row_w = numpy.stack(
            [(truth[:, :N_AT] * at_w).sum(1), (truth[:, N_AT:] * is_at_w).sum(1)], axis=1
        ) * mask * doc_w
        weights = numpy.concatenate(
            [numpy.repeat(row_w[:, :1], N_AT, axis=1), numpy.repeat(row_w[:, 1:], len(IS_AT_LABELS), axis=1)], axis=1
        )
        n = max(float(mask.sum()), 1.0)
        d_scores = (probs - truth) * weights / n
        loss = float(-(numpy.log(numpy.clip(probs, 1e-8, 1.0)) * truth * weights).sum() / n)
        return loss, self.model.ops.asarray2f(d_scores)

    def _gold_matrix(self, examples: Iterable[Example], doc_pairs: List[DocPairs]) -> Tuple[numpy.ndarray, numpy.ndarray]:
        """One-hot gold rows for every candidate pair, and a mask of pairs that have gold."""
        rows, mask = [], []
        for eg, (_, pairs) in zip(examples, doc_pairs):
            gold_pairs = eg.reference._.dgemma_hipe_pairs or []
            for pair in pairs:
                gold = gold_pairs[pair.pair_index] if pair.pair_index is not None and pair.pair_index < len(gold_pairs) else None
                row = numpy.zeros(len(SCORE_COLUMNS), dtype="f")
                if gold is not None and gold.get("at") in AT_LABELS and gold.get("isAt") in IS_AT_LABELS:
                    row[AT_LABELS.index(gold["at"])] = 1.0
                    row[N_AT + IS_AT_LABELS.index(gold["isAt"])] = 1.0
                    mask.append(1.0)
                else:
                    mask.append(0.0)
                rows.append(row)
        truth = numpy.asarray(rows, dtype="f").reshape((-1, len(SCORE_COLUMNS)))
        return truth, numpy.asarray(mask, dtype="f").reshape((-1, 1))

    def score(self, examples: Iterable[Example], **kwargs) -> Dict[str, Any]:
        """Score with the registered scorer (default: the official HIPE-2026 metric).

        An Example whose reference has gold pairs but whose predicted Doc carries no HIPE
        mentions (``spacy evaluate`` and spaCy's ``Corpus`` rebuild each Doc from its text, so
        the component saw neither persons nor places) is decided here on ``make_predicted``
        of its reference (the given mentions, labels removed), as ``dgemma evaluate`` does;
        W013 says how many.
        """
        from spacy_dgemma.hipe.corpus import make_predicted

        examples = list(examples)
        rebuilt = [
            i for i, eg in enumerate(examples)
            if eg.reference._.dgemma_hipe_pairs and eg.predicted._.dgemma_hipe_pairs is None
        ]
        if rebuilt:
            warnings.warn(Warnings.W013.format(n=len(rebuilt)))
            docs = [make_predicted(examples[i].reference) for i in rebuilt]
            self.set_annotations(docs, self.predict(docs))
            for i, doc in zip(rebuilt, docs):
                examples[i] = Example(doc, examples[i].reference)
        return super().score(examples, **kwargs)

    def initialize(
        self,
        get_examples: Callable[[], Iterable[Example]],
        *,
        nlp: Optional[Language] = None,
    ) -> None:
        """Initialise the model on a sample of examples and set the class weights."""
        validate_get_examples(get_examples, "DgemmaRelations.initialize")
        examples = list(get_examples())
        if self.cfg["class_weighting"]:
            self.cfg["at_weights"], self.cfg["is_at_weights"] = _inverse_frequency_weights(examples)
        sample = self._doc_pairs(eg.predicted for eg in islice(examples, 10))
        self.model.initialize(X=sample)

    # A model may keep files beside the component's config (the generative student's weights):
    # it offers them as an object with to_disk(folder) / from_disk(folder) in attrs["dgemma_files"].
    def to_disk(self, path, *, exclude: Iterable[str] = tuple()) -> None:
        super().to_disk(path, exclude=exclude)
        files = self.model.attrs.get("dgemma_files")
        if files is not None and "model" not in exclude:
            files.to_disk(Path(path))

    def from_disk(self, path, *, exclude: Iterable[str] = tuple()) -> "DgemmaRelations":
        super().from_disk(path, exclude=exclude)
        files = self.model.attrs.get("dgemma_files")
        if files is not None and "model" not in exclude:
            files.from_disk(Path(path))
        return self


def loss_weight(example: Example) -> float:
    """The loss weight of an Example: ``reference.user_data[LOSS_WEIGHT_KEY]``, default 1.0."""
    return float(example.reference.user_data.get(LOSS_WEIGHT_KEY, 1.0))


def _inverse_frequency_weights(examples: List[Example]) -> Tuple[List[float], List[float]]:
    """Per-label weights n / (k · count), so every label weighs the same in the loss.

    Counts are weighted by each Doc's loss weight (add-one smoothed).
    """
    at_counts = numpy.ones(len(AT_LABELS))
    is_at_counts = numpy.ones(len(IS_AT_LABELS))
    for eg in examples:
        weight = loss_weight(eg)
        for pair in eg.reference._.dgemma_hipe_pairs or []:
            if pair.get("at") in AT_LABELS:
                at_counts[AT_LABELS.index(pair["at"])] += weight
            if pair.get("isAt") in IS_AT_LABELS:
                is_at_counts[IS_AT_LABELS.index(pair["isAt"])] += weight
    at_w = at_counts.sum() / (len(AT_LABELS) * at_counts)
    is_at_w = is_at_counts.sum() / (len(IS_AT_LABELS) * is_at_counts)
    return [float(w) for w in at_w], [float(w) for w in is_at_w]
