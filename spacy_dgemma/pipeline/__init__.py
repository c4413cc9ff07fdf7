"""The pipeline components of spacy-dgemma and the data they put on a Doc."""
from spacy_dgemma.pipeline import extensions  # noqa: F401  (registers the Doc extensions)
from spacy_dgemma.pipeline.records import Relation
from spacy_dgemma.pipeline.relations import DgemmaRelations, make_dgemma_relations

__all__ = ["DgemmaRelations", "Relation", "make_dgemma_relations"]
