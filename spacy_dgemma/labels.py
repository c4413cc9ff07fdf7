"""The label sets of the HIPE-2026 relations, in the column order models use."""
import math
from typing import Any, Dict, Optional, Tuple

from spacy_dgemma.errors import Errors

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
    """`offsets` as floats, each key a score column and each value a finite number.

    RAISES: ValueError E061 naming an unknown key and the known ones; E060 for a value that is
        not a finite number.
    """
    unknown = sorted(set(offsets) - set(SCORE_COLUMNS))
    if unknown:
        raise ValueError(Errors.E061.format(unknown=", ".join(unknown), known=", ".join(SCORE_COLUMNS)))
    for key, value in offsets.items():
        check_setting(
            f"decision_offsets[{key!r}]", value, is_number(value) and math.isfinite(value), "a finite number (a log-score offset)"
        )
    return {key: float(value) for key, value in offsets.items()}


def is_number(value: Any) -> bool:
    """True for an int or float that is not a bool."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def check_setting(name: str, value: Any, valid: bool, expected: str) -> None:
    """Reject a nonsensical setting of the component or its registered functions.

    name: the setting as the config names it (e.g. ``max_pairs``).
    value: the value given.
    valid: whether the value is acceptable.
    expected: what is acceptable, in words ("an integer >= 1").
    RAISES: ValueError E060 when not `valid`.
    """
    if not valid:
        raise ValueError(Errors.E060.format(name=name, expected=expected, value=value))
