"""Vertebral morphometry in the C++ core on shapes whose answers are known in closed form.

Bodies are drawn in a local frame (u anterior, v caudal) and placed on the film facing right
(front = +x) unless a test mirrors them; rounded corners, concave endplates, waisted walls and
osteophyte spurs are added analytically, so every expected height is exact.
"""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

import vertxnet._core as core


def rotation(deg: float) -> np.ndarray:
    t = math.radians(deg)
    return np.array([[math.cos(t), -math.sin(t)], [math.sin(t), math.cos(t)]])


def quad(depth: float, h_post: float, h_ant: float) -> np.ndarray:
    """PS, AS, AI, PI of a body in the local frame (u anterior, v caudal), centred at 0."""
    return np.array([[-depth / 2, -h_post / 2], [depth / 2, -h_ant / 2], [depth / 2, h_ant / 2], [-depth / 2, h_post / 2]])


def place(local: np.ndarray, *, angle: float = 0.0, centre=(200.0, 300.0), facing: str = "right") -> np.ndarray:
    """Local (u, v) points onto the film: rotated by ``angle`` degrees, mirrored when facing left."""
    p = local @ rotation(angle).T
    if facing == "left":
        p = p * [-1.0, 1.0]
    return p + centre


def body_outline(depth, h_post, h_ant, *, concavity=0.0, waist=0.0, radius=0.0, spur=0.0, n=200) -> np.ndarray:
    """Outline of a body in the local frame: straight rims between the four corners, endplates
    dipping by ``concavity`` at mid-depth (parabola), walls waisted by ``waist``, corners rounded
    by a circular arc of ``radius`` (tangent to the straight-rim case) and an anterior-superior
    spur of height ``spur`` rising towards the disc (a Gaussian bump near that corner)."""
    h = lambda u: h_post + (h_ant - h_post) * (u + depth / 2) / depth  # noqa: E731
    u = np.linspace(-depth / 2, depth / 2, n)
    bowl = 1.0 - (2 * u / depth) ** 2
    top = np.stack([u, -h(u) / 2 + concavity * bowl], 1)
    bottom = np.stack([u[::-1], h(u[::-1]) / 2 - concavity * bowl[::-1]], 1)
    va = np.linspace(-h_ant / 2, h_ant / 2, n)[1:-1]
    vp = np.linspace(h_post / 2, -h_post / 2, n)[1:-1]
    ant = np.stack([depth / 2 - waist * (1 - (2 * va / h_ant) ** 2), va], 1)
    post = np.stack([-depth / 2 + waist * (1 - (2 * vp / h_post) ** 2), vp], 1)
    pts = np.concatenate([top, ant, bottom, post])
    if radius > 0:
        pts = _round_corners(pts, quad(depth, h_post, h_ant), radius)
    if spur > 0:
        corner = np.array([depth / 2, -h_ant / 2])
        d = np.hypot(*(pts - corner).T)
        pts = pts + (spur * np.exp(-((d / (0.12 * depth)) ** 2)))[:, None] * np.array([0.3, -1.0])
    return pts


def _round_corners(pts: np.ndarray, corners: np.ndarray, radius: float) -> np.ndarray:
    """Replace the outline near each (near right-angled) corner by an arc of ``radius``."""
    out = pts.copy()
    centre = corners.mean(0)
    for c in corners:
        inward = np.sign(centre - c)
        arc_centre = c + inward * radius
        near = np.all((pts - c) * inward < radius, axis=1) & np.all((pts - c) * inward >= -1e-9, axis=1)
        for i in np.nonzero(near)[0]:
            d = pts[i] - arc_centre
            out[i] = arc_centre + d / max(np.hypot(*d), 1e-12) * radius
    return out


def heights(body) -> tuple[float, float, float]:
    return body.height_anterior, body.height_middle, body.height_posterior


# ---- single bodies --------------------------------------------------------------------------


