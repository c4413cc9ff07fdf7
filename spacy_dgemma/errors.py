"""Errors and warnings with codes, spaCy style, and the error raised for bad input files.

``Errors.E001`` reads ``"[E001] ..."``: the code makes a message easy to search for. An
:class:`InputError` names the file, the line, what is wrong and how to fix it; the CLI prints
it as one line and exits with code 2, without a traceback.
"""
from typing import Optional


class ErrorsWithCodes(type):
    """Prefix each message with its code, as ``spacy.errors.ErrorsWithCodes`` does."""

    def __getattribute__(self, code: str) -> str:
        msg = super().__getattribute__(code)
        if code.startswith("__"):  # python system attributes like __class__
            return msg
        return f"[{code}] {msg}"


# Codes are grouped by area, each area with its own range (keep new codes in their section):
#   E001-E039 / W001-W009  input files, arguments, library misuse (HIPE I/O, CLI)
#   E040-E099 / W010-W049  the relation component, candidates, extensions, results, docs
#   E100-E149 / W050-W069  hostile input, long documents, safe templates, signals
#   E150-E199 / W070-W089  the LLM stages and engines
#   E200-E229 / W090-W099  archive scale (Ray)
#   E230-E269 / W100-W119  the recogniser (raw text, NER)


class Warnings(metaclass=ErrorsWithCodes):
    W001 = "Document {doc_id}: {kind} mention {mention!r} of {entity_id} not found in the text."
    W002 = "Skipped {n} invalid document(s) (--skip-invalid)."
    # --- relation component, candidates, results (W010-W049)
    # --- hostile input (W050-W069)
    # --- LLM (W070-W089)
    # --- archive scale (W090-W099)
    # --- recogniser (W100-W119)


class Errors(metaclass=ErrorsWithCodes):
    # Bad input files (raised as InputError; the fix is in `Fixes` under the same code).
    E001 = "malformed JSON ({detail})"
    E002 = "missing required field {field!r}{where}"
    E003 = "wrong label {value!r} for {field!r}{where}: expected one of {expected}"
    E004 = "wrong type for {field!r}{where}: {detail}"
    E005 = "empty file: no documents"
    E006 = "not UTF-8 text ({detail})"
    E007 = "no such file or folder"
    E008 = "duplicate document id {doc_id!r} (first seen in {first})"
    E009 = "does not match the HIPE-2026 schema{where}: {detail}"
    E010 = "folder contains no {suffix} files"
    E011 = "cannot read the file ({detail})"
    # Bad arguments.
    E020 = "cannot load the pipeline {model!r} ({detail})"
    E021 = "the pipeline {model!r} has no 'dgemma_relations' component (its pipes: {pipes})"
    E022 = "expected as many prediction files as gold files, got {n} files in all"
    # Library misuse.
    E030 = "Doc has no HIPE metadata (doc._.dgemma_hipe is None): only Docs read from HIPE JSONL can be written as HIPE records."
    # The relation component, its models and the Doc extensions (E040-E059).
    E040 = (
        "The relation model {model!r} returned scores of shape {shape} for {n_pairs} candidate pairs: "
        "a relation model must return one row per pair with the {n_cols} columns of labels.SCORE_COLUMNS "
        "(see spacy_dgemma/ml/types.py)."
    )
    E050 = (
        "The Doc extension {name!r} is already registered by another package. spacy-dgemma keeps "
        "its data under its own name; remove the other registration (Doc.remove_extension({name!r})) "
        "before importing spacy_dgemma."
    )
    # --- hostile input, long documents, safe templates, signals (E100-E149)
    # --- LLM stages and engines (E150-E199)
    # --- archive scale (E200-E229)
    # --- recogniser (E230-E269)


class Fixes:
    """How to fix each input error, by the code of its message in `Errors`."""

    E001 = "make each line one complete JSON object (one document per line)"
    E002 = "add the field (see the HIPE-2026 schema; use null where a value is unknown)"
    E003 = "use one of the allowed labels, or null"
    E004 = "give the field the type the HIPE-2026 schema asks for"
    E005 = "give a file with at least one JSON document per line, or leave the file out"
    E006 = "re-save the file as UTF-8"
    E007 = "check the path"
    E008 = "give each document once across all inputs of one run"
    E009 = "fix the record so that `dgemma validate` accepts it"
    E010 = "point to a file, or to a folder holding the files"
    E011 = "check that the file is readable"
    E020 = "give a pipeline folder, an installed pipeline package, or 'baseline'"
    E021 = "add the component with nlp.add_pipe('dgemma_relations'), or use --model baseline"
    E022 = "give the gold files first, then the prediction files in the same order"


class InputError(ValueError):
    """A problem with an input file or argument: where it is, what is wrong, how to fix it.

    file: the file (or argument) at fault.
    line: 1-based line number, or None when the problem is with the whole file.
    message: what is wrong (starts with the error code).
    fix: how to fix it.
    """

    def __init__(self, file: str, line: Optional[int], message: str, fix: str) -> None:
        self.file = str(file)
        self.line = line
        self.message = message
        self.fix = fix
        super().__init__(str(self))

    @classmethod
    def of(cls, code: str, file: str, line: Optional[int] = None, **details) -> "InputError":
        """Build the error for `code` from `Errors` and `Fixes`, formatting the message with `details`."""
        return cls(file, line, getattr(Errors, code).format(**details), getattr(Fixes, code))

    @property
    def location(self) -> str:
        return self.file if self.line is None else f"{self.file}:{self.line}"

    def __str__(self) -> str:
        return f"{self.location}: {self.message} — {self.fix}"

    def __reduce__(self):
        return (type(self), (self.file, self.line, self.message, self.fix))
