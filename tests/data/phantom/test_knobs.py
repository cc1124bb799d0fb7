"""Each knob measurably changes what it claims to change, and nothing is hard-coded."""

from __future__ import annotations

import cv2
import numpy as np
from shapely.geometry import Polygon

from vertxnet.data.phantom import PhantomConfig, generate

SIZE = 256


def _make(view="lumbar", seed=4, index=0, difficulty="normal", **overrides):
    return generate(PhantomConfig(view=view, size=SIZE, seed=seed, difficulty=difficulty, overrides=overrides), index)


def _spine_roi(record):
    pts = np.vstack([a.polygon for a in record.annotations])
    x0, y0 = np.floor(pts.min(0)).astype(int)
    x1, y1 = np.ceil(pts.max(0)).astype(int)
    return slice(max(y0, 0), y1), slice(max(x0, 0), x1)


def _high_frequency_energy(image, record):
    img = image.astype(np.float64) / 65535.0
    lap = cv2.Laplacian(img, cv2.CV_64F, ksize=1)
    return float(np.mean(lap[_spine_roi(record)] ** 2))


def test_quantum_noise_raises_high_frequency_energy():
    quiet = _make(noise=0.0, blur_mm=0.0)
    noisy = _make(noise=1.0, blur_mm=0.0)
    assert _high_frequency_energy(*noisy) > 1.5 * _high_frequency_energy(*quiet)


def test_detector_blur_lowers_high_frequency_energy():
    sharp = _make(noise=0.0, blur_mm=0.0)
    blurred = _make(noise=0.0, blur_mm=1.0)
    assert _high_frequency_energy(*blurred) < 0.7 * _high_frequency_energy(*sharp)


def test_implants_add_very_bright_pixels_and_are_recorded():
    for view in ("lumbar", "cervical"):
        bright = []
        for prob in (0.0, 1.0):
            image, record = _make(view=view, implant_prob=prob)
            bright.append(int(np.count_nonzero(image >= 65000)))
            assert bool(record.extra["phantom"]["implants"]) == (prob == 1.0)
        assert bright[1] > bright[0] + 30
        # implants are not vertebrae: the truth polygons do not change
        assert [a.level for a in _make(view=view, implant_prob=0.0)[1].annotations] == [
            a.level for a in _make(view=view, implant_prob=1.0)[1].annotations]


def test_fractures_reduce_the_recorded_and_the_drawn_body_height():
    for seed in range(3):
        _, intact = _make(seed=seed, fracture_prob=0.0)
        _, broken = _make(seed=seed, fracture_prob=1.0)
        assert intact.extra["phantom"]["fractures"] == []
        (fracture,) = broken.extra["phantom"]["fractures"]
        nominal = fracture["nominal_height_mm"]
        assert min(fracture["anterior_height_mm"], fracture["middle_height_mm"]) < 0.85 * nominal
        assert fracture["posterior_height_mm"] <= nominal
        level = fracture["level"]
        area_mm2 = []
        for rec in (intact, broken):
            (ann,) = [a for a in rec.annotations if a.level == level]
            area_mm2.append(Polygon(ann.polygon).area * rec.pixel_spacing_mm[0] ** 2)
        assert area_mm2[1] < 0.92 * area_mm2[0]


def test_touching_discs_close_the_gap_between_neighbours():
    for view in ("lumbar", "cervical"):
        _, apart = _make(view=view, seed=8, touching_disc_prob=0.0, degenerate_disc_prob=0.0)
        _, touching = _make(view=view, seed=8, touching_disc_prob=1.0, degenerate_disc_prob=0.0)
        (pair,) = touching.extra["phantom"]["touching_discs"]
        gaps = []
        for rec in (apart, touching):
            polys = {a.level: Polygon(a.polygon) for a in rec.annotations}
            gaps.append(polys[pair[0]].distance(polys[pair[1]]) * rec.pixel_spacing_mm[0])
        assert gaps[0] > 0.4  # mm: a normal disc keeps the bodies apart
        assert gaps[1] < 0.05  # the narrowed disc lets the rims touch


def test_rotation_tilts_the_spine_axis_by_the_recorded_angle():
    def axis_angle(record):
        cent = {a.level: np.array(Polygon(a.polygon).centroid.coords[0]) for a in record.annotations}
        d = cent["L5"] - cent["L1"]
        return np.degrees(np.arctan2(d[0], d[1]))

    _, upright = _make(seed=2, rotation_deg=0.0)
    _, tilted = _make(seed=2, rotation_deg=25.0)
    recorded = tilted.extra["phantom"]["rotation_deg"]
    assert upright.extra["phantom"]["rotation_deg"] == 0.0
    assert abs(axis_angle(upright)) < 0.5  # the generator frames L1-L5 upright before tilting
    assert abs(recorded) > 5.0
    assert abs(abs(axis_angle(tilted)) - abs(recorded)) < 0.5


def test_osteophytes_grow_the_body_outline():
    _, smooth = _make(seed=6, osteophyte_prob=0.0)
    _, spurred = _make(seed=6, osteophyte_prob=1.0)
    levels = spurred.extra["phantom"]["osteophytes"]
    assert levels and smooth.extra["phantom"]["osteophytes"] == []
    for level in levels:
        a = [Polygon(x.polygon).area * smooth.pixel_spacing_mm[0] ** 2 for x in smooth.annotations if x.level == level]
        b = [Polygon(x.polygon).area * spurred.pixel_spacing_mm[0] ** 2 for x in spurred.annotations if x.level == level]
        if a and b and smooth.extra["phantom"]["visible_fraction"][level] == 1.0:
            assert b[0] > a[0] * 1.01


def test_difficulty_presets_differ_in_noise_and_pathology():
    def noise_std(difficulty, index):
        image, record = _make(seed=9, index=index, difficulty=difficulty)
        clean, _ = _make(seed=9, index=index, difficulty=difficulty, noise=0.0)
        rows, cols = _spine_roi(record)
        return float(np.std(image[rows, cols].astype(np.float64) - clean[rows, cols]) / 65535.0), record

    easy = [noise_std("easy", i) for i in range(4)]
    hard = [noise_std("hard", i) for i in range(4)]
    assert np.median([n for n, _ in hard]) > 3 * np.median([n for n, _ in easy])
    assert all(not r.extra["phantom"]["fractures"] and not r.extra["phantom"]["implants"] for _, r in easy)
