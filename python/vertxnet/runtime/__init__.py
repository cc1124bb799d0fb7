"""Inference backends behind one interface (see :mod:`vertxnet.runtime.base`)."""

from .base import (
    BACKEND_NAMES,
    BACKENDS,
    BackendInfo,
    BackendUnavailable,
    ModelSession,
    available_backends,
    backend_info,
    open_model,
    resolve_backend,
)

__all__ = [
    "BACKENDS",
    "BACKEND_NAMES",
    "BackendInfo",
    "BackendUnavailable",
    "ModelSession",
    "available_backends",
    "backend_info",
    "open_model",
    "resolve_backend",
]
