"""The film renderer: the regions it frames, hollow-shell bodies, the obliquity knob, implant
variety and the classic renderer kept beside it."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from shapely.geometry import Point, Polygon

from vertxnet.levels import VIEWS as REGIONS
from vertxnet.levels import level_index, view_of_levels
from vertxnet.data.phantom import PhantomConfig, generate

NEW_REGIONS = ("cervicothoracic", "thoracic", "thoracolumbar")


@pytest.mark.parametrize("view", NEW_REGIONS)
@pytest.mark.parametrize("difficulty", ["easy", "hard"])
def test_each_region_is_framed_as_asked_and_named_from_its_levels(view, difficulty):
    for index in range(6):
        _, rec = generate(PhantomConfig(view=view, size=192, seed=31, difficulty=difficulty), index)
        levels = [a.level for a in rec.annotations]
        assert rec.view == view == view_of_levels(levels), levels
        indices = [level_index(lv) for lv in levels]
        assert np.all(np.diff(indices) == 1), f"a level is missing inside the run: {levels}"
        thoracic = sum(lv.startswith("T") for lv in levels)
        if view == "thoracic":
            assert thoracic >= 8 and not any(lv.startswith("C") for lv in levels)
        elif view == "thoracolumbar":
            assert thoracic >= 3 and {"L1", "L2", "L3"} <= set(levels)
        else:
            assert {"C6", "C7", "T1", "T2", "T3"} <= set(levels)


def test_mixed_draws_every_region_and_the_record_names_it():
    config = PhantomConfig(view="mixed", size=128, seed=2, difficulty="normal")
    seen = set()
    for index in range(40):
        _, rec = generate(config, index)
        assert rec.view == view_of_levels([a.level for a in rec.annotations])
        seen.add(rec.view)
    assert seen == set(REGIONS)


def _rings(image, polygon, width=2):
    h, w = image.shape
    mask = np.zeros((h, w), np.uint8)
    cv2.fillPoly(mask, [np.round((polygon - 0.5) * 16).astype(np.int32)], 1, shift=4)
    kernel = np.ones((2 * width + 1, 2 * width + 1), np.uint8)
    inner = mask.astype(bool) & ~cv2.erode(mask, kernel).astype(bool)
    outer = cv2.dilate(mask, kernel).astype(bool) & ~mask.astype(bool)
    core = cv2.erode(mask, np.ones((9, 9), np.uint8)).astype(bool)
    return image[inner].mean(), image[core].mean(), image[outer].mean()


@pytest.mark.parametrize("view", ["lumbar", "thoracic", "cervical"])
def test_bodies_are_hollow_shells_bright_at_the_rim_and_faint_inside(view):
    """On a clean film the cortical rim stands out from the surroundings far more than the
    trabecular interior does, as on real films (and unlike a uniformly bright block)."""
    config = PhantomConfig(view=view, size=384, seed=13, difficulty="easy",
                           overrides={"noise": 0.0, "blur_mm": 0.0, "scatter": 0.0, "implant_prob": 0.0})
    rim_contrast, core_contrast = [], []
    for index in range(3):
        image, record = generate(config, index)
        img = image.astype(np.float64) / 65535.0
        for ann in record.annotations:
            if record.extra["phantom"]["visible_fraction"][ann.level] < 1.0 or ann.level == "S1":
                continue
            rim, core, outside = _rings(img, ann.polygon)
            rim_contrast.append(rim - outside)
            core_contrast.append(core - outside)
    assert len(rim_contrast) >= 8
    assert np.median(rim_contrast) > 0
    assert np.median(core_contrast) < 0.45 * np.median(rim_contrast)  # a uniformly dense block gives ~0.5


def test_obliquity_doubles_paired_bone_but_never_moves_the_truth():
    base = dict(view="lumbar", size=256, seed=4, difficulty="normal")
    straight, rec0 = generate(PhantomConfig(**base, overrides={"obliquity": 0.0, "noise": 0.0}), 1)
    oblique, rec1 = generate(PhantomConfig(**base, overrides={"obliquity": 1.6, "noise": 0.0}), 1)
    assert rec0.extra["phantom"]["axial_rotation_deg"] == 0.0
    assert rec1.extra["phantom"]["axial_rotation_deg"] != 0.0
    assert [a.level for a in rec0.annotations] == [a.level for a in rec1.annotations]
    for a, b in zip(rec0.annotations, rec1.annotations):
        np.testing.assert_array_equal(a.polygon, b.polygon)
    # the film changes where the bones are
    mask = np.zeros(straight.shape, np.uint8)
    for ann in rec0.annotations:
        cv2.fillPoly(mask, [np.round((ann.polygon - 0.5) * 16).astype(np.int32)], 1, shift=4)
    diff = np.abs(straight.astype(np.float64) - oblique.astype(np.float64)) / 65535.0
    assert diff[mask.astype(bool)].mean() > 0.01


@pytest.mark.parametrize("views,expected", [
    (("lumbar", "thoracolumbar", "thoracic"), {"pedicle_screws_rods", "cage", "cement"}),
    (("cervical",), {"anterior_plate", "cage", "disc_prosthesis"}),
])
def test_implants_come_in_the_kinds_real_films_show(views, expected):
    kinds = set()
    for view in views:
        for index in range(10):
            image, rec = generate(PhantomConfig(view=view, size=192, seed=17, overrides={"implant_prob": 1.0}), index)
            implants = rec.extra["phantom"]["implants"]
            assert implants
            visible = {a.level for a in rec.annotations}
            for implant in implants:
                kinds.add(implant["type"])
                assert set(implant["levels"]) <= visible  # placed on levels the film shows
            assert np.count_nonzero(image >= 65000) > 10  # metal (or cement) is the brightest thing on the film
    assert expected <= kinds


def test_vertebral_cement_fills_part_of_the_body_it_is_in():
    for index in range(40):
        image, rec = generate(PhantomConfig(view="lumbar", size=256, seed=8, overrides={"implant_prob": 1.0}), index)
        cement = [i for i in rec.extra["phantom"]["implants"] if i["type"] == "cement"]
        if cement:
            break
    else:
        pytest.fail("no cement in 40 films with implants")
    polys = {a.level: a.polygon for a in rec.annotations}
    for level in cement[0]["levels"]:
        mask = np.zeros(image.shape, np.uint8)
        cv2.fillPoly(mask, [np.round((polys[level] - 0.5) * 16).astype(np.int32)], 1, shift=4)
        inside = image[mask.astype(bool)]
        share = np.mean(inside >= 60000)
        assert 0.1 < share < 0.95


def test_the_classic_renderer_is_kept_for_data_made_with_it():
    film, rec_film = generate(PhantomConfig(view="lumbar", size=160, seed=3), 0)
    classic, rec_classic = generate(PhantomConfig(view="lumbar", size=160, seed=3, style="classic"), 0)
    again, _ = generate(PhantomConfig(view="lumbar", size=160, seed=3, style="classic"), 0)
    assert rec_classic.extra["phantom"]["format_version"] == 1
    assert rec_film.extra["phantom"]["format_version"] == 2
    assert np.array_equal(classic, again) and film.shape[0] == classic.shape[0] == 160
    assert not np.array_equal(film[:, : min(film.shape[1], classic.shape[1])], classic[:, : min(film.shape[1], classic.shape[1])])
    with pytest.raises(ValueError, match="classic"):
        PhantomConfig(view="thoracic", style="classic")
    with pytest.raises(ValueError, match="style"):
        PhantomConfig(style="painted")


def test_classic_bodies_carry_the_morphometric_truth():
    config = PhantomConfig(view="lumbar", size=256, seed=3, style="classic", difficulty="hard")
    image, rec = generate(config, 0)  # L4 fractured
    again, _ = generate(config, 0)
    assert np.array_equal(image, again)
    spacing = rec.pixel_spacing_mm[0]
    assert rec.annotations
    for ann in rec.annotations:
        truth = ann.extra["morphometry"]
        ps, as_, ai, pi = np.asarray(truth["corners"])
        assert ann.extra["corners"] == truth["corners"]
        # the heights are the distances between the marked corners, in mm and px
        assert np.hypot(*(ai - as_)) == pytest.approx(truth["height_anterior_px"], abs=1e-3)
        assert np.hypot(*(pi - ps)) == pytest.approx(truth["height_posterior_px"], abs=1e-3)
        for h in ("anterior", "middle", "posterior"):
            assert truth[f"height_{h}_mm"] == pytest.approx(truth[f"height_{h}_px"] * spacing, rel=1e-4)
        # the corners lie on the body's outline
        poly = Polygon(ann.polygon)
        if poly.is_valid and rec.extra["phantom"]["visible_fraction"][ann.level] == 1.0:
            assert max(poly.exterior.distance(Point(*c)) for c in (ps, as_, ai, pi)) < 0.5
    fractured = {f["level"]: f for f in rec.extra["phantom"]["fractures"]}
    assert fractured and set(fractured) <= {a.level for a in rec.annotations}
    for ann in rec.annotations:
        if ann.level in fractured:
            assert ann.extra["morphometry"]["rim_height_anterior_mm"] == pytest.approx(fractured[ann.level]["anterior_height_mm"], abs=0.05)


def test_truth_areas_stay_plausible_for_every_region():
    """Bodies in pixels follow the field: no region draws vertebrae out of scale."""
    for view in REGIONS:
        _, rec = generate(PhantomConfig(view=view, size=256, seed=5), 0)
        spacing = rec.pixel_spacing_mm[0]
        for ann in rec.annotations:
            area_mm2 = Polygon(ann.polygon).area * spacing**2
            if rec.extra["phantom"]["visible_fraction"][ann.level] == 1.0:
                assert 120 < area_mm2 < 1500, (view, ann.level, area_mm2)
