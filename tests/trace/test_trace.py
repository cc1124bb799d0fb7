"""Tracing network outputs into outlines (vertxnet.trace): positions, outline conventions, twins."""

from __future__ import annotations

import cv2
import numpy as np
import pytest


def test_a_known_box_becomes_the_expected_original_polygon():
    from vertxnet.trace import trace_instance
    from vertxnet.preprocess import letterbox

    _, box = letterbox(np.zeros((420, 300), np.float32), 128)
    # A full mask covers model pixels 40…59 x 30…49: the default outline runs through their
    # centres, the "edges" outline around them.
    for outline, corners in (
        ("centres", {(40.5, 30.5), (40.5, 49.5), (59.5, 49.5), (59.5, 30.5)}),
        ("edges", {(40.0, 30.0), (40.0, 50.0), (60.0, 50.0), (60.0, 30.0)}),
    ):
        polygon = trace_instance(np.ones((28, 28), np.float32), np.array([40.0, 30.0, 60.0, 50.0]), 0.5, 128, outline=outline)
        assert {tuple(p) for p in polygon} == corners
        original = box.to_original(polygon)
        expected = {((x - box.pad_x) / box.scale_x, (y - box.pad_y) / box.scale_y) for x, y in corners}
        assert {tuple(p) for p in original} == expected


def test_instance_mask_is_traced_inside_its_box_at_the_right_place():
    from vertxnet.trace import trace_instance

    probs = np.zeros((28, 28), np.float32)
    probs[:, 14:] = 1.0  # right half of the box only
    polygon = trace_instance(probs, np.array([10.0, 10.0, 38.0, 38.0]), 0.5, 64)
    # The box is 28 px wide: one mask cell per model pixel, so the right half is pixels 24…37.
    assert polygon[:, 0].min() == pytest.approx(24.5) and polygon[:, 0].max() == pytest.approx(37.5)
    assert polygon[:, 1].min() == pytest.approx(10.5) and polygon[:, 1].max() == pytest.approx(37.5)
    assert trace_instance(np.zeros((28, 28), np.float32), np.array([10.0, 10.0, 38.0, 38.0]), 0.5, 64) is None
    assert trace_instance(probs, np.array([10.0, 10.0, 10.0, 38.0]), 0.5, 64) is None  # empty box


