"""The label sets of the HIPE-2026 relations, in the column order models use."""
import math
from typing import Dict, Optional, Tuple

AT_LABELS: Tuple[str, ...] = ("TRUE", "PROBABLE", "FALSE")
IS_AT_LABELS: Tuple[str, ...] = ("TRUE", "FALSE")
# A model's score matrix has these columns: the `at` distribution, then the `isAt` one.
SCORE_COLUMNS: Tuple[str, ...] = tuple(f"at_{label}" for label in AT_LABELS) + tuple(
    f"isAt_{label}" for label in IS_AT_LABELS
)
N_AT = len(AT_LABELS)
N_IS_AT = len(IS_AT_LABELS)
# The (at, isAt) answers a consistent decision may give: all but isAt TRUE with at FALSE.
CONSISTENT_LABEL_PAIRS: Tuple[Tuple[str, str], ...] = tuple(
    (a, b) for a in AT_LABELS for b in IS_AT_LABELS if (a, b) != ("FALSE", "TRUE")
)


def label_or_false(label: Optional[str]) -> str:
    """Return the label, reading a missing (null) label as FALSE, as the official metric does."""
    return "FALSE" if label is None else label


def scores_to_dicts(row) -> Tuple[Dict[str, float], Dict[str, float]]:
    """Split one score row into an `at` and an `isAt` label→score dict."""
    at = {label: float(row[i]) for i, label in enumerate(AT_LABELS)}
    is_at = {label: float(row[N_AT + i]) for i, label in enumerate(IS_AT_LABELS)}
    return at, is_at


def decide_labels(
    at_scores: Dict[str, float],
    is_at_scores: Dict[str, float],
    consistent: bool = True,
    offsets: Optional[Dict[str, float]] = None,
) -> Tuple[str, str]:
    """The (at, isAt) labels of one pair from its two score distributions.

    consistent: never answer isAt TRUE with at FALSE (someone there at publication time has been
        there; no gold pair of the train set has that pair of labels): the best-scoring pair of
        labels by the product of the two scores, that one excluded. Otherwise each relation's
        best label on its own.
    offsets: log-score offsets per score column (``"at_FALSE": -0.2`` multiplies the `at` FALSE
        score by e^-0.2 before deciding): decision thresholds for the macro-recall metric. The
        scores themselves are not changed.
    """
    if offsets:
        at_scores = {k: v * math.exp(offsets.get(f"at_{k}", 0.0)) for k, v in at_scores.items()}
        is_at_scores = {k: v * math.exp(offsets.get(f"isAt_{k}", 0.0)) for k, v in is_at_scores.items()}
    if not consistent:
        return max(at_scores, key=at_scores.get), max(is_at_scores, key=is_at_scores.get)
    return max(CONSISTENT_LABEL_PAIRS, key=lambda ab: at_scores[ab[0]] * is_at_scores[ab[1]])


def check_offsets(offsets: Dict[str, float]) -> Dict[str, float]:
    """`offsets` as floats, each key a score column.

    RAISES: ValueError naming an unknown key and the known ones.
    """
    unknown = sorted(set(offsets) - set(SCORE_COLUMNS))
    if unknown:
        raise ValueError(f"decision_offsets: unknown score column(s) {', '.join(unknown)}; use {', '.join(SCORE_COLUMNS)}")
    return {key: float(value) for key, value in offsets.items()}
