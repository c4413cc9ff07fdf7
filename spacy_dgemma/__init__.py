"""spacy-dgemma: who was where, when? Person–place relations in historical newspapers.

Importing the package registers its Doc extensions, the ``dgemma_relations`` factory and the
light-weight registered functions. Nothing here imports torch: the LLM stack is imported
lazily by the functions that need it (install ``spacy-dgemma[llm]``).
"""
from spacy_dgemma import tokenizer  # noqa: F401  (registered tokenizer)
from spacy_dgemma.about import __version__
from spacy_dgemma.candidates import entities, pairs  # noqa: F401  (registered functions)
from spacy_dgemma.pipeline import DgemmaRelations, Relation

__all__ = ["__version__", "DgemmaRelations", "Relation"]
