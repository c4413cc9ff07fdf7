"""Small helpers shared across the package (one implementation of each idea)."""
import hashlib
import os
import stat
import sys
import tempfile
from pathlib import Path
from typing import IO, Optional, Union

PathLike = Union[str, Path]
# Bytes a file name may have on common file systems, and the room left for the target's name
# in AtomicWriter's temporary name (which adds ".", ".", 8 random characters and ".tmp").
NAME_MAX = 255
TEMP_NAME_ROOM = NAME_MAX - 14


def _is_stream(path: Path) -> bool:
    """Whether `path` is an existing file that is neither a regular file nor a folder (a device,
    a pipe), which must be written in place: renaming a file over it would replace it."""
    try:
        mode = path.stat().st_mode
    except OSError:
        return False
    return not (stat.S_ISREG(mode) or stat.S_ISDIR(mode))


def _shorten(name: str, limit: int) -> str:
    """`name` cut to at most `limit` bytes of UTF-8 (on a character boundary)."""
    data = name.encode("utf-8", "surrogateescape")
    return name if len(data) <= limit else data[:limit].decode("utf-8", "ignore")


class AtomicWriter:
    """A file that appears under its name only when it was written completely.

    Use as a context manager; on an exception the temporary file is removed and the target
    is left as it was. A device or a pipe (``/dev/null``, ``/dev/stdout``) is written directly.
    """

    def __init__(self, path: PathLike, mode: str = "w") -> None:
        self.path = Path(path)
        self.mode = mode
        self._file: Optional[IO] = None

    def __enter__(self) -> IO:
        kwargs = {} if "b" in self.mode else {"encoding": "utf-8", "newline": "\n"}
        if _is_stream(self.path):  # a device or a pipe (/dev/null, /dev/stdout): written as it is
            self._tmp = None
            self._file = open(self.path, self.mode, **kwargs)
            return self._file
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=f".{_shorten(self.path.name, TEMP_NAME_ROOM)}.", suffix=".tmp")
        self._tmp = Path(tmp)
        self._file = os.fdopen(fd, self.mode, **kwargs)
        return self._file

    def __exit__(self, exc_type, exc, tb) -> None:
        assert self._file is not None
        if self._tmp is None:
            self._file.close()
            return
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


def die_with_parent(signum: int, parent: Optional[int] = None) -> None:
    """Ask Linux to send this process `signum` when its parent dies (even by SIGKILL): no
    orphans; elsewhere nothing. With `parent` (its pid, read before the fork), exit at once if
    the parent died before the request."""
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            ctypes.CDLL(None, use_errno=True).prctl(1, signum)  # 1 = PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass
    if parent is not None and os.getppid() != parent:
        os._exit(1)
