"""The label sets of the HIPE-2026 relations, in the column order models use."""
from typing import Dict, Optional, Tuple

AT_LABELS: Tuple[str, ...] = ("TRUE", "PROBABLE", "FALSE")
IS_AT_LABELS: Tuple[str, ...] = ("TRUE", "FALSE")
# A model's score matrix has these columns: the `at` distribution, then the `isAt` one.
SCORE_COLUMNS: Tuple[str, ...] = tuple(f"at_{l}" for l in AT_LABELS) + tuple(
    f"isAt_{l}" for l in IS_AT_LABELS
)
N_AT = len(AT_LABELS)
N_IS_AT = len(IS_AT_LABELS)


def label_or_false(label: Optional[str]) -> str:
    """Return the label, reading a missing (null) label as FALSE, as the official metric does."""
    return "FALSE" if label is None else label


def scores_to_dicts(row) -> Tuple[Dict[str, float], Dict[str, float]]:
    """Split one score row into an `at` and an `isAt` label→score dict."""
    at = {label: float(row[i]) for i, label in enumerate(AT_LABELS)}
    is_at = {label: float(row[N_AT + i]) for i, label in enumerate(IS_AT_LABELS)}
    return at, is_at
