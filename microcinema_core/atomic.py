"""Writing a file whole or not at all: the one helper every writer of the pack uses.

The data goes to a hidden temporary file in the destination's folder (``.<name>.partial-<8 hex><suffix>``, so
the rename never crosses a file system), is flushed and fsynced, and only then moved onto the real name with
``os.replace``. A crash, an error or a Cancel therefore never leaves a half-written file under the real name,
and a reader sees either the old file or the new one; the temporary file is removed on any error.

* ``atomic_write(path, data)``: bytes, or text (``encoding``).
* ``with atomic_path(path) as tmp:``: for writers that need a path of their own (``torch.save``, safetensors,
  ffmpeg, Pillow, ``np.savez``); ``suffix`` gives the temporary name the extension such a writer reads its
  format from.

The destination folder must exist (callers that create it do so themselves).
"""
from __future__ import annotations

import os
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

PARTIAL_MARK = ".partial-"  # part of every temporary file name (tests look for leftovers)


def partial_path(path, suffix: str = "") -> Path:
    """A fresh hidden temporary name next to ``path``: ``.<name>.partial-<8 hex><suffix>``."""
    path = Path(path)
    return path.with_name(f".{path.name}{PARTIAL_MARK}{uuid.uuid4().hex[:8]}{suffix}")


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def remove_quietly(path) -> None:
    try:
        os.remove(path)
    except OSError:
        pass


@contextmanager
def atomic_path(path, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path next to ``path``; when the block ends without an error, the file written there is
    fsynced and moved onto ``path``; on any error it is removed and the error goes on."""
    path = Path(path)
    tmp = partial_path(path, suffix)
    try:
        yield tmp
        _fsync(tmp)
        os.replace(tmp, path)
    except BaseException:
        remove_quietly(tmp)
        raise


def atomic_write(path, data: bytes | str, encoding: str = "utf-8") -> Path:
    """Write ``data`` (bytes, or text in ``encoding``) to ``path`` whole or not at all; returns ``path``."""
    payload = data.encode(encoding) if isinstance(data, str) else bytes(data)
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as handle:
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
    return Path(path)