def test_rectangle_corners_heights_and_tilts():
    b = core.measure_body(place(quad(40, 30, 30)), facing="right")
    assert b.measured and b.flags == []
    np.testing.assert_allclose(b.corners, place(quad(40, 30, 30)), atol=1e-6)
    assert heights(b) == pytest.approx((30, 30, 30), abs=1e-6)
    assert (b.depth_superior, b.depth_inferior) == pytest.approx((40, 40), abs=1e-6)
    assert (b.superior_tilt_deg, b.inferior_tilt_deg, b.endplate_angle_deg) == pytest.approx((0, 0, 0), abs=1e-6)
    assert b.height_anterior_mm is None  # no spacing given


@pytest.mark.parametrize("facing", ["right", "left"])
@pytest.mark.parametrize("angle", [-30.0, -12.5, 0.0, 7.0, 25.0])
def test_wedge_heights_and_angles_whatever_the_tilt_and_facing(facing, angle):
    local = quad(40, 30, 20)  # anterior 20, posterior 30: a wedge
    b = core.measure_body(place(local, angle=angle, facing=facing), facing=facing)
    assert b.measured
    assert heights(b) == pytest.approx((20, 25, 30), abs=1e-6)
    np.testing.assert_allclose(b.corners, place(local, angle=angle, facing=facing), atol=1e-6)
    # The rims converge anteriorly by 2 * atan(5 / 40); tilts turn with the film.
    wedge = 2 * math.degrees(math.atan2(5, 40))
    assert b.endplate_angle_deg == pytest.approx(-wedge, abs=1e-6)
    assert b.superior_tilt_deg == pytest.approx(angle + wedge / 2, abs=1e-6)
    assert b.inferior_tilt_deg == pytest.approx(angle - wedge / 2, abs=1e-6)


def test_facing_names_which_side_is_anterior():
    film = place(quad(40, 30, 20))  # the short side lies at +x
    right = core.measure_body(film, facing="right")
    left = core.measure_body(film, facing="left")
    assert (right.height_anterior, right.height_posterior) == pytest.approx((20, 30))
    assert (left.height_anterior, left.height_posterior) == pytest.approx((30, 20))
    assert left.endplate_angle_deg == pytest.approx(-right.endplate_angle_deg)


def test_pixel_spacing_gives_millimetres_and_physical_angles():
    film = place(quad(40, 30, 20))
    b = core.measure_body(film, facing="right", pixel_spacing_mm=(0.5, 0.25))  # rows 0.5 mm, columns 0.25 mm
    assert b.height_anterior_mm == pytest.approx(10.0)  # vertical lengths scale by the row spacing
    assert b.height_posterior_mm == pytest.approx(15.0)
    assert b.depth_superior == pytest.approx(math.hypot(40, 5))
    # tilt of the superior rim: 5 px down over 40 px -> 2.5 mm over 10 mm
    assert b.superior_tilt_deg == pytest.approx(math.degrees(math.atan2(2.5, 10.0)))


#: A corner rounded by an arc of radius r: the point of the arc nearest the sharp corner lies
#: r (1 - 1/sqrt 2) in from it along both sides.
ROUNDING = 1.0 - 1.0 / math.sqrt(2.0)


@pytest.mark.parametrize("radius", [2.0, 4.0])
def test_rounded_corners_are_marked_on_the_outline(radius):
    local = body_outline(40, 30, 30, radius=radius)
    b = core.measure_body(place(local, angle=10), facing="right")
    inset = radius * ROUNDING
    assert heights(b) == pytest.approx((30 - 2 * inset, 30, 30 - 2 * inset), abs=1e-6)
    expected = quad(40, 30, 30) + np.array([[inset, inset], [-inset, inset], [-inset, -inset], [inset, -inset]])
    np.testing.assert_allclose(b.corners, place(expected, angle=10), atol=1e-6)


