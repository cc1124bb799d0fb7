"""Label images from polygons: pixel-centre sampling in continuous pixel coordinates."""

from __future__ import annotations

import numpy as np
import pytest
import shapely

from vertxnet.raster import polygon_mask, rasterize
from vertxnet.records import Annotation, Record
from vertxnet.levels import level_index


def _rect(x0, y0, x1, y1):
    return np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], dtype=np.float64)


def test_axis_aligned_rectangle_covers_exactly_its_pixels():
    label = rasterize([Annotation(_rect(2, 3, 10, 7), "L1")], 12, 14)
    expected = np.zeros((12, 14), np.uint16)
    expected[3:7, 2:10] = level_index("L1")
    assert label.dtype == np.uint16
    np.testing.assert_array_equal(label, expected)


def test_matches_centre_sampling_of_random_polygons():
    rng = np.random.default_rng(1)
    ys, xs = np.mgrid[0:48, 0:48] + 0.5
    for _ in range(100):
        n = int(rng.integers(3, 12))
        angles = np.sort(rng.uniform(0, 2 * np.pi, n))
        radii = rng.uniform(3, 15, n)
        centre = rng.uniform(10, 38, 2)
        polygon = np.c_[centre[0] + radii * np.cos(angles), centre[1] + radii * np.sin(angles)]
        expected = shapely.contains_xy(shapely.Polygon(polygon), xs, ys)
        np.testing.assert_array_equal(polygon_mask(polygon, 0, 0, 48, 48), expected)


def test_pixel_count_tracks_area_without_bias():
    rng = np.random.default_rng(2)
    errors = []
    for _ in range(200):
        centre, (a, b) = rng.uniform(30, 70, 2), rng.uniform(8, 25, 2)
        t = np.linspace(0, 2 * np.pi, 40, endpoint=False)
        polygon = np.c_[centre[0] + a * np.cos(t), centre[1] + b * np.sin(t)]
        errors.append(polygon_mask(polygon, 0, 0, 100, 100).sum() - shapely.Polygon(polygon).area)
    assert abs(np.mean(errors)) < 1.0  # painting the outline as well would add ~half the perimeter (~50 px)


def test_window_results_equal_full_image_results():
    polygon = np.array([[3.2, 4.1], [20.7, 6.3], [15.5, 25.9], [9.0, 18.0]])
    full = polygon_mask(polygon, 0, 0, 30, 30)
    np.testing.assert_array_equal(polygon_mask(polygon, 3, 4, 18, 22), full[4:26, 3:21])
    assert polygon_mask(polygon, 3, 4, 18, 22).sum() == full.sum()


def test_record_input_unnamed_value_overlap_and_clipping():
    rec = Record(
        image_path=None,
        width=10,
        height=8,
        annotations=[Annotation(_rect(-5, -5, 4, 4), "C3"), Annotation(_rect(2, 2, 20, 20), None)],
    )
    with pytest.raises(ValueError, match="annotation 1 has no level; pass unnamed_value"):
        rasterize(rec)
    label = rasterize(rec, unnamed_value=99)
    assert label.shape == (8, 10)
    assert label[0, 0] == level_index("C3") and label[1, 3] == level_index("C3")
    assert label[3, 3] == 99  # the later annotation is painted over the earlier one
    assert label[7, 9] == 99 and label[0, 5] == 0


def test_bad_arguments():
    with pytest.raises(ValueError, match="positive height and width"):
        rasterize([Annotation(_rect(0, 0, 2, 2), "L1")], 0, 5)
    with pytest.raises(ValueError, match="non-finite"):
        polygon_mask(np.array([[0, 0], [np.nan, 1], [2, 2]]), 0, 0, 4, 4)
