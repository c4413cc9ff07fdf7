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
import re
from bisect import bisect_right
from dataclasses import dataclass
from functools import lru_cache
from typing import Dict, Iterable, List, Optional, Tuple

from spacy_dgemma.text import HYPHENS, lower_one_for_one, normalise  # noqa: F401 (normalise: re-exported)
from spacy_dgemma.text import QUOTE_MAP as _QUOTE_MAP
from spacy_dgemma.util import edit_distance

EXACT = "exact"
NORMALISED = "normalised"
FUZZY = "fuzzy"
MENTION_CACHE = 1 << 16  # distinct mention strings whose normalised forms are remembered


@dataclass(frozen=True)
class Alignment:
    """One occurrence of a mention: character offsets in the original text and how it was found."""

    start: int
    end: int
    method: str


class TextIndex:
    """A text with its normalised forms, computed once for all mentions of a document.

    The normalised text is `normalise(text)`'s (default options), computed with one regular
    expression rather than a loop per character, and its offsets are kept as runs rather than
    one per character (tests check both against `normalise`). Case-folded, it is the same
    characters lower-cased one for one, as `normalise` folds case.
    """

    def __init__(self, text: str) -> None:
        self.text = text
        self._forms: Dict[bool, str] = {}
        self._starts: List[int] = []  # where each run of the normalised text starts
        self._origins: List[int] = []  # and where that run starts in the original

    def normalised(self, fold_case: bool) -> str:
        """The normalised text (lower-cased with `fold_case`)."""
        if False not in self._forms:
            self._forms[False] = self._normalise()
        if fold_case and True not in self._forms:
            self._forms[True] = lower_one_for_one(self._forms[False])
        return self._forms[fold_case]

    def to_original(self, fold_case: bool, start: int, end: int) -> Tuple[int, int]:
        """Original offsets of the normalised span [start, end) (the same for both forms)."""
        self.normalised(fold_case)
        return self._origin(start), self._origin(end - 1) + 1

    def _origin(self, position: int) -> int:
        run = bisect_right(self._starts, position) - 1
        return self._origins[run] + position - self._starts[run]

    def _normalise(self) -> str:
        text = self.text
        parts: List[str] = []
        size = kept = 0
        for match in _CHANGED.finditer(text):
            start = match.start()
            if start > kept:  # characters kept one for one (quotes mapped below)
                parts.append(text[kept:start])
                self._starts.append(size)
                self._origins.append(kept)
                size += start - kept
            if match.lastgroup is None:  # a run of whitespace: one space
                parts.append(" ")
                self._starts.append(size)
                self._origins.append(start)
                size += 1
            kept = match.end()  # a word joined across a line end: nothing
        if kept < len(text) or not self._starts:
            parts.append(text[kept:])
            self._starts.append(size)
            self._origins.append(kept)
        return _QUOTE_VARIANT.sub(_one_quote, "".join(parts))


# What `normalise` changes: a hyphen at a line end with the line break and the whitespace after
# it (the word is joined: nothing is left), and a run of whitespace or escaped whitespace (one
# space) other than a lone space (already what it becomes). Quotes are mapped one for one.
_SPACE = r"(?:\s|\\[nrt])"
_CHANGED = re.compile(
    rf"(?P<join>[{re.escape(HYPHENS)}][^\S\n\r]*(?:[\n\r]|\\[nrt]){_SPACE}*)|(?:[^\S ]|\\[nrt]| (?={_SPACE})){_SPACE}*"
)
_QUOTE_VARIANT = re.compile("[" + re.escape("".join(c for c, q in _QUOTE_MAP.items() if c != q)) + "]")


def _one_quote(match: "re.Match[str]") -> str:
    return _QUOTE_MAP[match.group()]


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


@lru_cache(maxsize=MENTION_CACHE)
def _normalised_mention(mention: str, fold_case: bool) -> str:
    """A mention normalised as the text is, without surrounding spaces (names recur: cached)."""
    return TextIndex(mention).normalised(fold_case).strip()


@lru_cache(maxsize=MENTION_CACHE)
def _variants(mention: str) -> Tuple[str, ...]:
    """The mention; without surrounding quotes; without a final hyphen; without any hyphen (cached)."""
    unquoted = _unquote(mention)
    cut = unquoted.rstrip(HYPHENS)  # a word cut at the line end: "Allema¬" for "Allema¬\ngne"
    dehyphenated = "".join(c for c in unquoted if c not in HYPHENS)
    return tuple(v for v in dict.fromkeys([mention, unquoted, cut, dehyphenated]) if v.strip())


def _unquote(mention: str) -> str:
    return mention.strip().strip("".join(_QUOTE_MAP)).strip()


def _find_all(index: TextIndex, mention: str, fold_case: bool, word_boundaries: bool) -> List[Tuple[int, int]]:
    """Non-overlapping occurrences of the normalised mention in the normalised text."""
    haystack = index.normalised(fold_case)
    needle = _normalised_mention(mention, fold_case)
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
    pattern = _normalised_mention(_unquote(mention), True)
    max_dist = int(max_edit_ratio * len(pattern))
    if len(pattern) < min_length or max_dist == 0:
        return []
    haystack = index.normalised(True)
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
    """End offsets in `text` of substrings within `max_dist` edits of `pattern`.

    For every end, the edit distance of the pattern to the closest substring ending there
    (Sellers' dynamic programme) is computed with Myers' bit-parallel algorithm (J. ACM 46(3),
    1999): one column per text character in a few integer operations. Only the local minima
    of the distance along the text are returned, so one approximate occurrence gives one end.
    """
    m = len(pattern)
    mask = (1 << m) - 1
    high = 1 << (m - 1)
    peq: Dict[str, int] = {}
    for i, c in enumerate(pattern):
        peq[c] = peq.get(c, 0) | (1 << i)
    pv, mv, score = mask, 0, m
    row_end = [m]
    for c in text:
        eq = peq.get(c, 0)
        xv = eq | mv
        xh = (((eq & pv) + pv) ^ pv) | eq
        ph = mv | (~(xh | pv) & mask)
        mh = pv & xh
        if ph & high:
            score += 1
        elif mh & high:
            score -= 1
        ph = (ph << 1) & mask  # the top row is 0 everywhere: an occurrence may start anywhere
        mh = (mh << 1) & mask
        pv = mh | (~(xv | ph) & mask)
        mv = ph & xv
        row_end.append(score)
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
