"""Backends fail safe: ``auto`` takes verified backends only, precisions are honoured or refused,
a backend that fails to load falls back to ONNX Runtime CPU with a flag, and the native TensorRT
session code runs (on stand-in ``tensorrt`` / ``cuda`` modules) exactly as on ONNX Runtime."""

from __future__ import annotations

import jsonschema
import numpy as np
import pytest

import standin_tensorrt as standin
from vertxnet.errors import BundleError
from vertxnet.runtime import BackendUnavailable
from vertxnet.runtime.registry import (
    ALLOW_UNVERIFIED_ENV,
    fallback_selection,
    model_variants,
    parse_precision,
    select_backend,
)

pytestmark = pytest.mark.train  # the bundles are built with onnx.helper

SIZE = 128
WIDTH, HEIGHT = 300, 420
BLOCKS = [(100, 40 + 70 * i, 200, 90 + 70 * i) for i in range(5)]


@pytest.fixture()
def scene(tmp_path):
    import synthetic_bundle as sb
    boxes = sb.model_boxes_for(BLOCKS, WIDTH, HEIGHT, SIZE)
    root = sb.write_bundle(tmp_path / "bundle", SIZE, boxes, [0.9] * 5, [2, 1, 1, 1, 1])
    return root, sb.blocks_image(WIDTH, HEIGHT, BLOCKS)


def add_variants(root, variants: dict[str, dict[str, bytes]]):
    """Add model variants (variant → file bytes, per model) to the bundle at ``root``."""
    from vertxnet.bundle import load_bundle, write_manifest

    manifest = load_bundle(root).manifest
    for model, files in variants.items():
        for variant, data in files.items():
            name = f"{model}.{variant}.engine" if variant.startswith("trt-") else f"{model}.{variant}.onnx"
            (root / name).write_bytes(data)
            manifest["models"][model].setdefault("variants", {})[variant] = name
            manifest["files"][name] = {}
    write_manifest(root, manifest)
    return load_bundle(root)


def add_engines(root, precision="fp16", *, foreign: bool = False):
    """TensorRT engines (stand-in, from the bundle's own ONNX files) for both models."""
    engines = {}
    for model in ("unet", "maskrcnn"):
        data = b"serialized for another GPU" if foreign else standin.engine_bytes(root / f"{model}.onnx")
        engines[model] = {f"trt-{precision}": data}
    return add_variants(root, engines)


# ---- choice ---------------------------------------------------------------------------------


def test_auto_takes_only_verified_backends_unless_the_user_opts_in(scene, monkeypatch):
    root, _ = scene
    standin.install(monkeypatch)
    bundle = add_engines(root, "fp32")
    monkeypatch.delenv(ALLOW_UNVERIFIED_ENV, raising=False)

    chosen = select_backend("auto", bundle)
    assert chosen.backend == "onnxruntime-cpu" and chosen.verified
    skipped = dict(chosen.skipped)
    assert "unverified" in skipped["tensorrt"] and "--backend tensorrt" in skipped["tensorrt"]

    explicit = select_backend("tensorrt", bundle)  # naming it is the opt-in
    assert explicit.backend == "tensorrt" and not explicit.verified
    assert explicit.variants == {"unet": "trt-fp32", "maskrcnn": "trt-fp32"}

    assert select_backend("auto", bundle, allow_unverified=True).backend == "tensorrt"
    monkeypatch.setenv(ALLOW_UNVERIFIED_ENV, "1")
    assert select_backend("auto", bundle).backend == "tensorrt"
    assert select_backend("auto", bundle, allow_unverified=False).backend == "onnxruntime-cpu"
    monkeypatch.setenv(ALLOW_UNVERIFIED_ENV, "0")
    assert select_backend("auto", bundle).backend == "onnxruntime-cpu"


def test_auto_with_unverified_allowed_passes_over_a_bundle_without_engines(scene, monkeypatch):
    from vertxnet.bundle import load_bundle

    root, _ = scene
    standin.install(monkeypatch)
    chosen = select_backend("auto", load_bundle(root), allow_unverified=True)
    assert chosen.backend == "onnxruntime-cpu"
    assert "export/build_trt.py" in dict(chosen.skipped)["tensorrt"]
    with pytest.raises(BackendUnavailable, match=r"needs TensorRT engines"):
        select_backend("tensorrt", load_bundle(root))


# ---- precision ------------------------------------------------------------------------------