def test_concave_endplates_and_waisted_walls():
    local = body_outline(40, 32, 26, concavity=2.0, waist=1.5, radius=2.0)
    b = core.measure_body(place(local, angle=-8, facing="left"), facing="left")
    # corners on the rounded rims, middle height between the deepest points of the two bowls
    assert b.height_anterior == pytest.approx(26 - 4 * ROUNDING, abs=0.01)
    assert b.height_posterior == pytest.approx(32 - 4 * ROUNDING, abs=0.01)
    assert b.height_middle == pytest.approx((26 + 32) / 2 - 2 * 2.0, abs=0.01)


def test_osteophyte_spur_is_left_out_and_flagged():
    local = body_outline(40, 30, 30, concavity=1.5, radius=2.0, spur=4.0)
    b = core.measure_body(place(local, angle=5), facing="right")
    assert "spur_anterior_superior" in b.flags
    assert not any(f.startswith("spur_") and f != "spur_anterior_superior" for f in b.flags)
    # the beak rises 4 px above the rim: the anterior-superior corner is found under it, at the
    # sharp rim corner (a rounded corner would be marked on its arc, 2 (1 - 1/sqrt 2) px in)
    assert b.height_anterior == pytest.approx(30 - 2 * ROUNDING, abs=0.1)
    assert b.height_posterior == pytest.approx(30 - 4 * ROUNDING, abs=0.01)
    clean = core.measure_body(place(body_outline(40, 30, 30, concavity=1.5, radius=2.0), angle=5), facing="right")
    assert not any(f.startswith("spur_") for f in clean.flags)


@pytest.mark.parametrize("angle", [0.0, 11.0, -23.0])
def test_traced_pixel_outline_is_measured_to_a_pixel_and_a_half(angle):
    # a body of 60 x 48 px with 4 px rounded corners, filled and traced as the pipeline does
    local = body_outline(60, 48, 40, concavity=2.0, radius=4.0)
    film = place(local, angle=angle, centre=(100.3, 100.7))
    mask = np.zeros((200, 200), np.uint8)
    cv2.fillPoly(mask, [np.round((film - 0.5) * 16).astype(np.int32)], 1, shift=4)
    contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    traced = contours[0][:, 0, :].astype(float) + 0.5
    b = core.measure_body(traced, facing="right")
    # the traced staircase lies up to half a pixel either side of the outline at each end
    assert heights(b) == pytest.approx((40 - 8 * ROUNDING, 44 - 4, 48 - 8 * ROUNDING), abs=1.5)


def test_axis_hint_and_far_tilted_single_body():
    film = place(quad(40, 30, 20), angle=40)  # alone, 40 degrees off the image vertical
    b = core.measure_body(film, facing="right")
    assert b.measured and heights(b) == pytest.approx((20, 25, 30), abs=1e-6)
    hinted = core.measure_body(film, facing="right", caudal_axis=(-math.sin(math.radians(40)), math.cos(math.radians(40))))
    assert heights(hinted) == pytest.approx((20, 25, 30), abs=1e-6)


def test_outline_that_is_no_body_comes_back_unmeasured():
    collinear = np.array([[0, 0], [10, 0], [20, 0], [30, 0]], float)
    b = core.measure_body(collinear, facing="right")
    assert not b.measured and "unmeasurable" in b.flags
    assert b.corners is None and b.height_anterior is None


# ---- grades ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("reduction", "grade"),
    [(-0.1, 0), (0.0, 0), (0.1999, 0), (0.20, 1), (0.2499, 1), (0.25, 2), (0.40, 2), (0.4001, 3), (0.9, 3), (math.nan, -1)],
)
def test_genant_thresholds(reduction, grade):
    assert core.genant_grade_of_reduction(reduction) == grade


@pytest.mark.parametrize(
    ("heights_", "reference", "grade", "deformity", "reduction"),
    [
        ((30, 28, 30), 30.0, 0, "none", 1 - 28 / 30),
        ((22.5, 27, 30), 30.0, 2, "wedge", 0.25),  # anterior loss
        ((29, 17, 30), 30.0, 3, "biconcave", 1 - 17 / 30),  # middle loss
        ((22, 21, 23), 30.0, 1, "crush", 1 - 23 / 30),  # the whole body lower than its neighbours
        ((22, 21, 23), None, 0, "none", 1 - 21 / 23),  # without neighbours crush is not seen
    ],
)
def test_genant_deformity_types(heights_, reference, grade, deformity, reduction):
    g = core.genant_grade(*heights_, reference)
    assert (g.grade, g.deformity) == (grade, deformity)
    assert g.reduction == pytest.approx(reduction)
    assert (g.crush_reduction is None) == (reference is None)


