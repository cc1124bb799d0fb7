"""Atomic file writes: everything vertxnet writes goes through here.

A file is written under a temporary name in its destination folder
(``<name>.tmp-<pid>-<random>``, unique per call, so threads and processes writing the same
destination never share one), flushed to disk (``fsync``), and renamed into place in one step;
the folder is then synced so the rename itself survives a power cut. A reader never sees half a
file, and a failure or an interrupt leaves no temporary file behind and an existing file at the
destination untouched.

The one exception by design is an append-only journal (``vertxnet.batch.journal``), whose
readers skip a torn last line.
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


def temporary_name(path: str | os.PathLike[str]) -> Path:
    """A fresh temporary name, in ``path``'s folder, that ``path`` is written under before it is
    renamed into place (unique per call: process id and a random token)."""
    path = Path(path)
    return path.with_name(f"{path.name}.tmp-{os.getpid()}-{secrets.token_hex(4)}")


def fsync_file(path: str | os.PathLike[str]) -> None:
    """Flush ``path``'s data to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_directory(folder: str | os.PathLike[str]) -> None:
    """Flush ``folder``'s entries (a rename into it) to disk, where the platform allows it."""
    try:
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return  # e.g. Windows, where folders cannot be opened: its rename is durable by itself
    try:
        os.fsync(fd)
    except OSError:
        pass  # some filesystems refuse fsync on folders; the rename is still atomic
    finally:
        os.close(fd)


def _replace(tmp: Path, final: Path, write: Callable[[Path], None]) -> Path:
    try:
        write(tmp)
        fsync_file(tmp)
        os.replace(tmp, final)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_directory(final.parent)
    return final


@contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path to write to; on success it is synced and replaces ``path``, on
    failure it is removed.

    For writers that want a file name (``torch.save``, ``onnx.save``); :func:`atomic_write` for bytes or text.
    """
    final = Path(path)
    tmp = temporary_name(final)
    try:
        yield tmp
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    if not tmp.is_file():
        raise FileNotFoundError(f"{final}: the writer left nothing at its temporary name {tmp.name}")
    _replace(tmp, final, lambda _: None)


def atomic_write(path: str | os.PathLike[str], data: bytes | str) -> Path:
    """Write ``data`` (bytes, or text as UTF-8) to ``path`` atomically; returns the path."""
    final = Path(path)
    payload = data.encode("utf-8") if isinstance(data, str) else bytes(data)

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as f:
            f.write(payload)

    return _replace(temporary_name(final), final, write)


def write_json_atomic(payload: Any, path: str | os.PathLike[str], *, indent: int | None = None) -> Path:
    """Write ``payload`` as JSON (no NaN or infinity, newline at the end) to ``path`` atomically."""
    return atomic_write(path, json.dumps(payload, indent=indent, allow_nan=False) + "\n")
