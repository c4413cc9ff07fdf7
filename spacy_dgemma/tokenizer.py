"""The raw-text tokenizer: spaCy's multilingual rules plus French elision.

HIPE-2022 French data writes "l'" "Allemagne", "d'" "Europe" as two tokens; spaCy's `xx`
tokenizer keeps "l'Allemagne" whole, so the recogniser could neither learn nor find those
places (8% of the French held-out mentions). `spacy_dgemma.Tokenizer.v1` splits an elided
article, pronoun or conjunction followed by a letter off the front of a token.
"""
from typing import Callable, List

from spacy.language import Language
from spacy.tokenizer import Tokenizer
from spacy.util import compile_prefix_regex, registry

TOKENIZER = "spacy_dgemma.Tokenizer.v1"

# "l'", "d'", "qu'", "jusqu'", ... before a letter (straight or typographic apostrophe).
ELISION_PREFIXES: List[str] = [
    r"(?:[cdjlmnst]|qu|jusqu|lorsqu|puisqu|quoiqu)['’](?=[^\W\d_])",
    r"(?:[CDJLMNST]|Qu|QU|Jusqu|Lorsqu|Puisqu|Quoiqu)['’](?=[^\W\d_])",
]


@registry.tokenizers(TOKENIZER)
def create_tokenizer(split_elision: bool = True) -> Callable[[Language], Tokenizer]:
    """spaCy's rule-based tokenizer for the pipeline's language, optionally splitting French elision.

    split_elision: split "l'Allemagne" into "l'" "Allemagne" (as the HIPE data does).
    """
    make_default = registry.tokenizers.get("spacy.Tokenizer.v1")()

    def make_tokenizer(nlp: Language) -> Tokenizer:
        tokenizer = make_default(nlp)
        if split_elision:
            prefixes = ELISION_PREFIXES + list(nlp.Defaults.prefixes or [])
            tokenizer.prefix_search = compile_prefix_regex(prefixes).search
        return tokenizer

    return make_tokenizer
