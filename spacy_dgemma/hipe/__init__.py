"""HIPE-2026 I/O: JSONL ⇄ Doc, mention alignment, schema validation, atomic writing."""
from spacy_dgemma.hipe.align import Alignment, align_mention, align_mentions, normalise
from spacy_dgemma.hipe.read import (
    AlignmentReport,
    DocMaker,
    ReadStats,
    RecordLine,
    expand_paths,
    iter_records,
    read_docbin,
    read_docs,
    record_to_doc,
    restore_lists,
    tokenizer_language,
)
from spacy_dgemma.hipe.validate import check_record, is_valid, load_schema, schema_error
from spacy_dgemma.hipe.write import AtomicWriter, RecordWriter, doc_to_record, dumps, write_docbin, write_docs, write_jsonl

__all__ = [
    "Alignment",
    "AlignmentReport",
    "AtomicWriter",
    "DocMaker",
    "ReadStats",
    "RecordLine",
    "RecordWriter",
    "align_mention",
    "align_mentions",
    "check_record",
    "doc_to_record",
    "dumps",
    "expand_paths",
    "is_valid",
    "iter_records",
    "load_schema",
    "normalise",
    "read_docbin",
    "read_docs",
    "record_to_doc",
    "restore_lists",
    "schema_error",
    "tokenizer_language",
    "write_docbin",
    "write_docs",
    "write_jsonl",
]
