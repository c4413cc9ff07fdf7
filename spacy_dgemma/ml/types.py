"""The contract every relation model of ``dgemma_relations`` follows.

A relation model is a thinc ``Model[List[DocPairs], RelationScores]``: for a batch of Docs
with their candidate pairs it returns one score row per pair (all pairs of all Docs, in
order), with the columns of ``labels.SCORE_COLUMNS`` (the `at` distribution over TRUE,
PROBABLE, FALSE, then the `isAt` distribution over TRUE, FALSE), and optionally one pair of
explanations per row. A trainable model's backprop takes the gradient of the score matrix.
"""
from dataclasses import dataclass
from typing import List, Optional, Tuple

from spacy.tokens import Doc
from thinc.types import Floats2d

from spacy_dgemma.candidates.pairs import CandidatePair

DocPairs = Tuple[Doc, List[CandidatePair]]
# (at explanation, isAt explanation); either may be None.
Explanation = Tuple[Optional[str], Optional[str]]


@dataclass
class RelationScores:
    scores: Floats2d
    explanations: Optional[List[Explanation]] = None
