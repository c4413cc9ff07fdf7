"""Mention alignment: every occurrence, and the noisy cases of historical OCR."""
import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spacy_dgemma.hipe.align import (
    EXACT,
    FUZZY,
    NORMALISED,
    TextIndex,
    align_mention,
    align_mentions,
    normalise,
)
from spacy_dgemma.util import edit_distance

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "hipe2026"


def found(text, mention, **kwargs):
    return [(text[a.start : a.end], a.method) for a in align_mention(text, mention, **kwargs)]


def test_every_exact_occurrence_in_text_order():
    text = "Paris, 3 mai. On écrit de Paris que Paris est calme."
    alignments = align_mention(text, "Paris")
    assert [(a.start, a.end, a.method) for a in alignments] == [(0, 5, EXACT), (26, 31, EXACT), (36, 41, EXACT)]


def test_whitespace_and_line_breaks_are_tolerated():
    assert found("Mr. John\nSmith came.", "Mr. John Smith") == [("Mr. John\nSmith", NORMALISED)]
    assert found("Mr. John   Smith came.", "Mr. John\nSmith") == [("Mr. John   Smith", NORMALISED)]


def test_escaped_line_break_in_the_mention():
    text = "un télégramme de Sofia annonce que le\ngénéral Koutzeroff est arrivé."
    assert found(text, "le\\ngénéral Koutzeroff") == [("le\ngénéral Koutzeroff", NORMALISED)]
    # and one at the start of the mention
    assert found("den Philip Kaiser,\nLeiter der Abteilung", "\\nLeiter der Abteilung") == [("Leiter der Abteilung", NORMALISED)]


@pytest.mark.parametrize("text", ["M. Poin-\ncaré arrive.", "M. Poin¬\ncaré arrive.", "M. Poin- \n caré arrive.", "M. Poin\u00ad\ncaré arrive."])
def test_hyphenation_at_line_end(text):
    [(span, method)] = found(text, "Poincaré")
    assert span.startswith("Poin") and span.endswith("caré") and method == NORMALISED


def test_hyphenated_name_broken_at_its_hyphen():
    assert found("à Saint-\nGall hier", "Saint-Gall") == [("Saint-\nGall", NORMALISED)]


def test_mention_cut_at_a_line_end():
    # Annotators sometimes give only the first half of a word broken over two lines.
    assert found("en Alle¬\nmagne et", "Alle¬") == [("Alle", NORMALISED)]


@pytest.mark.parametrize("text", ["natif de «la Brévine» ou", "natif de la Brévine ou", "natif de „la Brévine“ ou"])
def test_stray_quotes(text):
    [(span, _)] = found(text, '"la Brévine"')
    assert "la Brévine" in span


def test_apostrophe_variants():
    assert found("le duc d’Aumale est", "duc d'Aumale") == [("duc d’Aumale", NORMALISED)]


def test_case_insensitive_only_when_needed():
    assert found("PARIS, 3 mai.", "Paris") == [("PARIS", NORMALISED)]
    # A case-sensitive match wins: the upper-case dateline is then not a second occurrence.
    assert found("PARIS, 3 mai. A Paris", "Paris") == [("Paris", EXACT)]


def test_word_boundaries_preferred():
    text = "Die Berner Zeitung meldet aus Bern"
    assert found(text, "Bern") == [("Bern", EXACT)]
    # ... but a match inside a word is taken when there is nothing else
    assert found("die Berner Zeitung", "Bern") == [("Bern", EXACT)]


def test_small_ocr_variant_is_found_approximately():
    text = "Les confessions sollten es Präsident Loubet, Deleassé und zwei"
    assert found(text, "Delcassé") == [("Deleassé", FUZZY)]


def test_fuzzy_is_bounded():
    text = "Les nouvelles de Londres sont bonnes."
    assert align_mention(text, "Lyon") == []  # too short for approximate matching
    assert align_mention(text, "Marseille") == []  # too far from anything in the text
    assert align_mention(text, "Londxes", max_edit_ratio=0.0) == []


def test_fuzzy_finds_every_approximate_occurrence():
    text = "Delcasse a dit. Puis Deleassé a répondu."
    assert [m for _, m in found(text, "Delcassé")] == [FUZZY, FUZZY]


def test_unalignable_and_empty_mentions():
    assert align_mention("Some text.", "Napoleon Bonaparte") == []
    assert align_mention("Some text.", "   ") == []
    assert align_mention("", "Paris") == []


def test_align_mentions_shares_one_index():
    text = "John Smith left London for Paris."
    result = align_mentions(text, ["John Smith", "London", "Rome"])
    assert [text[a.start : a.end] for a in result["London"]] == ["London"]
    assert result["Rome"] == []
    index = TextIndex(text)
    assert align_mention(index, "Paris") == align_mention(text, "Paris")


def test_normalise_maps_back_to_the_original():
    text = "A  “b”\nc-\nd\\ne"
    norm, offsets = normalise(text, fold_case=True)
    assert norm == 'a "b" cd e'
    assert [text[i] for i in offsets] == ["A", " ", "“", "b", "”", "\n", "c", "d", "\\", "e"]


