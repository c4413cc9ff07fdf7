"""Small helpers shared across the package (one implementation of each idea)."""
import hashlib
import os
import tempfile
from pathlib import Path
from typing import IO, Optional, Union

PathLike = Union[str, Path]


class AtomicWriter:
    """A file that appears under its name only when it was written completely.

    Use as a context manager; on an exception the temporary file is removed and the target
    is left as it was.
    """

    def __init__(self, path: PathLike, mode: str = "w") -> None:
        self.path = Path(path)
        self.mode = mode
        self._file: Optional[IO] = None

    def __enter__(self) -> IO:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.name}.", suffix=".tmp")
        self._tmp = Path(tmp)
        kwargs = {} if "b" in self.mode else {"encoding": "utf-8", "newline": "\n"}
        self._file = os.fdopen(fd, self.mode, **kwargs)
        return self._file

    def __exit__(self, exc_type, exc, tb) -> None:
        assert self._file is not None
        try:
            if exc_type is None:
                self._file.flush()
                os.fsync(self._file.fileno())
            self._file.close()
            if exc_type is None:
                umask = os.umask(0)
                os.umask(umask)
                os.chmod(self._tmp, 0o666 & ~umask)  # mkstemp makes 0600 files
                os.replace(self._tmp, self.path)
        finally:
            if self._tmp.exists():
                self._tmp.unlink()


def edit_distance(a: str, b: str, limit: Optional[int] = None) -> int:
    """Levenshtein distance (insertions, deletions, substitutions), computed by rapidfuzz.

    limit: if given, any distance above it is returned as ``limit + 1`` (faster).
    """
    from rapidfuzz.distance import Levenshtein

    return Levenshtein.distance(a, b, score_cutoff=limit)


def stable_key(text: str) -> str:
    """The SHA-1 hex digest of `text`: a key that orders documents the same way on every machine."""
    return hashlib.sha1(text.encode("utf-8")).hexdigest()


def stable_fraction(text: str) -> float:
    """A number in [0, 1) fixed by `text` (from `stable_key`), for splits by a share of documents."""
    return int(stable_key(text)[:16], 16) / 2**64