def test_outline_encloses_the_traced_pixels_exactly():
    """Re-rasterising an outline by pixel centres gives back the pixels it was traced from."""
    from vertxnet.raster import rasterize
    from vertxnet.records import Annotation
    from vertxnet.trace import pixel_outline

    ellipse = np.zeros((40, 40), np.uint8)
    cv2.ellipse(ellipse, (20, 18), (12, 7), 20, 0, 360, 1, -1)
    block = np.zeros((20, 20), np.uint8)
    block[5:9, 8:15] = 1
    for component in (ellipse, block):
        contours, _ = cv2.findContours(np.ascontiguousarray(component), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        outline = pixel_outline(max(contours, key=cv2.contourArea))
        back = rasterize([Annotation(outline, "C3")], *component.shape) > 0
        np.testing.assert_array_equal(back, component > 0)
        assert abs(cv2.contourArea(outline.astype(np.float32)) - component.sum()) <= 0.05 * component.sum()


def test_unet_components_drop_specks_and_padding():
    from vertxnet.trace import trace_components
    from vertxnet.preprocess import letterbox

    _, box = letterbox(np.zeros((64, 32), np.float32), 64)  # content is columns 16…47
    prob = np.zeros((64, 64), np.float32)
    prob[10:20, 20:30] = 1.0  # a vertebra
    prob[40, 40] = 1.0  # a one-pixel speck
    prob[30:40, 0:10] = 1.0  # in the padding: not image content
    polygons = trace_components(prob, 0.5, box, min_area=4, logits=False)
    assert len(polygons) == 1
    model = box.to_model(polygons[0])
    assert model[:, 0].min() == pytest.approx(20.5) and model[:, 0].max() == pytest.approx(29.5)
    edges = box.to_model(trace_components(prob, 0.5, box, min_area=4, logits=False, outline="edges")[0])
    assert edges[:, 0].min() == pytest.approx(20) and edges[:, 0].max() == pytest.approx(30)
    assert edges[:, 1].min() == pytest.approx(10) and edges[:, 1].max() == pytest.approx(20)


def _square(x0, y0, side):
    return np.array([[x0, y0], [x0 + side, y0], [x0 + side, y0 + side], [x0, y0 + side]], float)


def test_duplicate_detections_of_one_vertebra_are_suppressed():
    from vertxnet.core import Detection
    from vertxnet.trace import suppress_duplicates

    polygons = [_square(0, 0, 10), _square(1, 1, 10), _square(0, 12, 10), _square(0, 8, 10)]
    classes = ["vertebra", "C2", "vertebra", "vertebra"]
    scores = [0.95, 0.9, 0.8, 0.6]
    detections = [Detection(p, c, s) for p, c, s in zip(polygons, classes, scores)]
    kept = suppress_duplicates(detections, 0.5)
    # #1 repeats #0 (81 % of the smaller area); #3 overlaps #2 by 60 % and #0 by 20 %.
    assert [d.polygon[0].tolist() for d in kept] == [[0, 0], [0, 12]]
    # The reference class of the dropped twin survives on the kept outline.
    assert [d.cls for d in kept] == ["C2", "vertebra"] and [d.score for d in kept] == [0.9, 0.8]
    assert suppress_duplicates(detections, 1.0) == detections
    kept = suppress_duplicates(detections, 0.15)
    assert len(kept) == 2  # #3 also overlaps #0 by 20 % > 15 %


def test_detections_are_traced_in_score_order_and_filtered():
    from vertxnet.trace import trace_detections

    boxes = np.array([[0, 0, 20, 20], [30, 0, 50, 20], [0, 30, 20, 50], [30, 30, 50, 50]], np.float32)
    scores = np.array([0.6, 0.9, 0.4, 0.8], np.float32)
    labels = np.array([1, 2, 1, 4])  # the last label is outside the three classes
    probs = np.ones((4, 28, 28), np.float32)
    found = trace_detections(boxes, scores, labels, probs, size=64, score_threshold=0.5, mask_threshold=0.5, duplicate_overlap=0.5)
    assert [(d.cls, round(d.score, 6)) for d in found] == [("C2", 0.9), ("vertebra", 0.6)]
    assert found[0].polygon[:, 0].min() == pytest.approx(30.5)
    moved = trace_detections(boxes, scores, labels, probs, size=64, score_threshold=0.5, mask_threshold=0.5,
                             duplicate_overlap=0.5, to_original=lambda p: p * 2.0)
    np.testing.assert_allclose(moved[0].polygon, found[0].polygon * 2.0)





def test_kept_detections_carry_class_probabilities_from_twins_or_the_softmax():
    from vertxnet.core import Detection
    from vertxnet.trace import suppress_duplicates, trace_detections

    # Without a softmax: the twins' scores per class, the rest shared by the unclaimed class.
    twins = [Detection(_square(0, 0, 10), "vertebra", 0.6), Detection(_square(1, 1, 10), "S1", 0.3)]
    (kept,) = suppress_duplicates(twins, 0.5)
    assert kept.cls == "S1" and kept.class_probs == pytest.approx((0.6, 0.1, 0.3))
    # With the graph's softmax (background, vertebra, C2, S1): background dropped, renormalised.
    boxes = np.array([[0, 0, 20, 20]], np.float32)
    found = trace_detections(
        boxes, np.array([0.7], np.float32), np.array([1]), np.ones((1, 28, 28), np.float32), size=64,
        score_threshold=0.5, mask_threshold=0.5, duplicate_overlap=0.5,
        class_probs=np.array([[0.2, 0.4, 0.0, 0.4]], np.float32),
    )  # fmt: skip
    assert found[0].class_probs == pytest.approx((0.5, 0.0, 0.5))
    assert sum(found[0].class_probs) == pytest.approx(1.0)
