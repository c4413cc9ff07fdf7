"""Text normalisation that keeps, for every character, its offset in the original text.

One normaliser serves two readers: mention alignment (`spacy_dgemma.hipe.align`, with the
defaults) and the raw-text tokenizer (`spacy_dgemma.tokenizer`, with `OCR_OPTIONS`), which
shows the model a cleaned text while every token keeps the characters of the user's text.

What it can do, each behind an option:
- join a word hyphenated at a line end (``Poin-\\ncaré``, ``Poin¬\\ncaré``): always on;
- make each run of whitespace (and escaped whitespace, a literal backslash-n) one space;
- make all quote and apostrophe variants one quote and one apostrophe;
- the OCR forms of historical print: long s (``ſ`` → ``s``), typographic ligatures
  (``ﬁ`` → ``fi``, ``ﬀ`` → ``ff``, …), soft hyphens anywhere in a word (dropped) and the
  Fraktur hyphens (``⸗``, and ``=`` after a letter: ``Neu=Braunschweig``) read as ``-``.
"""
import re
from functools import lru_cache
from typing import Dict, List, Tuple

HYPHENS = "-‐‑¬\u00ad"
SOFT_HYPHEN = "\u00ad"
QUOTE = '"'
APOSTROPHE = "'"
QUOTE_MAP: Dict[str, str] = {c: QUOTE for c in '"“”„‟«»‹›'} | {c: APOSTROPHE for c in "'’‘‛`´"}
LONG_S: Dict[str, str] = {"ſ": "s"}
# The Latin ligatures of Unicode's Alphabetic Presentation Forms block (U+FB00-FB06).
LIGATURES: Dict[str, str] = {"ﬀ": "ff", "ﬁ": "fi", "ﬂ": "fl", "ﬃ": "ffi", "ﬄ": "ffl", "ﬅ": "st", "ﬆ": "st"}
# The double oblique hyphen of Fraktur type; "=" stands for it after a letter.
FRAKTUR_HYPHENS = "⸗="
_LINE_BREAKS = "\n\r"
_ESCAPES = "nrt"  # a literal backslash followed by one of these is an escaped whitespace

# The tokenizer's settings: whitespace, escapes and quotes as printed; OCR forms resolved.
OCR_OPTIONS: Dict[str, bool] = {
    "collapse_whitespace": False,
    "escapes": False,
    "fold_quotes": False,
    "long_s": True,
    "ligatures": True,
    "soft_hyphens": True,
    "fraktur_hyphens": True,
}


