"""Raw text in: the historical PERS/LOC recogniser's data (HIPE-2022) and mention grouping."""
from spacy_dgemma.ner.hipe2022 import NerDocument, document_to_doc, read_docs, read_hipe2022

__all__ = ["NerDocument", "document_to_doc", "read_docs", "read_hipe2022"]
