"""The pipeline on hand-built models whose answers are known exactly."""

from __future__ import annotations

import json

import cv2
import jsonschema
import numpy as np
import pytest

pytestmark = pytest.mark.train  # the hand-built ONNX models need the onnx package

from vertxnet.result import result_schema  # noqa: E402

SCHEMA = result_schema()


def _close_to_block(polygon: np.ndarray, block, tol: float) -> bool:
    x0, y0, x1, y1 = block
    return bool(
        abs(polygon[:, 0].min() - x0) <= tol
        and abs(polygon[:, 0].max() - x1) <= tol
        and abs(polygon[:, 1].min() - y0) <= tol
        and abs(polygon[:, 1].max() - y1) <= tol
    )


def test_finds_and_names_every_block_in_original_pixels(pipeline, scene):
    result = pipeline.predict(scene.image)
    assert [v.label for v in result.vertebrae] == ["C2", "C3", "C4", "C5", "C6"]
    assert result.view == "cervical" and result.reference == "C2"
    # One model pixel is 1 / 0.3048 = 3.3 original pixels; outlines run through the centres of
    # the boundary pixels, so each side sits within a model pixel of the true edge.
    for vertebra, block in zip(result.vertebrae, scene.blocks):
        assert _close_to_block(vertebra.polygon, block, tol=3.4), (vertebra.polygon.min(0), vertebra.polygon.max(0), block)
        assert vertebra.source == "agreement" and vertebra.score == pytest.approx(0.9)
    jsonschema.validate(result.to_dict(), SCHEMA)


def test_json_matches_schema_and_carries_the_contract_fields(pipeline, scene):
    result = pipeline.predict(scene.image, pixel_spacing_mm=(0.2, 0.25))
    doc = json.loads(result.to_json())
    jsonschema.validate(doc, SCHEMA)
    assert doc["input"]["width"] == 300 and doc["input"]["height"] == 420
    assert doc["input"]["pixel_spacing_mm"] == [0.2, 0.25]
    assert set(doc["timings_ms"]) == {"decode", "preprocess", "unet", "maskrcnn", "trace", "ensemble", "label", "total"}
    t = result.timings_ms
    # The models run side by side; everything else is sequential and inside the total.
    assert t["total"] >= t["decode"] + t["preprocess"] + max(t["unet"], t["maskrcnn"]) + t["ensemble"] + t["label"]
    assert doc["model"] == {
        "name": "synthetic-test",
        "version": "0.0.1",
        "sha256": pipeline.bundle.manifest_sha256,
        "backend": "onnxruntime-cpu",
        "precision": {"unet": "fp32", "maskrcnn": "fp32"},
        "backend_verified": True,
        "fallback": None,
    }
    for v in doc["vertebrae"]:
        assert v["area_mm2"] == pytest.approx(v["area_px"] * 0.2 * 0.25, rel=1e-6)


def test_unknown_spacing_gives_no_mm_figures_and_a_flag(pipeline, scene):
    doc = pipeline.predict(scene.image).to_dict()
    assert doc["input"]["pixel_spacing_mm"] is None
    assert "no_pixel_spacing" in doc["flags"]
    assert all("area_mm2" not in v for v in doc["vertebrae"])


def test_letterbox_round_trip_is_exact_on_a_non_square_image():
    from vertxnet.preprocess import letterbox

    _, box = letterbox(np.zeros((419, 301), np.float32), 128)
    rng = np.random.default_rng(1)
    points = rng.uniform([0, 0], [301, 419], size=(200, 2))
    np.testing.assert_allclose(box.to_original(box.to_model(points)), points, rtol=0, atol=1e-9)


def test_mrcnn_only_polygons_reach_the_output_exactly(tmp_path, scene):
    """With a silent U-Net the ensemble keeps the Mask R-CNN outlines as they are."""
    import synthetic_bundle as sb
    from vertxnet.pipeline import Pipeline
    from vertxnet.trace import trace_instance
    from vertxnet.preprocess import PreprocessConfig, prepare

    bundle = sb.write_bundle(tmp_path / "b", 128, scene.model_boxes, [0.9] * 5, [2, 1, 1, 1, 1], unet_cut=1e6)
    with Pipeline(bundle, threads=1) as pipe:
        result = pipe.predict(scene.image)
    _, box = prepare(scene.image, PreprocessConfig(input_size=128))
    expected = [box.to_original(trace_instance(np.ones((28, 28), np.float32), b, 0.5, 128)) for b in scene.model_boxes]
    assert len(result.vertebrae) == 5
    for vertebra, want in zip(result.vertebrae, expected):
        got = {tuple(np.round(p, 6)) for p in vertebra.polygon}
        assert got == {tuple(np.round(p, 6)) for p in want}


