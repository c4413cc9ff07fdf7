"""Write Docs as HIPE-2026 records (official-format JSONL) and as DocBins, atomically.

A record keeps every input field and every input pair as read, in the input key order; only
``at``, ``isAt``, ``at_explanation`` and ``isAt_explanation`` of the pairs are filled from
``doc._.dgemma_relations``. Files are written to a temporary file in the target folder, synced, and
renamed over the target, so a reader never sees a half-written file.
"""
import errno
import json
import os
from pathlib import Path
from typing import Any, Dict, Iterable, Optional, Union

from spacy.tokens import Doc, DocBin

from spacy_dgemma.errors import Errors, InputError
from spacy_dgemma.hipe.read import KEY_ORDER_KEY
from spacy_dgemma.hipe.validate import schema_error
from spacy_dgemma.pipeline.records import relations_to_hipe_pairs
from spacy_dgemma.util import NAME_MAX, AtomicWriter

PathLike = Union[str, Path]


def doc_to_record(doc: Doc, *, text: Optional[str] = None) -> Dict[str, Any]:
    """The HIPE record of a Doc read from HIPE, with the predicted labels filled in.

    doc: a Doc made by `record_to_doc` (and a pipeline).
    text: the Doc's text, if the caller has it (``doc.text`` joins every token: slow).
    """
    if doc._.dgemma_hipe is None:
        raise ValueError(Errors.E030)
    values = {**doc._.dgemma_hipe, "text": doc.text if text is None else text, "sampled_pairs": relations_to_hipe_pairs(doc)}
    order = [key for key in doc.user_data.get(KEY_ORDER_KEY, []) if key in values]
    return {key: values[key] for key in dict.fromkeys(order + list(values))}


def dumps(record: Dict[str, Any]) -> str:
    """One JSONL line (without the newline), non-ASCII characters kept as they are.

    Only standard JSON: ValueError for NaN or an infinite number (the reader refuses them).
    """
    return json.dumps(record, ensure_ascii=False, allow_nan=False)


class RecordWriter(AtomicWriter):
    """An atomic JSONL file of HIPE records: ``with RecordWriter(path) as out: out.write(record)``.

    An OSError while opening, writing or committing the file (a missing permission, a full
    disk) is raised as the InputError of `write_error`, naming the file.
    validate: check each record against the HIPE-2026 schema before writing it (ValueError if
        it is invalid: a bug of whoever made the record, not a problem of the input).
    """

    def __init__(self, path: PathLike, *, validate: bool = False) -> None:
        super().__init__(path, "w")
        self.validate = validate
        self.n_written = 0

    def __enter__(self) -> "RecordWriter":
        try:
            super().__enter__()
        except OSError as err:
            raise write_error(self.path, err) from err
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            super().__exit__(exc_type, exc, tb)
        except OSError as err:
            if exc_type is None:
                raise write_error(self.path, err) from err

    def write(self, record: Dict[str, Any]) -> None:
        if self.validate:
            err = schema_error(record)
            if err is not None:
                raise ValueError(f"Record {self.n_written + 1} for {self.path} is not valid HIPE-2026: {err.message}")
        self.write_line(dumps(record))

    def write_line(self, line: str) -> None:
        """Write one record already serialised by `dumps` (and checked by the caller)."""
        assert self._file is not None
        try:
            self._file.write(line + "\n")
        except OSError as err:
            raise write_error(self.path, err) from err
        self.n_written += 1


def check_output_path(path: PathLike) -> None:
    """Raise InputError if a file certainly cannot be written at `path` (before a long run).

    Checks the length of each name in the path, that the nearest existing parent is a folder,
    and that it is writable. Problems that only writing shows (a full disk) are turned into
    InputErrors by `write_error`.
    """
    path = Path(path)
    check_name_lengths(path)
    folder = path.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    if folder.exists() and not folder.is_dir():
        raise InputError.of("E107", str(path), parent=str(folder))
    if not os.access(folder, os.W_OK | os.X_OK):
        raise InputError.of("E108", str(path), folder=str(folder), detail="permission denied")


def check_name_lengths(path: PathLike) -> None:
    """Raise InputError (E106) if a name in `path` is longer than file systems allow."""
    for name in Path(path).parts:
        size = len(name.encode("utf-8", "surrogateescape"))
        if size > NAME_MAX:
            raise InputError.of("E106", str(path), n=size, limit=NAME_MAX)


def write_error(path: PathLike, err: OSError) -> InputError:
    """The InputError for an OSError raised while writing the file `path` (or its folder)."""
    detail = err.strerror or type(err).__name__
    if err.errno == errno.ENAMETOOLONG:
        size = len(Path(path).name.encode("utf-8", "surrogateescape"))
        return InputError.of("E106", str(path), n=size, limit=_name_max(Path(path).parent))
    if err.errno in (errno.ENOTDIR, errno.EEXIST):
        return InputError.of("E107", str(path), parent=str(err.filename or Path(path).parent))
    if err.errno in (errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOENT):
        return InputError.of("E108", str(path), folder=str(Path(path).parent), detail=detail)
    return InputError.of("E109", str(path), detail=detail)


def _name_max(folder: Path) -> int:
    try:
        return os.pathconf(folder, "PC_NAME_MAX")
    except (OSError, ValueError):
        return NAME_MAX


def write_jsonl(path: PathLike, records: Iterable[Dict[str, Any]], *, validate: bool = False) -> int:
    """Write records as JSONL, atomically; return how many were written.

    validate: check each record against the HIPE-2026 schema first (ValueError if invalid).
    """
    with RecordWriter(path, validate=validate) as out:
        for record in records:
            out.write(record)
    return out.n_written


def write_docs(path: PathLike, docs: Iterable[Doc], *, validate: bool = False) -> int:
    """Write Docs read from HIPE as official-format JSONL, atomically; return how many."""
    return write_jsonl(path, (doc_to_record(doc) for doc in docs), validate=validate)


def write_docbin(path: PathLike, docs: Iterable[Doc]) -> int:
    """Save Docs with all their annotations and user data as a ``.spacy`` DocBin, atomically."""
    docbin = DocBin(store_user_data=True)
    for doc in docs:
        docbin.add(doc)
    with AtomicWriter(path, "wb") as out:
        out.write(docbin.to_bytes())
    return len(docbin)
