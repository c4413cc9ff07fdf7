"""spacy-dgemma: who was where, when? Person–place relations in historical newspapers.

Importing the package registers its Doc extensions, the ``dgemma_relations`` factory and the
light-weight registered functions. Nothing here imports torch: the LLM stack is imported
lazily by the functions that need it (install ``spacy-dgemma[llm]``).
"""
from .about import __version__
from . import extensions  # noqa: F401  (registers the Doc extensions)
from . import entities, pairs, tokenizer  # noqa: F401  (registered functions)
from .pipeline import DgemmaRelations
from .relations import Relation

__all__ = ["__version__", "DgemmaRelations", "Relation"]
