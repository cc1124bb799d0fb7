"""COCO instances JSON: round trip, file layout, and clear errors for malformed files."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from vertxnet.data.datasets import read_coco, write_coco
from vertxnet.levels import UNNAMED_CATEGORY_ID
from vertxnet.raster import polygon_area
from vertxnet.records import Annotation, Record
from vertxnet.errors import InputError
from vertxnet.levels import LEVELS, level_index


def _image(path: Path, height: int = 60, width: int = 40, dtype=np.uint16) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = (np.arange(height * width).reshape(height, width) * 17 % 4000).astype(dtype)
    assert cv2.imwrite(str(path), pixels)
    return path


def _records(tmp_path: Path) -> list[Record]:
    a = _image(tmp_path / "images" / "a.png")
    b = _image(tmp_path / "images" / "b.png", dtype=np.uint8)
    return [
        Record(
            image_path=a,
            width=40,
            height=60,
            annotations=[
                Annotation(np.array([[5.25, 4.0], [30.5, 5.125], [29.0, 18.75], [6.0, 17.0]]), "L3"),
                Annotation(np.array([[5.0, 22.0], [31.0, 23.0], [30.0, 36.0], [18.0, 38.5], [4.0, 35.0]]), "L4", score=0.75),
            ],
            view="lumbar",
            pixel_spacing_mm=(0.148, 0.152),
            extra={"fractures": ["L3"], "seed": 7},
        ),
        Record(
            image_path=b,
            width=40,
            height=60,
            annotations=[Annotation(np.array([[1.0, 1.0], [9.0, 1.0], [9.0, 9.0]]), None, score=0.5)],
        ),
    ]


def test_round_trip_keeps_polygons_levels_scores_and_image_fields(tmp_path):
    records = _records(tmp_path)
    path = write_coco(records, tmp_path / "truth.json")
    back = read_coco(path)
    assert len(back) == 2
    for orig, rec in zip(records, back):
        assert rec.image_path.resolve() == orig.image_path.resolve()
        assert (rec.width, rec.height, rec.view, rec.pixel_spacing_mm, rec.extra) == (
            orig.width, orig.height, orig.view, orig.pixel_spacing_mm, orig.extra,
        )
        assert [a.level for a in rec.annotations] == [a.level for a in orig.annotations]
        assert [a.score for a in rec.annotations] == [a.score for a in orig.annotations]
        for a, b in zip(rec.annotations, orig.annotations):
            np.testing.assert_array_equal(a.polygon, b.polygon)
            assert a.polygon.dtype == np.float64 and a.polygon.shape == b.polygon.shape
        np.testing.assert_array_equal(rec.load_image(), cv2.imread(str(orig.image_path), cv2.IMREAD_UNCHANGED))
    assert back[0].load_image().dtype == np.uint16
    assert back[1].load_image().dtype == np.uint8


def test_file_follows_coco_layout(tmp_path):
    (tmp_path / "out").mkdir()
    path = write_coco(_records(tmp_path), tmp_path / "out" / "truth.json")
    data = json.loads(path.read_text())
    assert [c["name"] for c in data["categories"][: len(LEVELS)]] == list(LEVELS)
    assert all(c["id"] == level_index(c["name"]) for c in data["categories"][: len(LEVELS)])
    assert data["categories"][-1] == {"id": UNNAMED_CATEGORY_ID, "name": "vertebra", "supercategory": "vertebra"}
    assert [img["file_name"] for img in data["images"]] == ["../images/a.png", "../images/b.png"]
    first = data["annotations"][0]
    assert first["category_id"] == level_index("L3") and first["iscrowd"] == 0
    polygon = np.array(first["segmentation"][0]).reshape(-1, 2)
    assert first["area"] == pytest.approx(polygon_area(polygon))
    assert first["bbox"] == [5.25, 4.0, 30.5 - 5.25, 18.75 - 4.0]
    assert data["images"][0]["pixel_spacing_mm"] == [0.148, 0.152] and data["images"][0]["view"] == "lumbar"


def test_named_only_files_list_exactly_the_levels(tmp_path):
    records = _records(tmp_path)[:1]
    data = json.loads(write_coco(records, tmp_path / "t.json").read_text())
    assert len(data["categories"]) == len(LEVELS)


def test_write_is_atomic_and_leaves_no_temporary_file(tmp_path):
    path = write_coco(_records(tmp_path), tmp_path / "truth.json")
    before = path.read_bytes()
    bad = _records(tmp_path)
    bad[0].annotations.append(Annotation(np.array([[0.0, 0.0], [1.0, 1.0]]), "L5"))
    with pytest.raises(ValueError):
        write_coco(bad, path)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["images", "truth.json"]


def test_categories_from_other_tools_are_matched_by_name(tmp_path):
    _image(tmp_path / "x.png")
    data = {
        "images": [{"id": 10, "file_name": "x.png", "width": 40, "height": 60}],
        "categories": [{"id": 1, "name": "S1"}, {"id": 2, "name": "L5"}],
        "annotations": [
            {"id": 1, "image_id": 10, "category_id": 2, "segmentation": [[0, 0, 10, 0, 10, 10, 0, 10]]},
            {"id": 2, "image_id": 10, "category_id": 1, "segmentation": [[0, 20, 10, 20, 10, 30]]},
        ],
    }
    (tmp_path / "other.json").write_text(json.dumps(data))
    (rec,) = read_coco(tmp_path / "other.json")
    assert [a.level for a in rec.annotations] == ["L5", "S1"]
    assert rec.image_id == 10 and rec.view is None and rec.pixel_spacing_mm is None


def test_image_root_overrides_the_json_folder(tmp_path):
    write_coco(_records(tmp_path), tmp_path / "truth.json")
    moved = tmp_path / "elsewhere"
    moved.mkdir()
    (tmp_path / "truth.json").rename(moved / "truth.json")
    recs = read_coco(moved / "truth.json", image_root=tmp_path)
    assert recs[0].image_path.resolve() == (tmp_path / "images" / "a.png").resolve()
    assert recs[0].load_image().shape == (60, 40)


def _coco_with(tmp_path: Path, annotation: dict, images=None) -> Path:
    data = {
        "images": images if images is not None else [{"id": 3, "file_name": "a.png", "width": 40, "height": 60}],
        "categories": [{"id": level_index(n), "name": n} for n in LEVELS] + [{"id": 99, "name": "L9"}],
        "annotations": [annotation],
    }
    path = tmp_path / "ann.json"
    path.write_text(json.dumps(data))
    return path


@pytest.mark.parametrize(
    ("annotation", "message"),
    [
        ({"id": 17, "image_id": 3, "category_id": 99, "segmentation": [[0, 0, 5, 0, 5, 5]]}, "annotation 17 (image 3): unknown level 'L9'"),
        ({"id": 17, "image_id": 3, "category_id": 55, "segmentation": [[0, 0, 5, 0, 5, 5]]}, "annotation 17 (image 3): unknown category_id 55"),
        ({"id": 17, "image_id": 4, "category_id": 1, "segmentation": [[0, 0, 5, 0, 5, 5]]}, "annotation 17 (image 4): no image with id 4"),
        ({"id": 17, "image_id": 3, "category_id": 1, "segmentation": [[0, 0, 5, 0]]}, "annotation 17 (image 3): polygon has fewer than 3 distinct points"),
        ({"id": 17, "image_id": 3, "category_id": 1, "segmentation": [[0, 0, 5, 0, 5]]}, "annotation 17 (image 3): polygon has an odd number of coordinates (5)"),
        ({"id": 17, "image_id": 3, "category_id": 1, "segmentation": {"counts": "x", "size": [60, 40]}}, "RLE segmentation is not supported"),
        ({"id": 17, "image_id": 3, "category_id": 1}, "annotation 17 (image 3): missing polygon 'segmentation'"),
    ],
)
def test_malformed_annotations_name_file_and_entry(tmp_path, annotation, message):
    path = _coco_with(tmp_path, annotation)
    with pytest.raises(InputError) as err:
        read_coco(path)
    assert str(err.value).startswith(str(path) + ": ")
    assert message in str(err.value)
    assert err.value.path == str(path)


def test_bad_image_entries_are_reported(tmp_path):
    ann = {"id": 1, "image_id": 3, "category_id": 1, "segmentation": [[0, 0, 5, 0, 5, 5]]}
    path = _coco_with(tmp_path, ann, images=[{"id": 3, "file_name": "a.png", "width": 0, "height": 60}])
    with pytest.raises(InputError, match=r"image 3: 'width' must be a positive integer"):
        read_coco(path)
    path = _coco_with(tmp_path, ann, images=[{"id": 3, "width": 40, "height": 60}])
    with pytest.raises(InputError, match=r"image 3: missing 'file_name'"):
        read_coco(path)


def test_invalid_json_and_missing_file(tmp_path):
    path = tmp_path / "broken.json"
    path.write_text('{"images": [')
    with pytest.raises(InputError, match=r"broken\.json: invalid JSON at line 1"):
        read_coco(path)
    with pytest.raises(InputError, match=r"nothere\.json: file not found"):
        read_coco(tmp_path / "nothere.json")
    (tmp_path / "list.json").write_text("[]")
    with pytest.raises(InputError, match="not a COCO instances file"):
        read_coco(tmp_path / "list.json")


def test_load_image_errors_name_the_file(tmp_path):
    rec = Record(image_path=tmp_path / "gone.png", width=40, height=60)
    with pytest.raises(InputError, match=r"gone\.png: image file not found"):
        rec.load_image()
    (tmp_path / "junk.png").write_bytes(b"not a png at all")
    with pytest.raises(InputError, match=r"junk\.png: not a readable image"):
        Record(image_path=tmp_path / "junk.png", width=40, height=60).load_image()
    _image(tmp_path / "small.png", height=30, width=20)
    with pytest.raises(InputError, match=r"small\.png: image is 20x30 pixels but its annotations are for 40x60"):
        Record(image_path=tmp_path / "small.png", width=40, height=60).load_image()


def test_load_image_returns_held_pixels_without_touching_disk():
    pixels = np.zeros((5, 6), np.uint16)
    assert Record(image_path=None, width=6, height=5, image=pixels).load_image() is pixels
    with pytest.raises(InputError, match="neither pixel data nor an image path"):
        Record(image_path=None, width=6, height=5).load_image()
