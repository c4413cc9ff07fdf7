"""The input files of a job: listing (files, folders, globs, any fsspec filesystem), kinds,
decompression, and the index that cuts a HIPE file into shards.

Paths are local paths or URLs that fsspec understands (``s3://bucket/prefix``, ``gs://…``,
``hdfs://…`` with the matching fsspec package installed). ``.gz`` and ``.bz2`` files are
decompressed on the fly. Two kinds of input:

- ``hipe``: HIPE-2026 JSONL (``.jsonl``, ``.jsonl.gz``, ``.jsonl.bz2``), one record per line;
- ``text``: raw text (``.txt``, ``.txt.gz``, ``.txt.bz2``), one document per file, whose id is
  its path below the folder (or glob root) it was found in, without the suffixes.
"""
import bz2
import gzip
import hashlib
import io
import posixpath
from dataclasses import asdict, dataclass
from typing import IO, Any, Dict, Iterable, Iterator, List, Optional, Tuple

from spacy_dgemma.errors import InputError
from spacy_dgemma.hipe.read import CHUNK_SIZE, LINE_END, WIDE_BOM_ENCODINGS, RawLine, is_blank, iter_raw_lines

HIPE = "hipe"
TEXT = "text"
COMPRESSIONS = {".gz": "gzip", ".bz2": "bz2"}
KIND_OF_SUFFIX = {".jsonl": HIPE, ".txt": TEXT}
WIDE_BOMS = tuple(bom for bom, _ in WIDE_BOM_ENCODINGS)


@dataclass(frozen=True)
class InputFile:
    """One input file.

    url: a local absolute path, or a URL with its protocol.
    kind: ``hipe`` or ``text``.
    size: size in bytes (as stored, i.e. compressed).
    mtime: modification time as the filesystem reports it (a string; "" if unknown).
    doc_id: for a text file, the document id; "" for HIPE files.
    """

    url: str
    kind: str
    size: int
    mtime: str = ""
    doc_id: str = ""

    def to_dict(self) -> Dict[str, Any]:
        return asdict(self)


def split_suffixes(path: str) -> Tuple[str, Optional[str], Optional[str]]:
    """(path without suffixes, kind or None, compression or None) of a file name."""
    stem, compression = path, None
    for suffix, name in COMPRESSIONS.items():
        if stem.endswith(suffix):
            stem, compression = stem[: -len(suffix)], name
            break
    for suffix, kind in KIND_OF_SUFFIX.items():
        if stem.endswith(suffix):
            return stem[: -len(suffix)], kind, compression
    return stem, None, compression


def list_inputs(inputs: Iterable[str]) -> List[InputFile]:
    """The input files named by `inputs`, in order: each file as given, each folder as its
    HIPE and text files (recursively, sorted), each glob as its matches (sorted).

    Raises InputError for a path that matches nothing, or a file of an unknown kind.
    """
    import fsspec

    files: List[InputFile] = []
    seen = set()
    for given in inputs:
        fs, path = fsspec.core.url_to_fs(str(given))
        if fsspec.core.has_magic(path):
            root = _glob_root(path)
            found = sorted(p for p in fs.glob(path) if fs.isfile(p) and split_suffixes(p)[1])
            if not found:
                raise InputError.of("E202", str(given))
        elif fs.isdir(path):
            root = path
            found = sorted(p for p in fs.find(path) if split_suffixes(p)[1])
            if not found:
                raise InputError.of("E202", str(given))
        elif fs.isfile(path):
            root = posixpath.dirname(path)
            if split_suffixes(path)[1] is None:
                raise InputError.of("E203", str(given))
            found = [path]
        else:
            raise InputError.of("E007", str(given))
        for path in found:
            url = _url(fs, path)
            if url in seen:
                continue
            seen.add(url)
            files.append(_input_file(fs, path, url, root))
    return files


def _glob_root(pattern: str) -> str:
    """The folder of a glob pattern above its first wildcard."""
    import fsspec

    parts = pattern.split("/")
    for i, part in enumerate(parts):
        if fsspec.core.has_magic(part):
            return "/".join(parts[:i])
    return posixpath.dirname(pattern)


def _url(fs, path: str) -> str:
    """A local path stays a path; other filesystems get their protocol back."""
    protocols = (fs.protocol,) if isinstance(fs.protocol, str) else tuple(fs.protocol)
    return posixpath.normpath(path) if "file" in protocols else fs.unstrip_protocol(path)


def _input_file(fs, path: str, url: str, root: str) -> InputFile:
    info = fs.info(path)
    stem, kind, _ = split_suffixes(path)
    mtime = info.get("mtime") or info.get("LastModified") or info.get("updated") or info.get("ETag") or ""
    doc_id = ""
    if kind == TEXT:
        rel = posixpath.relpath(stem, root) if root else stem
        doc_id = rel if not rel.startswith("..") else posixpath.basename(stem)
    return InputFile(url=url, kind=kind, size=int(info.get("size") or 0), mtime=str(mtime), doc_id=doc_id)


