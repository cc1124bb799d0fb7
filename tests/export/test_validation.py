"""export/validation.py measures the outlines the pipeline itself traces (no torch needed)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.train  # the hand-built ONNX models need the onnx package

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "pipeline"))

SIZE = 128
#: Five "vertebrae" (x0, y0, x1, y1) on a square film of the model-input size, so that original
#: and model-input coordinates are the same.
BLOCKS = [(40, 8 + 24 * i, 88, 26 + 24 * i) for i in range(5)]


def test_the_export_scripts_trace_with_the_pipelines_functions():
    import validation as V

    import vertxnet.pipeline
    import vertxnet.trace

    assert V.trace_detections is vertxnet.trace.trace_detections is vertxnet.pipeline.trace_detections
    assert V.trace_components is vertxnet.trace.trace_components is vertxnet.pipeline.trace_components


@pytest.mark.parametrize("outline", ["centres", "edges"])
def test_check_figures_equal_those_of_the_pipelines_outlines(tmp_path, outline):
    import _common as C
    import onnxruntime as ort
    import synthetic_bundle as sb
    import validation as V
    from export_bundle import TRACED_OUTPUTS, maskrcnn_figures, unet_dice_onnx

    from vertxnet.bundle import load_bundle, write_manifest
    from vertxnet.evaluation.metrics import mask_dice
    from vertxnet.pipeline import Pipeline
    from vertxnet.preprocess import prepare
    from vertxnet.records import Annotation, Record

    rng = np.random.default_rng(5)
    # Detections off by sub-pixel amounts, soft round masks, a weak one and a twin of the third.
    boxes = np.array([[x0 + rng.uniform(-1, 1), y0 + rng.uniform(-1, 1), x1 + rng.uniform(-1, 1), y1 + rng.uniform(-1, 1)]
                      for x0, y0, x1, y1 in BLOCKS] + [[41.3, 56.6, 87.2, 74.1], [20.0, 100.0, 30.0, 110.0]], np.float32)
    scores = [0.95, 0.9, 0.85, 0.8, 0.75, 0.7, 0.3]
    labels = [2, 1, 1, 1, 1, 2, 1]
    yy, xx = np.mgrid[0:28, 0:28] + 0.5
    disc = np.clip(1.6 - np.hypot((xx - 14) / 14, (yy - 14) / 14) * 1.2, 0, 1).astype(np.float32)
    root = sb.write_bundle(tmp_path / "b", SIZE, boxes, scores, labels, np.repeat(disc[None], len(boxes), axis=0))
    bundle = load_bundle(root)
    manifest = dict(bundle.manifest)
    manifest["postprocess"] = {"outline": outline}
    write_manifest(root, manifest)
    bundle = load_bundle(root)

    image = sb.blocks_image(SIZE, SIZE, BLOCKS)
    levels = ["C2", "C3", "C4", "C5", "C6"]
    record = Record(image_path=None, width=SIZE, height=SIZE, image=image, image_id=1,
                    annotations=[Annotation(np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], float), lv) for (x0, y0, x1, y1), lv in zip(BLOCKS, levels)])
    sample = C.prepare_sample(record, bundle.preprocess)
    x, box = prepare(image, bundle.preprocess)
    assert (box.scale_x, box.pad_x, box.pad_y) == (1.0, 0, 0)
    tracing = V.Tracing.of_bundle({**bundle.thresholds, "duplicate_overlap": 0.5}, bundle.manifest["postprocess"])

    # What export_bundle.py / evaluate_bundle.py write ...
    sessions = {m: ort.InferenceSession(str(bundle.model_path(m)), providers=["CPUExecutionProvider"]) for m in ("unet", "maskrcnn")}
    written = maskrcnn_figures(sessions["maskrcnn"], [x], [sample], tracing)
    written_dice = unet_dice_onnx(sessions["unet"], [x], [sample], tracing)

    # ... equals the figures of the outlines the pipeline finds.
    with Pipeline(root, backend="onnxruntime-cpu", threads=1) as pipe:
        raw = pipe.outlines(image)
    assert len(raw.detections) == 5  # the weak one dropped, the twin merged into its vertebra
    truth = V.truth_record(sample.polygons, sample.labels, sample.content, 1, min_pixels=16)
    predicted = Record(image_path=None, width=SIZE, height=SIZE, image_id=1,
                       annotations=[Annotation(d.polygon, None if d.cls == "vertebra" else d.cls, d.score) for d in raw.detections])
    assert written == V.detection_figures([truth], [predicted])
    export_side = V.detection_record(sessions["maskrcnn"].run(TRACED_OUTPUTS, {"image": x}), SIZE, 1, tracing)
    assert [(a.level, a.score) for a in export_side.annotations] == [(a.level, a.score) for a in predicted.annotations]
    for a, b in zip(export_side.annotations, predicted.annotations, strict=True):
        np.testing.assert_array_equal(a.polygon, b.polygon)
    assert written["detection_rate_iou50"] == 1.0 and written["reference_accuracy"] == 1.0
    pipeline_dice = mask_dice(V.foreground(raw.unet, SIZE), V.foreground(sample.polygons, SIZE))
    assert written_dice == pytest.approx(pipeline_dice, abs=1e-12) and pipeline_dice > 0.9
