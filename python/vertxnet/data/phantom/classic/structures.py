"""Everything on a lateral film besides the vertebral bodies: posterior elements, C1, skull and
mandible, airway, shoulders, ribs, pelvis, bowel gas, soft tissue and metal implants."""

from __future__ import annotations

import cv2
import numpy as np

from .anatomy import Body
from .render import MU_SOFT, Canvas
from .scene import Spine


def _mean_h(b: Body) -> float:
    return (b.h_ant + b.h_post) / 2


# ------------------------------------------------------------------------------------------------
# posterior elements


def add_posterior_elements(canvas: Canvas, b: Body) -> None:
    """Pedicles, articular pillar, lamina and spinous process of one vertebra (one bone: their
    path lengths combine by maximum)."""
    if b.level is None or b.level == "S1":
        return
    region = "C" if b.level.startswith("C") else ("L" if b.level.startswith("L") else "T")
    d, h = b.depth, _mean_h(b)
    w = b.to_world
    ped_len = (0.38 if region == "C" else 0.45) * d
    ped_r = {"C": 0.2, "T": 0.22, "L": 0.26}[region] * h
    ped_w = {"C": 5.5, "T": 7.0, "L": 9.0}[region]
    pu = -d / 2 - ped_len  # AP position of the articular pillar
    pillar_r = {"C": 0.3, "T": 0.22, "L": 0.2}[region] * h
    pillar_top, pillar_bottom = {"C": (-0.62, 0.62), "T": (-0.75, 0.7), "L": (-0.8, 0.85)}[region]
    lam_len = {"C": 0.45, "T": 0.35, "L": 0.32}[region] * d
    lam_end = np.array([pu - lam_len, 0.45 * h])
    sp_len = {"C": 0.7, "T": 1.25, "L": 0.9}[region] * d
    sp_angle = np.deg2rad({"C": 30.0, "T": 55.0, "L": 8.0}[region])
    r0, r1 = {"C": (0.26, 0.2), "T": (0.16, 0.12), "L": (0.34, 0.28)}[region]
    if b.level == "C7":
        sp_len *= 1.6
    elif b.level == "C2":
        sp_len *= 1.3
        r0, r1 = 0.3, 0.2
    tip = lam_end + sp_len * np.array([-np.cos(sp_angle), np.sin(sp_angle)])
    segments = [
        (w([-d / 2 + 1.0, -0.15 * h]), w([pu, -0.1 * h]), ped_r, ped_r * 0.9, 2 * ped_w),
        (w([pu + 0.1 * h, pillar_top * h]), w([pu - 0.1 * h, pillar_bottom * h]), pillar_r, pillar_r, 2 * 10.0),
        (w([pu - 0.1 * h, 0.1 * h]), w(lam_end), 0.16 * h, 0.15 * h, 2 * 7.0),
        (w(lam_end), w(tip), r0 * h, r1 * h, {"C": 7.0, "T": 7.0, "L": 9.0}[region]),
    ]
    canvas.add_rods(segments, cortex=1.2, density=1.05)


def add_atlas(canvas: Canvas, c2: Body) -> None:
    """C1: anterior arch in front of the dens, lateral masses over it, posterior arch behind."""
    d, h = c2.depth, _mean_h(c2)
    dens_u = -0.12 * d
    top = -h / 2 - c2.dens_height
    w = c2.to_world
    canvas.add_ellipsoid(w([dens_u + c2.dens_depth / 2 + 2.5 + 3.5, top + 0.6 * c2.dens_height]), 3.5, 6.0, c2.phi,
                         14.0, density=1.0)
    canvas.add_ellipsoid(w([dens_u - 2.0, top + 0.45 * c2.dens_height]), 11.0, 7.5, c2.phi, 32.0, density=0.85)
    a0 = np.array([-d / 2 - 6.0, top + 0.5 * c2.dens_height])
    a1 = a0 + np.array([-24.0, 1.5])
    canvas.add_capsule(w(a0), w(a1), 3.8, 3.2, 12.0)
    canvas.add_ellipsoid(w(a1 + np.array([-2.5, 0.5])), 4.5, 6.5, c2.phi, 9.0)


# ------------------------------------------------------------------------------------------------
# soft tissue (patient outline) as a beam path through an elliptic cylinder per height


