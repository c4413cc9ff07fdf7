"""Raw text in: the historical PERS/LOC recogniser's data (HIPE-2022), evaluation and pipeline parts."""
from spacy_dgemma.ner.hipe2022 import NerDocument, document_to_doc, printed_text, read_hipe2022, read_hipe2022_docs

__all__ = ["NerDocument", "document_to_doc", "printed_text", "read_hipe2022", "read_hipe2022_docs"]
