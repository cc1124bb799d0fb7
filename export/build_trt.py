"""Build TensorRT engines for a model bundle on the target device (e.g. a Jetson with JetPack).

UNVERIFIED: written against the documented TensorRT Python API (``Builder``,
``NetworkDefinition`` (EXPLICIT_BATCH before TensorRT 10), ``OnnxParser``, ``BuilderConfig`` with
the FP16/INT8 flags, ``IInt8EntropyCalibrator2``, ``build_serialized_network``) but never run on
the machines vertxnet is developed on, where TensorRT cannot be installed. Check the engines with
``vertx-infer --backend tensorrt`` against ONNX Runtime on the device before trusting them.

For each model and precision it writes ``<model>.<precision>.engine`` (e.g. ``unet.fp16.engine``)
into the bundle, lists it as variant ``trt-<precision>`` of that model, records the device name
and TensorRT version in ``manifest["tensorrt"]``, and rewrites the manifest (new sha256 of every
file) through ``vertxnet.bundle.write_manifest``. Engines are specific to the GPU and TensorRT
version that built them. INT8 calibrates on preprocessed images from a COCO file and reads/writes
a calibration cache (``<model>.int8.calib`` in the bundle) so later builds skip calibration.
Device buffers come from cuda-python, like the runtime's TensorRT backend.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402

from vertxnet.errors import VertxError  # noqa: E402

from vertxnet import bundle as vbundle  # noqa: E402
from vertxnet.files import atomic_write  # noqa: E402
from vertxnet.runtime import tensorrt as trt_runtime  # noqa: E402
from vertxnet.runtime.registry import BackendUnavailable  # noqa: E402
from vertxnet.runtime.tensorrt import cuda_check  # noqa: E402
from vertxnet.preprocess import prepare  # noqa: E402

PRECISIONS = ("fp32", "fp16", "int8")
MODELS = ("unet", "maskrcnn")


class TensorRTUnavailable(RuntimeError):
    pass


def import_tensorrt() -> tuple[Any, Any]:
    """(tensorrt, cudart) as the runtime's TensorRT backend loads them, or TensorRTUnavailable."""
    try:
        return trt_runtime.import_modules()
    except BackendUnavailable as exc:
        raise TensorRTUnavailable(f"TensorRT is not installed here, or cannot run: {exc}") from None


def make_calibrator(trt: Any, cudart: Any, inputs: Sequence[np.ndarray], cache_path: Path) -> Any:
    """An IInt8EntropyCalibrator2 feeding one preprocessed image per batch (batch size 1)."""

    class Calibrator(trt.IInt8EntropyCalibrator2):
        def __init__(self) -> None:
            trt.IInt8EntropyCalibrator2.__init__(self)
            self._inputs = [np.ascontiguousarray(x, dtype=np.float32) for x in inputs]
            self._index = 0
            self._device = cuda_check(cudart.cudaMalloc(self._inputs[0].nbytes), "cudaMalloc") if self._inputs else 0

        def get_batch_size(self) -> int:
            return 1

        def get_batch(self, names):  # noqa: ARG002 - one input, "image"
            if self._index >= len(self._inputs):
                return None
            host = self._inputs[self._index]
            self._index += 1
            kind = cudart.cudaMemcpyKind.cudaMemcpyHostToDevice
            cuda_check(cudart.cudaMemcpy(self._device, host.ctypes.data, host.nbytes, kind), "cudaMemcpy")
            return [int(self._device)]

        def read_calibration_cache(self):
            return cache_path.read_bytes() if cache_path.is_file() else None

        def write_calibration_cache(self, cache) -> None:
            atomic_write(cache_path, bytes(cache))

        def free(self) -> None:
            if self._device:
                cudart.cudaFree(self._device)
                self._device = 0

    return Calibrator()