def soft_tissue(canvas: Canvas, spine: Spine, rng: np.random.Generator, strength: float) -> np.ndarray:
    """Adds the body's soft tissue and returns the mask of pixels inside the patient."""
    f = canvas.field
    # smooth at the pixel scale: evaluated at half resolution, then interpolated
    hh, hw = (f.height + 1) // 2, (f.width + 1) // 2
    ys, xs = np.mgrid[0:hh, 0:hw].astype(np.float64) * 2.0 + 1.0
    p = spine.patient_frame(f.to_world(np.stack([xs, ys], axis=-1)))
    px, py = p[..., 0], p[..., 1]
    named = [b for b in spine.bodies if b.level is not None]
    pf = spine.patient_frame
    ant = np.array([pf(b.to_world(np.array([b.depth / 2, 0.0])))[0] for b in named])
    post = np.array([pf(b.to_world(np.array([-b.depth / 2, 0.0])))[0] for b in named])
    yc = np.array([pf(b.center)[1] for b in named])
    levels = [b.level for b in named]
    j = lambda lo, hi: float(rng.uniform(lo, hi))  # noqa: E731
    if spine.view == "cervical":
        i2, i7 = levels.index("C2"), levels.index("C7")
        y_head = yc[i2] - 25.0
        y_sh = yc[i7] + j(-5.0, 25.0) - 10.0 * (strength - 1.0)
        y_keys = np.array([y_head - 200, y_head - 10, yc[i2] + 10, yc[i7] - 15, y_sh, y_sh + 40, y_sh + 400])
        a_neck = np.interp(y_keys, yc, ant) + j(30.0, 48.0)
        p_neck = np.interp(y_keys, yc, post) - j(85.0, 110.0)
        ant_keys = np.array([a_neck[0] + 140, a_neck[1] + 110, a_neck[2] + 10, a_neck[3], a_neck[4] + 15, a_neck[5] + 60, a_neck[6] + 80])
        post_keys = np.array([p_neck[0] - 60, p_neck[1] - 45, p_neck[2], p_neck[3], p_neck[4] - 20, p_neck[5] - 70, p_neck[6] - 90])
        wide = j(0.8, 1.2) * max(strength, 0.2)
        width_keys = np.array([135, 135, 115, 110, 150 * wide, 240 * wide, 280 * wide]) * j(0.9, 1.1)
    else:
        i1, is1 = levels.index("L1"), levels.index("S1")
        y_pelvis = yc[is1] - 20.0
        y_keys = np.array([yc[0] - 400, yc[i1], y_pelvis, y_pelvis + 120, y_pelvis + 600])
        a0 = float(np.mean(ant)) + j(110.0, 220.0)
        p0 = float(np.min(post)) - j(75.0, 115.0)
        ant_keys = np.array([a0 - 20, a0, a0 + 10, a0 + 20, a0 + 20])
        post_keys = np.array([p0 + 10, p0, p0 - 25, p0 - 50, p0 - 50])
        width_keys = np.array([300, 300, 340, 380, 380]) * j(0.85, 1.15)
    # profiles along the body axis, smoothed so that neck, shoulders and pelvis blend
    grid = np.arange(float(py.min()) - 60.0, float(py.max()) + 60.0, 2.0)
    kernel = np.exp(-0.5 * (np.arange(-30, 31) * 2.0 / 18.0) ** 2)
    kernel /= kernel.sum()
    smooth = lambda keys: np.convolve(np.pad(np.interp(grid, y_keys, keys), 30, mode="edge"), kernel, "valid")  # noqa: E731
    xa, xp, wt = (np.interp(py, grid, smooth(k)) for k in (ant_keys, post_keys, width_keys))
    half = np.maximum((xa - xp) / 2, 1.0)
    # a superellipse cross-section: the back and the sides of the trunk are broad and flat
    power = 2.5 if spine.view == "cervical" else 3.5
    q = np.clip(1.0 - np.abs((px - (xa + xp) / 2) / half) ** power, 0.0, None)
    path = cv2.resize((wt * q ** (1.0 / power)).astype(np.float32), (2 * hw, 2 * hh), interpolation=cv2.INTER_LINEAR)
    path = path[: f.height, : f.width]
    canvas.att += MU_SOFT * path
    return path > 15.0


# ------------------------------------------------------------------------------------------------
# view-specific shadows


