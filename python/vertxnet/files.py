"""Atomic file writes: everything vertxnet writes goes through here.

A file is written under a temporary name in its destination folder (``<name>.tmp-<pid>``) and
renamed into place in one step, so a reader never sees half a file, and a failure or an
interrupt leaves no temporary file behind and an existing file at the destination untouched.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


def temporary_name(path: str | os.PathLike[str]) -> Path:
    """The temporary name ``path`` is written under before it is renamed into place."""
    path = Path(path)
    return path.with_name(f"{path.name}.tmp-{os.getpid()}")


@contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path to write to; on success it replaces ``path``, on failure it is removed.

    For writers that want a file name (``torch.save``, ``onnx.save``); :func:`atomic_write` for bytes or text.
    """
    final = Path(path)
    tmp = temporary_name(final)
    try:
        yield tmp
        os.replace(tmp, final)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write(path: str | os.PathLike[str], data: bytes | str) -> Path:
    """Write ``data`` (bytes, or text as UTF-8) to ``path`` atomically; returns the path."""
    final = Path(path)
    payload = data.encode("utf-8") if isinstance(data, str) else data
    with atomic_path(final) as tmp:
        with open(tmp, "wb") as f:
            f.write(payload)
    return final


def write_json_atomic(payload: Any, path: str | os.PathLike[str], *, indent: int | None = None) -> Path:
    """Write ``payload`` as JSON (no NaN or infinity, newline at the end) to ``path`` atomically."""
    return atomic_write(path, json.dumps(payload, indent=indent, allow_nan=False) + "\n")