def build_engine(trt: Any, onnx_path: Path, precision: str, workspace_mib: int, calibrator: Any = None) -> bytes:
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    flags = 0
    if int(trt.__version__.split(".")[0]) < 10:
        # Implicit batch was the default before TensorRT 10; ONNX models need explicit batch.
        flags |= 1 << int(trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH)
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse(onnx_path.read_bytes()):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise RuntimeError(f"{onnx_path}: TensorRT cannot parse the ONNX model: {errors}")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, workspace_mib << 20)
    if precision in ("fp16", "int8"):
        config.set_flag(trt.BuilderFlag.FP16)  # INT8 layers fall back to FP16 rather than FP32
    if precision == "int8":
        config.set_flag(trt.BuilderFlag.INT8)
        config.int8_calibrator = calibrator
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise RuntimeError(f"{onnx_path}: TensorRT failed to build a {precision} engine (see the log above)")
    return bytes(serialized)


@dataclass
class TRTBuildConfig:
    bundle: Path
    precisions: list[str] = field(default_factory=lambda: ["fp16"])
    models: list[str] = field(default_factory=lambda: list(MODELS))
    calibration_data: Path | None = None
    calibration_images: int = 64
    workspace_mib: int = 1024


def build_trt(config: TRTBuildConfig) -> list[Path]:
    """Build the engines into the bundle and rewrite its manifest; returns the engine paths."""
    for p in config.precisions:
        if p not in PRECISIONS:
            raise ValueError(f"unknown precision {p!r}; expected one of {PRECISIONS}")
    trt, cudart = import_tensorrt()
    bundle = vbundle.load_bundle(config.bundle)
    manifest = bundle.manifest
    calibration: list[np.ndarray] = []
    if "int8" in config.precisions:
        if config.calibration_data is None:
            raise ValueError("INT8 engines need --calibration-data (training images)")
        records = C.load_records(config.calibration_data)[: config.calibration_images]
        calibration = [prepare(r.load_image(), bundle.preprocess)[0] for r in records]
    written = []
    for model in config.models:
        onnx_path = bundle.model_path(model)
        for precision in config.precisions:
            calibrator = None
            if precision == "int8":
                calibrator = make_calibrator(trt, cudart, calibration, bundle.path / f"{model}.int8.calib")
            try:
                engine = build_engine(trt, onnx_path, precision, config.workspace_mib, calibrator)
            finally:
                if calibrator is not None:
                    calibrator.free()
            name = f"{model}.{precision}.engine"
            atomic_write(bundle.path / name, bytes(engine))
            manifest["models"][model].setdefault("variants", {})[f"trt-{precision}"] = name
            manifest["files"][name] = {}
            if precision == "int8" and (bundle.path / f"{model}.int8.calib").is_file():
                manifest["files"][f"{model}.int8.calib"] = {}
            written.append(bundle.path / name)
    props = cuda_check(cudart.cudaGetDeviceProperties(0), "cudaGetDeviceProperties")
    device = props.name.decode() if isinstance(props.name, bytes) else str(props.name)
    manifest["tensorrt"] = {"version": trt.__version__, "device": device.rstrip("\x00"), "precisions": list(config.precisions)}
    vbundle.write_manifest(bundle.path, manifest)
    vbundle.load_bundle(bundle.path)
    return written


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="build_trt.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--bundle", type=Path, required=True, help="model bundle folder (engines are added to it)")
    p.add_argument("--precision", action="append", choices=PRECISIONS, help="engine precision (repeatable; default fp16)")
    p.add_argument("--model", action="append", choices=MODELS, help="model to build (repeatable; default both)")
    p.add_argument("--calibration-data", type=Path, help="COCO JSON of training images for INT8 calibration")
    p.add_argument("--calibration-images", type=int, default=64)
    p.add_argument("--workspace-mib", type=int, default=1024)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = C.parse_args(build_parser(), argv)
    if isinstance(args, int):
        return args
    config = TRTBuildConfig(
        bundle=args.bundle,
        precisions=args.precision or ["fp16"],
        models=args.model or list(MODELS),
        calibration_data=args.calibration_data,
        calibration_images=args.calibration_images,
        workspace_mib=args.workspace_mib,
    )
    return C.run_cli(lambda: list(build_trt(config)), (TensorRTUnavailable, VertxError, ValueError, RuntimeError))


if __name__ == "__main__":
    sys.exit(main())
