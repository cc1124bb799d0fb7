"""How benchmarks/accuracy.py names the outlines of each method (no model needed)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from vertxnet.bundle import DEFAULT_THRESHOLDS
from vertxnet.core import Detection
from vertxnet.records import Record
from vertxnet.pipeline import PipelineConfig

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

import accuracy  # noqa: E402

CFG = PipelineConfig().resolved(DEFAULT_THRESHOLDS)
TRUTH = Record(image_path=None, width=200, height=400, annotations=[], image_id=1)


def box(y0: float, h: float = 30.0, x0: float = 60.0, w: float = 80.0) -> np.ndarray:
    return np.array([[x0, y0], [x0 + w, y0], [x0 + w, y0 + h], [x0, y0 + h]], dtype=np.float64)


STACK = [box(40.0 + 50.0 * i) for i in range(5)]  # five bodies, 20 px apart


def labels(record: Record) -> list[str | None]:
    return [a.level for a in record.annotations]


def raw(unet, mrcnn=(), classes=(), scores=()) -> accuracy.RawOutputs:
    detections = [Detection(p, c, s) for p, c, s in zip(mrcnn, classes, scores, strict=True)]
    return accuracy.RawOutputs(list(unet), detections)


def test_unet_alone_takes_the_reference_mask_rcnn_found():
    c2 = box(38.0, h=33.0)  # Mask R-CNN's C2 outline over the top U-Net component
    assert labels(accuracy.unet_alone(TRUTH, raw(STACK, [c2], ["C2"], [0.9]), CFG)) == ["C2", "C3", "C4", "C5", "C6"]
    s1 = box(242.0)
    assert labels(accuracy.unet_alone(TRUTH, raw(STACK, [s1], ["S1"], [0.8]), CFG)) == ["L2", "L3", "L4", "L5", "S1"]
    # The U-Net outlines themselves are kept, not replaced by Mask R-CNN's.
    record = accuracy.unet_alone(TRUTH, raw(STACK, [c2], ["C2"], [0.9]), CFG)
    np.testing.assert_allclose(record.annotations[0].polygon, STACK[0])


def test_unet_alone_without_a_usable_reference_stays_unnamed():
    weak = raw(STACK, [box(38.0)], ["C2"], [CFG.ref_score - 0.1])  # below ref_score
    assert labels(accuracy.unet_alone(TRUTH, weak, CFG)) == [None] * 5
    elsewhere = raw(STACK, [box(40.0, x0=150.0, w=40.0)], ["C2"], [0.9])  # overlaps no U-Net component
    assert labels(accuracy.unet_alone(TRUTH, elsewhere, CFG)) == [None] * 5
    plain = raw(STACK, [STACK[0]], ["vertebra"], [0.9])
    assert labels(accuracy.unet_alone(TRUTH, plain, CFG)) == [None] * 5


def test_mask_rcnn_alone_is_zipped_top_to_bottom_whatever_the_input_order():
    order = [3, 0, 4, 1, 2]
    classes = ["vertebra", "C2", "vertebra", "vertebra", "vertebra"]
    record = accuracy.mrcnn_alone(TRUTH, raw([], [STACK[i] for i in order], [classes[k] for k in range(5)], [0.9] * 5), CFG)
    # the C2 instance is STACK[0]: everything below is C3.. in position order
    assert labels(record) == ["C2", "C3", "C4", "C5", "C6"]
    assert [a.polygon[0, 1] for a in record.annotations] == sorted(a.polygon[0, 1] for a in record.annotations)


def test_masks_above_the_reference_are_left_out():
    classes = ["vertebra", "C2", "vertebra", "vertebra", "vertebra"]
    record = accuracy.mrcnn_alone(TRUTH, raw([], STACK, classes, [0.9] * 5), CFG)
    assert labels(record) == ["C2", "C3", "C4", "C5"]  # STACK[0] lies above C2: excluded


def test_vertxnet_names_the_ensemble_and_depends_on_eta():
    # U-Net and Mask R-CNN agree on every body; Mask R-CNN calls the top one C2.
    classes = ["C2", "vertebra", "vertebra", "vertebra", "vertebra"]
    shifted = [p + [0.0, 3.0] for p in STACK]  # IoU about 0.8
    r = raw(STACK, shifted, classes, [0.9] * 5)
    record = accuracy.vertxnet(TRUTH, r, CFG, eta=0.6, lam=2.0)
    assert labels(record) == ["C2", "C3", "C4", "C5", "C6"]
    # Agreement unions the two outlines: each ensemble mask spans both.
    assert np.isclose(record.annotations[0].polygon[:, 1].max() - record.annotations[0].polygon[:, 1].min(), 33.0)
