"""The raw-text tokenizer: spaCy's multilingual rules plus French elision and glued words.

HIPE-2022 French data writes "l'" "Allemagne", "d'" "Europe" as two tokens; spaCy's `xx`
tokenizer keeps "l'Allemagne" whole, so the recogniser could neither learn nor find those
places (8% of the French held-out mentions). `spacy_dgemma.Tokenizer.v1` splits an elided
article, pronoun or conjunction followed by a letter off the front of a token.

OCR text also glues a word to the next one through a full stop, a dash or a bracket
("contre Napoléon.13 octobre", "SUISSE.Le", "Bengal.—Accounts", "Aldobrandi(Italie)"), where
HIPE-2022 has separate tokens; with `split_glued` these are split too (3% of the French
held-out mentions could not be matched otherwise).
"""
from typing import Callable, List

from spacy.lang.char_classes import ALPHA, ALPHA_UPPER
from spacy.language import Language
from spacy.tokenizer import Tokenizer
from spacy.util import compile_infix_regex, compile_prefix_regex, registry

TOKENIZER = "spacy_dgemma.Tokenizer.v1"

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


@registry.tokenizers(TOKENIZER)
def create_tokenizer(split_elision: bool = True, split_glued: bool = False) -> Callable[[Language], Tokenizer]:
    """spaCy's rule-based tokenizer for the pipeline's language, optionally splitting French
    elision and words glued together by OCR.

    split_elision: split "l'Allemagne" into "l'" "Allemagne" (as the HIPE data does).
    split_glued: split "Napoléon.13", "SUISSE.Le", "Bengal.—Accounts" and "Aldobrandi(Italie)"
        at the full stop, dash or bracket (as the HIPE data does).
    """
    make_default = registry.tokenizers.get("spacy.Tokenizer.v1")()

    def make_tokenizer(nlp: Language) -> Tokenizer:
        tokenizer = make_default(nlp)
        if split_elision:
            prefixes = ELISION_PREFIXES + list(nlp.Defaults.prefixes or [])
            tokenizer.prefix_search = compile_prefix_regex(prefixes).search
        if split_glued:
            infixes = list(nlp.Defaults.infixes or []) + GLUED_INFIXES
            tokenizer.infix_finditer = compile_infix_regex(infixes).finditer
        return tokenizer

    return make_tokenizer