@pytest.mark.parametrize(
    ("percent", "grade"),
    [(0.0, 0), (4.99, 0), (5.0, 1), (-5.0, 1), (25.0, 1), (25.01, 2), (50.0, 2), (75.0, 3), (100.0, 4), (100.1, 5), (math.nan, -1)],
)
def test_meyerding_thresholds(percent, grade):
    assert core.meyerding_grade(percent) == grade


# ---- chains ---------------------------------------------------------------------------------


def chain(levels, *, tilts, depth=40.0, height=30.0, disc=10.0, slips=None, h_ant=None, facing="right"):
    """Bodies stacked down a curve, body k tilted by tilts[k] degrees (anterior end down for
    positive tilts). Each body's posterior-superior corner sits ``disc`` px along its own axis
    below the posterior-inferior corner of the body above and ``slips[k]`` px behind it along its
    superior rim: the body above is displaced anteriorly by that much (anterolisthesis when > 0).
    Built facing right, mirrored for facing left."""
    slips = slips or [0.0] * len(levels)
    h_ant = h_ant or [height] * len(levels)
    polys: list[np.ndarray] = []
    for k in range(len(levels)):
        r = rotation(tilts[k])
        body = quad(depth, height, h_ant[k]) @ r.T
        if k == 0:
            ps = np.array([200.0, 100.0])
        else:
            axis, anterior = r @ [0.0, 1.0], r @ [1.0, 0.0]
            ps = polys[-1][3] + disc * axis - slips[k] * anterior
        polys.append(body - body[0] + ps)
    if facing == "left":
        polys = [p * [-1.0, 1.0] + [600.0, 0.0] for p in polys]
    return polys


LUMBAR = ["L1", "L2", "L3", "L4", "L5", "S1"]
CERVICAL = ["C2", "C3", "C4", "C5", "C6", "C7"]


@pytest.mark.parametrize("facing", ["right", "left"])
def test_lumbar_lordosis_segments_and_facing_inferred(facing):
    tilts = [-20.0, -12.0, -4.0, 4.0, 12.0, 24.0]
    polys = chain(LUMBAR, tilts=tilts, facing=facing)
    r = core.measure_spine(polys, LUMBAR)  # facing="auto"
    assert (r.facing, r.facing_source) == (facing, "curvature")
    assert r.lumbar_lordosis_deg == pytest.approx(24.0 - -20.0, abs=1e-6)
    assert r.cervical_lordosis_deg is None
    assert len(r.segments) == 5
    for k, s in enumerate(r.segments):
        assert (s.upper, s.lower) == (k, k + 1)
        assert s.disc_angle_deg == pytest.approx(tilts[k + 1] - tilts[k], abs=1e-6)
        assert s.segmental_angle_deg == pytest.approx(tilts[k + 1] - tilts[k], abs=1e-6)
        assert s.disc_height_posterior == pytest.approx(10.0, abs=1e-6)
        assert s.slip == pytest.approx(0.0, abs=1e-6)
        assert s.flags == []
    given_right = core.measure_spine(polys, LUMBAR, facing=facing)
    assert given_right.facing_source == "given" and given_right.lumbar_lordosis_deg == pytest.approx(44.0)


@pytest.mark.parametrize("facing", ["right", "left"])
def test_thoracic_kyphosis_bulges_backwards(facing):
    levels = ["T4", "T5", "T6", "T7", "T8", "T9"]
    polys = chain(levels, tilts=[15.0, 9.0, 3.0, -3.0, -9.0, -15.0], facing=facing)  # kyphotic
    assert core.infer_facing(polys, levels) == facing
    # unnamed, the same chain is read as a lordotic one: the other way round
    assert core.infer_facing(polys, [None] * 6) == ("left" if facing == "right" else "right")


