"""The strict JSON parser and its flagged fallback (raw, broken model outputs)."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spacy_dgemma.labels import AT_LABELS, IS_AT_LABELS
from spacy_dgemma.llm.parse import ParseStats, format_response, parse_output

GOOD = format_response("He arrived yesterday.", "TRUE", "Within the month.", "TRUE")


def test_strict_output_is_ok():
    parsed = parse_output(GOOD)
    assert (parsed.status, parsed.issues) == ("ok", [])
    assert (parsed.at, parsed.is_at) == ("TRUE", "TRUE")
    assert parsed.at_reasoning == "He arrived yesterday."
    assert parsed.to_response() == GOOD


@pytest.mark.parametrize(
    "raw,at,is_at,issues",
    [
        ("```json\n" + GOOD + "\n```", "TRUE", "TRUE", ["code_fence"]),
        (GOOD + "\nI hope this helps!", "TRUE", "TRUE", ["trailing_text"]),
        ("Sure! " + GOOD, "TRUE", "TRUE", ["leading_text"]),
        ('{"at_reasoning": "x", "at": "probable", "isAt_reasoning": "y", "isAt": false}', "PROBABLE", "FALSE", ["label_normalised"]),
        ('{"at": "TRUE", "isAt": "FALSE", "confidence": 0.9}', "TRUE", "FALSE", ["extra_keys"]),
        ('{"at_reasoning": "He was there", "at": "TRUE", "isAt_reasoning": "long ago", "isAt": "FALSE"', "TRUE", "FALSE", ["truncated"]),
        ('{"at": TRUE, "isAt": FALSE}', "TRUE", "FALSE", ["not_json"]),
    ],
)
def test_repairs_keep_the_labels(raw, at, is_at, issues):
    parsed = parse_output(raw)
    assert parsed.status == "repaired"
    assert (parsed.at, parsed.is_at) == (at, is_at)
    for issue in issues:
        assert issue in parsed.issues


@pytest.mark.parametrize(
    "raw,at,is_at,issue",
    [
        # Nothing usable: the documented rare-class fallback, never a silent FALSE/FALSE.
        ("I cannot answer that.", "PROBABLE", "TRUE", "missing_at"),
        ('{"at_reasoning": "He was in Par', "PROBABLE", "TRUE", "missing_at"),
        ('{"at": "SOMETIMES", "isAt": "FALSE"}', "PROBABLE", "FALSE", "invalid_at"),
        # One label known: the other follows the definitions.
        ('{"at": "FALSE"}', "FALSE", "FALSE", "missing_isAt"),
        ('{"at": "TRUE", "isAt": "MAYBE"}', "TRUE", "TRUE", "invalid_isAt"),
        ('{"isAt": "TRUE"}', "TRUE", "TRUE", "missing_at"),
        ("", "PROBABLE", "TRUE", "missing_at"),
    ],
)
def test_fallback_is_flagged(raw, at, is_at, issue):
    parsed = parse_output(raw)
    assert parsed.status == "fallback"
    assert issue in parsed.issues
    assert (parsed.at, parsed.is_at) == (at, is_at)
    assert (parsed.at, parsed.is_at) != ("FALSE", "FALSE") or "FALSE" in raw


def test_stats_count_statuses_and_issues():
    stats = ParseStats()
    for raw in (GOOD, "```" + GOOD + "```", "garbage"):
        stats.add(parse_output(raw))
    assert stats.total == 3
    assert (stats.statuses["ok"], stats.statuses["repaired"], stats.statuses["fallback"]) == (1, 1, 1)
    assert stats.issues["code_fence"] == 1
    assert "3 outputs: 1 ok, 1 repaired, 1 fallback" in stats.summary()


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_never_raises_and_labels_are_valid(raw):
    parsed = parse_output(raw)
    assert parsed.at in AT_LABELS and parsed.is_at in IS_AT_LABELS
    assert parsed.status in ("ok", "repaired", "fallback")


@settings(max_examples=150, deadline=None)
@given(
    st.text(max_size=40), st.sampled_from(AT_LABELS), st.text(max_size=40), st.sampled_from(IS_AT_LABELS),
    st.text(alphabet=st.characters(blacklist_characters="{}`"), max_size=30),
)
def test_labels_survive_fences_and_chatter(at_reason, at, is_at_reason, is_at, chatter):
    raw = f"{chatter}\n```json\n{format_response(at_reason, at, is_at_reason, is_at)}\n```\n{chatter}"
    parsed = parse_output(raw)
    assert (parsed.at, parsed.is_at) == (at, is_at)
    assert parsed.status == "repaired"
    assert parsed.at_reasoning == (at_reason.strip() or None)


@settings(max_examples=150, deadline=None)
@given(st.sampled_from(AT_LABELS), st.sampled_from(IS_AT_LABELS), st.data())
def test_any_truncation_is_handled(at, is_at, data):
    full = format_response("He arrived from Paris.", at, "Last week.", is_at)
    cut = data.draw(st.integers(min_value=0, max_value=len(full)))
    parsed = parse_output(full[:cut])
    assert parsed.at in AT_LABELS and parsed.is_at in IS_AT_LABELS
    if full[:cut].rstrip().endswith('"' + is_at + '"'):
        assert (parsed.at, parsed.is_at) == (at, is_at)
    if cut < len(full):
        assert parsed.status != "ok"
