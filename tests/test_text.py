"""spacy_dgemma.text.normalise: one offset-keeping normaliser for mention alignment and the OCR tokenizer."""
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spacy_dgemma.hipe import align
from spacy_dgemma.text import OCR_OPTIONS, normalise, original_span


def test_align_uses_the_one_normaliser():
    assert align.normalise is normalise


@pytest.mark.parametrize(
    "text,expected",
    [
        ("Poin¬\ncaré  est\\nà «Paris»", 'Poincaré est à "Paris"'),
        ("Dienſtag ﬁnden Ka\u00adssel", "Dienſtag ﬁnden Ka\u00adssel"),  # the OCR forms are off by default
        ("Saint-\n  Gall", "SaintGall"),
    ],
)
def test_defaults_are_the_alignment_behaviour(text, expected):
    assert normalise(text)[0] == expected


def test_ocr_options_resolve_long_s_ligatures_and_soft_hyphens_and_keep_whitespace():
    text = "Dienſtag\n ﬁnden  Ka\u00adssel «ﬃ»"
    normalised, offsets = normalise(text, **OCR_OPTIONS)
    assert normalised == "Dienstag\n finden  Kassel «ffi»"
    # Every character points at the one it came from; a ligature's letters share its offset.
    assert [text[i] for i in offsets[10:16]] == ["ﬁ", "ﬁ", "n", "d", "e", "n"]
    start = normalised.index("Kassel")
    assert text[slice(*original_span(offsets, start, start + len("Kassel")))] == "Ka\u00adssel"


def test_fraktur_hyphens_are_hyphens_and_join_at_a_line_end():
    assert normalise("Neu=Braunschweig, a = b, Bethmann⸗Hollweg", fraktur_hyphens=True)[0] == "Neu-Braunschweig, a = b, Bethmann-Hollweg"
    assert normalise("Braun=\nschweig", fraktur_hyphens=True)[0] == "Braunschweig"
    assert normalise("Braun=\nschweig")[0] == "Braun= schweig"  # not by default


def test_fold_case_keeps_one_character_per_character():
    normalised, offsets = normalise("İSTANBUL ﬁ", fold_case=True, ligatures=True)
    assert normalised == "İstanbul fi" and len(offsets) == len(normalised)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("ab -\n\\n¬ſﬁ\u00ad«")), max_size=30), st.booleans())
def test_offsets_are_increasing_and_in_range(text, ocr):
    normalised, offsets = normalise(text, **(OCR_OPTIONS if ocr else {}))
    assert len(offsets) == len(normalised)
    assert all(0 <= i < len(text) for i in offsets) and offsets == sorted(offsets)