def test_a_precision_the_backend_does_not_declare_is_refused(scene):
    from vertxnet.bundle import load_bundle

    root, _ = scene
    bundle = add_variants(root, {"unet": {"int8": (root / "unet.onnx").read_bytes()}, "maskrcnn": {"int8": (root / "maskrcnn.onnx").read_bytes()}})
    # Refused for what the backend declares, before asking whether it runs here.
    with pytest.raises(ValueError, match=r"backend 'onnxruntime-cuda' runs fp32, fp16, not int8"):
        select_backend("onnxruntime-cuda", bundle, "int8")
    with pytest.raises(ValueError, match=r"backend 'onnxruntime-cpu' runs fp32, int8, not fp16"):
        select_backend("onnxruntime-cpu", bundle, "fp16")
    with pytest.raises(ValueError, match="runs fp32, fp16, not int8"):
        model_variants("onnxruntime-cuda", bundle, "int8")
    # auto: no verified backend here declares fp16; the message says why for each.
    with pytest.raises(ValueError, match=r"no backend runs --precision fp16 here .*onnxruntime-cpu: backend 'onnxruntime-cpu' runs fp32, int8"):
        select_backend("auto", bundle, "fp16")
    chosen = select_backend("onnxruntime-cpu", bundle, "int8")
    assert chosen.variants == {"unet": "int8", "maskrcnn": "int8"}


def test_a_missing_variant_is_an_error_not_a_silent_fp32(scene):
    from vertxnet.pipeline import Pipeline

    root, image = scene
    with pytest.raises(ValueError, match=r"manifest\.json: model 'unet' has no int8 variant \(it has fp32\)"):
        Pipeline(root, precision="int8")
    add_variants(root, {"unet": {"int8": (root / "unet.onnx").read_bytes()}})  # same graph: the plumbing is under test
    with pytest.raises(ValueError, match=r"model 'maskrcnn' has no int8 variant.*--precision unet=int8 runs only unet in int8"):
        Pipeline(root, precision="int8")
    with Pipeline(root, threads=1, precision={"unet": "int8"}) as pipe:
        assert pipe._unet.path.name == "unet.int8.onnx" and pipe._mrcnn.path.name == "maskrcnn.onnx"
        result = pipe.predict(image)
    assert result.to_dict()["model"]["precision"] == {"unet": "int8", "maskrcnn": "fp32"}
    with pytest.raises(ValueError, match="unknown model"):
        Pipeline(root, precision={"view": "int8"})


def test_tensorrt_runs_the_engine_of_the_asked_precision_or_refuses(scene, monkeypatch):
    from vertxnet.pipeline import Pipeline

    root, image = scene
    standin.install(monkeypatch)
    add_engines(root, "fp16")
    with pytest.raises(ValueError, match=r"no fp32 TensorRT engine \(trt-fp32\) for 'unet' \(engines: trt-fp16\)"):
        Pipeline(root, backend="tensorrt")
    with Pipeline(root, backend="tensorrt", precision="fp16", threads=1) as pipe:
        result = pipe.predict(image)
    with Pipeline(root, backend="onnxruntime-cpu", threads=1) as pipe:
        expected = pipe.predict(image)
    assert [v.label for v in result.vertebrae] == [v.label for v in expected.vertebrae] == ["C2", "C3", "C4", "C5", "C6"]
    for got, want in zip(result.vertebrae, expected.vertebrae):
        np.testing.assert_array_equal(got.polygon, want.polygon)
    model = result.to_dict()["model"]
    assert model["backend"] == "tensorrt" and model["precision"] == {"unet": "fp16", "maskrcnn": "fp16"}
    assert model["backend_verified"] is False and model["fallback"] is None


@pytest.mark.parametrize(
    ("text", "parsed"),
    [("int8", "int8"), (" FP16 ", "fp16"), ("unet=int8", {"unet": "int8"}), ("unet=int8,maskrcnn=fp32", {"unet": "int8", "maskrcnn": "fp32"})],
)
def test_command_line_precisions_parse(text, parsed):
    assert parse_precision(text) == parsed


@pytest.mark.parametrize("text", ["int4", "unet=int4", "view=int8", "unet", "unet=int8,unet=fp16", "=int8"])
def test_bad_command_line_precisions_are_refused(text):
    with pytest.raises(ValueError):
        parse_precision(text)


# ---- the TensorRT session code, on stand-in modules ------------------------------------------


def test_tensorrt_session_gives_the_onnx_results_and_frees_the_device(scene, monkeypatch):
    from vertxnet.runtime.onnxrt import OnnxRuntimeSession
    from vertxnet.runtime.tensorrt import TensorRTSession

    root, _ = scene
    mods = standin.install(monkeypatch)
    rng = np.random.default_rng(1)
    image = rng.normal(size=(1, 1, SIZE, SIZE)).astype(np.float32)
    for model in ("unet", "maskrcnn"):
        (root / f"{model}.engine").write_bytes(standin.engine_bytes(root / f"{model}.onnx"))
        session = TensorRTSession(root / f"{model}.engine")
        reference = OnnxRuntimeSession(root / f"{model}.onnx", threads=1).run(image)
        for _ in range(2):  # buffers are reused on the second run
            out = session.run(image)
            assert sorted(out) == sorted(reference)
            for name, value in reference.items():
                assert out[name].dtype == value.dtype and out[name].shape == value.shape
                np.testing.assert_array_equal(out[name], value)
        assert session.backend == "tensorrt"
        with pytest.raises(BundleError, match=r"\.engine: engine does not accept an input of shape \(1, 1, 64, 64\)"):
            session.run(np.zeros((1, 1, 64, 64), np.float32))
        session.close()
        assert mods.device.buffers == {} and mods.device.streams == set()  # nothing left on the device
        session.close()  # twice is harmless


