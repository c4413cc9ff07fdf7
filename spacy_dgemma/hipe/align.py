"""Find the character offsets of HIPE mention strings in their (OCR) text.

HIPE gives each entity as a list of distinct surface forms, not offsets. A mention is searched
for in stages, each used only when the ones before found nothing:

1. the mention itself, or a normalised form of it, in a normalised text: runs of whitespace
   are one space, escaped line breaks (a literal backslash-n) are whitespace, a word
   hyphenated at a line end (``Poin-\\ncaré``, ``Poin¬\\ncaré``) is joined, and all quote
   and apostrophe variants are one quote; matches on word boundaries are preferred, and
   case-sensitive matches to case-insensitive ones;
2. the same with quotes stripped from the ends of the mention, then without a hyphen at its
   end (a word cut at a line break: ``Allema¬``), then with all its hyphens removed
   (``Saint-Gall`` written ``Saint-\\nGall``);
3. approximate matching for small OCR variants (``Delcassé`` / ``Deleassé``): an edit
   distance of at most ``max_edit_ratio`` of the mention's length, for mentions of at least
   ``min_fuzzy_length`` characters.

Every occurrence is returned (non-overlapping, in text order). These are pure functions on
strings; the reader snaps the offsets to token boundaries.
"""
from dataclasses import dataclass
from typing import Dict, Iterable, List, Optional, Tuple

from spacy_dgemma.util import edit_distance

EXACT = "exact"
NORMALISED = "normalised"
FUZZY = "fuzzy"

HYPHENS = "-‐‑¬\u00ad"
QUOTE = '"'
APOSTROPHE = "'"
_QUOTE_MAP = {c: QUOTE for c in '"“”„‟«»‹›'} | {c: APOSTROPHE for c in "'’‘‛`´"}
_LINE_BREAKS = "\n\r"
_ESCAPES = "nrt"  # a literal backslash followed by one of these is an escaped whitespace


@dataclass(frozen=True)
class Alignment:
    """One occurrence of a mention: character offsets in the original text and how it was found."""

    start: int
    end: int
    method: str


def normalise(text: str, fold_case: bool = False) -> Tuple[str, List[int]]:
    """Normalised form of `text` and, for each of its characters, the offset in `text`.

    text: the string to normalise.
    fold_case: lower-case letters (only where that keeps one character per character).
    RETURNS: the normalised string and the list of original offsets, one per character.
    """
    out: List[str] = []
    offsets: List[int] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c in HYPHENS:
            j = _skip_spaces(text, i + 1)
            if j < n and (text[j] in _LINE_BREAKS or _is_escape(text, j)):
                i = _skip_whitespace(text, j)  # a word broken at the line end: join it
                continue
        if c.isspace() or _is_escape(text, i):
            out.append(" ")
            offsets.append(i)
            i = _skip_whitespace(text, i)
            continue
        c = _QUOTE_MAP.get(c, c)
        if fold_case:
            lower = c.lower()
            c = lower if len(lower) == 1 else c
        out.append(c)
        offsets.append(i)
        i += 1
    return "".join(out), offsets


def _is_escape(text: str, i: int) -> bool:
    return text[i] == "\\" and i + 1 < len(text) and text[i + 1] in _ESCAPES


def _skip_spaces(text: str, i: int) -> int:
    """Index after the spaces (not line breaks) starting at `i`."""
    while i < len(text) and text[i].isspace() and text[i] not in _LINE_BREAKS:
        i += 1
    return i


def _skip_whitespace(text: str, i: int) -> int:
    """Index after the run of whitespace and escaped whitespace starting at `i`."""
    while i < len(text):
        if text[i].isspace():
            i += 1
        elif _is_escape(text, i):
            i += 2
        else:
            break
    return i


class TextIndex:
    """A text with its normalised forms, computed once for all mentions of a document."""

    def __init__(self, text: str) -> None:
        self.text = text
        self._forms: Dict[bool, Tuple[str, List[int]]] = {}

    def form(self, fold_case: bool) -> Tuple[str, List[int]]:
        if fold_case not in self._forms:
            self._forms[fold_case] = normalise(self.text, fold_case)
        return self._forms[fold_case]

    def to_original(self, fold_case: bool, start: int, end: int) -> Tuple[int, int]:
        """Original offsets of the normalised span [start, end)."""
        offsets = self.form(fold_case)[1]
        return offsets[start], offsets[end - 1] + 1


def align_mention(
    text: "str | TextIndex",
    mention: str,
    *,
    max_edit_ratio: float = 0.2,
    min_fuzzy_length: int = 5,
) -> List[Alignment]:
    """All occurrences of `mention` in `text` (empty when it cannot be found).

    text: the document text (or a TextIndex of it, to share work across mentions).
    mention: the mention string as HIPE gives it.
    max_edit_ratio: largest edit distance, relative to the mention length, of a fuzzy match.
    min_fuzzy_length: shorter mentions are never matched approximately.
    RETURNS: the occurrences, in text order.
    """
    index = text if isinstance(text, TextIndex) else TextIndex(text)
    for variant in _variants(mention):
        for word_boundaries in (True, False):
            for fold_case in (False, True):
                hits = _find_all(index, variant, fold_case, word_boundaries)
                if hits:
                    return [_alignment(index, mention, fold_case, start, end) for start, end in hits]
    return _fuzzy(index, mention, max_edit_ratio, min_fuzzy_length)


