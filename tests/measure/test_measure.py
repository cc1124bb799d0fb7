"""vertxnet.measure: the measurements of a film as typed records and JSON-ready dicts."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from vertxnet import radiomics
from vertxnet.measure import CORNER_NAMES, MeasureConfig, measure, partial_at_edge
from vertxnet.raster import image_mask

LEVELS = ["L1", "L2", "L3", "L4", "L5", "S1"]


def rotation(deg: float) -> np.ndarray:
    t = math.radians(deg)
    return np.array([[math.cos(t), -math.sin(t)], [math.sin(t), math.cos(t)]])


def lumbar_film(*, tilts=(-20, -12, -4, 4, 12, 24), wedge_l2=0.0, x0=150.0, y0=40.0):
    """Six 40 x 30 px bodies facing right, 10 px discs, L2's anterior height reduced by wedge_l2."""
    polys = []
    for k, tilt in enumerate(tilts):
        ha = 30.0 * (1 - wedge_l2) if k == 1 else 30.0
        local = np.array([[-20, -15], [20, -ha / 2], [20, ha / 2], [-20, 15]], float)
        r = rotation(tilt)
        body = local @ r.T
        ps = np.array([x0, y0]) if k == 0 else polys[-1][3] + 10.0 * (r @ [0.0, 1.0])
        polys.append(body - body[0] + ps)
    return polys


def test_measurements_of_a_film():
    polys = lumbar_film(wedge_l2=0.3)
    m = measure(polys, LEVELS, pixel_spacing_mm=(0.5, 0.5))
    assert len(m.vertebrae) == 6 and m.radiomics_backend is None
    l2 = m.vertebrae[1]
    assert (l2.height_anterior_px, l2.height_posterior_px) == pytest.approx((21.0, 30.0))
    assert (l2.height_anterior_mm, l2.height_posterior_mm) == pytest.approx((10.5, 15.0))
    assert l2.ratio_anterior_posterior == pytest.approx(0.7)
    assert (l2.genant_grade, l2.deformity, l2.height_reduction) == (2, "wedge", pytest.approx(0.3))
    assert m.vertebrae[5].genant_grade is None and "not_graded" in m.vertebrae[5].flags
    assert m.spine.facing == "right" and m.spine.facing_source == "curvature"
    assert m.spine.lumbar_lordosis_deg == pytest.approx(44.0)
    assert [s.name for s in m.spine.segments] == ["L1-L2", "L2-L3", "L3-L4", "L4-L5", "L5-S1"]


def test_json_dicts():
    m = measure(lumbar_film(), LEVELS, pixel_spacing_mm=(0.5, 0.5))
    v = m.vertebrae[0].to_dict()
    for key in ("height_anterior_px", "height_middle_px", "height_posterior_px", "height_anterior_mm", "height_middle_mm",
                "height_posterior_mm", "genant_grade", "deformity", "corners", "flags"):
        assert key in v
    assert list(v["corners"]) == list(CORNER_NAMES)
    spine = m.spine.to_dict()
    assert set(spine) >= {"lumbar_lordosis_deg", "cervical_lordosis_deg", "segments", "facing", "facing_source"}
    seg = spine["segments"][-1]
    assert set(seg) >= {"name", "disc_angle_deg", "disc_height_anterior_px", "disc_height_posterior_px",
                        "disc_height_anterior_mm", "slip_px", "slip_mm", "slip_percent", "meyerding_grade", "listhesis"}
    json.dumps([x.to_dict() for x in m.vertebrae] + [spine], allow_nan=False)
    no_spacing = measure(lumbar_film(), LEVELS).vertebrae[0].to_dict()
    assert "height_anterior_mm" not in no_spacing and "slip_mm" not in measure(lumbar_film(), LEVELS).spine.to_dict()["segments"][0]


def test_unnamed_partial_and_unmeasurable_vertebrae_are_kept_and_flagged():
    polys = lumbar_film()
    polys[0] = polys[0] - [0.0, polys[0][:, 1].min()]  # L1 touches the top edge of the film
    flat = np.array([[10, 300], [20, 300], [30, 300]], float)  # encloses nothing
    image = np.zeros((400, 400))
    m = measure([*polys, flat], [None, *LEVELS[1:], None], image=image, config=MeasureConfig(radiomics=False))
    assert len(m.vertebrae) == 7
    first, last = m.vertebrae[0], m.vertebrae[-1]
    assert first.partial and {"unnamed", "partial", "not_graded"} <= set(first.flags)
    assert first.height_anterior_px is not None  # measured all the same
    assert not last.measured and {"unnamed", "unmeasurable"} <= set(last.flags) and last.height_anterior_px is None
    assert last.to_dict()["corners"] is None


def test_radiomics_inside_each_outline():
    polys = lumbar_film()
    rng = np.random.default_rng(3)
    image = rng.normal(1000, 100, (400, 400)).round()
    m = measure(polys, LEVELS, image=image, config=MeasureConfig(radiomics_backend="numpy"))
    assert m.radiomics_backend == "numpy"
    for poly, v in zip(polys, m.vertebrae):
        expected = radiomics.first_order(image, image_mask(poly, 400, 400), backend="numpy")
        assert v.radiomics == pytest.approx(expected)
        assert set(radiomics.SEED_FEATURES) <= set(v.to_dict()["radiomics"])


def test_faces_given_overrides_the_bow():
    polys = lumbar_film()
    m = measure(polys, LEVELS, config=MeasureConfig(faces="left"))
    assert (m.spine.facing, m.spine.facing_source) == ("left", "given")
    assert m.spine.lumbar_lordosis_deg == pytest.approx(-44.0)


def test_partial_at_edge():
    box = np.array([[1.5, 10], [30, 10], [30, 40], [1.5, 40]], float)
    assert not partial_at_edge(box, 100, 100)
    assert partial_at_edge(box - [1.0, 0.0], 100, 100)
    assert partial_at_edge(box + [69.5, 0.0], 100, 100)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"labels": ["L1"]}, "labels"),
        ({"labels": ["Q1"] * 6}, "labels"),
        ({"partial": [True]}, "partial"),
        ({"image": np.zeros((3, 3, 3))}, "image"),
        ({"config": MeasureConfig(faces="up")}, "faces"),
        ({"config": MeasureConfig(side_margin=0.5)}, "side_margin"),
        ({"config": MeasureConfig(bin_width=0.0)}, "bin_width"),
        ({"pixel_spacing_mm": (0.5, -1.0)}, "pixel_spacing_mm"),
    ],
)
def test_bad_arguments(kwargs, message):
    args = {"labels": LEVELS, **kwargs}
    with pytest.raises(ValueError, match=message):
        measure(lumbar_film(), args.pop("labels"), **args)
