"""The few exception types vertxnet raises. Bad arrays raise the built-in ValueError."""

from __future__ import annotations

from pathlib import Path


class VertxError(Exception):
    """Base class of every vertxnet error."""


class InputError(VertxError):
    """An input file cannot be used. The message names the file and the reason."""

    def __init__(self, path: str | Path | None, reason: str):
        self.path = None if path is None else str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}" if self.path else reason)


class BundleError(VertxError):
    """A model bundle is missing, malformed or fails its integrity check."""

    def __init__(self, path: str | Path | None, reason: str):
        self.path = None if path is None else str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}" if self.path else reason)
