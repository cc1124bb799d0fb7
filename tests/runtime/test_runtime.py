"""Backends: the table, the auto choice, and clear refusals."""

from __future__ import annotations

import importlib.util

import numpy as np
import onnxruntime
import pytest

from vertxnet.errors import BundleError
from vertxnet.runtime import BACKEND_NAMES, BACKENDS, BackendUnavailable, available_backends, backend_info, resolve_backend
from vertxnet.runtime import tensorrt as trt_backend
from vertxnet.runtime.onnxrt import OnnxRuntimeSession

HAS_TENSORRT = importlib.util.find_spec("tensorrt") is not None


def test_table_describes_every_backend_once_and_is_honest_about_verification():
    assert len(set(BACKEND_NAMES)) == len(BACKENDS) == 4
    assert BACKEND_NAMES[-1] == "onnxruntime-cpu"  # the always-available fallback comes last
    for info in BACKENDS:
        assert info.precisions and info.platforms and info.engine
        if not info.verified:
            assert "UNVERIFIED" in info.note
    assert backend_info("onnxruntime-cpu").verified is True
    assert backend_info("tensorrt").verified is False
    assert "UNVERIFIED" in trt_backend.__doc__
    with pytest.raises(ValueError, match="unknown backend 'onnx'"):
        backend_info("onnx")


def test_onnxruntime_backends_follow_the_installed_providers():
    providers = onnxruntime.get_available_providers()
    names = available_backends()
    assert "onnxruntime-cpu" in names
    assert ("onnxruntime-cuda" in names) == ("CUDAExecutionProvider" in providers)
    assert ("onnxruntime-tensorrt" in names) == ("TensorrtExecutionProvider" in providers)
    assert names == [n for n in BACKEND_NAMES if n in names]  # fastest first


@pytest.mark.train
def test_auto_picks_the_fastest_verified_backend(tmp_path):
    import synthetic_bundle as sb
    from vertxnet.bundle import load_bundle

    bundle = load_bundle(sb.write_bundle(tmp_path / "b", 64, np.zeros((0, 4)), [], []))
    verified = [n for n in available_backends(bundle) if backend_info(n).verified]
    assert resolve_backend("auto", bundle, allow_unverified=False) == verified[0] == "onnxruntime-cpu"
    assert resolve_backend("auto", bundle, allow_unverified=True) == available_backends(bundle)[0]
    if "CUDAExecutionProvider" not in onnxruntime.get_available_providers():
        with pytest.raises(BackendUnavailable, match="onnxruntime-gpu"):
            resolve_backend("onnxruntime-cuda", bundle)
    if not HAS_TENSORRT:
        with pytest.raises(BackendUnavailable, match="TensorRT Python package"):
            resolve_backend("tensorrt", bundle)
    with pytest.raises(ValueError, match="unknown backend"):
        resolve_backend("cuda", bundle)


@pytest.mark.skipif(HAS_TENSORRT, reason="checks the refusal where TensorRT is absent")
def test_tensorrt_refuses_clearly_without_tensorrt(tmp_path):
    assert not trt_backend.is_available()
    assert "tensorrt" in trt_backend.unavailable_reason()
    with pytest.raises(BackendUnavailable, match="TensorRT Python package"):
        trt_backend.TensorRTSession(tmp_path / "model.engine")


@pytest.mark.train
def test_tensorrt_engines_are_found_in_the_manifest(tmp_path):
    import synthetic_bundle as sb
    from vertxnet.bundle import load_bundle, write_manifest

    root = sb.write_bundle(tmp_path / "b", 64, np.zeros((0, 4)), [], [])
    bundle = load_bundle(root)
    assert not trt_backend.bundle_has_engines(bundle)
    with pytest.raises(BackendUnavailable, match="no TensorRT engine"):
        trt_backend.engine_path(bundle, "unet")
    for name in ("unet", "maskrcnn"):
        (root / f"{name}.fp16.engine").write_bytes(b"engine bytes")
    manifest = dict(bundle.manifest)
    manifest["models"]["unet"]["variants"] = {"trt-fp16": "unet.fp16.engine"}
    manifest["models"]["maskrcnn"]["variants"] = {"trt-fp16": "maskrcnn.fp16.engine"}
    manifest["files"].update({"unet.fp16.engine": {}, "maskrcnn.fp16.engine": {}})
    write_manifest(root, manifest)
    bundle = load_bundle(root)
    assert trt_backend.bundle_has_engines(bundle)
    assert trt_backend.engine_path(bundle, "maskrcnn").name == "maskrcnn.fp16.engine"
    assert trt_backend.engine_variant(bundle, "unet", "fp16") == "trt-fp16"
    assert trt_backend.engine_variant(bundle, "unet", "int8") is None  # never another precision's engine
    with pytest.raises(BackendUnavailable, match=r"no TensorRT int8 engine \(trt-int8\) for 'unet'"):
        trt_backend.engine_path(bundle, "unet", "int8")


@pytest.mark.train
def test_onnxruntime_session_runs_and_checks_the_contract(tmp_path):
    import synthetic_bundle as sb

    path = sb.threshold_unet(tmp_path / "unet.onnx", 32)
    session = OnnxRuntimeSession(path, threads=1, outputs=("logits",))
    image = np.linspace(-1, 1, 32 * 32, dtype=np.float32).reshape(1, 1, 32, 32)
    out = session.run(image)
    np.testing.assert_allclose(out["logits"], 20.0 * image, rtol=1e-6)
    assert session.backend == "onnxruntime-cpu"
    with pytest.raises(BundleError, match=r"unet\.onnx.*lacks the output"):
        OnnxRuntimeSession(path, outputs=("boxes",))
    with pytest.raises(BundleError, match=r"unet\.onnx.*failed to run"):
        session.run(np.zeros((1, 1, 16, 16), np.float32))
    with pytest.raises(ValueError, match="threads"):
        OnnxRuntimeSession(path, threads=0)


def test_a_corrupt_model_file_is_a_bundle_error_naming_it(tmp_path):
    path = tmp_path / "maskrcnn.onnx"
    path.write_bytes(b"this is not a protobuf")
    with pytest.raises(BundleError, match=r"maskrcnn\.onnx: ONNX Runtime cannot load the model"):
        OnnxRuntimeSession(path)


def test_an_unavailable_provider_is_refused_before_loading(tmp_path):
    if "CUDAExecutionProvider" in onnxruntime.get_available_providers():
        pytest.skip("CUDA provider present: nothing to refuse")  # the refusal only exists without it
    with pytest.raises(BackendUnavailable, match="onnxruntime-gpu"):
        OnnxRuntimeSession(tmp_path / "missing.onnx", backend="onnxruntime-cuda")


def test_inference_path_never_imports_torch():
    import subprocess
    import sys
    from pathlib import Path

    code = (
        "import sys, vertxnet.pipeline, vertxnet.cli.infer, vertxnet.runtime.tensorrt, vertxnet.result; "
        "sys.exit(1 if 'torch' in sys.modules or 'torchvision' in sys.modules else 0)"
    )
    import vertxnet

    # The vertxnet this test imported (installed, or the source tree with its built core).
    env = {"PYTHONPATH": str(Path(vertxnet.__file__).resolve().parents[1]), "PATH": "/usr/bin:/bin"}
    assert subprocess.run([sys.executable, "-c", code], env=env, timeout=60).returncode == 0