def test_a_foreign_engine_is_a_bundle_error_naming_it(tmp_path, monkeypatch):
    from vertxnet.runtime.tensorrt import TensorRTSession

    standin.install(monkeypatch)
    path = tmp_path / "unet.engine"
    path.write_bytes(b"serialized on a different GPU")
    with pytest.raises(BundleError, match=r"unet\.engine: TensorRT cannot deserialize this engine"):
        TensorRTSession(path)
    with pytest.raises(BundleError, match=r"missing\.engine: cannot read the engine"):
        TensorRTSession(tmp_path / "missing.engine")


# ---- fallback -------------------------------------------------------------------------------


def test_a_backend_that_fails_to_load_falls_back_to_onnxruntime_cpu_with_a_flag(scene, monkeypatch):
    from vertxnet.pipeline import BACKEND_FALLBACK_FLAG, BackendFallbackWarning, Pipeline
    from vertxnet.result import result_schema

    root, image = scene
    standin.install(monkeypatch)
    add_engines(root, "fp32", foreign=True)
    with Pipeline(root, threads=1, backend="onnxruntime-cpu") as pipe:
        expected = pipe.predict(image)
    with pytest.warns(BackendFallbackWarning, match=r"backend 'tensorrt' failed to load \(.*cannot deserialize.*\); running on onnxruntime-cpu"):
        pipe = Pipeline(root, threads=1, backend="tensorrt")
    with pipe:
        assert pipe.backend == "onnxruntime-cpu"
        result = pipe.predict(image)
    doc = result.to_dict()
    jsonschema.validate(doc, result_schema())
    assert BACKEND_FALLBACK_FLAG in doc["flags"] and BACKEND_FALLBACK_FLAG not in expected.flags
    assert doc["model"]["backend"] == "onnxruntime-cpu" and doc["model"]["backend_verified"] is True
    assert doc["model"]["fallback"]["backend"] == "tensorrt"
    assert "unet.trt-fp32.engine: TensorRT cannot deserialize this engine" in doc["model"]["fallback"]["reason"]
    assert [v.label for v in result.vertebrae] == [v.label for v in expected.vertebrae]
    for got, want in zip(result.vertebrae, expected.vertebrae):
        np.testing.assert_array_equal(got.polygon, want.polygon)
    with pytest.raises(BundleError, match="cannot deserialize"):
        Pipeline(root, threads=1, backend="tensorrt", fallback=False)


def test_a_fallback_keeps_a_precision_the_cpu_runs_and_reports_the_one_it_ran(scene, monkeypatch):
    from vertxnet.bundle import load_bundle

    root, _ = scene
    bundle = add_variants(root, {"unet": {"int8": (root / "unet.onnx").read_bytes(), "fp16": (root / "unet.onnx").read_bytes()}})
    assert fallback_selection(bundle, "int8").ran_precisions(bundle) == {"unet": "int8", "maskrcnn": "fp32"}
    assert fallback_selection(bundle, "fp16").ran_precisions(bundle) == {"unet": "fp32", "maskrcnn": "fp32"}
    assert fallback_selection(load_bundle(root), "fp32").backend == "onnxruntime-cpu"


def test_the_first_session_is_closed_when_the_second_fails(scene, monkeypatch):
    from vertxnet.pipeline import Pipeline
    from vertxnet.runtime.tensorrt import TensorRTSession

    root, _ = scene
    mods = standin.install(monkeypatch)
    bundle = add_engines(root, "fp32")
    (root / "maskrcnn.trt-fp32.engine").write_bytes(b"foreign")  # after the manifest: the hash check must not see it
    from vertxnet.bundle import write_manifest

    write_manifest(root, bundle.manifest)
    closed = []
    original = TensorRTSession.close
    monkeypatch.setattr(TensorRTSession, "close", lambda self: (closed.append(self.path.name), original(self)))
    with pytest.warns(UserWarning), Pipeline(root, threads=1, backend="tensorrt") as pipe:
        assert pipe.backend == "onnxruntime-cpu" and "maskrcnn" in pipe._model_info.fallback_reason
    assert "unet.trt-fp32.engine" in closed
    assert mods.device.buffers == {}


def test_a_tensorrt_pipeline_shared_by_threads_serialises_each_context(scene, monkeypatch):
    from concurrent.futures import ThreadPoolExecutor

    from vertxnet.pipeline import Pipeline

    root, image = scene
    standin.install(monkeypatch)  # its execution contexts fail when two threads use one at once
    add_engines(root, "fp32")
    images = [np.roll(image, 7 * k, axis=0) for k in range(8)]
    with Pipeline(root, backend="tensorrt", threads=1) as pipe:
        sequential = [pipe.predict(im).to_json(timings=False) for im in images]
        with ThreadPoolExecutor(max_workers=8) as pool:
            threaded = list(pool.map(lambda im: pipe.predict(im).to_json(timings=False), images * 2))
    assert threaded == sequential * 2
