"""The inference-backend interface, the table of backends, and the ``auto`` choice.

A backend opens one model of a bundle as a :class:`ModelSession`: a callable that takes the
preprocessed image tensor ``image`` (1, 1, S, S) float32 and returns the named outputs of the
ONNX model contract (docs/DESIGN.md) as numpy arrays. Sessions are created once and reused.
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
INPUT_NAME = "image"


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


#: Every backend, in the order ``auto`` prefers them (fastest first).
BACKENDS: tuple[BackendInfo, ...] = (
    BackendInfo(
        name="tensorrt",
        engine="TensorRT (native serialized engines, `tensorrt` Python API + cuda-python)",
        providers=(),
        precisions=("fp32", "fp16", "int8"),
        platforms="NVIDIA GPUs with TensorRT >= 10 (JetPack 6 on Jetson, x86-64 + CUDA 12)",
        verified=False,
        note="UNVERIFIED: written against the TensorRT 10 API but never run here (TensorRT cannot be "
        "installed on the development machines). Engines are device specific; the bundle must list them.",
    ),
    BackendInfo(
        name="onnxruntime-tensorrt",
        engine="ONNX Runtime, TensorRT execution provider (onnxruntime-gpu)",
        providers=("TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"),
        precisions=("fp32",),
        platforms="NVIDIA GPUs with onnxruntime-gpu built with TensorRT",
        verified=False,
        note="UNVERIFIED: only offered when onnxruntime reports the provider; not run on the development machines.",
    ),
    BackendInfo(
        name="onnxruntime-cuda",
        engine="ONNX Runtime, CUDA execution provider (onnxruntime-gpu)",
        providers=("CUDAExecutionProvider", "CPUExecutionProvider"),
        precisions=("fp32", "fp16"),
        platforms="NVIDIA GPUs with onnxruntime-gpu",
        verified=False,
        note="UNVERIFIED: only offered when onnxruntime reports the provider; not run on the development machines.",
    ),
    BackendInfo(
        name="onnxruntime-cpu",
        engine="ONNX Runtime, CPU execution provider",
        providers=("CPUExecutionProvider",),
        precisions=("fp32", "int8"),
        platforms="any platform onnxruntime supports (x86-64, aarch64 incl. Jetson CPU)",
        verified=True,
        note="Tested in the test suite.",
    ),
)

BACKEND_NAMES: tuple[str, ...] = tuple(b.name for b in BACKENDS)


def backend_info(name: str) -> BackendInfo:
    """The table row of ``name``; ValueError for an unknown backend."""
    for info in BACKENDS:
        if info.name == name:
            return info
    raise ValueError(f"unknown backend {name!r}; expected 'auto' or one of {', '.join(BACKEND_NAMES)}")


class ModelSession(ABC):
    """One loaded model, ready to run repeatedly (thread-compatible: one call at a time per session)."""

    #: Name of the backend that runs this session (a row of :data:`BACKENDS`).
    backend: str
    #: The model file this session was created from (named in error messages).
    path: Path

    @abstractmethod
    def run(self, image: np.ndarray) -> dict[str, np.ndarray]:
        """Run on the preprocessed ``image`` (1, 1, S, S) float32; return the named outputs."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release device resources early (garbage collection does it otherwise)."""


def available_backends(bundle: "Bundle | None" = None) -> list[str]:
    """Backends that can run here (and, given a bundle, that have what they need in it), fastest first."""
    from . import onnxrt, tensorrt

    names = []
    if tensorrt.is_available() and (bundle is None or tensorrt.bundle_has_engines(bundle)):
        names.append("tensorrt")
    names.extend(onnxrt.available_backends())
    return names


def resolve_backend(requested: str, bundle: "Bundle") -> str:
    """Concrete backend for ``requested`` ("auto" or a name); BackendUnavailable if it cannot run here."""
    if requested == "auto":
        return available_backends(bundle)[0]  # onnxruntime-cpu is always there
    backend_info(requested)
    if requested not in available_backends(None):
        raise BackendUnavailable(f"backend {requested!r} is not available here: {_why_unavailable(requested)}")
    if requested == "tensorrt":
        from . import tensorrt

        if not tensorrt.bundle_has_engines(bundle):
            raise BackendUnavailable(
                f"backend 'tensorrt' needs TensorRT engines (*.engine) listed in {bundle.path / 'manifest.json'}; "
                "build them on this device with export/build_trt.py"
            )
    return requested


def _why_unavailable(name: str) -> str:
    if name == "tensorrt":
        from . import tensorrt

        return tensorrt.unavailable_reason() or "unknown reason"
    import onnxruntime

    needed = backend_info(name).providers[0]
    return f"onnxruntime reports providers {onnxruntime.get_available_providers()}, not {needed} (install onnxruntime-gpu)"


def open_model(backend: str, bundle: "Bundle", model: str, *, threads: int | None = None, variant: str | None = None) -> ModelSession:
    """Open ``model`` ("unet" | "maskrcnn") of ``bundle`` on the concrete ``backend``.

    ``variant`` picks an ONNX variant listed in the manifest (e.g. "int8", "fp16"); for the
    native TensorRT backend it is the wanted engine precision (engine variant ``trt-<precision>``,
    else the bundle's first engine for the model).
    """
    if model not in MODEL_OUTPUTS:
        raise ValueError(f"unknown model {model!r}; expected one of {sorted(MODEL_OUTPUTS)}")
    if backend == "tensorrt":
        from .tensorrt import TensorRTSession, engine_path

        return TensorRTSession(engine_path(bundle, model, variant))
    from .onnxrt import OnnxRuntimeSession

    backend_info(backend)
    path = bundle.model_path(model, variant)
    return OnnxRuntimeSession(path, backend=backend, threads=threads, outputs=MODEL_OUTPUTS[model])
