"""Shared fixtures (the helpers behind them are in tests/util.py)."""
import copy
from typing import Any, Callable, Dict, Optional

import pytest
import spacy
from spacy.language import Language
from spacy.tokens import Doc

import spacy_dgemma  # noqa: F401  (registers the extensions and the factory)
from tests.util import HIPE_RECORDS, LANGS, build_hipe_doc


@pytest.fixture
def hipe_records() -> Dict[str, Dict[str, Any]]:
    """Language → a gold HIPE record (a fresh deep copy per test)."""
    return copy.deepcopy(HIPE_RECORDS)


@pytest.fixture(scope="session")
def blank_nlps() -> Dict[str, Language]:
    """Language → a blank pipeline (tokenizer only); do not add pipes to these."""
    return {lang: spacy.blank(lang) for lang in LANGS}


@pytest.fixture
def make_hipe_doc() -> Callable[[Language, Dict[str, Any]], Doc]:
    """The function that builds a HIPE-like Doc from a record."""
    return build_hipe_doc


@pytest.fixture
def hipe_docs(blank_nlps) -> Dict[str, Doc]:
    """Language → the gold HIPE-like Doc of that language."""
    return {lang: build_hipe_doc(blank_nlps[lang], HIPE_RECORDS[lang]) for lang in LANGS}


@pytest.fixture(scope="session")
def relations_nlp() -> Callable[..., Language]:
    """A blank pipeline of a language with ``dgemma_relations`` added (default config).

    Pipelines are cached for the session (blank de/fr take seconds to build): do not train
    or change them; build your own for that.
    """
    cache: Dict[Any, Language] = {}

    def make(lang: str = "en", config: Optional[Dict[str, Any]] = None) -> Language:
        key = (lang, repr(sorted((config or {}).items())))
        if key not in cache:
            nlp = spacy.blank(lang)
            nlp.add_pipe("dgemma_relations", config=config or {})
            cache[key] = nlp
        return cache[key]

    return make
