"""Stand-in ``tensorrt`` and ``cuda.bindings.runtime`` modules, so that the native TensorRT
session code runs in CI where neither can be installed.

They follow the parts of the real APIs that :mod:`vertxnet.runtime.tensorrt` uses (TensorRT 10:
``Runtime.deserialize_cuda_engine``, the tensor-name API, ``IOutputAllocator``,
``execute_async_v3``; cuda-python: ``(error, value)`` tuples, integer device pointers), and
check their use strictly: every device pointer must have been allocated and not freed, copies
must stay inside their buffers, the input shape must be set and its address bound before
execution, and what is allocated is tracked so a test can check that ``close`` frees it all.

An "engine" here is the serialized ONNX model prefixed with :data:`ENGINE_MAGIC`; deserializing
it opens the ONNX model in ONNX Runtime, which then does the arithmetic. Bytes without the
prefix are "an engine built for another device": ``deserialize_cuda_engine`` returns None, as
TensorRT does.
"""

from __future__ import annotations

import ctypes
import enum
import types
from pathlib import Path

import numpy as np
import onnxruntime

ENGINE_MAGIC = b"VXTRT-STANDIN\n"


def engine_bytes(onnx_path: str | Path) -> bytes:
    """A stand-in engine built from an ONNX model (as export/build_trt.py builds a real one)."""
    return ENGINE_MAGIC + Path(onnx_path).read_bytes()


class Device:
    """Device memory: integer pointers into host buffers, allocation checked."""

    def __init__(self) -> None:
        self.buffers: dict[int, np.ndarray] = {}
        self.streams: set[int] = set()
        self._next = 0x10000
        self.mallocs = 0

    def malloc(self, size: int) -> int:
        if size <= 0:
            raise AssertionError(f"cudaMalloc of {size} bytes")
        ptr = self._next
        self._next += (int(size) + 0xFFF) & ~0xFFF
        self.buffers[ptr] = np.zeros(int(size), np.uint8)
        self.mallocs += 1
        return ptr

    def buffer(self, ptr: int, nbytes: int) -> np.ndarray:
        ptr = int(ptr)
        if ptr not in self.buffers:
            raise AssertionError(f"device pointer {ptr:#x} was never allocated or has been freed")
        buf = self.buffers[ptr]
        if nbytes > buf.nbytes:
            raise AssertionError(f"copy of {nbytes} bytes overruns a {buf.nbytes}-byte device buffer")
        return buf


def install(monkeypatch, device: Device | None = None) -> types.SimpleNamespace:
    """Put stand-in ``tensorrt``, ``cuda``, ``cuda.bindings`` and ``cuda.bindings.runtime``
    modules into ``sys.modules`` (undone by ``monkeypatch``); returns them and their device."""
    device = device or Device()
    trt = _tensorrt_module(device)
    cudart = _cudart_module(device)
    cuda = types.ModuleType("cuda")
    bindings = types.ModuleType("cuda.bindings")
    cuda.bindings, bindings.runtime = bindings, cudart
    for name, module in {"tensorrt": trt, "cuda": cuda, "cuda.bindings": bindings, "cuda.bindings.runtime": cudart}.items():
        monkeypatch.setitem(__import__("sys").modules, name, module)
    return types.SimpleNamespace(tensorrt=trt, cudart=cudart, device=device)


def _cudart_module(device: Device) -> types.ModuleType:
    cudart = types.ModuleType("cuda.bindings.runtime")

    class cudaError_t(enum.IntEnum):
        cudaSuccess = 0
        cudaErrorInvalidValue = 1

    class cudaMemcpyKind(enum.IntEnum):
        cudaMemcpyHostToDevice = 1
        cudaMemcpyDeviceToHost = 2

    ok = cudaError_t.cudaSuccess

    def cudaMalloc(size):
        return ok, device.malloc(size)

    def cudaFree(ptr):
        if int(ptr) not in device.buffers:
            return (cudaError_t.cudaErrorInvalidValue,)
        del device.buffers[int(ptr)]
        return (ok,)

    def cudaStreamCreate():
        handle = 0xC0DE00 + len(device.streams) + 1
        device.streams.add(handle)
        return ok, handle

    def cudaStreamDestroy(stream):
        device.streams.discard(int(stream))
        return (ok,)

    def cudaStreamSynchronize(stream):
        if int(stream) not in device.streams:
            return (cudaError_t.cudaErrorInvalidValue,)
        return (ok,)

    def _copy(dst, src, count, kind):
        if kind == cudaMemcpyKind.cudaMemcpyHostToDevice:
            ctypes.memmove(device.buffer(dst, count).ctypes.data, int(src), int(count))
        elif kind == cudaMemcpyKind.cudaMemcpyDeviceToHost:
            ctypes.memmove(int(dst), device.buffer(src, count).ctypes.data, int(count))
        else:
            return (cudaError_t.cudaErrorInvalidValue,)
        return (ok,)

    def cudaMemcpyAsync(dst, src, count, kind, stream):
        if int(stream) not in device.streams:
            return (cudaError_t.cudaErrorInvalidValue,)
        return _copy(dst, src, count, kind)

    def cudaMemcpy(dst, src, count, kind):
        return _copy(dst, src, count, kind)

    for name, value in dict(locals()).items():
        if name.startswith("cuda"):
            setattr(cudart, name, value)
    return cudart