def test_edit_distance():
    assert edit_distance("kitten", "sitting") == 3
    assert edit_distance("", "abc") == 3
    assert edit_distance("same", "same") == 0
    assert edit_distance("kitten", "sitting", limit=1) == 2


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet="ab -¬\n\\n'’«»AB", max_size=40), st.booleans())
def test_normalise_offsets_are_increasing_and_in_range(text, fold_case):
    norm, offsets = normalise(text, fold_case)
    assert len(norm) == len(offsets)
    assert offsets == sorted(set(offsets))
    assert all(0 <= i < len(text) for i in offsets)


@settings(max_examples=200, deadline=None)
@given(
    st.text(alphabet="abcdé XYZ\n", max_size=30),
    st.text(alphabet="abcdéXYZ", min_size=1, max_size=8),
    st.text(alphabet="abcdé XYZ\n", max_size=30),
)
def test_a_verbatim_mention_is_always_found(prefix, mention, suffix):
    text = prefix + mention + suffix
    alignments = align_mention(text, mention)
    assert alignments
    for a in alignments:
        assert normalise(text[a.start : a.end], True)[0].strip() == normalise(mention, True)[0]


@pytest.mark.slow
def test_all_mentions_of_the_shared_files_align():
    """Every distinct mention of the 9 shared files is found; count how (see the report)."""
    files = sorted(SHARED.glob("*/*.jsonl"))
    if not files:
        pytest.skip(f"shared data not found at {SHARED}")
    counts = {EXACT: 0, NORMALISED: 0, FUZZY: 0, "none": 0}
    verbatim = total = 0
    for file in files:
        for line in file.open(encoding="utf-8"):
            record = json.loads(line)
            index = TextIndex(record["text"])
            mentions = {m for p in record["sampled_pairs"] for m in p["pers_mentions_list"] + p["loc_mentions_list"]}
            for mention in mentions:
                total += 1
                verbatim += mention in record["text"]
                methods = {a.method for a in align_mention(index, mention)}
                best = next((m for m in (EXACT, NORMALISED, FUZZY) if m in methods), "none")
                counts[best] += 1
    assert counts["none"] == 0
    assert total - verbatim <= counts[NORMALISED] + counts[FUZZY]


def sellers_ends(pattern, text, max_dist):
    """Reference for `_approximate_ends`: Sellers' dynamic programme, one column per character."""
    m = len(pattern)
    column = list(range(m + 1))
    row_end = [column[m]]
    for c in text:
        new = [0]
        for i in range(1, m + 1):
            new.append(min(column[i - 1] + (pattern[i - 1] != c), column[i] + 1, new[i - 1] + 1))
        column = new
        row_end.append(column[m])
    return [
        (j, d) for j, d in enumerate(row_end) if j and d <= max_dist and d <= row_end[j - 1] and (j + 1 >= len(row_end) or d < row_end[j + 1])
    ]


@settings(max_examples=400, deadline=None)
@given(st.text(alphabet="abcé", min_size=1, max_size=70), st.text(alphabet="abcéd ", max_size=120), st.integers(0, 6))
def test_bit_parallel_search_equals_the_dynamic_programme(pattern, text, max_dist):
    from spacy_dgemma.hipe.align import _approximate_ends

    assert _approximate_ends(pattern, text, max_dist) == sellers_ends(pattern, text, max_dist)


OCR_ALPHABET = " \n\r\t\\nrt-‐‑¬\u00ad\"'“”„«»’‘`´aBcXyΣσİßé\xa0\u2028\x1c."


@settings(max_examples=500, deadline=None)
@given(st.text(alphabet=OCR_ALPHABET, max_size=40))
def test_text_index_normalises_as_normalise_does(text):
    index = TextIndex(text)
    for fold_case in (False, True):
        expected, offsets = normalise(text, fold_case)
        assert index.normalised(fold_case) == expected
        for start in range(len(expected)):
            assert index.to_original(fold_case, start, start + 1) == (offsets[start], offsets[start] + 1)


def test_text_index_on_the_shared_texts():
    files = sorted(SHARED.glob("newspapers/*.jsonl"))
    if not files:
        pytest.skip(f"shared data not found at {SHARED}")
    for file in files:
        for row in file.open(encoding="utf-8"):
            text = json.loads(row)["text"]
            expected, offsets = normalise(text)
            index = TextIndex(text)
            assert index.normalised(False) == expected
            assert [index.to_original(False, k, k + 1)[0] for k in range(len(expected))] == offsets


def test_fuzzy_search_in_a_long_text_is_fast():
    import time

    text = "The weather was fine and the harvest was good. " * 25_000 + "M. Théophile Delcassé-Moreau est arrivé."
    start = time.process_time()
    assert [text[a.start : a.end] for a in align_mention(text, "Theophile Deleasse-Moreau")] == ["Théophile Delcassé-Moreau"]
    assert time.process_time() - start < 2.5  # Sellers' programme, one Python step per cell, took about 5 s
