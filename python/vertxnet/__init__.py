"""vertxnet: segmentation and naming of vertebrae on lateral spinal radiographs (VertXNet)."""

from __future__ import annotations

import importlib

from .errors import BundleError, InputError, VertxError
from .levels import LEVELS, level_index

__version__ = "0.1.0"

__all__ = [
    "LEVELS",
    "BundleError",
    "InputError",
    "VertxError",
    "__version__",
    "level_index",
]


def __getattr__(name: str):
    # Heavier pieces load on first use so that `import vertxnet` stays cheap.
    if name in ("Pipeline", "PipelineConfig"):
        from . import pipeline

        return getattr(pipeline, name)
    if name == "core":
        # importlib rather than `from . import core`, which would re-enter this __getattr__.
        return importlib.import_module(".core", __name__)
    raise AttributeError(f"module 'vertxnet' has no attribute {name!r}")
