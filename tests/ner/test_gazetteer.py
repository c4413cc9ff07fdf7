"""The recogniser's name-list features: the vectors table, and the real gazetteer build (slow)."""
import numpy
import pytest
import spacy

from spacy_dgemma.ner.gazetteer import FEATURES, gazetteer_vectors, word_features
from spacy_dgemma.ner.pipeline import share_vectors


def test_words_share_one_row_per_feature_combination():
    vectors = gazetteer_vectors({"Lyon": {"city"}, "Nantes": {"city"}, "Paris": {"city", "large_city"}, "York": {"part_of_name"}})
    assert vectors.shape == (3, len(FEATURES)) and len(vectors.key2row) == 4
    assert vectors.find(key="Lyon") == vectors.find(key="Nantes") != vectors.find(key="Paris")
    expected = [name in ("city", "large_city") for name in FEATURES]
    assert numpy.array_equal(vectors[spacy.strings.StringStore().add("Paris")], expected)
    assert vectors.find(key="Rien") == -1


def test_share_vectors_refuses_other_vectors():
    nlp, source = spacy.blank("xx"), spacy.blank("xx")
    source.vocab.vectors = gazetteer_vectors({"Lyon": {"city"}})
    share_vectors(nlp, source)
    assert nlp.vocab.vectors.find(key="Lyon") >= 0
    other = spacy.blank("xx")
    other.vocab.vectors = gazetteer_vectors({"Bern": {"city"}})
    with pytest.raises(ValueError, match="E237"):
        share_vectors(other, source)


@pytest.mark.slow
def test_real_gazetteer_knows_historical_newspaper_places(tmp_path):
    from typer.testing import CliRunner

    from spacy_dgemma.cli import app

    features = word_features()
    assert {"city", "large_city"} <= features["Nizza"] and "city" in features["Stäfa"]
    assert "country_or_region" in features["Ungarn"] and "country_or_region" in features["Oesterreich"]
    assert "genitive" in features["Polens"] and "city" in features["PALERMO"]
    assert "given_name" in features["Friedrich"] and "surname" in features["Müller"]
    assert "Herr" not in features and "Stadtrat" not in features
    result = CliRunner().invoke(app, ["ner", "gazetteer", "--output", str(tmp_path / "gazetteer")])
    assert result.exit_code == 0, result.output
    assert spacy.load(tmp_path / "gazetteer").vocab.vectors.find(key="Adrianopel") >= 0
