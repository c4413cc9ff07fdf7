"""Small helpers shared across the package (one implementation of each idea)."""
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
