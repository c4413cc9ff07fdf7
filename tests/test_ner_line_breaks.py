"""The recogniser's tok2vec reads across line breaks."""
import numpy
import pytest
import spacy
from thinc.api import Config


TOK2VEC = """
[model]
@architectures = "spacy_dgemma.Tok2VecAcrossLineBreaks.v1"

[model.embed]
@architectures = "spacy.MultiHashEmbed.v2"
width = 16
attrs = ["NORM", "SHAPE"]
rows = [100, 50]
include_static_vectors = false

[model.encode]
@architectures = "spacy.MaxoutWindowEncoder.v2"
width = 16
depth = 2
window_size = 1
maxout_pieces = 3
"""


@pytest.fixture
def tok2vec():
    return spacy.util.registry.resolve(Config().from_str(TOK2VEC))["model"]


def test_line_breaks_do_not_change_the_words_vectors(tok2vec):
    nlp = spacy.blank("de")
    broken, joined = nlp("Herr\nLandammann Hediger kam."), nlp("Herr Landammann Hediger kam.")
    assert [t.text for t in broken] == ["Herr", "\n", "Landammann", "Hediger", "kam", "."]
    tok2vec.initialize(X=[broken, joined])
    vectors = tok2vec.predict([broken, joined])
    assert [v.shape for v in vectors] == [(6, 16), (5, 16)]
    assert numpy.allclose(vectors[0][[0, 2, 3, 4, 5]], vectors[1], atol=1e-6)
    assert not vectors[0][1].any()  # the "\n" token itself gets a zero vector
    # A plain spacy.Tok2Vec.v2 with the same weights sees the "\n" in Landammann's window.
    plain = spacy.util.registry.architectures.get("spacy.Tok2Vec.v2")(tok2vec.get_ref("embed"), tok2vec.get_ref("encode"))
    assert not numpy.allclose(plain.predict([broken])[0][2], vectors[0][2], atol=1e-6)


def test_gradients_reach_only_the_words(tok2vec):
    nlp = spacy.blank("en")
    docs = [nlp("Mr.\nSmith went\n\nto Paris"), nlp(""), nlp("\n")]
    tok2vec.initialize(X=docs)
    outputs, backprop = tok2vec.begin_update(docs)
    assert [o.shape[0] for o in outputs] == [len(d) for d in docs]
    backprop([numpy.ones_like(o) for o in outputs])
    tok2vec.finish_update(spacy.util.registry.optimizers.get("Adam.v1")(0.01))
    after = tok2vec.predict(docs)
    assert not numpy.allclose(after[0], outputs[0]) and not after[2].any()

