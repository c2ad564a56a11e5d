"""Atomic file writes: the data go to a temporary file beside the target, are fsynced, then
renamed over it, so a crash or a kill at any moment leaves the old file or the new one, never
half of one. Every writer of a user's file (projects, clips, paint layers, PSD, GLB, CSV, batch
summaries, the appearance model) goes through `write_atomic`."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import BinaryIO, Callable


def write_atomic(path: str | os.PathLike, data: bytes | Callable[[BinaryIO], None],
                 error: type[Exception] = OSError, verb: str = "write") -> Path:
    """Write `data` (bytes, or a function that writes to a binary file) to `path` atomically.

    Failures raise `error` with one sentence ("Cannot save X: ..."); the temporary file is
    removed and an existing file at `path` is left as it was."""
    path = Path(path)
    directory = path.parent if str(path.parent) else Path(".")
    if not directory.is_dir():
        raise error(f"Cannot {verb} {path}: the folder {directory} does not exist.")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    except OSError as exc:
        raise error(f"Cannot {verb} {path}: {exc.strerror or exc}") from exc
    try:
        with os.fdopen(fd, "wb") as f:
            if isinstance(data, (bytes, bytearray, memoryview)):
                f.write(data)
            else:
                data(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        _unlink_quietly(tmp)
        if error is OSError:
            raise
        raise error(f"Cannot {verb} {path}: {exc.strerror or exc}") from exc
    except BaseException:
        _unlink_quietly(tmp)
        raise
    return path


def _unlink_quietly(p: str) -> None:
    try:
        os.unlink(p)
    except OSError:
        pass
