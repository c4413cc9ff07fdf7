"""A tok2vec whose context windows run across line breaks.

OCR'd newspaper text keeps its line ends, and spaCy makes each "\\n" a whitespace token: a
CNN window of two tokens then sees "Herr \\n Landammann" where the reader sees "Herr
Landammann", and names split over two lines lose half their context. This architecture is
`spacy.Tok2Vec.v2` (embed, then encode) with the whitespace tokens taken out between the two
steps: the encoder reads each document as if its lines were joined, and every whitespace token
gets a zero vector back, so the output still has one row per token of the Doc.
"""
from typing import List, Optional

import numpy
from spacy.attrs import IS_SPACE
from spacy.tokens import Doc
from spacy.util import registry
from thinc.api import Model
from thinc.types import Floats2d, Ints1d


@registry.architectures("spacy_dgemma.Tok2VecAcrossLineBreaks.v1")
def build_tok2vec_across_line_breaks(
    embed: Model[List[Doc], List[Floats2d]],
    encode: Model[List[Floats2d], List[Floats2d]],
) -> Model[List[Doc], List[Floats2d]]:
    """Embed every token, encode only the non-whitespace ones (same arguments as spacy.Tok2Vec.v2)."""
    model: Model[List[Doc], List[Floats2d]] = Model(
        "tok2vec_across_line_breaks",
        _forward,
        init=_init,
        layers=[embed, encode],
        refs={"embed": embed, "encode": encode},
        dims={"nO": encode.get_dim("nO") if encode.has_dim("nO") else None},
    )
    return model


def _kept_rows(model: Model, doc: Doc) -> Ints1d:
    is_space = doc.to_array([IS_SPACE]).reshape(-1) if len(doc) else numpy.zeros((0,), dtype="uint64")
    return model.ops.asarray1i(numpy.flatnonzero(is_space == 0).astype("int32"))


def _init(model: Model, X: Optional[List[Doc]] = None, Y=None) -> None:
    embed, encode = model.layers
    embed.initialize(X=X)
    if X is None:
        encode.initialize()
        return
    embedded = embed.predict(X)
    encode.initialize(X=[vectors[_kept_rows(model, doc)] for vectors, doc in zip(embedded, X)])


def _forward(model: Model, docs: List[Doc], is_train: bool):
    embed, encode = model.layers
    embedded, backprop_embed = embed(docs, is_train)
    rows = [_kept_rows(model, doc) for doc in docs]
    encoded, backprop_encode = encode([vectors[kept] for vectors, kept in zip(embedded, rows)], is_train)
    width = model.get_dim("nO")
    outputs = []
    for doc, kept, vectors in zip(docs, rows, encoded):
        output = model.ops.alloc2f(len(doc), width)
        output[kept] = vectors
        outputs.append(output)

    def backprop(d_outputs: List[Floats2d]) -> List[Doc]:
        d_encoded = [d_output[kept] for d_output, kept in zip(d_outputs, rows)]
        d_kept = backprop_encode(d_encoded)
        d_embedded = []
        for vectors, kept, d_vectors in zip(embedded, rows, d_kept):
            d_full = model.ops.alloc2f(*vectors.shape)
            d_full[kept] = d_vectors
            d_embedded.append(d_full)
        return backprop_embed(d_embedded)

    return outputs, backprop