def test_wrong_facing_reverses_the_lordosis():
    polys = chain(LUMBAR, tilts=[-20, -12, -4, 4, 12, 24])
    assert core.measure_spine(polys, LUMBAR, facing="left").lumbar_lordosis_deg == pytest.approx(-44.0)


def test_cervical_lordosis_uses_inferior_endplates():
    tilts = [-15.0, -9.0, -3.0, 3.0, 9.0, 15.0]
    h_ant = [30, 30, 30, 30, 30, 26]  # C7 wedged: its inferior rim tilts up anteriorly
    polys = chain(CERVICAL, tilts=tilts, h_ant=h_ant)
    r = core.measure_spine(polys, CERVICAL, facing="right")
    c7_inferior = 15.0 - math.degrees(math.atan2(2.0, 40.0))
    assert r.cervical_lordosis_deg == pytest.approx(c7_inferior - -15.0, abs=1e-6)
    assert r.lumbar_lordosis_deg is None


def test_straight_chain_facing_is_assumed_and_flagged():
    polys = chain(LUMBAR, tilts=[0.0] * 6)
    r = core.measure_spine(polys, LUMBAR)
    assert (r.facing, r.facing_source, r.flags) == ("left", "default", ["facing_assumed"])
    assert core.infer_facing(polys, LUMBAR) is None


@pytest.mark.parametrize("facing", ["right", "left"])
@pytest.mark.parametrize(("slip", "grade", "kind"), [(0.0, 0, "none"), (1.0, 0, "none"), (9.0, 1, "anterolisthesis"),
                                                    (12.0, 2, "anterolisthesis"), (-6.0, 1, "retrolisthesis")])
def test_listhesis_of_l5_on_s1(facing, slip, grade, kind):
    polys = chain(LUMBAR, tilts=[0.0] * 6, slips=[0, 0, 0, 0, 0, slip], facing=facing)
    r = core.measure_spine(polys, LUMBAR, facing=facing, pixel_spacing_mm=(0.5, 0.5))
    s = r.segments[-1]
    assert s.slip == pytest.approx(slip, abs=1e-6)
    assert s.slip_mm == pytest.approx(slip / 2, abs=1e-6)
    assert s.slip_percent == pytest.approx(100 * slip / 40, abs=1e-6)
    assert (s.meyerding_grade, s.listhesis) == (grade, kind)
    assert all(o.meyerding_grade == 0 for o in r.segments[:-1])


def test_genant_in_the_chain_uses_neighbours_and_skips_references():
    levels = ["T12", "L1", "L2", "L3", "L4", "L5", "S1"]
    polys = chain(levels, tilts=[0.0] * 7)
    # L2 crushed: the whole body 30 % lower than its neighbours (rebuild it in place)
    l2 = polys[2]
    crushed = l2.copy()
    crushed[2:, 1] = l2[0, 1] + 21.0
    polys[2] = crushed
    r = core.measure_spine(polys, levels, facing="right", partial=[True, False, False, False, False, False, False])
    grades = [g.grade for g in r.genant]
    assert grades == [None, 0, 2, 0, 0, 0, None]  # T12 partial, S1 not graded
    assert r.genant[2].deformity == "crush"
    assert r.reference_posterior[2] == pytest.approx(30.0)
    assert r.reference_posterior[1] == pytest.approx(21.0)  # L1: only L2 (T12 is partial)
    assert r.genant[1].grade == 0  # taller than its reference: no crush
    assert "partial" in r.segments[0].flags


def test_unnamed_bodies_are_chained_and_flagged():
    polys = chain(LUMBAR, tilts=[-20, -12, -4, 4, 12, 24])
    r = core.measure_spine(polys, [None, None, "L3", "L4", None, None])
    assert len(r.segments) == 5 and "unnamed" in r.segments[0].flags and r.segments[2].flags == []
    assert r.lumbar_lordosis_deg is None  # needs L1 and S1
    assert r.genant[0].grade == 0  # unnamed bodies are graded


