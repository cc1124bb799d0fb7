"""Native TensorRT engines through the ``tensorrt`` Python API (TensorRT >= 10) and cuda-python.

UNVERIFIED: this module is written against the documented TensorRT 10 API
(``Runtime.deserialize_cuda_engine``, ``IExecutionContext.set_input_shape`` /
``set_tensor_address`` / ``set_output_allocator`` / ``execute_async_v3``) but has never run on
the machines vertxnet is developed on, where TensorRT cannot be installed. Treat results from it
as unchecked until the test suite has run on a device with TensorRT (e.g. a Jetson with JetPack 6).

Engines are device specific: they are built on the target with ``export/build_trt.py`` and listed
in the bundle's manifest as model variants whose file ends in ``.engine``. Device buffers come
from cuda-python (``cuda.bindings.runtime``, or the older ``cuda.cudart``), so torch is not needed.
Data-dependent output shapes (Mask R-CNN's K detections) are handled by an output allocator.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import BundleError
from .registry import INPUT_NAME, MODEL_OUTPUTS, PRECISIONS, Backend, BackendInfo, BackendUnavailable, ModelSession, register

if TYPE_CHECKING:
    from ..bundle import Bundle

ENGINE_SUFFIX = ".engine"

INFO = BackendInfo(
    name="tensorrt",
    engine="TensorRT (native serialized engines, `tensorrt` Python API + cuda-python)",
    providers=(),
    precisions=("fp32", "fp16", "int8"),
    platforms="NVIDIA GPUs with TensorRT >= 10 (JetPack 6 on Jetson, x86-64 + CUDA 12)",
    verified=False,
    note="UNVERIFIED: written against the TensorRT 10 API but never run here (TensorRT cannot be "
    "installed on the development machines). Engines are device specific; the bundle must list them.",
)


def import_modules() -> tuple[Any, Any]:
    """(tensorrt, cudart) or BackendUnavailable saying which is missing."""
    try:
        trt = importlib.import_module("tensorrt")
    except ImportError:
        raise BackendUnavailable("backend 'tensorrt' needs the TensorRT Python package (`import tensorrt` failed)") from None
    for name in ("cuda.bindings.runtime", "cuda.cudart"):
        try:
            return trt, importlib.import_module(name)
        except ImportError:
            continue
    raise BackendUnavailable("backend 'tensorrt' needs cuda-python for device buffers (pip install cuda-python)")


def unavailable_reason() -> str | None:
    """Why the native TensorRT backend cannot run here, or None when it can be tried."""
    try:
        import_modules()
    except BackendUnavailable as exc:
        return str(exc)
    return None


def is_available() -> bool:
    return unavailable_reason() is None


def engine_variants(bundle: "Bundle", model: str) -> list[str]:
    """The variants of ``model`` that are TensorRT engines (``trt-<precision>``, as written by
    export/build_trt.py), by name."""
    variants = bundle.manifest["models"].get(model, {}).get("variants", {})
    return sorted(v for v, name in variants.items() if str(name).endswith(ENGINE_SUFFIX))


def engine_variant(bundle: "Bundle", model: str, precision: str | None = None) -> str | None:
    """The engine variant of ``model``: ``trt-<precision>`` when ``precision`` is given (None when
    the bundle has no engine of that precision: another precision is never substituted), else
    the first engine by name."""
    engines = engine_variants(bundle, model)
    if precision is not None:
        return f"trt-{precision}" if f"trt-{precision}" in engines else None
    return engines[0] if engines else None


def bundle_has_engines(bundle: "Bundle") -> bool:
    return all(engine_variant(bundle, model) is not None for model in MODEL_OUTPUTS)


def engine_path(bundle: "Bundle", model: str, precision: str | None = None) -> Path:
    variant = engine_variant(bundle, model, precision)
    if variant is None:
        what = "engine" if precision is None else f"{precision} engine (trt-{precision})"
        raise BackendUnavailable(f"{bundle.path / 'manifest.json'} lists no TensorRT {what} for {model!r}")
    return bundle.model_path(model, variant)


class TensorRTBackend(Backend):
    """The bundle's TensorRT engines (model variants ``trt-<precision>``); never chosen by ``auto``
    unless TensorRT is installed and the bundle lists engines for both models."""

    info = INFO

    def unavailable_reason(self) -> str | None:
        return unavailable_reason()

    def bundle_problem(self, bundle: "Bundle") -> str | None:
        if bundle_has_engines(bundle):
            return None
        return (
            f"backend 'tensorrt' needs TensorRT engines (*.engine) listed in {bundle.path / 'manifest.json'}; "
            "build them on this device with export/build_trt.py"
        )

    def open(self, bundle: "Bundle", model: str, *, threads: int | None, variant: str | None) -> ModelSession:
        """``variant`` is the engine variant (``trt-<precision>``) from :meth:`model_variants`."""
        if variant is None or variant not in engine_variants(bundle, model):
            raise BackendUnavailable(f"{bundle.path / 'manifest.json'} lists no TensorRT engine {variant!r} for {model!r}")
        return TensorRTSession(bundle.model_path(model, variant))

    def model_variants(self, bundle: "Bundle", precisions: Mapping[str, str]) -> dict[str, str | None]:
        # The engine of the asked precision for each model, or ValueError: never another engine.
        variants: dict[str, str | None] = {}
        for model, precision in precisions.items():
            variant = engine_variant(bundle, model, precision)
            if variant is None:
                have = ", ".join(engine_variants(bundle, model)) or "none"
                raise ValueError(
                    f"{bundle.path / 'manifest.json'}: no {precision} TensorRT engine (trt-{precision}) for {model!r} "
                    f"(engines: {have}); build one on this device with export/build_trt.py, or ask for a precision there is"
                )
            variants[model] = variant
        return variants

    def ran_precision(self, bundle: "Bundle", model: str, variant: str | None) -> str:
        name = (variant or "").removeprefix("trt-")
        return name if name in PRECISIONS else "engine"


register(TensorRTBackend(), rank=0)


def cuda_check(result: Any, what: str) -> Any:
    """cuda-python calls return (error, *values); raise on an error, return the value(s)."""
    err, *values = result if isinstance(result, tuple) else (result,)
    if int(err) != 0:
        raise RuntimeError(f"CUDA call {what} failed with error {err}")
    return values[0] if len(values) == 1 else values


class TensorRTSession(ModelSession):
    """A deserialized TensorRT engine with one execution context and one CUDA stream.

    An execution context runs one inference at a time, so :meth:`run` holds a lock: a session
    shared by threads serialises their calls."""

    def __init__(self, path: str | Path):
        trt, cudart = import_modules()
        self._trt, self._cudart = trt, cudart
        self._lock = threading.Lock()
        self.path = Path(path)
        self.backend = "tensorrt"
        self._logger = trt.Logger(trt.Logger.WARNING)
        self._runtime = trt.Runtime(self._logger)
        try:
            blob = self.path.read_bytes()
        except OSError as exc:
            raise BundleError(self.path, f"cannot read the engine ({exc.strerror or exc})") from None
        self._engine = self._runtime.deserialize_cuda_engine(blob)
        if self._engine is None:
            raise BundleError(self.path, "TensorRT cannot deserialize this engine (built for another GPU or TensorRT version?)")
        self._context = self._engine.create_execution_context()
        names = [self._engine.get_tensor_name(i) for i in range(self._engine.num_io_tensors)]
        self._inputs = [n for n in names if self._engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        self.output_names = [n for n in names if n not in self._inputs]
        if self._inputs != [INPUT_NAME]:
            raise BundleError(self.path, f"engine inputs are {self._inputs}, expected exactly [{INPUT_NAME!r}]")
        self._stream = cuda_check(cudart.cudaStreamCreate(), "cudaStreamCreate")
        self._input_ptr, self._input_bytes = 0, 0
        self._allocator = _make_output_allocator(trt, cudart)
        for name in self.output_names:
            self._context.set_output_allocator(name, self._allocator)

    def run(self, image: np.ndarray) -> dict[str, np.ndarray]:
        with self._lock:
            return self._run(image)

    def _run(self, image: np.ndarray) -> dict[str, np.ndarray]:
        trt, cudart = self._trt, self._cudart
        host_in = np.ascontiguousarray(image, dtype=np.float32)
        if host_in.nbytes > self._input_bytes:
            if self._input_ptr:
                cuda_check(cudart.cudaFree(self._input_ptr), "cudaFree")
            self._input_ptr = cuda_check(cudart.cudaMalloc(host_in.nbytes), "cudaMalloc")
            self._input_bytes = host_in.nbytes
        h2d = cudart.cudaMemcpyKind.cudaMemcpyHostToDevice
        cuda_check(cudart.cudaMemcpyAsync(self._input_ptr, host_in.ctypes.data, host_in.nbytes, h2d, self._stream), "cudaMemcpyAsync")
        if not self._context.set_input_shape(INPUT_NAME, tuple(host_in.shape)):
            raise BundleError(self.path, f"engine does not accept an input of shape {host_in.shape}")
        self._context.set_tensor_address(INPUT_NAME, int(self._input_ptr))
        if not self._context.execute_async_v3(int(self._stream)):
            raise BundleError(self.path, "TensorRT execution failed")
        cuda_check(cudart.cudaStreamSynchronize(self._stream), "cudaStreamSynchronize")
        outputs = {}
        d2h = cudart.cudaMemcpyKind.cudaMemcpyDeviceToHost
        for name in self.output_names:
            shape = self._allocator.shapes[name]
            host = np.empty(shape, dtype=trt.nptype(self._engine.get_tensor_dtype(name)))
            if host.nbytes:
                cuda_check(cudart.cudaMemcpy(host.ctypes.data, self._allocator.pointers[name], host.nbytes, d2h), "cudaMemcpy")
            outputs[name] = host
        return outputs

    def close(self) -> None:
        cudart = self._cudart
        if getattr(self, "_input_ptr", 0):
            cudart.cudaFree(self._input_ptr)
            self._input_ptr = 0
        if getattr(self, "_allocator", None) is not None:
            self._allocator.free()
        if getattr(self, "_stream", None) is not None:
            cudart.cudaStreamDestroy(self._stream)
            self._stream = None

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass


def _make_output_allocator(trt: Any, cudart: Any) -> Any:
    """An ``IOutputAllocator`` that grows one device buffer per output and records its shape."""

    class OutputAllocator(trt.IOutputAllocator):
        def __init__(self) -> None:
            trt.IOutputAllocator.__init__(self)
            self.pointers: dict[str, int] = {}
            self.sizes: dict[str, int] = {}
            self.shapes: dict[str, tuple[int, ...]] = {}

        def _grow(self, name: str, size: int) -> int:
            size = max(int(size), 1)
            if self.sizes.get(name, 0) < size:
                if name in self.pointers:
                    cuda_check(cudart.cudaFree(self.pointers[name]), "cudaFree")
                self.pointers[name] = int(cuda_check(cudart.cudaMalloc(size), "cudaMalloc"))
                self.sizes[name] = size
            return self.pointers[name]

        def reallocate_output(self, tensor_name, memory, size, alignment):  # TensorRT < 10
            return self._grow(tensor_name, size)

        def reallocate_output_async(self, tensor_name, memory, size, alignment, stream):  # TensorRT >= 10
            return self._grow(tensor_name, size)

        def notify_shape(self, tensor_name, shape):
            self.shapes[tensor_name] = tuple(int(d) for d in shape)

        def free(self) -> None:
            for ptr in self.pointers.values():
                cudart.cudaFree(ptr)
            self.pointers.clear()
            self.sizes.clear()

    return OutputAllocator()