def test_nothing_found_is_an_input_error_unless_allowed(tmp_path, scene):
    import synthetic_bundle as sb
    from vertxnet.errors import InputError
    from vertxnet.pipeline import Pipeline, PipelineConfig

    empty = sb.write_bundle(tmp_path / "empty", 128, np.zeros((0, 4)), [], [], unet_cut=1e6)
    with Pipeline(empty, threads=1) as pipe:
        with pytest.raises(InputError, match="no vertebra found"):
            pipe.predict(scene.image)
    with Pipeline(empty, threads=1, config=PipelineConfig(require_vertebrae=False)) as pipe:
        result = pipe.predict(scene.image)
    assert result.vertebrae == [] and result.view is None
    jsonschema.validate(result.to_dict(), SCHEMA)


def test_no_reference_leaves_vertebrae_unnamed(tmp_path, scene):
    import synthetic_bundle as sb
    from vertxnet.pipeline import Pipeline
    from vertxnet.result import UNNAMED_VALUE

    bundle = sb.write_bundle(tmp_path / "noref", 128, scene.model_boxes, [0.9] * 5, [1] * 5)
    with Pipeline(bundle, threads=1) as pipe:
        result = pipe.predict(scene.image)
    assert [v.label for v in result.vertebrae] == [None] * 5
    assert "no_reference" in result.flags and result.reference is None
    assert set(np.unique(result.label_mask())) == {0, UNNAMED_VALUE}
    jsonschema.validate(result.to_dict(), SCHEMA)


def test_thresholds_default_to_the_manifest_and_can_be_overridden(scene):
    from vertxnet.bundle import load_bundle
    from vertxnet.pipeline import PipelineConfig

    bundle = load_bundle(scene.bundle)
    config = PipelineConfig(eta=0.4).resolved(bundle.thresholds)
    assert config.eta == 0.4 and config.lam == 2.0 and config.unet_threshold == 0.5 and config.gap_factor == 1.6
    with pytest.raises(ValueError, match="eta"):
        PipelineConfig(eta=1.5).resolved(bundle.thresholds)
    with pytest.raises(ValueError, match="gap_factor"):
        PipelineConfig(gap_factor=0.5).resolved(bundle.thresholds)


def test_score_threshold_drops_weak_detections(tmp_path, scene):
    import synthetic_bundle as sb
    from vertxnet.pipeline import Pipeline, PipelineConfig

    bundle = sb.write_bundle(tmp_path / "weak", 128, scene.model_boxes, [0.9, 0.3, 0.9, 0.9, 0.9], [2, 1, 1, 1, 1], unet_cut=1e6)
    with Pipeline(bundle, threads=1) as pipe:
        assert len(pipe.predict(scene.image).vertebrae) == 4
    with Pipeline(bundle, threads=1, config=PipelineConfig(score_threshold=0.2)) as pipe:
        assert len(pipe.predict(scene.image).vertebrae) == 5


def test_tampered_bundle_is_refused_naming_the_file(tmp_path, scene):
    import shutil

    from vertxnet.errors import BundleError
    from vertxnet.pipeline import Pipeline

    copy = tmp_path / "tampered"
    shutil.copytree(scene.bundle, copy)
    with open(copy / "unet.onnx", "ab") as f:
        f.write(b"\0")
    with pytest.raises(BundleError, match=r"unet\.onnx.*sha256"):
        Pipeline(copy)


def test_a_model_breaking_the_output_contract_is_a_bundle_error(tmp_path, scene):
    import synthetic_bundle as sb
    from vertxnet.errors import BundleError
    from vertxnet.pipeline import Pipeline

    bundle = sb.write_bundle(tmp_path / "small", 128, scene.model_boxes, [0.9] * 5, [2, 1, 1, 1, 1])
    sb.threshold_unet(bundle / "unet.onnx", 64)  # wrong input size for the manifest's 128
    manifest = json.loads((bundle / "manifest.json").read_text())
    from vertxnet.bundle import write_manifest

    write_manifest(bundle, manifest)
    with Pipeline(bundle, threads=1) as pipe:
        with pytest.raises(BundleError, match="unet.onnx"):
            pipe.predict(scene.image)


def test_results_are_identical_across_runs_apart_from_timings(pipeline, scene):
    a = pipeline.predict(scene.image).to_json(timings=False)
    b = pipeline.predict(scene.image).to_json(timings=False)
    assert a == b and "timings_ms" not in json.loads(a)


