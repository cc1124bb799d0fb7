"""vertx-drr data sets from a synthetic labelled CT: determinism, truth on bone, order, bodies only,
clipping and the visible-share rule, transitional and sacral levels."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

pytest.importorskip("nibabel")

from drr_synthetic import BODY_AP_HALF, make_phantom  # noqa: E402

from vertxnet.data.datasets import read_coco  # noqa: E402
from vertxnet.data.drr import CTCase, DRRConfig, MIN_VISIBLE_FRACTION, generate_dataset, prepare_case  # noqa: E402
from vertxnet.data.drr.generator import project_vertebrae  # noqa: E402
from vertxnet.data.drr.projector import Canvas, Pose  # noqa: E402
from vertxnet.levels import UNNAMED_CATEGORY, UNNAMED_CATEGORY_ID, level_index  # noqa: E402
from vertxnet.raster import image_mask, polygon_area  # noqa: E402

CONFIG = DRRConfig(size=144, seed=11, images_per_pose=3, collimation_prob=0.0, implant_prob=0.0)


@pytest.fixture(scope="module")
def phantom(tmp_path_factory):
    return make_phantom(tmp_path_factory.mktemp("ct"))


@pytest.fixture(scope="module")
def case(phantom):
    return CTCase("synthetic", phantom.ct, phantom.labels, "verse")


@pytest.fixture(scope="module")
def dataset(case, tmp_path_factory):
    out = tmp_path_factory.mktemp("drr")
    path, skipped = generate_dataset([case], CONFIG, out, 6)
    assert not skipped
    return out, read_coco(path)


def test_same_arguments_give_identical_files_whatever_the_workers(case, dataset, tmp_path):
    out, _ = dataset
    again, _ = generate_dataset([case], CONFIG, tmp_path, 6, workers=2)
    assert again.read_bytes() == (out / "annotations.json").read_bytes()
    for image in sorted((out / "images").iterdir()):
        assert (tmp_path / "images" / image.name).read_bytes() == image.read_bytes(), image.name


def test_another_seed_gives_other_images(case, dataset, tmp_path):
    out, _ = dataset
    generate_dataset([case], DRRConfig(**{**CONFIG.__dict__, "seed": 12}), tmp_path, 1)
    assert (tmp_path / "images" / "drr_00000.png").read_bytes() != (out / "images" / "drr_00000.png").read_bytes()


def test_coco_matches_the_phantom_conventions(dataset):
    out, records = dataset
    data = json.loads((out / "annotations.json").read_text())
    assert [c["id"] for c in data["categories"]] == list(range(1, 26))
    assert {c["name"]: c["id"] for c in data["categories"]}["L1"] == level_index("L1")
    for image in data["images"]:
        assert image["view"] in ("thoracolumbar", "lumbar", "thoracic")
        assert image["extra"]["drr"]["case"] == "synthetic"
        assert image["width"] <= 144 and image["height"] == 144
    for rec in records:
        image = rec.load_image()
        assert image.dtype == np.uint16 and image.shape == (rec.height, rec.width)
        assert rec.annotations, "every image shows vertebrae"


def test_truth_sits_on_projected_bone(dataset):
    """Mean intensity inside each body polygon above that of a ring just outside it."""
    _, records = dataset
    checked = 0
    for rec in records:
        image = rec.load_image().astype(np.float64)
        others = np.zeros(image.shape, bool)
        for ann in rec.annotations:
            others |= image_mask(ann.polygon, rec.height, rec.width)
        for ann in rec.annotations:
            inside = image_mask(ann.polygon, rec.height, rec.width)
            if inside.sum() < 30:
                continue
            grown = cv2.dilate(inside.astype(np.uint8), np.ones((7, 7), np.uint8), iterations=1).astype(bool)
            ring = grown & ~others
            if ring.sum() < 20:
                continue
            assert image[inside].mean() > image[ring].mean(), (rec.image_id, ann.level)
            checked += 1
    assert checked >= 10


def test_levels_run_top_to_bottom(dataset, phantom):
    _, records = dataset
    for rec in records:
        levels = [a.level for a in rec.annotations]
        assert levels == sorted(levels, key=level_index)
        assert set(levels) <= set(phantom.levels)
        centres = [a.polygon[:, 1].mean() for a in rec.annotations]
        assert centres == sorted(centres)


def test_truth_is_the_body_alone(dataset):
    """A body polygon is no deeper (front to back) than the body: the arch and spinous process,
    which reach ~40 mm further back, are left out."""
    _, records = dataset
    for rec in records:
        spacing = rec.pixel_spacing_mm[0]
        for ann in rec.annotations:
            depth_mm = (ann.polygon[:, 0].max() - ann.polygon[:, 0].min()) * spacing
            assert depth_mm < 2 * BODY_AP_HALF * 1.3, (rec.image_id, ann.level, depth_mm)


def test_body_silhouette_lies_inside_the_whole_vertebra(case):
    prep = prepare_case(case)
    centre = np.mean([v.centre for v in prep.vertebrae], axis=0)
    tilt = np.deg2rad(8.0)
    rotation = np.array([[np.cos(tilt), -np.sin(tilt), 0], [np.sin(tilt), np.cos(tilt), 0], [0, 0, 1]])
    pose = Pose(rotation=rotation, isocentre=centre, sod=1000.0, sdd=1200.0)
    canvas = Canvas(u0=-200.0, v0=-200.0, pixel=1.0, width=400, height=400)
    bodies = project_vertebrae(prep, pose, canvas, "body")
    wholes = project_vertebrae(prep, pose, canvas, "whole")
    assert set(bodies) == set(wholes) == {"T12", "L1", "L2", "L3"}
    for name in bodies:
        bx, by, body = bodies[name]
        wx, wy, whole = wholes[name]
        # compare on the whole vertebra's window (both on the same, twice finer grid)
        ox, oy = (bx - wx) * 2, (by - wy) * 2
        inside = np.zeros_like(whole)
        inside[oy : oy + body.shape[0], ox : ox + body.shape[1]] = body[: whole.shape[0] - oy, : whole.shape[1] - ox]
        assert body.sum() < 0.8 * whole.sum(), name
        assert (inside & ~whole).sum() <= 0.02 * body.sum(), name


def test_partial_bodies_follow_the_third_rule(case, tmp_path):
    # small fields cut through the spine: every annotation clipped to the image
    config = DRRConfig(size=96, seed=3, images_per_pose=8, field_mm=(50.0, 80.0), collimation_prob=1.0,
                       implant_prob=0.0)
    path, _ = generate_dataset([case], config, tmp_path, 16)
    data = json.loads(path.read_text())
    names = {c["id"]: c["name"] for c in data["categories"]}
    cut_seen = 0
    for image in data["images"]:
        drr = image["extra"]["drr"]
        anns = [a for a in data["annotations"] if a["image_id"] == image["id"]]
        for a in anns:
            poly = np.asarray(a["segmentation"][0]).reshape(-1, 2)
            assert poly[:, 0].min() >= 0 and poly[:, 1].min() >= 0
            assert poly[:, 0].max() <= image["width"] and poly[:, 1].max() <= image["height"]
            assert drr["visible_fraction"][names[a["category_id"]]] >= MIN_VISIBLE_FRACTION
        for name, share in drr["unannotated_partial"].items():
            assert 0 < share < MIN_VISIBLE_FRACTION
            assert name not in {names[a["category_id"]] for a in anns}
            cut_seen += 1
        cut_seen += sum(1 for v in drr["visible_fraction"].values() if v < 1.0)
    assert cut_seen > 0, "some field edge or collimator should cut a body"


def test_sacrum_gives_s1_and_l6_stays_unnamed(tmp_path):
    # VerSe 20-25 = L1-L6, 26 = sacrum: the sixth lumbar vertebra is outlined but not named
    ph = make_phantom(tmp_path / "ct", levels=("L4", "L5", "L6"), values=(23, 24, 25), sacrum_value=26)
    case = CTCase("transitional", ph.ct, ph.labels, "verse")
    path, _ = generate_dataset([case], DRRConfig(size=128, seed=5, images_per_pose=2, collimation_prob=0.0,
                                                 implant_prob=0.0), tmp_path / "out", 2)
    records = read_coco(path)
    data = json.loads(path.read_text())
    assert any(c["name"] == UNNAMED_CATEGORY and c["id"] == UNNAMED_CATEGORY_ID for c in data["categories"])
    for rec in records:
        levels = [a.level for a in rec.annotations]
        assert None in levels and "S1" in levels
        assert levels.index(None) == levels.index("S1") - 1  # L6 sits between L5 and S1
        assert "L6" in rec.extra["drr"]["transitional"]


def test_implants_are_metal_in_the_image(case, tmp_path):
    config = DRRConfig(size=128, seed=8, images_per_pose=1, collimation_prob=0.0, implant_prob=1.0)
    path, _ = generate_dataset([case], config, tmp_path, 1)
    record = read_coco(path)[0]
    implants = record.extra["drr"]["implants"]
    assert implants and implants[0]["type"] == "posterior_fixation" and len(implants[0]["levels"]) >= 2
    image = record.load_image()
    # screws and rods are the brightest things on the film
    assert np.percentile(image, 99.5) >= 0.95 * 65535
    assert polygon_area(record.annotations[0].polygon) > 0