def normalise(
    text: str,
    fold_case: bool = False,
    *,
    collapse_whitespace: bool = True,
    escapes: bool = True,
    fold_quotes: bool = True,
    long_s: bool = False,
    ligatures: bool = False,
    soft_hyphens: bool = False,
    fraktur_hyphens: bool = False,
) -> Tuple[str, List[int]]:
    """Normalised form of `text` and, for each of its characters, the offset in `text`.

    A character that becomes several (a ligature) gives each of them its own offset; removed
    characters (a line-end hyphen and the line break) have none. The original span of the
    normalised span [start, end) is ``offsets[start], offsets[end - 1] + 1``.
    text: the string to normalise.
    fold_case: lower-case letters (only where that keeps one character per character).
    collapse_whitespace: make each run of whitespace one space (else keep it as it is).
    escapes: read a literal backslash followed by n, r or t as whitespace.
    fold_quotes: map quote and apostrophe variants to ``"`` and ``'``.
    long_s: read ``ſ`` as ``s``.
    ligatures: spell out ``ﬀ ﬁ ﬂ ﬃ ﬄ ﬅ ﬆ``.
    soft_hyphens: drop soft hyphens (U+00AD) anywhere, not only at a line end.
    fraktur_hyphens: read ``⸗``, and ``=`` after a letter, as ``-`` (joined at a line end too).
    RETURNS: the normalised string and the list of original offsets, one per character.
    """
    out: List[str] = []
    offsets: List[int] = []
    plain = _plain_run(collapse_whitespace, escapes, fold_quotes, long_s, ligatures, fraktur_hyphens)
    i, n = 0, len(text)
    while i < n:
        end = plain.match(text, i).end()
        if end > i:  # characters no option changes (but case): copied as one piece
            piece = text[i:end]
            out.append(lower_one_for_one(piece) if fold_case else piece)
            offsets.extend(range(i, end))
            i = end
            continue
        c = text[i]
        if fraktur_hyphens and _is_fraktur_hyphen(text, i):
            c = "-"
        if c in HYPHENS:
            j = _skip_spaces(text, i + 1)
            if j < n and (text[j] in _LINE_BREAKS or (escapes and _is_escape(text, j))):
                i = _skip_whitespace(text, j, escapes)  # a word broken at the line end: join it
                continue
            if soft_hyphens and c == SOFT_HYPHEN:
                i += 1
                continue
        if collapse_whitespace and (c.isspace() or (escapes and _is_escape(text, i))):
            out.append(" ")
            offsets.append(i)
            i = _skip_whitespace(text, i, escapes)
            continue
        if fold_quotes:
            c = QUOTE_MAP.get(c, c)
        if long_s:
            c = LONG_S.get(c, c)
        if ligatures:
            c = LIGATURES.get(c, c)
        if fold_case:
            lower = c.lower()
            c = lower if len(lower) == len(c) else c
        out.append(c)
        offsets.extend([i] * len(c))
        i += 1
    return "".join(out), offsets


def lower_one_for_one(text: str) -> str:
    """`text` with each character lower-cased where that gives one character (``İ`` stays)."""
    lower = text.lower()
    if len(lower) == len(text) and "Σ" not in text:  # no expansion, no context-dependent final sigma
        return lower
    return "".join(low if len(low := c.lower()) == 1 else c for c in text)


@lru_cache(maxsize=None)
def _plain_run(collapse_whitespace: bool, escapes: bool, fold_quotes: bool, long_s: bool, ligatures: bool,
               fraktur_hyphens: bool) -> "re.Pattern[str]":
    """A pattern matching the (possibly empty) run of characters that `normalise` with these
    options copies as they are: no hyphen, no character an option maps, drops or joins."""
    special = HYPHENS + ("\\" if escapes else "") + (FRAKTUR_HYPHENS if fraktur_hyphens else "")
    special += "".join(QUOTE_MAP) if fold_quotes else ""
    special += "".join(LONG_S) if long_s else ""
    special += "".join(LIGATURES) if ligatures else ""
    return re.compile("[^" + re.escape(special) + ("\\s" if collapse_whitespace else "") + "]*")


def original_span(offsets: List[int], start: int, end: int) -> Tuple[int, int]:
    """The characters of the original text that the normalised span [start, end) stands for.

    offsets: the offsets returned by `normalise`.
    """
    return offsets[start], offsets[end - 1] + 1


def _is_fraktur_hyphen(text: str, i: int) -> bool:
    """``⸗``, or ``=`` right after a letter (``Neu=Braunschweig``, ``Braun=`` at a line end)."""
    return text[i] == "⸗" or (text[i] == "=" and i > 0 and text[i - 1].isalpha())


def _is_escape(text: str, i: int) -> bool:
    return text[i] == "\\" and i + 1 < len(text) and text[i + 1] in _ESCAPES


def _skip_spaces(text: str, i: int) -> int:
    """Index after the spaces (not line breaks) starting at `i`."""
    while i < len(text) and text[i].isspace() and text[i] not in _LINE_BREAKS:
        i += 1
    return i


def _skip_whitespace(text: str, i: int, escapes: bool = True) -> int:
    """Index after the run of whitespace (and escaped whitespace, with `escapes`) starting at `i`."""
    while i < len(text):
        if text[i].isspace():
            i += 1
        elif escapes and _is_escape(text, i):
            i += 2
        else:
            break
    return i