def add_cervical_shadows(canvas: Canvas, spine: Spine, rng: np.random.Generator, strength: float) -> None:
    c2 = spine.body("C2")
    d, h = c2.depth, _mean_h(c2)
    w = c2.to_world
    tip = -h / 2 - c2.dens_height
    # skull: vault as an ellipsoidal shell (outer minus inner), dense skull base and mastoid over C1
    # (tilted so that the occiput dips behind C1 while the skull base rises in front of it)
    centre = np.array([rng.uniform(-35.0, -15.0), tip - rng.uniform(70.0, 80.0)])
    shell = rng.uniform(5.0, 8.0)
    tilt = c2.phi - np.deg2rad(rng.uniform(15.0, 30.0))
    for a, b_, dep, sign in ((95.0, 72.0, 145.0, 1.0), (95.0 - shell, 72.0 - shell, 145.0 - 2 * shell, -1.0)):
        canvas.add_ellipsoid(w(centre), a, b_, tilt, dep, material="cortical", density=sign * 0.6)
    canvas.add_ellipsoid(w([-8.0 + rng.uniform(-5, 5), tip - 14.0]), 24.0, 13.0, c2.phi + 0.25, 40.0, density=0.6, cortex=0.3)
    # mandible (ramus, angle, body), left and right slightly apart
    angle_pt = np.array([d / 2 + rng.uniform(14.0, 26.0), rng.uniform(0.2, 0.9) * h])
    condyle = np.array([d / 2 + rng.uniform(6.0, 14.0), tip - 6.0])
    chin = angle_pt + np.array([rng.uniform(75.0, 95.0), -rng.uniform(10.0, 25.0)])
    for off in (np.zeros(2), rng.uniform(-6.0, 6.0, 2)):
        path = np.array([condyle, 0.5 * (condyle + angle_pt) + [2.0, 0.0], angle_pt, 0.5 * (angle_pt + chin) + [0.0, 3.0], chin])
        canvas.add_tube(w(path + off), [6.0, 9.0, 9.0, 10.0, 11.0], 8.0, cortex=2.0)
    canvas.add_capsule(w([d / 2 + 14.0, tip - 18.0]), w([d / 2 + 70.0, tip - 24.0]), 4.0, 3.5, 30.0, density=0.5)  # palate
    # hyoid
    c3 = spine.body("C3")
    canvas.add_ellipsoid(c3.to_world([c3.depth / 2 + rng.uniform(25, 35), rng.uniform(0.0, 0.8) * _mean_h(c3)]),
                         6.0, 3.5, c3.phi + 0.3, 30.0, density=1.1)
    # airway: pharynx and trachea in front of the prevertebral soft tissue
    pts, radii = [w([d / 2 + 8.0 + 6.0, tip - 5.0])], [6.0]
    for b in spine.bodies[:7]:
        prevert = 4.0 if b.level in ("C2", "C3", "C4") else 13.0
        radius = 6.0 if b.level in ("C2", "C3") else 8.0
        pts.append(b.to_world([b.depth / 2 + prevert + radius, 0.0]))
        radii.append(radius)
    canvas.add_tube(np.array(pts), radii, 18.0 * min(strength, 1.5), material="air")
    # shoulders: humeral heads and clavicles over the cervico-thoracic junction
    if strength > 0:
        c7 = spine.body("C7")
        base = np.array([rng.uniform(-25.0, 10.0), rng.uniform(2.5, 4.5) * _mean_h(c7) - 10.0 * (strength - 1.0)])
        for off in (np.zeros(2), rng.uniform(-12.0, 12.0, 2)):
            centre = c7.to_world(base + off)
            canvas.add_ellipsoid(centre, 24.0, 24.0, 0.0, 40.0 * min(strength, 1.5), density=0.45, cortex=1.0)
            clav = np.array([centre + [-35.0, -5.0], centre + [20.0, 5.0], centre + [80.0, 30.0]])
            canvas.add_tube(clav, 5.5, 12.0 * min(strength, 1.5), cortex=1.5)