def _tensorrt_module(device: Device) -> types.ModuleType:
    trt = types.ModuleType("tensorrt")
    trt.__version__ = "10.0.0-standin"

    class TensorIOMode(enum.IntEnum):
        NONE = 0
        INPUT = 1
        OUTPUT = 2

    class DataType(enum.IntEnum):
        FLOAT = 0
        HALF = 1
        INT8 = 2
        INT32 = 3
        BOOL = 4
        INT64 = 8

    numpy_types = {DataType.FLOAT: np.float32, DataType.HALF: np.float16, DataType.INT8: np.int8,
                   DataType.INT32: np.int32, DataType.BOOL: np.bool_, DataType.INT64: np.int64}  # fmt: skip
    onnx_types = {"tensor(float)": DataType.FLOAT, "tensor(float16)": DataType.HALF, "tensor(int64)": DataType.INT64,
                  "tensor(int32)": DataType.INT32, "tensor(int8)": DataType.INT8, "tensor(bool)": DataType.BOOL}  # fmt: skip

    def nptype(dtype):
        return numpy_types[DataType(dtype)]

    class Logger:
        INTERNAL_ERROR, ERROR, WARNING, INFO, VERBOSE = range(5)

        def __init__(self, min_severity=WARNING):
            self.min_severity = min_severity

    class IOutputAllocator:
        def __init__(self):
            pass

    class ICudaEngine:
        def __init__(self, session: onnxruntime.InferenceSession):
            self._session = session
            self._inputs = [(i.name, i.type, tuple(i.shape)) for i in session.get_inputs()]
            self._outputs = [(o.name, o.type) for o in session.get_outputs()]
            self.contexts = 0

        @property
        def num_io_tensors(self):
            return len(self._inputs) + len(self._outputs)

        def get_tensor_name(self, index):
            names = [n for n, *_ in self._inputs] + [n for n, _ in self._outputs]
            return names[index]

        def get_tensor_mode(self, name):
            if any(n == name for n, *_ in self._inputs):
                return TensorIOMode.INPUT
            if any(n == name for n, _ in self._outputs):
                return TensorIOMode.OUTPUT
            return TensorIOMode.NONE

        def get_tensor_dtype(self, name):
            for n, t, *_ in [*self._inputs, *self._outputs]:
                if n == name:
                    return onnx_types[t]
            raise AssertionError(f"no tensor {name!r}")

        def create_execution_context(self):
            self.contexts += 1
            return IExecutionContext(self)

    class IExecutionContext:
        def __init__(self, engine: ICudaEngine):
            self.engine = engine
            self.shapes: dict[str, tuple[int, ...]] = {}
            self.addresses: dict[str, int] = {}
            self.allocators: dict[str, object] = {}
            self.busy = False

        def set_output_allocator(self, name, allocator):
            if self.engine.get_tensor_mode(name) != TensorIOMode.OUTPUT:
                raise AssertionError(f"{name!r} is not an output")
            self.allocators[name] = allocator
            return True

        def set_input_shape(self, name, shape):
            (input_name, _, declared), = self.engine._inputs
            shape = tuple(int(d) for d in shape)
            if name != input_name or len(shape) != len(declared):
                return False
            if any(isinstance(d, int) and d != s for d, s in zip(declared, shape)):
                return False
            self.shapes[name] = shape
            return True

        def set_tensor_address(self, name, ptr):
            self.addresses[name] = int(ptr)
            return True

        def execute_async_v3(self, stream_handle):
            if int(stream_handle) not in device.streams:
                raise AssertionError("execute_async_v3 on an unknown stream")
            if self.busy:
                raise AssertionError("one execution context used by two threads at once")
            self.busy = True
            try:
                feeds = {}
                for name, onnx_type, _ in self.engine._inputs:
                    if name not in self.shapes or name not in self.addresses:
                        raise AssertionError(f"input {name!r} has no shape or address set")
                    dtype = np.dtype(nptype(onnx_types[onnx_type]))
                    shape = self.shapes[name]
                    nbytes = int(np.prod(shape)) * dtype.itemsize
                    feeds[name] = device.buffer(self.addresses[name], nbytes)[:nbytes].view(dtype).reshape(shape).copy()
                names = [n for n, _ in self.engine._outputs]
                values = self.engine._session.run(names, feeds)
                for name, value in zip(names, values):
                    allocator = self.allocators.get(name)
                    if allocator is None:
                        raise AssertionError(f"output {name!r} has no allocator")
                    value = np.ascontiguousarray(value)
                    ptr = allocator.reallocate_output_async(name, 0, value.nbytes, 256, stream_handle)
                    if value.nbytes:
                        ctypes.memmove(device.buffer(ptr, value.nbytes).ctypes.data, value.ctypes.data, value.nbytes)
                    allocator.notify_shape(name, tuple(value.shape))
                return True
            finally:
                self.busy = False

    class Runtime:
        def __init__(self, logger):
            if not isinstance(logger, Logger):
                raise TypeError("Runtime needs a tensorrt.Logger")
            self.logger = logger

        def deserialize_cuda_engine(self, serialized):
            data = bytes(serialized)
            if not data.startswith(ENGINE_MAGIC):
                return None  # TensorRT logs the error and returns None for a foreign engine
            options = onnxruntime.SessionOptions()
            options.intra_op_num_threads = 1
            session = onnxruntime.InferenceSession(data[len(ENGINE_MAGIC):], sess_options=options, providers=["CPUExecutionProvider"])
            return ICudaEngine(session)

    for name, value in dict(locals()).items():
        if name in ("TensorIOMode", "DataType", "Logger", "IOutputAllocator", "Runtime", "ICudaEngine", "IExecutionContext", "nptype"):
            setattr(trt, name, value)
    return trt