def test_gap_in_the_levels_makes_no_segment():
    polys = chain(LUMBAR, tilts=[0.0] * 6)
    r = core.measure_spine([polys[0], polys[2]], ["L1", "L3"], facing="right")
    assert r.segments == []
    assert r.genant[0].crush_reduction is None


def test_results_follow_the_input_order():
    polys = chain(LUMBAR, tilts=[-20, -12, -4, 4, 12, 24])
    order = [3, 0, 5, 1, 4, 2]
    r = core.measure_spine([polys[i] for i in order], [LUMBAR[i] for i in order], facing="right")
    ordered = core.measure_spine(polys, LUMBAR, facing="right")
    for k, i in enumerate(order):
        assert r.bodies[k].height_anterior == pytest.approx(ordered.bodies[i].height_anterior)
    assert [(order[s.upper], order[s.lower]) for s in r.segments] == [(k, k + 1) for k in range(5)]
    assert r.lumbar_lordosis_deg == pytest.approx(ordered.lumbar_lordosis_deg)


# ---- bad input ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: core.measure_body(np.array([[0, 0], [1, 0]], float), facing="right"), "polygon"),
        (lambda: core.measure_body(np.array([[0, 0], [1, np.nan], [0, 1]]), facing="right"), "polygon"),
        (lambda: core.measure_body(np.zeros((4, 3)), facing="right"), "polygon"),
        (lambda: core.measure_body(place(quad(4, 3, 3)), facing="up"), "facing"),
        (lambda: core.measure_body(place(quad(4, 3, 3)), facing="left", side_margin=0.6), "side_margin"),
        (lambda: core.measure_body(place(quad(4, 3, 3)), facing="left", pixel_spacing_mm=(0.0, 1.0)), "pixel_spacing_mm"),
        (lambda: core.measure_body(place(quad(4, 3, 3)), facing="left", caudal_axis=(np.inf, 1.0)), "caudal_axis"),
        (lambda: core.measure_spine([place(quad(4, 3, 3))], ["L1", "L2"]), "levels"),
        (lambda: core.measure_spine([place(quad(4, 3, 3))], ["X9"]), "levels[0]"),
        (lambda: core.measure_spine([place(quad(4, 3, 3))], [26]), "levels[0]"),
        (lambda: core.measure_spine([place(quad(4, 3, 3))], ["L1"], partial=[True, False]), "partial"),
        (lambda: core.measure_spine([place(quad(4, 3, 3)), np.ones((2, 2))], ["L1", "L2"]), "polygons[1]"),
        (lambda: core.measure_spine([place(quad(4, 3, 3))], ["L1"], min_slip_percent=-1.0), "min_slip_percent"),
        (lambda: core.genant_grade(30, 20, np.nan), "heights"),
        (lambda: core.genant_grade(30, 20, 30, 0.0), "reference_posterior"),
    ],
)
def test_bad_input_is_a_value_error_naming_the_argument(call, message):
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
        call()


@given(arrays(np.float64, st.tuples(st.integers(0, 40), st.sampled_from([1, 2, 3])),
              elements=st.floats(-1e7, 1e7) | st.sampled_from([np.nan, np.inf, -np.inf])))
def test_any_array_is_measured_or_refused_never_a_crash(points):
    try:
        b = core.measure_body(points, facing="right")
    except ValueError:
        return
    assert b.measured in (True, False)
    if b.measured:
        assert all(np.isfinite(v) for v in heights(b))


@given(st.lists(st.tuples(st.floats(-50, 50), st.floats(-50, 50)), min_size=3, max_size=30))
def test_random_rings_never_crash_and_heights_are_finite(points):
    b = core.measure_body(np.array(points) + 100.0, facing="left")
    if b.measured:
        assert all(np.isfinite(v) and v >= 0 for v in heights(b))
        assert np.all(np.isfinite(b.corners))
