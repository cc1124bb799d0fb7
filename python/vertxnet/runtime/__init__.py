"""Inference backends behind one interface (:mod:`vertxnet.runtime.registry`).

The backends shipped with the package register themselves when their modules are imported:
:mod:`~vertxnet.runtime.tensorrt` (native engines, unverified) and :mod:`~vertxnet.runtime.onnxrt`
(ONNX Runtime CPU, CUDA and TensorRT execution providers).
"""

from . import onnxrt, tensorrt  # noqa: F401  (each registers its backends)
from .registry import (
    PRECISIONS,
    BackendInfo,
    BackendUnavailable,
    ModelSession,
    available_backends,
    backend_info,
    model_variants,
    open_model,
    registered,
    resolve_backend,
)

#: Every backend, in the order ``auto`` prefers them (fastest first).
BACKENDS: tuple[BackendInfo, ...] = tuple(b.info for b in registered())
BACKEND_NAMES: tuple[str, ...] = tuple(info.name for info in BACKENDS)

__all__ = [
    "BACKENDS",
    "BACKEND_NAMES",
    "PRECISIONS",
    "BackendInfo",
    "BackendUnavailable",
    "ModelSession",
    "available_backends",
    "backend_info",
    "model_variants",
    "open_model",
    "resolve_backend",
]