def open_input(url: str) -> IO[bytes]:
    """A binary file object of an input, decompressed if it is ``.gz`` / ``.bz2``."""
    import fsspec

    compression = split_suffixes(url)[2]
    return fsspec.open(url, "rb", compression=compression).open()


def read_input(url: str) -> Tuple[bytes, str]:
    """All the (decompressed) bytes of an input file, and the SHA-256 of its stored bytes (what
    ``sha256sum`` prints for it, as for the HIPE files in `index_hipe_file`)."""
    import fsspec

    digest = hashlib.sha256()
    with fsspec.open(url, "rb").open() as raw:
        stream = _HashingReader(raw, digest)
        with _decompressed(stream, split_suffixes(url)[2]) as handle:
            data = handle.read()
            stream.drain()
    return data, digest.hexdigest()


def index_hipe_file(url: str, shard_size: int) -> Dict[str, Any]:
    """Read a HIPE JSONL file once: its checksum, its records, and where its shards start.

    Lines end as `spacy_dgemma.hipe.read.iter_raw_lines` ends them (LF, CRLF or a lone CR). A
    file in UTF-16 or UTF-32 (with a byte order mark) is one shard, as it can only be decoded
    from its start.
    url: the file.
    shard_size: records per shard.
    Returns {"url", "sha256" (of the stored bytes), "records" (non-blank lines), "shards":
    [[first line (1-based), byte offset in the decompressed stream, records], ...],
    "error": "" or why the file cannot be read}.
    """
    import fsspec

    digest = hashlib.sha256()
    shards: List[List[int]] = []
    n_records = 0
    try:
        # Hash the bytes as stored; split the decompressed stream read from them into lines.
        with fsspec.open(url, "rb").open() as raw:
            stream = _HashingReader(raw, digest)
            with _decompressed(stream, split_suffixes(url)[2]) as handle:
                wide = handle.peek(4)[:4].startswith(WIDE_BOMS)
                for line, offset, data in _lines_with_offsets(handle):
                    if not is_blank(data):
                        if n_records % shard_size == 0:
                            shards.append([line, offset, 0])
                        shards[-1][2] += 1
                        n_records += 1
                stream.drain()
    except (OSError, EOFError, ValueError) as err:
        return {"url": url, "sha256": "", "records": 0, "shards": [], "error": str(err) or type(err).__name__}
    if wide:  # blank lines are told apart only after decoding
        n_records = sum(1 for _ in iter_lines(url, 1, 0, None))
        shards = [[1, 0, n_records]] if n_records else []
    return {"url": url, "sha256": digest.hexdigest(), "records": n_records, "shards": shards, "error": ""}


def iter_lines(url: str, first_line: int, offset: int, n_records: Optional[int]) -> Iterator[Tuple[int, RawLine]]:
    """(line number, raw line) of the next `n_records` non-blank lines of a HIPE file (all if
    None), from a shard start: lines as `spacy_dgemma.hipe.read.iter_raw_lines` reads them."""
    with open_input(url) as handle:
        handle.seek(offset)  # a forward seek in a compressed stream decompresses and discards
        taken = 0
        for number, data in iter_raw_lines(handle, url, at_start=offset == 0):
            if taken == n_records:
                return
            if not is_blank(data):
                taken += 1
                yield first_line + number - 1, data


def _lines_with_offsets(handle: IO[bytes]) -> Iterator[Tuple[int, int, bytes]]:
    """(1-based line number, offset of its start, line without its end) of a byte stream."""
    number = offset = 0
    rest = b""
    for chunk in iter(lambda: handle.read(CHUNK_SIZE), b""):
        data = rest + chunk
        end = len(data) - 1 if data.endswith(b"\r") else len(data)  # maybe half of a CRLF
        pos = 0
        for match in LINE_END.finditer(data, 0, end):
            number += 1
            yield number, offset + pos, data[pos : match.start()]
            pos = match.end()
        rest = data[pos:]
        offset += pos
    pos = 0
    for match in LINE_END.finditer(rest):
        number += 1
        yield number, offset + pos, rest[pos : match.start()]
        pos = match.end()
    if rest[pos:]:
        yield number + 1, offset + pos, rest[pos:]


class _HashingReader(io.RawIOBase):
    """A raw read-only stream that feeds every byte read into a hash."""

    def __init__(self, raw: IO[bytes], digest) -> None:
        super().__init__()
        self.raw = raw
        self.digest = digest

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        data = self.raw.read(len(buffer))
        self.digest.update(data)
        buffer[: len(data)] = data
        return len(data)

    def drain(self) -> None:
        """Hash what the decompressor left unread (e.g. trailing bytes after the last stream)."""
        while self.read(CHUNK_SIZE):
            pass


def _decompressed(stream: _HashingReader, compression: Optional[str]) -> IO[bytes]:
    if compression == "gzip":
        return gzip.GzipFile(fileobj=stream, mode="rb")
    if compression == "bz2":
        return bz2.BZ2File(stream, mode="rb")
    return io.BufferedReader(stream, CHUNK_SIZE)