def test_predict_many_reports_bad_inputs_and_keeps_going(pipeline, scene, tmp_path):
    from vertxnet.errors import InputError

    good = tmp_path / "good.png"
    cv2.imwrite(str(good), scene.image)
    bad = tmp_path / "bad.png"
    bad.write_bytes(good.read_bytes()[:200])
    outcomes = list(pipeline.predict_many([str(good), str(bad), scene.image, str(good)]))
    assert [type(o).__name__ for _, o in outcomes] == ["Result", "InputError", "Result", "Result"]
    assert outcomes[1][0] == str(bad) and isinstance(outcomes[1][1], InputError)
    assert str(bad) in str(outcomes[1][1])
    assert outcomes[0][1].input.path == str(good)
    assert outcomes[0][1].to_json(timings=False) == outcomes[3][1].to_json(timings=False)


def test_sessions_are_reused_across_predictions(pipeline, scene):
    unet, mrcnn = pipeline._unet, pipeline._mrcnn
    pipeline.predict(scene.image)
    pipeline.predict(scene.image)
    assert pipeline._unet is unet and pipeline._mrcnn is mrcnn


def test_label_mask_coco_and_overlay(pipeline, scene):
    from vertxnet.levels import level_index

    result = pipeline.predict(scene.image)
    mask8, mask16 = result.label_mask(np.uint8), result.label_mask(np.uint16)
    assert mask8.dtype == np.uint8 and mask16.dtype == np.uint16 and mask8.shape == (420, 300)
    np.testing.assert_array_equal(mask8, mask16)
    for vertebra, block in zip(result.vertebrae, scene.blocks):
        cx, cy = (block[0] + block[2]) // 2, (block[1] + block[3]) // 2
        assert mask8[cy, cx] == level_index(vertebra.label)
    assert mask8[5, 5] == 0
    with pytest.raises(ValueError):
        result.label_mask(np.int32)

    coco = result.to_coco()
    assert [a["category_id"] for a in coco["annotations"]] == [level_index(n) for n in ("C2", "C3", "C4", "C5", "C6")]
    assert coco["images"][0]["width"] == 300 and coco["annotations"][0]["iscrowd"] == 0
    x, y, w, h = coco["annotations"][0]["bbox"]
    assert x == pytest.approx(result.vertebrae[0].bbox[0], abs=1e-4) and w > 0 and h > 0

    overlay = result.overlay()
    assert overlay.dtype == np.uint8 and overlay.shape == (420, 300, 3)
    # Outlines are coloured; the film itself is gray.
    assert np.any(overlay[..., 0] != overlay[..., 1])
    assert result.overlay(max_size=210).shape == (210, 150, 3)  # large films are shrunk for a quick look


def test_masks_above_the_reference_are_excluded_with_their_reason(tmp_path, scene):
    import synthetic_bundle as sb
    from vertxnet.pipeline import Pipeline

    bundle = sb.write_bundle(tmp_path / "c2second", 128, scene.model_boxes, [0.9] * 5, [1, 2, 1, 1, 1])
    with Pipeline(bundle, threads=1) as pipe:
        result = pipe.predict(scene.image)
    assert [v.label for v in result.vertebrae] == ["C2", "C3", "C4", "C5"]
    assert len(result.excluded) == 1 and result.excluded[0].reason == "above_reference"
    assert result.excluded[0].label is None
    doc = result.to_dict()
    jsonschema.validate(doc, SCHEMA)
    assert doc["excluded"][0]["reason"] == "above_reference"
    assert result.label_mask()[65, 150] == 0  # excluded masks are not in the label image


def test_both_references_give_a_whole_spine_view(tmp_path, scene):
    import synthetic_bundle as sb
    from vertxnet.pipeline import Pipeline

    bundle = sb.write_bundle(tmp_path / "both", 128, scene.model_boxes, [0.9] * 5, [2, 1, 1, 1, 3])
    with Pipeline(bundle, threads=1) as pipe:
        result = pipe.predict(scene.image)
    assert result.view == "whole" and result.reference == "C2+S1"
    assert result.vertebrae[0].label == "C2" and result.vertebrae[-1].label == "S1"
    assert "label_conflict" in result.flags  # five bodies cannot span C2…S1
    jsonschema.validate(result.to_dict(), SCHEMA)


