from .relations_component import DgemmaRelations, make_dgemma_relations

__all__ = ["DgemmaRelations", "make_dgemma_relations"]
