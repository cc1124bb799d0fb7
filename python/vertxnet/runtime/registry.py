"""The inference-backend interface and the registry backends add themselves to.

A backend opens one model of a bundle as a :class:`ModelSession`: a callable that takes the
preprocessed image tensor ``image`` (1, 1, S, S) float32 and returns the named outputs of the
ONNX model contract (docs/DESIGN.md) as numpy arrays. Sessions are created once and reused.

Each backend module (``onnxrt``, ``tensorrt``) describes itself as a :class:`Backend` and calls
:func:`register` with its place in the ``auto`` order; nothing here knows a concrete backend.
Nothing here imports torch.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..errors import VertxError

if TYPE_CHECKING:
    from ..bundle import Bundle

#: Model names of a bundle, and the outputs each must produce (docs/DESIGN.md, ONNX contract).
MODEL_OUTPUTS: dict[str, tuple[str, ...]] = {
    "unet": ("logits",),
    "maskrcnn": ("boxes", "scores", "labels", "mask_probs"),
}
#: Outputs a model may have beyond those (newer bundles): fetched when the graph has them.
OPTIONAL_OUTPUTS: dict[str, tuple[str, ...]] = {"maskrcnn": ("class_probs",)}
INPUT_NAME = "image"
#: Model precisions a bundle may offer (manifest ``models.<name>.variants``).
PRECISIONS = ("fp32", "fp16", "int8")


class BackendUnavailable(VertxError):
    """The requested backend cannot run here (library missing, no GPU, no engine in the bundle)."""


@dataclass(frozen=True)
class BackendInfo:
    """What one backend is and supports."""

    name: str
    engine: str
    providers: tuple[str, ...]
    precisions: tuple[str, ...]
    platforms: str
    verified: bool
    note: str


class ModelSession(ABC):
    """One loaded model, ready to run repeatedly (thread-compatible: one call at a time per session)."""

    #: Name of the backend that runs this session.
    backend: str
    #: The model file this session was created from (named in error messages).
    path: Path

    @abstractmethod
    def run(self, image: np.ndarray) -> dict[str, np.ndarray]:
        """Run on the preprocessed ``image`` (1, 1, S, S) float32; return the named outputs."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release device resources early (garbage collection does it otherwise)."""


class Backend(ABC):
    """One way of running a bundle's models. The defaults describe backends that run the
    bundle's ONNX files (and their fp16/int8 variants)."""

    info: BackendInfo

    @abstractmethod
    def unavailable_reason(self) -> str | None:
        """Why this backend cannot run on this machine, or None when it can."""

    def bundle_problem(self, bundle: "Bundle") -> str | None:
        """What ``bundle`` lacks for this backend (e.g. engines), or None."""
        return None

    @abstractmethod
    def open(self, bundle: "Bundle", model: str, *, threads: int | None, variant: str | None) -> ModelSession:
        """Open ``model`` of ``bundle``; ``variant`` as :func:`open_model` describes."""

    def model_variants(self, bundle: "Bundle", precision: str) -> dict[str, str | None]:
        """The variant each model runs for ``precision``: the bundle's variant of that precision
        where it has one, the fp32 file otherwise; ValueError when neither model has it."""
        if precision == "fp32":
            return {"unet": None, "maskrcnn": None}
        variants = {m: precision if precision in bundle.variants(m) else None for m in MODEL_OUTPUTS}
        if not any(variants.values()):
            raise ValueError(f"bundle {bundle.path} has no {precision} variant of either model")
        return variants

    def ran_precision(self, bundle: "Bundle", model: str, variant: str | None) -> str:
        """What a result reports as the precision ``model`` ran in."""
        return variant or "fp32"


_REGISTRY: dict[str, tuple[int, Backend]] = {}


def register(backend: Backend, rank: int) -> None:
    """Add ``backend``; ``auto`` prefers lower ranks (the fastest backends)."""
    _REGISTRY[backend.info.name] = (rank, backend)


def registered() -> list[Backend]:
    """Every registered backend, in the order ``auto`` prefers them (fastest first)."""
    return [backend for _, backend in sorted(_REGISTRY.values(), key=lambda item: item[0])]


def backend(name: str) -> Backend:
    """The registered backend ``name``; ValueError for an unknown one."""
    if name not in _REGISTRY:
        names = ", ".join(b.info.name for b in registered())
        raise ValueError(f"unknown backend {name!r}; expected 'auto' or one of {names}")
    return _REGISTRY[name][1]


def backend_info(name: str) -> BackendInfo:
    """The description of backend ``name``; ValueError for an unknown backend."""
    return backend(name).info


def available_backends(bundle: "Bundle | None" = None) -> list[str]:
    """Backends that can run here (and, given a bundle, that have what they need in it), fastest first."""
    return [
        b.info.name for b in registered()
        if b.unavailable_reason() is None and (bundle is None or b.bundle_problem(bundle) is None)
    ]  # fmt: skip


def resolve_backend(requested: str, bundle: "Bundle") -> str:
    """Concrete backend for ``requested`` ("auto" or a name); BackendUnavailable if it cannot run here."""
    if requested == "auto":
        return available_backends(bundle)[0]  # onnxruntime-cpu is always there
    chosen = backend(requested)
    why = chosen.unavailable_reason()
    if why is not None:
        raise BackendUnavailable(f"backend {requested!r} is not available here: {why}")
    problem = chosen.bundle_problem(bundle)
    if problem is not None:
        raise BackendUnavailable(problem)
    return requested


def model_variants(name: str, bundle: "Bundle", precision: str) -> dict[str, str | None]:
    """The variant each model of ``bundle`` runs under backend ``name`` at ``precision``."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    return backend(name).model_variants(bundle, precision)


def open_model(name: str, bundle: "Bundle", model: str, *, threads: int | None = None, variant: str | None = None) -> ModelSession:
    """Open ``model`` ("unet" | "maskrcnn") of ``bundle`` on the concrete backend ``name``.

    ``variant`` picks an ONNX variant listed in the manifest (e.g. "int8", "fp16"); for the
    native TensorRT backend it is the wanted engine precision (engine variant ``trt-<precision>``,
    else the bundle's first engine for the model).
    """
    if model not in MODEL_OUTPUTS:
        raise ValueError(f"unknown model {model!r}; expected one of {sorted(MODEL_OUTPUTS)}")
    return backend(name).open(bundle, model, threads=threads, variant=variant)