def align_mentions(text: str, mentions: Iterable[str], **kwargs) -> Dict[str, List[Alignment]]:
    """`align_mention` for several mentions of one text."""
    index = TextIndex(text)
    return {mention: align_mention(index, mention, **kwargs) for mention in mentions}


def _variants(mention: str) -> List[str]:
    """The mention; without surrounding quotes; without a final hyphen; without any hyphen."""
    unquoted = _unquote(mention)
    cut = unquoted.rstrip(HYPHENS)  # a word cut at the line end: "Allema¬" for "Allema¬\ngne"
    dehyphenated = "".join(c for c in unquoted if c not in HYPHENS)
    return [v for v in dict.fromkeys([mention, unquoted, cut, dehyphenated]) if v.strip()]


def _unquote(mention: str) -> str:
    return mention.strip().strip("".join(_QUOTE_MAP)).strip()


def _find_all(index: TextIndex, mention: str, fold_case: bool, word_boundaries: bool) -> List[Tuple[int, int]]:
    """Non-overlapping occurrences of the normalised mention in the normalised text."""
    haystack = index.form(fold_case)[0]
    needle = normalise(mention, fold_case)[0].strip()
    if not needle:
        return []
    hits = []
    start = haystack.find(needle)
    while start >= 0:
        end = start + len(needle)
        if not word_boundaries or _on_word_boundaries(haystack, needle, start, end):
            hits.append((start, end))
            start = haystack.find(needle, end)
        else:
            start = haystack.find(needle, start + 1)
    return hits


def _on_word_boundaries(haystack: str, needle: str, start: int, end: int) -> bool:
    """False when the match cuts a word: it starts or ends inside a run of letters/digits."""
    if needle[0].isalnum() and start > 0 and haystack[start - 1].isalnum():
        return False
    if needle[-1].isalnum() and end < len(haystack) and haystack[end].isalnum():
        return False
    return True


def _alignment(index: TextIndex, mention: str, fold_case: bool, start: int, end: int) -> Alignment:
    start, end = index.to_original(fold_case, start, end)
    method = EXACT if index.text[start:end] == mention else NORMALISED
    return Alignment(start, end, method)


def _fuzzy(index: TextIndex, mention: str, max_edit_ratio: float, min_length: int) -> List[Alignment]:
    """Approximate occurrences: bounded edit distance in the case-folded normalised text."""
    pattern = normalise(_unquote(mention), fold_case=True)[0].strip()
    max_dist = int(max_edit_ratio * len(pattern))
    if len(pattern) < min_length or max_dist == 0:
        return []
    haystack = index.form(True)[0]
    candidates = []
    for end, dist in _approximate_ends(pattern, haystack, max_dist):
        start, dist = _best_start(pattern, haystack, end, max_dist)
        if start is not None:
            candidates.append((dist, start, end))
    chosen: List[Tuple[int, int]] = []
    for dist, start, end in sorted(candidates):
        if all(end <= s or start >= e for s, e in chosen):
            chosen.append((start, end))
    return [Alignment(*index.to_original(True, s, e), FUZZY) for s, e in sorted(chosen)]


def _approximate_ends(pattern: str, text: str, max_dist: int) -> List[Tuple[int, int]]:
    """End offsets in `text` of substrings within `max_dist` edits of `pattern` (Sellers' algorithm).

    Only the local minima of the distance along the text are returned, so one approximate
    occurrence gives one end.
    """
    m = len(pattern)
    column = list(range(m + 1))  # distances of pattern[:i] to the best substring ending here
    row_end = [column[m]]
    for c in text:
        new = [0]
        for i in range(1, m + 1):
            cost = 0 if pattern[i - 1] == c else 1
            new.append(min(column[i - 1] + cost, column[i] + 1, new[i - 1] + 1))
        column = new
        row_end.append(column[m])
    ends = []
    for j in range(1, len(row_end)):
        d = row_end[j]
        if d <= max_dist and d <= row_end[j - 1] and (j + 1 >= len(row_end) or d < row_end[j + 1]):
            ends.append((j, d))
    return ends


def _best_start(pattern: str, text: str, end: int, max_dist: int) -> Tuple[Optional[int], int]:
    """The start of the closest substring of `text` ending at `end` (and its distance).

    Among equally close substrings, the one whose length is closest to the pattern's wins.
    """
    m = len(pattern)
    starts = range(max(0, end - m - max_dist), min(end, end - m + max_dist) + 1)
    dist, _, start = min((edit_distance(pattern, text[s:end]), abs(end - s - m), s) for s in starts)
    return (start, dist) if dist <= max_dist else (None, dist)
