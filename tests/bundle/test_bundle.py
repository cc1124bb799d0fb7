"""Model bundles: integrity checks and manifest validation; the shipped demo bundle verifies."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from vertxnet.bundle import MANIFEST, default_bundle_path, load_bundle, write_manifest
from vertxnet.errors import BundleError
from vertxnet.levels import MRCNN_CLASSES

FILES = ("unet.onnx", "maskrcnn.onnx", "unet.int8.onnx")


def _manifest() -> dict:
    return {
        "format": "vertxnet-bundle",
        "format_version": 1,
        "name": "test-bundle",
        "version": "0.0.1",
        "preprocess": {"input_size": 64, "mean": 0.5, "std": 0.25, "clahe": False},
        "classes": list(MRCNN_CLASSES),
        "thresholds": {"unet": 0.5, "mrcnn_score": 0.6},
        "models": {
            "unet": {"file": "unet.onnx", "variants": {"int8": "unet.int8.onnx"}},
            "maskrcnn": {"file": "maskrcnn.onnx"},
        },
        "files": {name: {} for name in FILES},
    }


@pytest.fixture
def bundle_dir(tmp_path) -> Path:
    root = tmp_path / "bundle"
    root.mkdir()
    rng = np.random.default_rng(0)
    for name in FILES:
        (root / name).write_bytes(rng.integers(0, 256, 4096, dtype=np.uint8).tobytes())
    write_manifest(root, _manifest())
    return root


def _rewrite(root: Path, edit) -> None:
    manifest = json.loads((root / MANIFEST).read_text())
    edit(manifest)
    (root / MANIFEST).write_text(json.dumps(manifest))


def test_valid_bundle_loads_with_hashes_and_thresholds(bundle_dir):
    bundle = load_bundle(bundle_dir)
    assert bundle.name == "test-bundle" and bundle.preprocess.input_size == 64
    assert bundle.thresholds["mrcnn_score"] == 0.6 and bundle.thresholds["eta"] == 0.6  # default filled in
    assert bundle.model_path("unet", "int8") == bundle_dir / "unet.int8.onnx"
    entry = bundle.manifest["files"]["maskrcnn.onnx"]
    assert len(entry["sha256"]) == 64 and entry["bytes"] == 4096


@pytest.mark.parametrize("name", FILES)
@pytest.mark.parametrize("offset", [0, 2048, 4095])
def test_one_changed_byte_is_refused_naming_the_file(bundle_dir, name, offset):
    path = bundle_dir / name
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(BundleError, match="sha256 does not match") as info:
        load_bundle(bundle_dir)
    assert info.value.path == str(path)


def test_missing_file_is_refused_naming_it(bundle_dir):
    (bundle_dir / "maskrcnn.onnx").unlink()
    with pytest.raises(BundleError, match="missing") as info:
        load_bundle(bundle_dir)
    assert info.value.path == str(bundle_dir / "maskrcnn.onnx")


def test_missing_manifest_and_folder_are_refused(bundle_dir, tmp_path):
    with pytest.raises(BundleError, match="folder not found"):
        load_bundle(tmp_path / "nowhere")
    (bundle_dir / MANIFEST).unlink()
    with pytest.raises(BundleError, match="no manifest.json"):
        load_bundle(bundle_dir)


def test_malformed_json_is_refused(bundle_dir):
    (bundle_dir / MANIFEST).write_text('{"format": "vertxnet-bundle", ')
    with pytest.raises(BundleError, match="not valid JSON") as info:
        load_bundle(bundle_dir)
    assert info.value.path == str(bundle_dir / MANIFEST)


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda m: m.update(format="onnx-zoo"), "format is"),
        (lambda m: m.update(format_version=2), "format_version"),
        (lambda m: m.update(classes=["background", "vertebra"]), "classes must be"),
        (lambda m: m.update(classes=["background", "vertebra", "S1", "C2"]), "classes must be"),
        (lambda m: m.pop("files"), "lacks files"),
        (lambda m: m["preprocess"].update(input_size=8), "input_size"),
        (lambda m: m["preprocess"].update(std=0), "std"),
        (lambda m: m["models"].pop("maskrcnn"), "must name 'unet' and 'maskrcnn'"),
        (lambda m: m["models"]["unet"].update(file="other.onnx"), "not listed under files"),
        (lambda m: m["files"].update({"../escape.onnx": m["files"]["unet.onnx"]}), "plain name"),
        (lambda m: m["files"]["unet.onnx"].update(sha256="abc"), "sha256"),
    ],
)
def test_invalid_manifest_is_refused(bundle_dir, edit, message):
    _rewrite(bundle_dir, edit)
    with pytest.raises(BundleError, match=message) as info:
        load_bundle(bundle_dir)
    assert info.value.path == str(bundle_dir / MANIFEST)


def test_manifest_that_is_not_an_object_is_refused(bundle_dir):
    (bundle_dir / MANIFEST).write_text("[1, 2, 3]")
    with pytest.raises(BundleError, match="not a JSON object"):
        load_bundle(bundle_dir)


def test_write_manifest_refuses_an_invalid_manifest(bundle_dir):
    bad = _manifest()
    bad["classes"] = ["background", "vertebra"]
    before = (bundle_dir / MANIFEST).read_bytes()
    with pytest.raises(BundleError):
        write_manifest(bundle_dir, bad)
    assert (bundle_dir / MANIFEST).read_bytes() == before  # nothing half-written


# ---------------------------------------------------------------------------------------------
# The shipped demo bundle


def test_demo_bundle_loads_and_verifies():
    bundle = load_bundle()
    assert bundle.path == default_bundle_path()
    manifest = bundle.manifest
    data = manifest["training"]["data"].lower()
    # what the shipped bundle learned from is said plainly: no annotated real film; DRRs, phantoms
    assert "no annotated real film" in data and "drr" in data and "phantom" in data
    assert "view" in manifest["models"]  # the film's region comes with a probability
    assert 256 <= bundle.preprocess.input_size <= 384
    total = sum(p.stat().st_size for p in bundle.path.iterdir())
    assert total <= 25 * 2**20, f"demo bundle is {total / 2**20:.1f} MiB"
    assert sorted(p.name for p in bundle.path.iterdir()) == sorted([MANIFEST, *manifest["files"]])


def test_demo_bundle_tampered_copy_is_refused(tmp_path):
    copy = tmp_path / "demo"
    shutil.copytree(default_bundle_path(), copy)
    data = bytearray((copy / "unet.onnx").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (copy / "unet.onnx").write_bytes(bytes(data))
    with pytest.raises(BundleError) as info:
        load_bundle(copy)
    assert info.value.path == str(copy / "unet.onnx")


def test_demo_bundle_models_follow_the_onnx_contract():
    ort = pytest.importorskip("onnxruntime")
    bundle = load_bundle()
    size = bundle.preprocess.input_size
    image = np.zeros((1, 1, size, size), np.float32)
    for model, outputs in (("unet", ["logits"]), ("maskrcnn", ["boxes", "scores", "labels", "mask_probs"])):
        for variant in [None, *bundle.variants(model)]:
            path = bundle.model_path(model, variant)
            if path.suffix != ".onnx":
                continue
            session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
            assert [i.name for i in session.get_inputs()] == ["image"]
            names = [o.name for o in session.get_outputs()]
            # the Mask R-CNN class softmax is an optional fifth output (older bundles lack it)
            assert names == outputs or (model == "maskrcnn" and names == [*outputs, "class_probs"])
            result = session.run(None, {"image": image})[: len(outputs)]
            if model == "unet":
                assert result[0].shape == (1, 1, size, size)
            else:
                boxes, scores, labels, probs = result
                assert boxes.shape == (len(scores), 4) and probs.shape == (len(scores), 28, 28)
                assert labels.dtype == np.int64


def test_manifest_schema_accepts_later_additions(bundle_dir):
    """New models (a view classifier), outputs (class probabilities) and keys still load."""
    (bundle_dir / "view.onnx").write_bytes(b"view model bytes")
    manifest = json.loads((bundle_dir / MANIFEST).read_text())
    manifest["models"]["view"] = {"file": "view.onnx", "classes": ["cervical", "lumbar"], "outputs": {"probs": [1, 2]}}
    manifest["models"]["maskrcnn"]["outputs"] = {"boxes": ["K", 4], "class_probs": ["K", 4]}
    manifest["files"]["view.onnx"] = {}
    manifest["measurements"] = {"enabled": True}
    write_manifest(bundle_dir, manifest)
    assert load_bundle(bundle_dir).manifest["models"]["view"]["file"] == "view.onnx"


def test_manifest_is_checked_against_its_shipped_schema(bundle_dir):
    import jsonschema

    from vertxnet.bundle import manifest_schema

    jsonschema.Draft202012Validator.check_schema(manifest_schema())
    jsonschema.validate(json.loads((default_bundle_path() / MANIFEST).read_text()), manifest_schema())
    _rewrite(bundle_dir, lambda m: m["thresholds"].update(eta="high"))
    with pytest.raises(BundleError, match="thresholds.eta must be a number, got 'high'"):
        load_bundle(bundle_dir)