def add_lumbar_shadows(canvas: Canvas, spine: Spine, rng: np.random.Generator, strength: float) -> None:
    # ribs from the lower thoracic vertebrae, sweeping down and forward
    for level, reach in (("T10", 1.6), ("T11", 1.1), ("T12", 0.5)):
        b = spine.body(level)
        if b is None:
            continue
        d, h = b.depth, _mean_h(b)
        for off in (np.zeros(2), rng.uniform(-8.0, 8.0, 2)):
            ctrl = np.array([[-d / 2 - 4, -0.3 * h], [-d / 2 - 28, 0.4 * h], [-d / 2 - 18, 1.6 * h],
                             [reach * d * 0.4, 2.6 * h], [reach * d, 3.2 * h]]) + off
            canvas.add_tube(b.to_world(_bezier(ctrl, 8)), 4.0, 10.0, cortex=1.0)
    s1 = spine.body("S1")
    l5 = spine.body("L5")
    l4 = spine.body("L4")
    sd, sh = s1.depth, _mean_h(s1)
    # sacral alae over S1-S2 and the posterior sacral wall (laminae, median crest)
    canvas.add_ellipsoid(s1.to_world([-0.15 * sd, 0.5 * sh]), 0.7 * sd, 1.0 * sh, s1.phi, 40.0, density=0.3, cortex=0.0)
    sacral = [b for b in spine.bodies if b.segment == "sacral"]
    crest = [s1.to_world([-sd / 2 - 9.0, -0.3 * sh])] + [b.to_world([-b.depth / 2 - 7.0, 0.0]) for b in sacral]
    canvas.add_tube(np.array(crest), np.linspace(6.0, 4.0, len(crest)), 16.0, cortex=1.2)
    # pelvis: both iliac wings (slightly apart), their crests, acetabula and femoral heads
    x_post = l5.to_world([-l5.depth / 2, 0.0])[0] - rng.uniform(25.0, 45.0)
    x_ant = l5.to_world([l5.depth / 2, 0.0])[0] + rng.uniform(35.0, 60.0)
    y_crest = l4.to_world([0.0, _mean_h(l4) / 2])[1] + rng.uniform(-12.0, 12.0)
    t = np.linspace(0.0, 1.0, 9)
    wing_strength = min(strength, 1.3)
    for off in (np.zeros(2), rng.uniform(-7.0, 7.0, 2)):
        xs = x_post + t * (x_ant - x_post) + off[0]
        ys = y_crest + off[1] + 70.0 * ((t - 0.45) / 0.55) ** 2
        crest_pts = np.stack([xs, ys], 1)
        wing = np.vstack([crest_pts, [[x_ant - 15 + off[0], y_crest + 115 + off[1]], [x_post + 30 + off[0], y_crest + 100 + off[1]]]])
        canvas.add_polygon(wing, 8.0 * wing_strength, material="bone", soften_mm=8.0)
        canvas.add_tube(crest_pts, 3.0, 14.0 * wing_strength, cortex=1.2)
        head = np.array([x_ant - rng.uniform(5.0, 20.0), y_crest + rng.uniform(150.0, 175.0)]) + off
        canvas.add_ellipsoid(head, 24.0, 24.0, 0.0, 46.0, density=0.7, cortex=1.2)
        roof = head + 28.0 * np.stack([np.cos(np.linspace(3.6, 5.9, 6)), np.sin(np.linspace(3.6, 5.9, 6))], 1)
        canvas.add_tube(roof, 2.5, 12.0, cortex=1.2)
    # bowel gas anterior to (and over) the lumbar spine: irregular clusters of small pockets
    n_gas = rng.poisson(4.0 * strength)
    l1 = spine.body("L1")
    for _ in range(int(n_gas)):
        u = rng.uniform(-0.2, 3.0) * l1.depth
        v = rng.uniform(0.0, 1.0)
        y = l1.center[1] + v * (s1.center[1] - l1.center[1])
        x = np.interp(y, [l1.center[1], s1.center[1]], [l1.center[0], s1.center[0]]) + u
        size = rng.uniform(6.0, 18.0)
        for _ in range(int(rng.integers(2, 5))):
            centre = np.array([x, y]) + rng.normal(0.0, 0.6 * size, 2)
            canvas.add_ellipsoid(centre, size * rng.uniform(0.4, 1.0), size * rng.uniform(0.3, 0.8), rng.uniform(0, np.pi),
                                 rng.uniform(6.0, 22.0), material="air")


def _bezier(ctrl: np.ndarray, n: int) -> np.ndarray:
    """n points on the Bezier curve of the control points (de Casteljau, vectorised over t)."""
    t = np.linspace(0.0, 1.0, n)[:, None]
    layer = [np.repeat(c[None], n, 0) for c in np.asarray(ctrl, float)]
    while len(layer) > 1:
        layer = [(1 - t) * a + t * b for a, b in zip(layer[:-1], layer[1:])]
    return layer[0]


