"""The raw-text tokenizer: spaCy's multilingual rules plus French elision, glued words and OCR forms.

HIPE-2022 French data writes "l'" "Allemagne", "d'" "Europe" as two tokens; spaCy's `xx`
tokenizer keeps "l'Allemagne" whole, so the recogniser could neither learn nor find those
places. `spacy_dgemma.Tokenizer.v1` splits an elided article, pronoun or conjunction followed
by a letter off the front of a token.

OCR text also glues a word to the next one through a full stop, a dash or a bracket
("contre Napoléon.13 octobre", "SUISSE.Le", "Bengal.—Accounts", "Aldobrandi(Italie)"), where
HIPE-2022 has separate tokens; with `split_glued` these are split too.

`spacy_dgemma.Tokenizer.v2` reads OCR text as printed. Where the line breaks of a page were
lost, words run together ("nachWien", "M.Gambetta", "12.Salzburg"; a large share of the newseye
mentions sit inside such a token, docs/experiments/2026-12-04-ner-raw-text.md); `split_case`
splits them. With `normalise_ocr`, the text
is tokenized in a normalised form (`spacy_dgemma.text.normalise` with `OCR_OPTIONS`: a word
hyphenated at a line end joined, long s read as s, ligatures spelt out, soft hyphens dropped,
Fraktur hyphens read as hyphens)
while every token keeps the characters of the original text: ``Frank¬\\nreich`` is one token
whose NORM is ``frankreich``, so the Doc's text is the user's text and every entity offset
points into it.
"""
import re
from typing import Callable, List, Optional

from spacy.lang.char_classes import ALPHA, ALPHA_LOWER, ALPHA_UPPER
from spacy.language import Language
from spacy.tokenizer import Tokenizer
from spacy.tokens import Doc
from spacy.util import compile_infix_regex, compile_prefix_regex, registry

from spacy_dgemma.text import FRAKTUR_HYPHENS, HYPHENS, LIGATURES, LONG_S, OCR_OPTIONS, SOFT_HYPHEN, normalise, original_span

TOKENIZER = "spacy_dgemma.Tokenizer.v1"
OCR_TOKENIZER = "spacy_dgemma.Tokenizer.v2"

# "l'", "d'", "qu'", "jusqu'", ... before a letter (straight or typographic apostrophe).
ELISION_PREFIXES: List[str] = [
    r"(?:[cdjlmnst]|qu|jusqu|lorsqu|puisqu|quoiqu)['’](?=[^\W\d_])",
    r"(?:[CDJLMNST]|Qu|QU|Jusqu|Lorsqu|Puisqu|Quoiqu)['’](?=[^\W\d_])",
]

# A full stop after two letters before a capital or a digit ("SUISSE.Le", "Napoléon.13"; spaCy
# already splits "lower.Upper"), a dash after such a full stop ("Bengal.—Accounts"), and an
# opening bracket between letters ("Aldobrandi(Italie)").
GLUED_INFIXES: List[str] = [
    rf"(?<=[{ALPHA}][{ALPHA}])\.(?=[{ALPHA_UPPER}0-9]|[—–])",
    rf"(?<=[{ALPHA}]\.)[—–](?=[{ALPHA}])",
    rf"(?<=[{ALPHA}])[(\[](?=[{ALPHA}])",
]

# Words run together where a line break was lost: a lower-case letter before a capital
# ("nachWien", "LondresLONDRES"), punctuation between a letter or digit and a letter
# of at least two letters ("M.Gambetta", "Italien,über", "12.Salzburg"; not "U.S.A."), a digit
# before a capital ("1848Paris").
CASE_INFIXES: List[str] = [
    rf"(?<=[{ALPHA_LOWER}])(?=[{ALPHA_UPPER}])",
    rf"(?<=[{ALPHA}0-9])[.,;:!?](?=[{ALPHA}][{ALPHA}])",
    rf"(?<=[0-9])(?=[{ALPHA_UPPER}])",
]

# Characters whose presence makes the normalised text differ from the original.
_OCR_FORMS = re.compile(
    "[" + re.escape(HYPHENS + FRAKTUR_HYPHENS) + r"][^\S\n\r]*[\n\r]|[" + re.escape("".join(LONG_S) + "".join(LIGATURES) + SOFT_HYPHEN) + r"⸗]|\w="
)
_CHUNKS = re.compile(r"\s+|\S+")


@registry.tokenizers(TOKENIZER)
def create_tokenizer(split_elision: bool = True, split_glued: bool = False) -> Callable[[Language], Tokenizer]:
    """spaCy's rule-based tokenizer for the pipeline's language, optionally splitting French
    elision and words glued together by OCR.

    split_elision: split "l'Allemagne" into "l'" "Allemagne" (as the HIPE data does).
    split_glued: split "Napoléon.13", "SUISSE.Le", "Bengal.—Accounts" and "Aldobrandi(Italie)"
        at the full stop, dash or bracket (as the HIPE data does).
    """
    return _make_rule_tokenizer(split_elision, split_glued, split_case=False, cls=Tokenizer)


