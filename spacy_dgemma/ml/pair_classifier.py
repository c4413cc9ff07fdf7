"""The compact CPU student: a small trainable network for `at` / `isAt` of candidate pairs.

Per pair, token windows around the nearest person and place mentions, the text between them,
the place mention itself and the first line are embedded (hashed NORM, PREFIX, SUFFIX and
SHAPE, as spaCy's ``MultiHashEmbed``), mean- and max-pooled, joined with numeric features
(``pair_features``) and fed to a hidden layer and two softmax heads. No GPU, no vectors, a few
MB of weights.
"""
from typing import Callable, List, Optional, Sequence, Tuple

import numpy
from spacy.util import registry
from thinc.api import HashEmbed, Maxout, Model, Softmax, chain, concatenate, noop, reduce_max, reduce_mean
from thinc.types import Floats2d, Ragged

from spacy_dgemma.labels import N_AT, N_IS_AT, check_setting, is_number
from spacy_dgemma.ml.pair_features import N_BASELINE, N_NUMBERS, N_WINDOWS, TOKEN_ATTRS, PairFeatures, featurize
from spacy_dgemma.ml.types import DocPairs, Explanation, RelationScores


@registry.architectures("spacy_dgemma.PairClassifier.v1")
def build_pair_classifier(
    width: int = 64,
    embed_rows: int = 5000,
    hidden_width: int = 128,
    window: int = 4,
    max_between: int = 30,
    dropout: float = 0.1,
    baseline_features: bool = False,
) -> Model[List[DocPairs], RelationScores]:
    """Build the compact pair classifier.

    width: width of the token embeddings; 0: no token windows (the numbers only).
    embed_rows: rows of each hash embedding table.
    hidden_width: width of the hidden layer shared by both heads; 0: no hidden layer (the
        heads are linear softmax classifiers of the features).
    window: tokens taken left and right of each anchor mention.
    max_between: most tokens of the text between the two mentions (its start and end are kept).
    dropout: dropout rate of the embedding mixer and the hidden layer.
    baseline_features: also read the rule baseline's evidence tier, decision and cues
        (``pair_features.BASELINE_NAMES``) as numbers.
    RAISES: ValueError E060 for a negative width, window or length, no embedding rows, or a
        dropout outside [0, 1).
    """
    for name, value, least in (("width", width, 0), ("embed_rows", embed_rows, 1), ("hidden_width", hidden_width, 0),
                               ("window", window, 0), ("max_between", max_between, 0)):
        check_setting(name, value, isinstance(value, int) and not isinstance(value, bool) and value >= least, f"an integer >= {least}")
    check_setting("dropout", dropout, is_number(dropout) and 0.0 <= dropout < 1.0, "a number in [0, 1)")
    if width > 0:
        embed = chain(
            concatenate(*(HashEmbed(width, embed_rows, column=i, seed=11 + i) for i in range(len(TOKEN_ATTRS)))),
            Maxout(width, width * len(TOKEN_ATTRS), nP=3, normalize=True, dropout=dropout),
        )
        pool = concatenate(reduce_mean(), reduce_max())
    else:
        embed, pool = noop(), noop()
    n_in = (N_WINDOWS * 2 * width if width > 0 else 0) + N_NUMBERS + (N_BASELINE if baseline_features else 0)
    if hidden_width > 0:
        hidden = Maxout(hidden_width, n_in, nP=2, normalize=True, dropout=dropout)
        n_head = hidden_width
    else:
        hidden, n_head = noop(), n_in
    return Model(
        "pair_classifier",
        forward,
        init=init,
        layers=[embed, pool, hidden, Softmax(N_AT, n_head), Softmax(N_IS_AT, n_head)],
        attrs={
            "window": window,
            "max_between": max_between,
            "baseline_features": bool(baseline_features),
        },
        dims={"width": width},
    )


def init(model: Model, X: Optional[List[DocPairs]] = None, Y=None) -> None:
    """All dimensions are known at build time: initialise each layer."""
    for layer in model.layers:
        layer.initialize()


def forward(model: Model, doc_pairs: List[DocPairs], is_train: bool) -> Tuple[RelationScores, Callable]:
    """Score every pair of every Doc; the backprop takes the gradient of the score matrix."""
    embed, pool, hidden, at_head, is_at_head = model.layers
    ops = model.ops
    feats = featurize(doc_pairs, model.attrs["window"], model.attrs["max_between"], model.attrs.get("baseline_features", False))
    n_cols = N_AT + N_IS_AT
    if not feats:
        return RelationScores(ops.alloc2f(0, n_cols), []), lambda d_scores: []
    n = len(feats)
    numbers = ops.asarray2f(numpy.stack([f.numbers for f in feats]))
    use_windows = model.get_dim("width") > 0
    if use_windows:
        rows = [w for f in feats for w in f.windows]
        ids = ops.asarray(numpy.vstack(rows), dtype="uint64")
        lengths = ops.asarray1i([len(w) for w in rows])
        vectors, bp_embed = embed(ids, is_train)
        pooled, bp_pool = pool(Ragged(vectors, lengths), is_train)
        X = ops.xp.hstack([pooled.reshape((n, -1)), numbers])
        n_pooled = pooled.shape[1] * N_WINDOWS
    else:
        X = numbers
    H, bp_hidden = hidden(X, is_train)
    at, bp_at = at_head(H, is_train)
    is_at, bp_is_at = is_at_head(H, is_train)
    scores = ops.xp.hstack([at, is_at])

    def backprop(d_scores: Floats2d) -> List:
        dH = bp_at(d_scores[:, :N_AT]) + bp_is_at(d_scores[:, N_AT:])
        dX = bp_hidden(dH)
        if not use_windows:
            return []
        d_pooled = ops.xp.ascontiguousarray(dX[:, :n_pooled]).reshape((-1, pooled.shape[1]))
        bp_embed(bp_pool(d_pooled).dataXd)
        return []

    return RelationScores(scores, explanations(feats)), backprop


def explanations(feats: Sequence[PairFeatures]) -> List[Explanation]:
    """Evidence for each pair: the sentence where the person and place occur closest."""
    out: List[Explanation] = []
    for f in feats:
        text = f"Evidence: {f.evidence}" if f.evidence else None
        out.append((text, text))
    return out
