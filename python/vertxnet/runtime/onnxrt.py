"""ONNX Runtime backends: CPU, and CUDA / TensorRT execution providers when onnxruntime-gpu is installed."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..errors import BundleError
from .registry import INPUT_NAME, MODEL_OUTPUTS, OPTIONAL_OUTPUTS, Backend, BackendInfo, BackendUnavailable, ModelSession, register

if TYPE_CHECKING:
    from ..bundle import Bundle

#: The ONNX Runtime backends, fastest first.
ONNXRUNTIME_BACKENDS: tuple[BackendInfo, ...] = (
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
_INFO = {info.name: info for info in ONNXRUNTIME_BACKENDS}
#: Backend name → the execution provider it needs first (the rest of its chain falls back in order).
PRIMARY_PROVIDER = {info.name: info.providers[0] for info in ONNXRUNTIME_BACKENDS}


def _ort():
    import onnxruntime

    return onnxruntime


def available_backends() -> list[str]:
    """ONNX Runtime backends whose provider this onnxruntime build offers, fastest first."""
    providers = set(_ort().get_available_providers())
    return [name for name, provider in PRIMARY_PROVIDER.items() if provider in providers]


class OnnxRuntimeBackend(Backend):
    """The bundle's ONNX files in ONNX Runtime with one execution provider chain."""

    def __init__(self, info: BackendInfo):
        self.info = info

    def unavailable_reason(self) -> str | None:
        providers = _ort().get_available_providers()
        needed = self.info.providers[0]
        if needed in providers:
            return None
        return f"onnxruntime reports providers {providers}, not {needed} (install onnxruntime-gpu)"

    def open(self, bundle: "Bundle", model: str, *, threads: int | None, variant: str | None) -> ModelSession:
        path = bundle.model_path(model, variant)
        return OnnxRuntimeSession(
            path, backend=self.info.name, threads=threads, outputs=MODEL_OUTPUTS[model], optional=OPTIONAL_OUTPUTS.get(model, ())
        )  # fmt: skip


def default_threads() -> int:
    """Intra-op threads per session: half the cores, since the two models run at the same time."""
    return max(1, (os.cpu_count() or 2) // 2)


def _provider_chain(backend: str) -> list:
    chain: list = []
    for provider in _INFO[backend].providers:
        if provider == "TensorrtExecutionProvider":
            # TensorRT builds an engine on first use; caching it keeps later starts fast.
            cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "vertxnet" / "ort-tensorrt"
            cache.mkdir(parents=True, exist_ok=True)
            chain.append((provider, {"trt_engine_cache_enable": True, "trt_engine_cache_path": str(cache)}))
        else:
            chain.append(provider)
    return chain


class OnnxRuntimeSession(ModelSession):
    """One ONNX model in an ``onnxruntime.InferenceSession`` (graph optimisation level ALL)."""

    def __init__(
        self, path: str | Path, *, backend: str = "onnxruntime-cpu", threads: int | None = None,
        outputs: tuple[str, ...] = (), optional: tuple[str, ...] = (),
    ):  # fmt: skip
        if backend not in PRIMARY_PROVIDER:
            raise ValueError(f"{backend!r} is not an ONNX Runtime backend; expected one of {', '.join(PRIMARY_PROVIDER)}")
        if threads is not None and (not isinstance(threads, int) or threads < 1):
            raise ValueError(f"threads must be a positive integer, got {threads!r}")
        self.path = Path(path)
        self.backend = backend
        ort = _ort()
        primary = PRIMARY_PROVIDER[backend]
        if primary not in ort.get_available_providers():
            raise BackendUnavailable(
                f"backend {backend!r} needs {primary}, but onnxruntime offers {ort.get_available_providers()} (install onnxruntime-gpu)"
            )
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.intra_op_num_threads = threads or default_threads()
        options.inter_op_num_threads = 1
        options.log_severity_level = 3  # errors only: ORT's warnings are not actionable for users
        try:
            self._session = ort.InferenceSession(str(self.path), sess_options=options, providers=_provider_chain(backend))
        except Exception as exc:  # ORT raises its own pybind exception types for every load failure
            raise BundleError(self.path, f"ONNX Runtime cannot load the model ({_one_line(exc)})") from None
        running = self._session.get_providers()
        if not running or running[0] != primary:
            # ORT silently falls back to the next provider when e.g. the CUDA libraries are missing.
            raise BackendUnavailable(f"backend {backend!r}: onnxruntime could not start {primary} (it runs {running})")
        inputs = [i.name for i in self._session.get_inputs()]
        if inputs != [INPUT_NAME]:
            raise BundleError(self.path, f"model inputs are {inputs}, expected exactly [{INPUT_NAME!r}]")
        have = {o.name for o in self._session.get_outputs()}
        missing = [name for name in outputs if name not in have]
        if missing:
            raise BundleError(self.path, f"model lacks the output(s) {missing} (it has {sorted(have)})")
        self.output_names = [*outputs, *(name for name in optional if name in have)] if outputs else [o.name for o in self._session.get_outputs()]
        self.input_shape = tuple(self._session.get_inputs()[0].shape)

    def run(self, image: np.ndarray) -> dict[str, np.ndarray]:
        try:
            values = self._session.run(self.output_names, {INPUT_NAME: image})
        except Exception as exc:
            raise BundleError(self.path, f"model failed to run ({_one_line(exc)})") from None
        return dict(zip(self.output_names, values))

    def close(self) -> None:
        self._session = None


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) <= 300 else text[:297] + "..."


for _rank, _info in enumerate(ONNXRUNTIME_BACKENDS, start=1):
    register(OnnxRuntimeBackend(_info), rank=_rank)
