"""The phantoms' morphometric truth: every annotated body carries its corners and heights."""

from __future__ import annotations

import numpy as np
import pytest

from vertxnet.data.datasets import read_coco, write_coco
from vertxnet.data.phantom import PhantomConfig, generate


def _distance_to_ring(ring: np.ndarray, point: np.ndarray) -> float:
    a, b = ring, np.roll(ring, -1, axis=0)
    ab = b - a
    t = np.clip(((point - a) * ab).sum(1) / np.maximum((ab * ab).sum(1), 1e-18), 0, 1)
    return float(np.min(np.hypot(*(a + t[:, None] * ab - point).T)))


@pytest.fixture(scope="module")
def fractured():
    # a lumbar film with a fracture (the knob forced on), osteophytes and touching discs allowed
    config = PhantomConfig(view="lumbar", seed=3, difficulty="hard", overrides={"fracture_prob": 1.0})
    return generate(config, 0)


def test_every_body_has_corners_on_its_outline_and_heights_between_them(fractured):
    _, record = fractured
    spacing = record.pixel_spacing_mm[0]
    assert record.annotations
    last = len(record.annotations) - 1
    for k, ann in enumerate(record.annotations):
        truth = ann.extra["morphometry"]
        corners = np.asarray(ann.extra["corners"])
        assert corners.shape == (4, 2) and np.allclose(corners, truth["corners"])
        ps, as_, ai, pi = corners
        assert truth["height_anterior_px"] == pytest.approx(np.hypot(*(ai - as_)), abs=1e-3)
        assert truth["height_posterior_px"] == pytest.approx(np.hypot(*(pi - ps)), abs=1e-3)
        assert truth["height_anterior_mm"] == pytest.approx(truth["height_anterior_px"] * spacing, rel=1e-4)
        if ann.level != "C2" and 0 < k < last:  # the end bodies may be cut by the field edge
            # on the annotated outline, to within the chords of its 96 vertices; osteophytes are not
            # outlined around, so corners may lie inside a beak
            for c in corners:
                assert _distance_to_ring(np.asarray(ann.polygon), c) < 0.75 or ann.level in record.extra["phantom"]["osteophytes"]


def test_the_fractured_body_is_lower_where_its_fracture_says(fractured):
    _, record = fractured
    (fracture,) = record.extra["phantom"]["fractures"]
    ann = next(a for a in record.annotations if a.level == fracture["level"])
    truth = ann.extra["morphometry"]
    assert truth["rim_height_anterior_mm"] == pytest.approx(fracture["anterior_height_mm"], abs=1e-3)
    assert truth["rim_height_posterior_mm"] == pytest.approx(fracture["posterior_height_mm"], abs=1e-3)
    assert truth["height_middle_mm"] == pytest.approx(fracture["middle_height_mm"], abs=1e-3)
    # rounding takes a little off the rim heights, never adds
    assert truth["height_anterior_mm"] <= truth["rim_height_anterior_mm"] + 1e-6


def test_coco_keeps_the_truth(fractured, tmp_path):
    image, record = fractured
    record.image_path = tmp_path / "film.png"
    path = write_coco([record], tmp_path / "annotations.json")
    back = read_coco(path)[0]
    for a, b in zip(record.annotations, back.annotations):
        assert b.extra["corners"] == a.extra["corners"]
        assert b.extra["morphometry"] == a.extra["morphometry"]
