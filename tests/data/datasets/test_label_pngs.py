"""Folders of label PNGs (value = level index, 0 = background)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from vertxnet.data.datasets import read_label_pngs
from vertxnet.raster import polygon_area, rasterize
from vertxnet.errors import InputError
from vertxnet.levels import level_index


def _labels(dtype) -> np.ndarray:
    label = np.zeros((40, 30), dtype)
    label[2:10, 3:12] = level_index("L3")  # rows 2..9, columns 3..11
    label[12:20, 5:15] = level_index("L4")
    label[25:33, 6:16] = level_index("S1")
    return label


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_levels_and_outlines_in_continuous_coordinates(tmp_path, dtype):
    cv2.imwrite(str(tmp_path / "case1.png"), _labels(dtype))
    (rec,) = read_label_pngs(tmp_path)
    assert (rec.width, rec.height, rec.image_path) == (30, 40, None)
    assert [a.level for a in rec.annotations] == ["L3", "L4", "S1"]
    l3 = rec.annotations[0].polygon
    # The outline runs through the centres of the boundary pixels (index + 0.5).
    assert (l3[:, 0].min(), l3[:, 0].max(), l3[:, 1].min(), l3[:, 1].max()) == (3.5, 11.5, 2.5, 9.5)
    assert polygon_area(l3) == pytest.approx(8 * 7)


def test_rasterised_outlines_stay_inside_their_labels(tmp_path):
    label = _labels(np.uint16)
    cv2.imwrite(str(tmp_path / "case1.png"), label)
    (rec,) = read_label_pngs(tmp_path)
    painted = rasterize(rec)
    assert np.all((painted == 0) | (painted == label))
    # Pixel-centre outlines cover the label minus its right column and bottom row.
    assert np.count_nonzero(painted == level_index("L3")) == 8 * 7


def test_pairs_images_by_name(tmp_path):
    (tmp_path / "labels").mkdir()
    (tmp_path / "images").mkdir()
    for name in ("p1", "p2"):
        cv2.imwrite(str(tmp_path / "labels" / f"{name}.png"), _labels(np.uint8))
    cv2.imwrite(str(tmp_path / "images" / "p1.png"), np.zeros((40, 30), np.uint16))
    cv2.imwrite(str(tmp_path / "images" / "p2.jpg"), np.zeros((40, 30), np.uint8))
    recs = read_label_pngs(tmp_path / "labels", images=tmp_path / "images")
    assert [r.image_path.name for r in recs] == ["p1.png", "p2.jpg"]
    assert recs[0].load_image().dtype == np.uint16
    (tmp_path / "images" / "p2.jpg").unlink()
    with pytest.raises(InputError, match=r"p2\.png: no image named p2\.\* in"):
        read_label_pngs(tmp_path / "labels", images=tmp_path / "images")


def test_bad_label_images(tmp_path):
    label = np.zeros((20, 20), np.uint8)
    label[2:8, 2:8] = 27
    cv2.imwrite(str(tmp_path / "bad.png"), label)
    with pytest.raises(InputError, match=r"bad\.png: label: pixel value 27 is not a level index"):
        read_label_pngs(tmp_path)
    (tmp_path / "bad.png").unlink()
    cv2.imwrite(str(tmp_path / "colour.png"), np.zeros((20, 20, 3), np.uint8))
    with pytest.raises(InputError, match=r"colour\.png: label PNG must be single-channel"):
        read_label_pngs(tmp_path)
    (tmp_path / "colour.png").unlink()
    with pytest.raises(InputError, match="no .png label images"):
        read_label_pngs(tmp_path)
    with pytest.raises(InputError, match="label folder not found"):
        read_label_pngs(tmp_path / "missing")


def test_a_level_in_two_pieces_keeps_the_larger_with_a_warning(tmp_path):
    label = np.zeros((30, 30), np.uint8)
    label[2:12, 2:12] = 5
    label[20:23, 20:23] = 5
    cv2.imwrite(str(tmp_path / "two.png"), label)
    with pytest.warns(UserWarning, match="C5 has 2 parts"):
        (rec,) = read_label_pngs(tmp_path)
    assert len(rec.annotations) == 1 and polygon_area(rec.annotations[0].polygon) == pytest.approx(81)
