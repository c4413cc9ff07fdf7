"""spacy_dgemma.Tokenizer.v1 (spaCy's rules plus French elision and glued words) and v2 (OCR text as printed)."""
from pathlib import Path

import pytest
import spacy
from hypothesis import given, settings
from hypothesis import strategies as st
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


def test_compact_config_uses_it():
    config = load_config(Path(__file__).resolve().parents[1] / "training/compact.cfg")
    assert config["nlp"]["tokenizer"]["@tokenizers"] == "spacy_dgemma.Tokenizer.v1"
    assert config["nlp"]["tokenizer"]["split_glued"] is True


# --- spacy_dgemma.Tokenizer.v2: OCR text as printed


def _ocr(**settings):
    return spacy.blank("xx", config={"nlp": {"tokenizer": {"@tokenizers": "spacy_dgemma.Tokenizer.v2", **settings}}})


@pytest.mark.parametrize("cfg", ["training/ner.cfg", "training/ner_fast.cfg", "training/ner_tiny.cfg"])
def test_recogniser_configs_read_ocr_text(cfg):
    config = load_config(Path(__file__).resolve().parents[1] / cfg)
    assert config["nlp"]["tokenizer"]["@tokenizers"] == "spacy_dgemma.Tokenizer.v2"
    assert config["nlp"]["tokenizer"]["normalise_ocr"] is True and config["nlp"]["tokenizer"]["split_case"] is True


@pytest.mark.parametrize(
    "text,tokens,norms",
    [
        # A word hyphenated at a line end is one token of the original characters, read joined.
        ("nach Frank¬\nreich.", ["nach", "Frank¬\nreich", "."], ["nach", "frankreich", "."]),
        ("Ver-\nsailles", ["Ver-\nsailles"], ["versailles"]),
        ("Poin¬ \n caré", ["Poin¬ \n caré"], ["poincaré"]),
        # Long s, ligatures and soft hyphens.
        ("Dienſtag in Preußen", ["Dienſtag", "in", "Preußen"], ["dienstag", "in", "preußen"]),
        ("ﬁnden ﬂeißig Ka\u00adssel", ["ﬁnden", "ﬂeißig", "Ka\u00adssel"], ["finden", "fleißig", "kassel"]),
        # Fraktur hyphens.
        ("Neu=Braunschweig", ["Neu", "=", "Braunschweig"], ["neu", "-", "braunschweig"]),
        ("Braun⸗\nschweig", ["Braun⸗\nschweig"], ["braunschweig"]),
        # A dash at a line end that is not inside a word stays a token of its own.
        ("Paris -\nLondres", ["Paris", "-", "\n", "Londres"], ["paris", "-", "\n", "londres"]),
    ],
)
def test_ocr_forms_are_read_normalised_in_the_original_characters(text, tokens, norms):
    doc = _ocr()(text)
    assert doc.text == text
    assert [t.text for t in doc] == tokens
    assert [t.norm_ for t in doc] == norms


@pytest.mark.parametrize(
    "text,tokens",
    [
        ("gestern nachWien", ["gestern", "nach", "Wien"]),
        ("M.Gambetta,", ["M", ".", "Gambetta", ","]),
        ("Italien,über 12.Salzburg", ["Italien", ",", "über", "12", ".", "Salzburg"]),
        ("LondresLONDRES 1848Paris", ["Londres", "LONDRES", "1848", "Paris"]),
        ("U.S.A. le 3.12.1870 à 10.30", ["U.S.A.", "le", "3.12.1870", "à", "10.30"]),
        ("l'Allemagne", ["l'", "Allemagne"]),
    ],
)
def test_words_run_together_are_split(text, tokens):
    assert [t.text for t in _ocr()(text)] == tokens


def test_v2_without_its_additions_is_v1():
    text = "nachWien Frank¬\nreich SUISSE.Le l'Allemagne"
    plain = _ocr(split_case=False, normalise_ocr=False)
    assert [t.text for t in plain(text)] == [t.text for t in _blank(split_glued=True)(text)]


def test_an_entity_across_a_hyphenated_line_end_points_at_the_original_characters():
    nlp = _ocr()
    ruler = nlp.add_pipe("entity_ruler")
    ruler.add_patterns([{"label": "loc", "pattern": [{"NORM": "frankreich"}]}, {"label": "loc", "pattern": [{"NORM": "berlin"}]},
                        {"label": "pers", "pattern": [{"NORM": "gambetta"}]}])
    text = "Der Gesandte von Frank¬\nreich, Herr Gambetta, fuhr nach Berlin."
    doc = nlp(text)
    assert [(e.start_char, e.end_char, e.label_) for e in doc.ents] == [(17, 29, "loc"), (36, 44, "pers"), (56, 62, "loc")]
    assert [text[e.start_char : e.end_char] for e in doc.ents] == ["Frank¬\nreich", "Gambetta", "Berlin"]


def test_ocr_tokenizer_survives_to_disk_and_pickle(tmp_path):
    import pickle

    _ocr().to_disk(tmp_path / "nlp")
    for nlp in (spacy.load(tmp_path / "nlp"), pickle.loads(pickle.dumps(_ocr()))):
        assert [t.text for t in nlp("Frank¬\nreich nachWien")] == ["Frank¬\nreich", "nach", "Wien"]


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("aZ. -\n\t¬ſﬁﬃ\u00ad'’(1")), max_size=40))
def test_the_doc_text_is_always_the_input_text(text):
    doc = _OCR(text)
    assert doc.text == text
    assert all(t.text for t in doc)


_OCR = _ocr()