# ------------------------------------------------------------------------------------------------
# implants


def add_implants(canvas: Canvas, spine: Spine, rng: np.random.Generator, probability: float) -> list[dict]:
    """Pedicle screws + rods and interbody cages (lumbar), anterior plate + cage (cervical)."""
    draw, kind_u, start_u, n_u = rng.random(4)
    if draw >= probability:
        return []
    implants: list[dict] = []
    if spine.view == "cervical":
        start = ["C3", "C4", "C5", "C6"][int(start_u * 4)]
        names = [start, f"C{int(start[1]) + 1}"]
        if n_u < 0.35 and start != "C6":
            names.append(f"C{int(start[1]) + 2}")
        bodies = [spine.body(n) for n in names]
        plate = []
        for b in bodies:
            plate.append(b.to_world([b.depth / 2 + 1.5, -0.25 * _mean_h(b)]))
        top = bodies[0].to_world([bodies[0].depth / 2 + 1.0, -0.3 * _mean_h(bodies[0])])
        bot = bodies[-1].to_world([bodies[-1].depth / 2 + 1.0, 0.3 * _mean_h(bodies[-1])])
        _plate(canvas, top, bot, 2.4, 16.0)
        implants.append({"type": "anterior_plate", "levels": names})
        for b in (bodies[0], bodies[-1]):
            h = _mean_h(b)
            for sign in (-1, 1):
                canvas.add_capsule(b.to_world([b.depth / 2 + 1.5, sign * 0.22 * h]), b.to_world([-0.15 * b.depth, sign * 0.1 * h]),
                                   2.0, 1.6, 8.0, material="metal")
        for upper, lower in zip(bodies[:-1], bodies[1:]):
            _cage(canvas, upper, lower)
            implants.append({"type": "cage", "levels": [upper.level, lower.level]})
        return implants
    order = ["L2", "L3", "L4", "L5", "S1"]
    start = int(start_u * 3)
    count = 2 if n_u < 0.6 else 3
    names = order[start : start + count]
    bodies = [spine.body(n) for n in names]
    if kind_u < 0.75:
        heads = []
        for b in bodies:
            d, h = b.depth, _mean_h(b)
            entry = np.array([-d / 2 - 0.45 * d - 6.0, -0.05 * h])
            tip = np.array([0.32 * d, 0.0 if b.level != "S1" else 0.1 * h])
            canvas.add_capsule(b.to_world(entry), b.to_world(tip), 3.3, 2.6, 2 * 6.0, material="metal")
            head = b.to_world(entry + np.array([-4.0, 0.0]))
            canvas.add_ellipsoid(head, 6.5, 5.5, b.phi, 2 * 11.0, material="metal")
            heads.append(head)
        ext = (heads[-1] - heads[0]) * 0.06
        canvas.add_tube(np.array([heads[0] - ext, *heads[1:-1], heads[-1] + ext]), 2.75, 2 * 5.5, material="metal")
        implants.append({"type": "pedicle_screws_rods", "levels": names})
    if kind_u > 0.45:
        for upper, lower in zip(bodies[:-1], bodies[1:]):
            _cage(canvas, upper, lower)
            implants.append({"type": "cage", "levels": [upper.level, lower.level]})
    return implants


def _plate(canvas: Canvas, top: np.ndarray, bottom: np.ndarray, thickness: float, width: float) -> None:
    axis = bottom - top
    normal = np.array([axis[1], -axis[0]]) / (np.hypot(*axis) + 1e-9) * thickness / 2
    canvas.add_polygon(np.array([top - normal, top + normal, bottom + normal, bottom - normal]), width, material="metal")


def _cage(canvas: Canvas, upper: Body, lower: Body) -> None:
    """A titanium interbody cage: a hollow box spanning the disc space."""
    a, b = upper.corner("post_bottom"), upper.corner("ant_bottom")
    c, d = lower.corner("ant_top"), lower.corner("post_top")
    centre = (a + b + c + d) / 4
    outer = centre + 0.8 * (np.array([a, b, c, d]) - centre)
    inner = centre + 0.55 * (np.array([a, b, c, d]) - centre)
    canvas.add_polygon(outer, 7.0, material="metal")
    canvas.add_polygon(inner, -5.0, material="metal")