def test_precision_runs_the_bundle_variant_of_every_model_or_refuses(tmp_path, scene):
    import shutil

    import synthetic_bundle as sb
    from vertxnet.bundle import load_bundle, write_manifest
    from vertxnet.pipeline import Pipeline

    root = sb.write_bundle(tmp_path / "variants", 128, scene.model_boxes, [0.9] * 5, [2, 1, 1, 1, 1])
    with pytest.raises(ValueError, match="no int8 variant"):
        Pipeline(root, precision="int8")
    with pytest.raises(ValueError, match="precision must be one of"):
        Pipeline(root, precision="int4")
    manifest = load_bundle(root).manifest
    for model in ("unet", "maskrcnn"):
        shutil.copy(root / f"{model}.onnx", root / f"{model}.int8.onnx")  # same graph: only the plumbing is under test
        manifest["models"][model]["variants"] = {"int8": f"{model}.int8.onnx"}
        manifest["files"][f"{model}.int8.onnx"] = {}
    write_manifest(root, manifest)
    with Pipeline(root, threads=1, precision="int8") as pipe:
        result = pipe.predict(scene.image)
        assert pipe._unet.path.name == "unet.int8.onnx" and pipe._mrcnn.path.name == "maskrcnn.int8.onnx"
    assert result.model.precision == {"unet": "int8", "maskrcnn": "int8"}
    assert result.to_dict()["model"]["precision"] == {"unet": "int8", "maskrcnn": "int8"}
    assert [v.label for v in result.vertebrae] == ["C2", "C3", "C4", "C5", "C6"]


def test_outline_comes_from_the_manifest_and_can_be_overridden(tmp_path, scene):
    import synthetic_bundle as sb
    from vertxnet.bundle import load_bundle, write_manifest
    from vertxnet.pipeline import Pipeline, PipelineConfig

    root = sb.write_bundle(tmp_path / "edges", 128, scene.model_boxes, [0.9] * 5, [2, 1, 1, 1, 1], unet_cut=1e6)
    with Pipeline(root, threads=1) as pipe:
        assert pipe.config.outline == "centres"
        centres = pipe.predict(scene.image)
    manifest = load_bundle(root).manifest
    manifest["postprocess"] = {"outline": "edges"}
    write_manifest(root, manifest)
    with Pipeline(root, threads=1) as pipe:
        assert pipe.config.outline == "edges"
        edges = pipe.predict(scene.image)
    with Pipeline(root, threads=1, config=PipelineConfig(outline="centres")) as pipe:
        assert pipe.config.outline == "centres"
    # Around the pixels rather than through their centres: half a model pixel more on each side.
    for a, b in zip(centres.vertebrae, edges.vertebrae):
        assert b.bbox[0] < a.bbox[0] and b.bbox[2] > a.bbox[2] and b.area_px > a.area_px
    with pytest.raises(ValueError, match="outline"):
        PipelineConfig(outline="inside").validate()


def test_twin_detections_do_not_become_two_vertebrae(tmp_path, scene):
    import synthetic_bundle as sb
    from vertxnet.pipeline import Pipeline, PipelineConfig

    boxes = np.vstack([scene.model_boxes, scene.model_boxes[2] + [0.5, 0.5, 0.5, 0.5]])
    bundle = sb.write_bundle(tmp_path / "twins", 128, boxes, [0.9] * 5 + [0.8], [2, 1, 1, 1, 1, 1], unet_cut=1e6)
    with Pipeline(bundle, threads=1) as pipe:
        assert [v.label for v in pipe.predict(scene.image).vertebrae] == ["C2", "C3", "C4", "C5", "C6"]
    with Pipeline(bundle, threads=1, config=PipelineConfig(duplicate_overlap=1.0)) as pipe:
        assert len(pipe.predict(scene.image).vertebrae) == 6  # without suppression the twin is a vertebra


def test_decoder_params_reach_the_decoder_and_bad_ones_are_refused(tmp_path, scene):
    from vertxnet.bundle import load_bundle
    from vertxnet.core import DecoderParams
    from vertxnet.pipeline import Pipeline, PipelineConfig

    # A run that probably ends after each level: every name below the C2 reference is less sure.
    doubtful = DecoderParams(end_hazard=0.9)
    config = PipelineConfig(decoder=doubtful, label_confidence=0.0)
    assert config.resolved(load_bundle(scene.bundle).thresholds).decoder == doubtful
    with Pipeline(scene.bundle, threads=1, config=PipelineConfig(label_confidence=0.0)) as pipe:
        default = pipe.predict(scene.image).vertebrae
    with Pipeline(scene.bundle, threads=1, config=config) as pipe:
        changed = pipe.predict(scene.image).vertebrae
    assert [v.label for v in changed] == [v.label for v in default] == ["C2", "C3", "C4", "C5", "C6"]
    assert all(c.label_confidence < d.label_confidence for c, d in zip(changed[1:], default[1:]))
    broken = DecoderParams()
    broken.size_sigma = -1.0  # fields can be set one by one; the config checks them all
    with pytest.raises(ValueError, match="size_sigma"):
        PipelineConfig(decoder=broken).validate()
    with pytest.raises(ValueError, match="DecoderParams"):
        PipelineConfig(decoder={"size_sigma": 0.2}).validate()
