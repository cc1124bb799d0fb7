"""VIA 2.x (VGG Image Annotator) project files and annotation exports."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from vertxnet.data.datasets import read_via
from vertxnet.errors import InputError


def _image(path: Path, height: int, width: int) -> int:
    assert cv2.imwrite(str(path), np.full((height, width), 100, np.uint8))
    return path.stat().st_size


def _polygon_region(points: np.ndarray, level) -> dict:
    return {
        "shape_attributes": {"name": "polygon", "all_points_x": points[:, 0].tolist(), "all_points_y": points[:, 1].tolist()},
        "region_attributes": {} if level is None else {"level": level},
    }


L3 = np.array([[10, 12], [40, 14], [38, 30], [11, 28]], dtype=np.float64)
L4 = np.array([[12, 36], [41, 37], [40, 52], [13, 50], [12, 44]], dtype=np.float64)


def _metadata(tmp_path: Path) -> dict:
    size_a = _image(tmp_path / "a.png", 80, 50)
    size_b = _image(tmp_path / "b.jpg", 64, 48)
    return {
        f"a.png{size_a}": {
            "filename": "a.png",
            "size": size_a,
            "regions": [
                _polygon_region(L3, "L3"),
                _polygon_region(L4, "l4 "),
                {"shape_attributes": {"name": "rect", "x": 5, "y": 55, "width": 30, "height": 12}, "region_attributes": {"level": "L5"}},
            ],
            "file_attributes": {},
        },
        f"b.jpg{size_b}": {
            "filename": "b.jpg",
            "size": size_b,
            "regions": [_polygon_region(L3, None), _polygon_region(L4, {"S1": True, "L5": False})],
            "file_attributes": {},
        },
    }


def _check(records):
    a, b = records
    assert (a.image_path.name, a.width, a.height) == ("a.png", 50, 80)
    assert (b.image_path.name, b.width, b.height) == ("b.jpg", 48, 64)
    assert [x.level for x in a.annotations] == ["L3", "L4", "L5"]
    assert [x.level for x in b.annotations] == [None, "S1"]
    np.testing.assert_array_equal(a.annotations[0].polygon, L3)
    np.testing.assert_array_equal(a.annotations[1].polygon, L4)
    np.testing.assert_array_equal(a.annotations[2].polygon, [[5, 55], [35, 55], [35, 67], [5, 67]])
    assert a.load_image().shape == (80, 50)


def test_project_file(tmp_path):
    project = {
        "_via_settings": {"ui": {}, "core": {"buffer_size": 18, "filepath": {}, "default_filepath": ""}, "project": {"name": "spine"}},
        "_via_img_metadata": _metadata(tmp_path),
        "_via_attributes": {"region": {"level": {"type": "text"}}, "file": {}},
        "_via_data_format_version": "2.0.10",
        "_via_image_id_list": [],
    }
    (tmp_path / "project.json").write_text(json.dumps(project))
    _check(read_via(tmp_path / "project.json"))


def test_annotation_export_with_custom_attribute_and_image_root(tmp_path):
    metadata = _metadata(tmp_path)
    for entry in metadata.values():
        for region in entry["regions"]:
            if "level" in region["region_attributes"]:
                region["region_attributes"] = {"vertebra": region["region_attributes"]["level"]}
    (tmp_path / "json").mkdir()
    (tmp_path / "json" / "export.json").write_text(json.dumps(metadata))
    _check(read_via(tmp_path / "json" / "export.json", image_root=tmp_path, level_attribute="vertebra"))


def _write(tmp_path: Path, metadata: dict) -> Path:
    path = tmp_path / "via.json"
    path.write_text(json.dumps({"_via_img_metadata": metadata}))
    return path


def test_unknown_level_names_file_image_and_region(tmp_path):
    metadata = _metadata(tmp_path)
    metadata[next(iter(metadata))]["regions"][1]["region_attributes"]["level"] = "L9"
    path = _write(tmp_path, metadata)
    with pytest.raises(InputError) as err:
        read_via(path)
    assert str(err.value) == f"{path}: image 'a.png' region 1: unknown level 'L9'"


@pytest.mark.parametrize(
    ("shape", "message"),
    [
        ({"name": "polyline", "all_points_x": [1, 5, 9], "all_points_y": [1, 5, 1]}, "unsupported region shape 'polyline'"),
        ({"name": "polygon", "all_points_x": [1, 5], "all_points_y": [1, 5]}, "fewer than 3 distinct points"),
        ({"name": "polygon", "all_points_x": [1, 5, 9], "all_points_y": [1, 5]}, "equal length"),
        ({"name": "rect", "x": 1, "y": 2}, "malformed rect shape"),
    ],
)
def test_bad_regions(tmp_path, shape, message):
    metadata = _metadata(tmp_path)
    metadata[next(iter(metadata))]["regions"][0]["shape_attributes"] = shape
    path = _write(tmp_path, metadata)
    with pytest.raises(InputError, match="image 'a.png' region 0: ") as err:
        read_via(path)
    assert message in str(err.value) and str(path) in str(err.value)


def test_missing_image_names_the_via_file_and_the_image(tmp_path):
    metadata = _metadata(tmp_path)
    (tmp_path / "b.jpg").unlink()
    path = _write(tmp_path, metadata)
    with pytest.raises(InputError, match=r"via\.json: image 'b\.jpg': .*b\.jpg: image file not found"):
        read_via(path)


def test_not_a_via_file(tmp_path):
    path = tmp_path / "x.json"
    path.write_text(json.dumps({"images": []}))
    with pytest.raises(InputError, match="not a VIA image entry"):
        read_via(path)
