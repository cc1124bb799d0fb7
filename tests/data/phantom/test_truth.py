"""The truth polygons are what an annotator would draw: ordered, valid, inside, not overlapping."""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import pytest
from shapely.geometry import Polygon

from vertxnet.levels import level_index
from vertxnet.data.phantom import MIN_VISIBLE_FRACTION, PhantomConfig, generate

N_IMAGES = 10


@lru_cache(maxsize=None)
def _records(view: str, difficulty: str):
    config = PhantomConfig(view=view, size=256, seed=21, difficulty=difficulty)
    return tuple(generate(config, i)[1] for i in range(N_IMAGES))


CASES = [(v, d) for v in ("cervical", "lumbar") for d in ("easy", "hard")]


@pytest.mark.parametrize("view,difficulty", CASES)
def test_levels_run_top_to_bottom_in_anatomical_order(view, difficulty):
    for rec in _records(view, difficulty):
        levels = [a.level for a in rec.annotations]
        indices = [level_index(lv) for lv in levels]
        assert indices == sorted(indices) and len(set(indices)) == len(indices)
        assert np.all(np.diff(indices) == 1), f"a level is missing inside the run: {levels}"
        # centroids advance along the spine axis from first to last
        centroids = np.array([Polygon(a.polygon).centroid.coords[0] for a in rec.annotations])
        axis = centroids[-1] - centroids[0]
        steps = np.diff(centroids, axis=0) @ axis
        assert np.all(steps > 0) and axis[1] > 0  # downwards in the image


@pytest.mark.parametrize("view,difficulty", CASES)
def test_level_sets_match_the_view(view, difficulty):
    for rec in _records(view, difficulty):
        levels = [a.level for a in rec.annotations]
        assert rec.view == view
        if view == "cervical":
            assert levels[0] == "C2"  # the field always reaches above the atlas
            assert set(levels) <= {"C2", "C3", "C4", "C5", "C6", "C7", "T1", "T2"}
            assert {"C2", "C3", "C4", "C5", "C6", "C7"} <= set(levels)
        else:
            assert levels[-1] == "S1"
            assert levels[0] in ("T10", "T11", "T12", "L1")
            assert {"L1", "L2", "L3", "L4", "L5", "S1"} <= set(levels)


@pytest.mark.parametrize("view,difficulty", CASES)
def test_polygons_are_simple_inside_the_image_and_do_not_overlap(view, difficulty):
    for rec in _records(view, difficulty):
        polys = [Polygon(a.polygon) for a in rec.annotations]
        for ann, poly in zip(rec.annotations, polys):
            assert 40 <= len(ann.polygon) <= 120
            assert ann.polygon.dtype == np.float64 and np.all(np.isfinite(ann.polygon))
            assert poly.is_valid, f"{ann.level}: not a simple polygon"
            assert ann.polygon[:, 0].min() >= 0 and ann.polygon[:, 0].max() <= rec.width
            assert ann.polygon[:, 1].min() >= 0 and ann.polygon[:, 1].max() <= rec.height
            assert poly.area > 20
        for i in range(len(polys)):
            for j in range(i + 1, len(polys)):
                overlap = polys[i].intersection(polys[j]).area
                if j == i + 1:  # neighbours may touch (narrowed discs, osteophytes), barely overlap
                    assert overlap <= 0.03 * min(polys[i].area, polys[j].area)
                else:
                    assert overlap == 0.0


@pytest.mark.parametrize("view", ["cervical", "lumbar"])
def test_end_vertebrae_cut_by_the_field_edge_are_annotated_only_when_a_third_shows(view):
    config = PhantomConfig(view=view, size=256, seed=5, difficulty="hard", overrides={"partial_edge": 1.0})
    clipped_seen = cut_seen = 0
    for i in range(16):
        _, rec = generate(config, i)
        info = rec.extra["phantom"]
        areas = {a.level: Polygon(a.polygon).area for a in rec.annotations}
        for ann in rec.annotations:
            frac = info["visible_fraction"][ann.level]
            assert frac >= MIN_VISIBLE_FRACTION
            on_edge = (ann.polygon.min() <= 1e-9) or (ann.polygon[:, 0].max() >= rec.width - 1e-9) or (
                ann.polygon[:, 1].max() >= rec.height - 1e-9)
            if frac < 0.98:
                assert on_edge  # only the field edge hides part of a vertebra
                clipped_seen += 1
                # the whole body implied by the visible part is the size of its neighbour
                neighbours = [areas[a.level] for a in rec.annotations if abs(level_index(a.level) - level_index(ann.level)) == 1]
                assert 0.5 < (areas[ann.level] / frac) / neighbours[0] < 2.0
        for level, frac in info["unannotated_partial"].items():
            assert 0 < frac < MIN_VISIBLE_FRACTION and level not in areas
            cut_seen += 1
    assert clipped_seen > 0 and cut_seen > 0  # both cases occur with partial_edge=1


def _ring_contrast(image, polygon, shift=(0.0, 0.0), width=2):
    import cv2

    h, w = image.shape
    mask = np.zeros((h, w), np.uint8)
    pts = (polygon + np.asarray(shift) - 0.5) * 16  # continuous coordinates -> OpenCV pixel indices
    cv2.fillPoly(mask, [np.round(pts).astype(np.int32)], 1, shift=4)
    kernel = np.ones((2 * width + 1, 2 * width + 1), np.uint8)
    inner = mask.astype(bool) & ~cv2.erode(mask, kernel).astype(bool)
    outer = cv2.dilate(mask, kernel).astype(bool) & ~mask.astype(bool)
    return float(image[inner].mean() - image[outer].mean())


@pytest.mark.parametrize("view", ["cervical", "lumbar"])
def test_truth_outlines_sit_on_the_rendered_cortical_rims(view):
    """A clean film (no noise, blur or scatter): each polygon hugs the bright rim of its body, and
    moving it by 2 px in any direction loses contrast, so truth and pixels agree to the pixel."""
    config = PhantomConfig(view=view, size=384, seed=13, difficulty="easy",
                           overrides={"noise": 0.0, "blur_mm": 0.0, "scatter": 0.0, "osteophyte_prob": 0.0})
    for index in range(3):
        image, record = generate(config, index)
        img = image.astype(np.float64)
        for ann in record.annotations:
            if record.extra["phantom"]["visible_fraction"][ann.level] < 1.0:
                continue
            here = _ring_contrast(img, ann.polygon)
            assert here > 0, f"{ann.level}: the outline is not on a bright rim"
            for shift in ((2, 0), (-2, 0), (0, 2), (0, -2)):
                assert _ring_contrast(img, ann.polygon, shift) < here, f"{ann.level} fits better shifted by {shift}"
