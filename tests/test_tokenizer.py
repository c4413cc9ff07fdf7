"""spacy_dgemma.Tokenizer.v1: spaCy's rules plus French elision, as the HIPE-2022 data tokenizes."""
from pathlib import Path

import pytest
import spacy
from spacy.util import load_config

import spacy_dgemma  # noqa: F401  (registers the tokenizer)


def _blank(split_elision: bool = True, split_glued: bool = False):
    tokenizer = {"@tokenizers": "spacy_dgemma.Tokenizer.v1", "split_elision": split_elision, "split_glued": split_glued}
    config = {"nlp": {"tokenizer": tokenizer}}
    return spacy.blank("xx", config=config)


@pytest.mark.parametrize(
    "text,tokens",
    [
        ("l'Allemagne", ["l'", "Allemagne"]),
        ("d'Europe,", ["d'", "Europe", ","]),
        ("(L'Opéra)", ["(", "L'", "Opéra", ")"]),
        ("qu'il jusqu'à", ["qu'", "il", "jusqu'", "à"]),
        ("l’Italie", ["l’", "Italie"]),
        ("aujourd'hui", ["aujourd'hui"]),
        ("O'Brien", ["O'Brien"]),
        ("don't", ["don't"]),
        ("d'1870", ["d'1870"]),
    ],
)
def test_splits_french_elision_only(text, tokens):
    assert [t.text for t in _blank()(text)] == tokens


def test_split_elision_false_is_spacys_tokenizer():
    text = "l'Allemagne et d'Europe (Mr. Gladstone's)"
    assert [t.text for t in _blank(split_elision=False)(text)] == [t.text for t in spacy.blank("xx")(text)]


@pytest.mark.parametrize(
    "text,tokens",
    [
        ("contre Napoléon.13 octobre", ["contre", "Napoléon", ".", "13", "octobre"]),
        ("SUISSE.Le direct", ["SUISSE", ".", "Le", "direct"]),
        ("Bengal.—Accounts", ["Bengal", ".", "—", "Accounts"]),
        ("Aldobrandi(Italie),", ["Aldobrandi", "(", "Italie", ")", ","]),
        ("U.S.A. et M. Dupont", ["U.S.A.", "et", "M.", "Dupont"]),
        ("le 3.12.1870 à 10.30", ["le", "3.12.1870", "à", "10.30"]),
        ("www.example.org", ["www.example.org"]),
    ],
)
def test_split_glued_words_only(text, tokens):
    assert [t.text for t in _blank(split_glued=True)(text)] == tokens


def test_split_glued_is_off_by_default():
    assert [t.text for t in _blank()("SUISSE.Le")] == ["SUISSE.Le"]


def test_rules_survive_to_disk(tmp_path):
    _blank(split_glued=True).to_disk(tmp_path / "nlp")
    assert [t.text for t in spacy.load(tmp_path / "nlp")("l'Allemagne.Le")] == ["l'", "Allemagne", ".", "Le"]


@pytest.mark.parametrize("cfg", ["training/compact.cfg", "training/ner.cfg"])
def test_training_configs_use_it(cfg):
    config = load_config(Path(__file__).resolve().parents[1] / cfg)
    assert config["nlp"]["tokenizer"]["@tokenizers"] == "spacy_dgemma.Tokenizer.v1"
    assert config["nlp"]["tokenizer"]["split_glued"] is True
