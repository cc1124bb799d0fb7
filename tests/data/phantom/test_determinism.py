"""Same arguments give byte-identical files; image i does not depend on how many are made."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from vertxnet.levels import LEVELS, VIEWS, level_index
from vertxnet.data.phantom import PhantomConfig, generate, generate_dataset


def _files(folder):
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_same_arguments_give_byte_identical_output(tmp_path):
    config = PhantomConfig(view="mixed", size=160, seed=7, difficulty="hard")
    a = _files(generate_dataset(config, tmp_path / "a", 3).parent)
    b = _files(generate_dataset(config, tmp_path / "b", 3).parent)
    assert a.keys() == {"annotations.json", "images/phantom_00000.png", "images/phantom_00001.png", "images/phantom_00002.png"}
    assert a == b


def test_image_i_is_independent_of_n(tmp_path):
    config = PhantomConfig(view="lumbar", size=128, seed=3)
    generate_dataset(config, tmp_path / "two", 2)
    generate_dataset(config, tmp_path / "four", 4)
    for name in ("phantom_00000.png", "phantom_00001.png"):
        assert (tmp_path / "two" / "images" / name).read_bytes() == (tmp_path / "four" / "images" / name).read_bytes()
    two = json.loads((tmp_path / "two" / "annotations.json").read_text())
    four = json.loads((tmp_path / "four" / "annotations.json").read_text())
    assert two["annotations"] == [a for a in four["annotations"] if a["image_id"] <= 2]


def test_generate_is_pure_and_seed_dependent():
    config = PhantomConfig(view="cervical", size=128, seed=11)
    first, rec1 = generate(config, 5)
    again, rec2 = generate(config, 5)
    other, _ = generate(PhantomConfig(view="cervical", size=128, seed=12), 5)
    assert np.array_equal(first, again)
    assert [a.level for a in rec1.annotations] == [a.level for a in rec2.annotations]
    assert all(np.array_equal(a.polygon, b.polygon) for a, b in zip(rec1.annotations, rec2.annotations))
    assert not np.array_equal(first, other)


def test_written_files_follow_the_coco_contract(tmp_path):
    config = PhantomConfig(view="mixed", size=200, seed=1)
    path = generate_dataset(config, tmp_path, 4)
    coco = json.loads(path.read_text())
    assert [c["id"] for c in coco["categories"]][: len(LEVELS)] == [level_index(n) for n in LEVELS]
    assert {c["name"] for c in coco["categories"]} >= set(LEVELS)
    for image in coco["images"]:
        png = cv2.imread(str(tmp_path / image["file_name"]), cv2.IMREAD_UNCHANGED)
        assert png.dtype == np.uint16 and png.ndim == 2
        assert png.shape == (image["height"], image["width"])
        assert max(png.shape) == 200
        assert image["view"] in VIEWS  # mixed draws every region a lateral film may show
        row, col = image["pixel_spacing_mm"]
        assert row == col
        # the field spans a plausible lateral cassette: 13 to 40 cm high
        assert 130 <= row * image["height"] <= 400
        assert png.max() > 60000 and png.min() < 5000  # the film uses the full 16-bit range
    anns = coco["annotations"]
    assert anns and all(len(a["segmentation"]) == 1 and len(a["segmentation"][0]) >= 6 for a in anns)
    assert not list(tmp_path.rglob("*.tmp-*"))


@pytest.mark.parametrize("bad", [dict(view="axial"), dict(difficulty="extreme"), dict(size=10), dict(seed=-1),
                                 dict(overrides={"nois": 1.0}), dict(overrides={"fracture_prob": 2.0}),
                                 dict(overrides={"noise": float("nan")})])
def test_bad_config_is_refused(bad):
    with pytest.raises(ValueError):
        PhantomConfig(**bad)


def test_bad_index_is_refused():
    with pytest.raises(ValueError):
        generate(PhantomConfig(size=128), -1)
