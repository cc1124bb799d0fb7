"""vertx-infer --backend / --precision: fail-safe choice, refusals with exit 2, fallback recorded."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import cv2
import jsonschema
import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "pipeline"))
sys.path.insert(0, str(ROOT / "tests" / "runtime"))

from vertxnet.cli.infer import main  # noqa: E402
from vertxnet.result import result_schema  # noqa: E402

pytestmark = pytest.mark.train  # the hand-built ONNX models need the onnx package

WIDTH, HEIGHT, SIZE = 300, 420, 128
BLOCKS = [(100, 40 + 70 * i, 200, 90 + 70 * i) for i in range(5)]


@pytest.fixture()
def bundle(tmp_path) -> Path:
    import synthetic_bundle as sb
    boxes = sb.model_boxes_for(BLOCKS, WIDTH, HEIGHT, SIZE)
    return sb.write_bundle(tmp_path / "bundle", SIZE, boxes, [0.9] * 5, [2, 1, 1, 1, 1])


@pytest.fixture()
def film(tmp_path) -> Path:
    import synthetic_bundle as sb

    path = tmp_path / "film.png"
    assert cv2.imwrite(str(path), sb.blocks_image(WIDTH, HEIGHT, BLOCKS))
    return path


def _variants(root: Path, files: dict[str, dict[str, bytes]]) -> None:
    from vertxnet.bundle import load_bundle, write_manifest

    manifest = load_bundle(root).manifest
    for model, variants in files.items():
        for variant, data in variants.items():
            name = f"{model}.{variant}" + (".engine" if variant.startswith("trt-") else ".onnx")
            (root / name).write_bytes(data)
            manifest["models"][model].setdefault("variants", {})[variant] = name
            manifest["files"][name] = {}
    write_manifest(root, manifest)


def _run(argv, capsys) -> tuple[int, str]:
    code = main([str(a) for a in argv])
    return code, capsys.readouterr().err


def _model(outdir: Path) -> dict:
    doc = json.loads((outdir / "film.json").read_text())
    jsonschema.validate(doc, result_schema())
    return doc


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--backend", "onnxruntime-cuda", "--precision", "int8"], "error: backend 'onnxruntime-cuda' runs fp32, fp16, not int8"),
        (["--precision", "fp16"], "error: no backend runs --precision fp16 here"),
        (["--precision", "int8"], "model 'unet' has no int8 variant (it has fp32)"),
        (["--precision", "int4"], "precision must be one of fp32, fp16, int8"),
        (["--precision", "view=int8"], "unknown model"),
    ],
)
def test_precisions_a_backend_or_bundle_cannot_honour_exit_2(args, message, bundle, film, tmp_path, capsys):
    code, err = _run([film, "-o", tmp_path / "out", "--model", bundle, *args], capsys)
    assert code == 2 and message in err
    assert not (tmp_path / "out" / "film.json").exists()


def test_a_per_model_precision_runs_and_is_recorded(bundle, film, tmp_path, capsys):
    shutil.copy(bundle / "unet.onnx", tmp_path / "int8.onnx")
    _variants(bundle, {"unet": {"int8": (tmp_path / "int8.onnx").read_bytes()}})
    code, err = _run([film, "-o", tmp_path / "out", "--model", bundle, "--precision", "int8"], capsys)
    assert code == 2 and "--precision unet=int8 runs only unet in int8" in err
    code, err = _run([film, "-o", tmp_path / "out", "--model", bundle, "--precision", "unet=int8", "-q"], capsys)
    assert code == 0, err
    model = _model(tmp_path / "out")["model"]
    assert model["precision"] == {"unet": "int8", "maskrcnn": "fp32"}
    assert model["backend"] == "onnxruntime-cpu" and model["backend_verified"] is True and model["fallback"] is None


def test_auto_stays_on_verified_backends_unless_allowed(bundle, film, tmp_path, capsys, monkeypatch):
    import standin_tensorrt as standin

    standin.install(monkeypatch)
    _variants(bundle, {m: {"trt-fp32": standin.engine_bytes(bundle / f"{m}.onnx")} for m in ("unet", "maskrcnn")})
    monkeypatch.delenv("VERTX_ALLOW_UNVERIFIED", raising=False)
    assert _run([film, "-o", tmp_path / "a", "--model", bundle, "-q"], capsys)[0] == 0
    assert _model(tmp_path / "a")["model"]["backend"] == "onnxruntime-cpu"
    monkeypatch.setenv("VERTX_ALLOW_UNVERIFIED", "1")
    assert _run([film, "-o", tmp_path / "b", "--model", bundle, "-q"], capsys)[0] == 0
    model = _model(tmp_path / "b")["model"]
    assert model["backend"] == "tensorrt" and model["backend_verified"] is False
    doc_a, doc_b = (json.loads((tmp_path / d / "film.json").read_text()) for d in "ab")
    assert [v["polygon"] for v in doc_a["vertebrae"]] == [v["polygon"] for v in doc_b["vertebrae"]]


def test_an_engine_for_another_device_falls_back_with_a_flag(bundle, film, tmp_path, capsys, monkeypatch):
    import standin_tensorrt as standin
    from vertxnet.pipeline import BackendFallbackWarning

    standin.install(monkeypatch)
    _variants(bundle, {m: {"trt-fp16": b"built on another GPU"} for m in ("unet", "maskrcnn")})
    with pytest.warns(BackendFallbackWarning, match="backend 'tensorrt' failed to load"):
        code, err = _run([film, "-o", tmp_path / "out", "--model", bundle, "--backend", "tensorrt", "--precision", "fp16", "-q"], capsys)
    assert code == 0, err
    doc = _model(tmp_path / "out")
    assert "backend_fallback" in doc["flags"]
    assert doc["model"]["backend"] == "onnxruntime-cpu" and doc["model"]["backend_verified"] is True
    assert doc["model"]["precision"] == {"unet": "fp32", "maskrcnn": "fp32"}  # what ran; the CPU has no fp16
    assert doc["model"]["fallback"]["backend"] == "tensorrt" and "cannot deserialize" in doc["model"]["fallback"]["reason"]