@registry.tokenizers(OCR_TOKENIZER)
def create_ocr_tokenizer(
    split_elision: bool = True,
    split_glued: bool = True,
    split_case: bool = True,
    normalise_ocr: bool = True,
) -> Callable[[Language], Tokenizer]:
    """`spacy_dgemma.Tokenizer.v1` for OCR text as printed (see the module docstring).

    split_elision: split "l'Allemagne" into "l'" "Allemagne".
    split_glued: split "Napoléon.13", "SUISSE.Le", "Bengal.—Accounts", "Aldobrandi(Italie)".
    split_case: split words run together ("nachWien", "M.Gambetta", "12.Salzburg").
    normalise_ocr: tokenize the normalised text (line-end hyphenation joined, long s,
        ligatures, soft hyphens), keeping the original characters in each token.
    """
    cls = OcrTokenizer if normalise_ocr else Tokenizer
    return _make_rule_tokenizer(split_elision, split_glued, split_case, cls=cls)


def _make_rule_tokenizer(split_elision: bool, split_glued: bool, split_case: bool, cls: type) -> Callable[[Language], Tokenizer]:
    make_default = registry.tokenizers.get("spacy.Tokenizer.v1")()

    def make_tokenizer(nlp: Language) -> Tokenizer:
        default = make_default(nlp)
        prefix_search = default.prefix_search
        infix_finditer = default.infix_finditer
        if split_elision:
            prefix_search = compile_prefix_regex(ELISION_PREFIXES + list(nlp.Defaults.prefixes or [])).search
        infixes = list(nlp.Defaults.infixes or [])
        infixes += GLUED_INFIXES if split_glued else []
        infixes += CASE_INFIXES if split_case else []
        if split_glued or split_case:
            infix_finditer = compile_infix_regex(infixes).finditer
        return cls(
            nlp.vocab,
            rules=default.rules,
            prefix_search=prefix_search,
            suffix_search=default.suffix_search,
            infix_finditer=infix_finditer,
            token_match=default.token_match,
            url_match=default.url_match,
        )

    return make_tokenizer


class OcrTokenizer(Tokenizer):
    """spaCy's tokenizer run on the OCR-normalised text; tokens keep the original characters.

    The Doc's text is the input text. A token whose characters were normalised (``Frank¬\\nreich``,
    ``Dienſtag``, ``ﬁnden``) gets the NORM of its normalised form (``frankreich``, ``dienstag``,
    ``finden``), which the recogniser's features read.
    """

    def __call__(self, text: str) -> Doc:
        if not _OCR_FORMS.search(text):
            return super().__call__(text)
        normalised, offsets = normalise(text, **OCR_OPTIONS)
        return restore_text(self.vocab, text, super().__call__(normalised), offsets)


def restore_text(vocab, text: str, normalised_doc: Doc, offsets: List[int]) -> Doc:
    """A Doc of `text` with the tokens of `normalised_doc` (a Doc of the normalised text).

    Each normalised token takes the original characters it came from, including characters the
    normaliser removed inside it (a line-end hyphen and the line break); removed characters
    between tokens become tokens of their own. Tokens whose text changed keep the normalised
    NORM.
    vocab: the vocab of the Doc.
    text: the original text.
    normalised_doc: the tokenized normalised text.
    offsets: for each normalised character, its offset in `text` (from `normalise`).
    """
    words: List[str] = []
    spaces: List[bool] = []
    norms: List[Optional[str]] = []
    starts: List[int] = []
    pos = 0

    def add_gap(gap: str) -> None:
        for match in _CHUNKS.finditer(gap):
            chunk = match.group()
            if chunk[0] == " " and words and not spaces[-1] and not words[-1].isspace():
                spaces[-1] = True
                chunk = chunk[1:]
            if chunk:
                words.append(chunk)
                spaces.append(False)
                norms.append(None)
                starts.append(-1)

    for token in normalised_doc:
        start, end = original_span(offsets, token.idx, token.idx + len(token.text))
        if words and start < pos:  # inside the previous token's characters (a ligature cut in two)
            words[-1] = text[starts[-1] : max(end, pos)]
            norms[-1] = (norms[-1] or "") + token.norm_
            pos = max(end, pos)
            continue
        add_gap(text[pos:start])
        words.append(text[start:end])
        spaces.append(False)
        norms.append(token.norm_ if text[start:end] != token.text else None)
        starts.append(start)
        pos = end
    add_gap(text[pos:])
    doc = Doc(vocab, words=words, spaces=spaces)
    for token, norm in zip(doc, norms):
        if norm is not None:
            token.norm_ = norm
    return doc

