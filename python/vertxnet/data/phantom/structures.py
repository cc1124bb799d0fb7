"""Everything on a lateral film besides the vertebral bodies: posterior elements, ribs, lungs and
diaphragm, shoulders and scapulae, skull base, mandible and C1, airway, pelvis and sacrum, bowel
gas and stool, soft tissue and metal implants.

Positions are given relative to the vertebrae they belong to (a body's local frame: u anterior,
v caudal, mm) or in the upright patient frame (x anterior, y caudal), so that every structure
follows the spine's curves and the film's tilt. Paired structures are drawn left and right at
their transverse distance ``z`` from the mid-sagittal plane (see :meth:`Canvas.side_offset`).
"""

from __future__ import annotations

import cv2
import numpy as np

from .anatomy import Body
from .render import MU_SOFT, Canvas
from .scene import CHAIN, Spine


def _mean_h(b: Body) -> float:
    return (b.h_ant + b.h_post) / 2


def _region(level: str) -> str:
    return "L" if level == "S1" else level[0]


def _bezier(ctrl: np.ndarray, n: int) -> np.ndarray:
    """n points on the Bezier curve of the control points (de Casteljau, vectorised over t)."""
    t = np.linspace(0.0, 1.0, n)[:, None]
    layer = [np.repeat(c[None], n, 0) for c in np.asarray(ctrl, float)]
    while len(layer) > 1:
        layer = [(1 - t) * a + t * b for a, b in zip(layer[:-1], layer[1:])]
    return layer[0]


def _round_poly(pts: np.ndarray, n: int = 48, passes: int = 2) -> np.ndarray:
    """A closed polygon with its corners rounded (Chaikin corner cutting), resampled to ~n points."""
    p = np.asarray(pts, float)
    for _ in range(passes):
        q = np.roll(p, -1, axis=0)
        p = np.stack([0.75 * p + 0.25 * q, 0.25 * p + 0.75 * q], axis=1).reshape(-1, 2)
    if len(p) > n:
        p = p[np.linspace(0, len(p) - 1, n).astype(int)]
    return p


def _ellipse(c, a: float, b: float, angle: float = 0.0, n: int = 24) -> np.ndarray:
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    ca, sa = np.cos(angle), np.sin(angle)
    x, y = a * np.cos(t), b * np.sin(t)
    return np.stack([c[0] + ca * x - sa * y, c[1] + sa * x + ca * y], 1)


def _irregular(rng: np.random.Generator, c, r: float, wobble: float = 0.25, n: int = 20, aspect: float = 1.0,
               angle: float = 0.0) -> np.ndarray:
    """A blob outline: an ellipse whose radius wobbles smoothly."""
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    k = np.arange(1, 4)
    amp = rng.normal(0, wobble / k, 3)
    ph = rng.uniform(0, 2 * np.pi, 3)
    rr = r * (1.0 + (amp[:, None] * np.cos(k[:, None] * t[None] + ph[:, None])).sum(0))
    x, y = rr * np.cos(t), rr * np.sin(t) * aspect
    ca, sa = np.cos(angle), np.sin(angle)
    return np.stack([c[0] + ca * x - sa * y, c[1] + sa * x + ca * y], 1)


# ------------------------------------------------------------------------------------------------
# posterior elements


def add_posterior_elements(canvas: Canvas, spine: Spine, rng: np.random.Generator) -> None:
    """Pedicles, articular processes (pillars in the neck), laminae, transverse and spinous
    processes of every vertebra: the busy column of bone and dark foramina behind the bodies."""
    named = [b for b in spine.named if b.level != "S1"]
    for b in named:
        if not canvas.near(b.center, 90.0):
            continue
        region = _region(b.level)
        d, h, w = b.depth, _mean_h(b), b.width
        W = b.to_world
        j = lambda lo, hi: float(rng.uniform(lo, hi))  # noqa: E731
        pb = -d / 2  # posterior wall
        if region == "C":
            ped = j(3.5, 5.5)
            p0, p1 = pb - ped, pb - ped - j(10.0, 13.0)  # the articular pillar
            slope = j(0.35, 0.6) * (p0 - p1)  # facets slope down and back
            pillar = np.array([[p0, -0.62 * h], [p1, -0.62 * h + slope], [p1, 0.78 * h + slope], [p0, 0.78 * h]])
            pedicle = np.array([[pb + 1.0, -0.35 * h], [p0 + 0.5, -0.32 * h], [p0 + 0.5, 0.05 * h], [pb + 1.0, 0.05 * h]])
            paired = [(W(_round_poly(pillar)), 9.0), (W(_round_poly(pedicle)), 5.0)]
            canvas.add_shell(paired, cortex=0.9, edge=2.5, z=0.5 * w + 2.0, marrow=0.7)
            lam_end = p1 - j(6.0, 10.0)
            sp_len = {"C2": 20.0, "C6": 15.0, "C7": 24.0}.get(b.level, 10.0) * j(0.85, 1.15) * spine.size
            sp_h = (0.6 if b.level == "C2" else 0.3) * h
            drop = (0.55 if b.level not in ("C2", "C7") else 0.35) * sp_len
            spinous = np.array([[p1 + 2.0, -0.2 * h], [lam_end, 0.0], [lam_end - sp_len, drop + 0.2 * h - sp_h / 2],
                                [lam_end - sp_len - 1.5, drop + 0.2 * h + sp_h / 2], [lam_end, 0.6 * h], [p1 + 2.0, 0.55 * h]])
            canvas.add_shell([(W(_round_poly(spinous, 40, 1)), 7.0 if b.level in ("C2", "C7") else 5.0)], cortex=1.0,
                             edge=2.0, marrow=0.6)
            if b.level != "C2":  # transverse processes with the foramen transversarium over the pedicles
                canvas.add_ellipsoid(W([pb - 1.0, -0.05 * h]), 4.5, 0.35 * h, b.phi, 10.0, cortex=1.0, density=0.8)
            continue
        lumbar = region == "L"
        ped_len = (0.30 if lumbar else 0.36) * d
        p0 = pb - ped_len
        # pedicle, superior and inferior articular processes and the pars as one paired bone
        pedicle = np.array([[pb + 1.5, -0.46 * h], [p0, -0.42 * h], [p0, -0.02 * h], [pb + 1.5, -0.05 * h]])
        sap_top = -0.5 * h - (0.32 if lumbar else 0.22) * h
        sap = np.array([[p0 + 2.0, -0.3 * h], [p0 - 1.0, sap_top], [p0 - (0.32 if lumbar else 0.22) * d, sap_top + 2.0],
                        [p0 - (0.32 if lumbar else 0.22) * d, -0.1 * h]])
        inf_bottom = 0.5 * h + (0.45 if lumbar else 0.3) * h
        pars = np.array([[p0 + 1.0, -0.25 * h], [p0 - (0.35 if lumbar else 0.3) * d, -0.3 * h],
                         [p0 - (0.45 if lumbar else 0.35) * d, 0.35 * h], [p0 - 0.12 * d, 0.4 * h]])
        iap = np.array([[p0 - 0.12 * d, 0.2 * h], [p0 - (0.45 if lumbar else 0.35) * d, 0.2 * h],
                        [p0 - (0.42 if lumbar else 0.33) * d, inf_bottom], [p0 - (0.2 if lumbar else 0.18) * d, inf_bottom - 2.0]])
        paired = [(W(_round_poly(pedicle)), 8.0 if lumbar else 6.5), (W(_round_poly(sap)), 9.0), (W(_round_poly(pars)), 8.0),
                  (W(_round_poly(iap)), 9.0)]
        canvas.add_shell(paired, cortex=1.5, edge=3.0, z=0.5 * w - 6.0, marrow=0.9)
        # transverse processes run along the beam: dense ovals over the pedicle-pars junction
        tp = W([p0 - 0.08 * d, -0.12 * h])
        if lumbar:
            canvas.add_ellipsoid(tp, 6.5 * spine.size, 5.0 * spine.size, b.phi + 0.4, 12.0, cortex=1.0, density=0.6)
        else:
            canvas.add_ellipsoid(W([p0 - 0.2 * d, -0.15 * h]), 6.0 * spine.size, 7.0 * spine.size, b.phi, 12.0, cortex=1.0,
                                 density=0.6)
        # lamina and spinous process (midline): lumbar a broad hatchet, thoracic long and steep
        base_u = p0 - (0.35 if lumbar else 0.3) * d
        if lumbar:
            length = j(0.6, 0.8) * d
            sp_h = j(0.65, 0.8) * h
            drop = j(0.0, 0.15) * h
            top = -0.3 * h + drop
            spinous = np.array([[base_u + 4.0, -0.3 * h], [base_u - length, top], [base_u - length - 2.0, top + 0.5 * sp_h],
                                [base_u - length + 1.0, top + sp_h], [base_u - 0.5 * length, 0.5 * h], [base_u + 4.0, 0.45 * h]])
            canvas.add_shell([(W(_round_poly(spinous, 40, 1)), j(7.0, 10.0))], cortex=1.4, edge=2.5, marrow=0.8)
        else:
            length = j(1.0, 1.3) * d
            angle = np.deg2rad(j(50.0, 62.0) if b.level not in ("T1", "T2", "T11", "T12") else j(25.0, 40.0))
            tip = np.array([base_u, 0.2 * h]) + length * np.array([-np.cos(angle), np.sin(angle)])
            normal = np.array([np.sin(angle), np.cos(angle)])
            spinous = np.array([[base_u + 3.0, -0.3 * h], [base_u + 3.0, 0.45 * h], tip + 3.0 * normal, tip - 3.0 * normal])
            canvas.add_shell([(W(_round_poly(spinous, 40, 1)), 6.0)], cortex=1.0, edge=2.0, marrow=0.5)


def add_atlas(canvas: Canvas, c2: Body, rng: np.random.Generator) -> None:
    """C1: the anterior arch (a small ring in front of the dens), the lateral masses over the dens
    and the posterior arch with its tubercle."""
    d, h = c2.depth, _mean_h(c2)
    dens_u = -0.12 * d
    top = -h / 2 - c2.dens_height
    W = c2.to_world
    ant = W([dens_u + c2.dens_depth / 2 + 2.0 + 3.5, top + 0.55 * c2.dens_height])
    canvas.add_ellipsoid(ant, 3.8, 5.5, c2.phi, 16.0, cortex=1.2, density=1.0)
    mass = np.array([[dens_u + 6.0, top + 0.15 * c2.dens_height], [dens_u - 12.0, top + 0.05 * c2.dens_height],
                     [dens_u - 13.0, top + 0.95 * c2.dens_height], [dens_u + 5.0, top + 1.0 * c2.dens_height]])
    canvas.add_shell([(W(_round_poly(mass)), 12.0)], cortex=1.0, edge=3.0, z=22.0, marrow=0.7)
    y_arch = top + 0.5 * c2.dens_height
    arch = np.array([[dens_u - 12.0, y_arch - 3.0], [-d / 2 - 30.0, y_arch - 2.0], [-d / 2 - 34.0, y_arch + 3.0],
                     [-d / 2 - 31.0, y_arch + 7.0], [dens_u - 12.0, y_arch + 4.0]])
    canvas.add_shell([(W(_round_poly(arch)), 10.0)], cortex=1.1, edge=2.5, marrow=0.7)


# ------------------------------------------------------------------------------------------------
# soft tissue (patient outline) as a beam path through a superelliptic cylinder per height


def _level_keys(spine: Spine):
    """Anterior wall, posterior wall (x) and centre height (y) of every level, patient frame."""
    if "_keys" not in spine.extra:
        spine.extra["_keys"] = _compute_level_keys(spine)
    return spine.extra["_keys"]


def _compute_level_keys(spine: Spine):
    pf = spine.patient_frame
    named = spine.named
    ant = {b.level: float(pf(b.to_world(np.array([b.depth / 2, 0.0])))[0]) for b in named}
    post = {b.level: float(pf(b.to_world(np.array([-b.depth / 2, 0.0])))[0]) for b in named}
    yc = {b.level: float(pf(b.center)[1]) for b in named}
    return ant, post, yc


def soft_tissue(canvas: Canvas, spine: Spine, rng: np.random.Generator, strength: float) -> np.ndarray:
    """Adds the body's soft tissue (neck, shoulders, chest, abdomen, buttocks) and returns the mask
    of pixels inside the patient."""
    f = canvas.field
    gx, gy = canvas.low_grid()
    p = spine.patient_frame(np.stack([gx, gy], axis=-1))
    px, py = p[..., 0], p[..., 1]
    ant, post, yc = _level_keys(spine)
    j = lambda lo, hi: float(rng.uniform(lo, hi))  # noqa: E731
    habitus = j(0.75, 1.3)  # slim .. heavy
    arms_down = spine.view in ("cervical", "cervicothoracic")
    sh = j(-5.0, 25.0) - 10.0 * (strength - 1.0)  # how low the shoulders sit
    keys = [  # (y, anterior skin, posterior skin, transverse width)
        (yc["C2"] - 200, ant["C2"] + 150, post["C2"] - 130, 150),
        (yc["C2"] - 25, ant["C2"] + j(100, 120), post["C2"] - 110, 140),
        (yc["C2"] + 10, ant["C2"] + j(95, 115), post["C2"] - j(65, 80), 125),
        (yc["C3"] + 10, ant["C3"] + j(65, 85), post["C3"] - j(60, 75), 115),
        (yc["C4"] + 5, ant["C4"] + j(42, 58), post["C4"] - j(65, 85), 115),
        (yc["C6"], ant["C6"] + j(32, 46), post["C6"] - j(65, 85), 115),
        (yc["C7"] + sh, ant["C7"] + j(35, 50), post["C7"] - j(65, 80), (300 if arms_down else 200) * max(strength, 0.3)),
        (yc["T2"] + sh, ant["T2"] + j(70, 95), post["T2"] - j(60, 75), (380 if arms_down else 300) * max(strength, 0.3)),
        (yc["T6"], ant["T6"] + j(105, 135) * habitus, post["T6"] - j(80, 100), j(280, 330)),
        (yc["T10"], ant["T10"] + j(110, 150) * habitus, post["T10"] - j(75, 95), j(280, 330) * habitus ** 0.3),
        (yc["L2"], ant["L2"] + j(70, 130) * habitus, post["L2"] - j(65, 90), j(270, 320) * habitus ** 0.5),
        (yc["L5"], ant["L5"] + j(80, 150) * habitus, post["L5"] - j(70, 95), j(300, 350) * habitus ** 0.5),
        (yc["S1"] + 60, ant["S1"] + j(110, 170) * habitus, post["S1"] - j(90, 120), j(330, 380) * habitus ** 0.5),
        (yc["S1"] + 600, ant["S1"] + 170, post["S1"] - 120, 380),
    ]
    y_keys = np.array([k[0] for k in keys])
    order = np.argsort(y_keys)
    y_keys = y_keys[order]
    grid = np.arange(float(py.min()) - 60.0, float(py.max()) + 60.0, 2.0)
    kernel = np.exp(-0.5 * (np.arange(-30, 31) * 2.0 / 14.0) ** 2)
    kernel /= kernel.sum()

    def smooth(col: int) -> np.ndarray:
        vals = np.array([k[col] for k in keys])[order]
        return np.convolve(np.pad(np.interp(grid, y_keys, vals), 30, mode="edge"), kernel, "valid")

    xa, xp, wt = (np.interp(py, grid, smooth(c)) for c in (1, 2, 3))
    half = np.maximum((xa - xp) / 2, 1.0)
    power = 2.6
    q = np.clip(1.0 - np.abs((px - (xa + xp) / 2) / half) ** power, 0.0, None)
    path = (wt * q ** (1.0 / power)).astype(np.float32)
    # overlapping organs, muscles and fat planes: a faint, blotchy variation of the path
    sp = 2.0 * f.spacing
    noise = rng.standard_normal(path.shape).astype(np.float32)
    clutter = cv2.GaussianBlur(noise, (0, 0), max(1.5, 6.0 / sp)) - 0.5 * cv2.GaussianBlur(noise, (0, 0), max(3.0, 20.0 / sp))
    clutter *= np.float32(rng.uniform(1.0, 2.5) * max(strength, 0.2) / (float(clutter.std()) + 1e-6))
    path += clutter * np.minimum(path / 40.0, 1.0)
    canvas.low += np.float32(MU_SOFT) * path
    inside = cv2.resize((path > 12.0).astype(np.uint8), (2 * path.shape[1], 2 * path.shape[0]),
                        interpolation=cv2.INTER_NEAREST)[: f.height, : f.width].astype(bool)
    spine.extra["_skin"] = (grid, smooth(1), smooth(2))
    return inside


# ------------------------------------------------------------------------------------------------
# thorax: lungs and diaphragm, heart, trachea, ribs, scapulae


def add_thorax(canvas: Canvas, spine: Spine, rng: np.random.Generator, strength: float) -> None:
    """Air in both lungs (less behind the heart and mediastinum), two diaphragm domes, the
    posterior costophrenic recesses reaching down behind the upper lumbar spine, vessel markings,
    the trachea and a gastric air bubble under the left dome."""
    gx, gy = canvas.low_grid(4)  # lungs are smooth: a quarter-resolution map is enough
    p = spine.patient_frame(np.stack([gx, gy], axis=-1))
    px, py = p[..., 0], p[..., 1]
    ant, post, yc = _level_keys(spine)
    grid, xa_s, xp_s = spine.extra["_skin"]
    xa = np.interp(py, grid, xa_s) - rng.uniform(15.0, 25.0)  # inner chest wall
    xp = np.interp(py, grid, xp_s) + rng.uniform(20.0, 30.0)
    j = lambda lo, hi: float(rng.uniform(lo, hi))  # noqa: E731
    y_apex = yc["T1"] - j(5.0, 25.0)
    x_spine = 0.5 * (ant["T8"] + post["T8"])
    # diaphragm: each dome peaks anteriorly of the spine and falls steeply behind it
    x_peak = ant["T10"] + j(30.0, 70.0)
    dome_r = yc["T10"] + j(-20.0, 20.0)
    post_drop = (yc["L1"] - yc["T10"]) * j(0.8, 1.2)
    domes = []
    for k, top in enumerate((dome_r, dome_r + j(8.0, 25.0))):
        back = np.clip((x_peak - px) / max(x_peak - (post["T12"] - 40.0), 1.0), 0.0, None)
        front = np.clip((px - x_peak) / 120.0, 0.0, None)
        domes.append(top + (post_drop + 8.0 * k) * back ** 2 + j(20.0, 45.0) * front ** 2)
    fall = j(18.0, 35.0)
    below = sum(np.clip(1.0 - (py - yd) / fall, 0.0, 1.0) ** 1.5 for yd in domes) / 2.0
    apex = np.clip((py - y_apex) / 45.0, 0.0, 1.0) ** 0.7
    half = np.maximum((xa - xp) / 2, 1.0)
    across = np.clip(1.0 - ((px - (xa + xp) / 2) / half) ** 4, 0.0, None) ** 0.5
    width = np.interp(py, [yc["T1"], yc["T5"], yc["T10"]], [170.0, 250.0, 270.0]) * j(0.9, 1.1)
    lung = width * across * apex * below
    # mediastinum and heart displace lung
    spine_band = np.exp(-(((px - x_spine) / 24.0) ** 2)) * 55.0
    hx, hy = ant["T8"] + j(45.0, 75.0), 0.5 * (yc["T7"] + yc["T9"]) + j(-10, 10)
    heart = 125.0 * np.exp(-(((px - hx) / 60.0) ** 2 + ((py - hy) / 55.0) ** 2) ** 1.5)
    lung = np.maximum(lung - spine_band - heart, 0.0)
    # vessel markings: a network of thin lines (the zero crossings of band-pass noise), denser
    # towards the hila
    noise = rng.standard_normal(lung.shape).astype(np.float32)
    sp = 4.0 * canvas.field.spacing
    band = cv2.GaussianBlur(noise, (0, 0), max(0.8, 3.0 / sp)) - cv2.GaussianBlur(noise, (0, 0), max(1.6, 8.0 / sp))
    marks = np.exp(-((band / (0.25 * float(band.std()) + 1e-6)) ** 2))
    hilum = np.exp(-(((px - (ant["T6"] + 20.0)) / 70.0) ** 2 + ((py - yc["T6"]) / 70.0) ** 2))
    lung *= 1.0 - (0.008 + 0.02 * hilum) * marks
    air = 0.8 * lung
    # trachea down to the carina, in front of the upper thoracic spine
    tx = np.interp(py, [yc["C6"], yc["T4"]], [ant["C6"] + 14.0, ant["T4"] + 18.0])
    ends = np.clip((py - yc["C6"]) / 15.0, 0.0, 1.0) * np.clip((yc["T4"] + 10.0 - py) / 20.0, 0.0, 1.0)
    trachea = 18.0 * np.sqrt(np.clip(1.0 - ((px - tx) / 9.0) ** 2, 0.0, None)) * ends
    air = air + trachea
    # gastric air bubble under the left dome, often with a fluid level
    if rng.random() < 0.7 * min(strength, 1.0):
        sx, sy = ant["T12"] + j(40.0, 110.0), np.interp(ant["T12"] + 70.0, px[0], domes[1][0]) + j(12.0, 30.0)
        a, b = j(20.0, 45.0), j(12.0, 25.0)
        r2 = ((px - sx) / a) ** 2 + ((py - sy) / b) ** 2
        level = sy + j(0.2, 0.7) * b  # the air-fluid level
        bubble = j(25.0, 60.0) * np.sqrt(np.clip(1.0 - r2, 0.0, None)) * np.clip((level - py) / 3.0, 0.0, 1.0)
        air = air + bubble
    canvas.add_low(-MU_SOFT * air)


def add_ribs(canvas: Canvas, spine: Spine, rng: np.random.Generator) -> None:
    """Twelve pairs of ribs from the costovertebral joints, back round the angle and then down
    and forward across the lungs (a hairpin in projection); left and right ribs diverge with their
    distance from the mid-sagittal plane."""
    ant, post, yc = _level_keys(spine)
    f = canvas.field
    y_field = spine.patient_frame(f.to_world(np.array([[0.0, 0.0], [0.0, f.height]])))[:, 1]
    lo, hi = min(y_field) - 160.0, max(y_field) + 20.0
    grid, xa_s, _ = spine.extra["_skin"]
    sides: dict[float, list] = {1.0: [], -1.0: []}
    for i in range(1, 13):
        level = f"T{i}"
        b = spine.body(level)
        if not lo < yc[level] < hi:
            continue
        d, h = b.depth, _mean_h(b)
        x_ant = float(np.interp(yc[level] + 60.0, grid, xa_s)) - 25.0  # anterior chest wall at the rib's end
        span = x_ant - ant[level]
        drop = (45.0 + 8.0 * i) * rng.uniform(0.8, 1.2)
        back = rng.uniform(40.0, 60.0)
        if i < 11:
            ctrl = np.array([[-d / 2 + 1.0, -0.3 * h], [-d / 2 - back, -0.2 * h], [-d / 2 - back - 10.0, 0.35 * drop],
                             [-d / 2 - 10.0, 0.6 * drop], [0.5 * span, 0.9 * drop], [span + d / 2, drop]])
            zs = np.array([12.0, 45.0, 95.0, 135.0, 130.0, 90.0])
            n_pts = 14
        else:  # floating ribs end in the flank, behind and below
            ctrl = np.array([[-d / 2 + 1.0, -0.3 * h], [-d / 2 - 25.0, 0.0], [-d / 2 - 45.0, 25.0], [-d / 2 - 50.0, 60.0]])
            zs = np.array([12.0, 40.0, 80.0, 110.0])
            n_pts = 7
        path = _bezier(ctrl, n_pts)
        z = np.interp(np.linspace(0, 1, n_pts), np.linspace(0, 1, len(zs)), zs)
        world = b.to_world(path)
        for side in sides:
            sides[side].append(world + side * canvas.side_offset(world, 1.0) * z[:, None] + rng.normal(0, 1.5, 2))
    for lines in sides.values():
        if lines:
            canvas.add_tubes(lines, 4.2 * spine.size, 7.0, cortex=1.0, density=0.55)


def add_shoulders(canvas: Canvas, spine: Spine, rng: np.random.Generator, strength: float) -> None:
    """Cervical views: humeral heads, clavicles and scapulae over the cervico-thoracic junction.
    Thoracic views: the scapulae behind the upper thoracic spine (arms raised forward)."""
    if strength <= 0:
        return
    c7, t1, t4 = spine.body("C7"), spine.body("T1"), spine.body("T4")
    j = lambda lo, hi: float(rng.uniform(lo, hi))  # noqa: E731
    arms_down = spine.view in ("cervical", "cervicothoracic")
    for side in (1.0, -1.0):
        z = 160.0
        if arms_down:
            base = c7.to_world(np.array([j(-25.0, 15.0), j(2.5, 4.5) * _mean_h(c7) - 10.0 * (strength - 1.0)]))
            off = side * canvas.side_offset(base, z)
            centre = base + off
            canvas.add_ellipsoid(centre, 24.0, 24.0, 0.0, 44.0 * min(strength, 1.5), density=0.5, cortex=1.4)
            clav = np.array([centre + [-30.0, -8.0], centre + [25.0, 0.0], centre + [85.0, 25.0]])
            canvas.add_tube(clav + off * 0.3, 5.5, 14.0 * min(strength, 1.5), cortex=1.5)
        # scapula: a thin plate with a thick lateral border and the spine of the scapula
        top = t1.to_world(np.array([-t1.depth / 2 - j(30.0, 50.0), 0.0]))
        bot = t4.to_world(np.array([-t4.depth / 2 - j(40.0, 70.0), j(1.5, 3.0) * _mean_h(t4)]))
        front = 0.5 * (top + bot) + np.array([j(25.0, 45.0), 0.0])
        plate = np.array([top, front + [0.0, -20.0], front + [5.0, 25.0], bot, 0.5 * (top + bot) - [25.0, 0.0]])
        off = side * canvas.side_offset(0.5 * (top + bot), 120.0)
        canvas.add_shell([(_round_poly(plate + off), 5.0)], cortex=1.2, edge=3.0, marrow=0.5)
        canvas.add_tube(np.array([front + [0.0, -20.0], 0.5 * (front + bot), bot]) + off, 3.5, 14.0, cortex=1.2)


# ------------------------------------------------------------------------------------------------
# head and neck


def add_head_neck(canvas: Canvas, spine: Spine, rng: np.random.Generator, strength: float) -> None:
    """Skull vault (its lower, occipital part), skull base (occiput, mastoid and petrous bone,
    clivus), hard palate and teeth, mandible (both halves), hyoid, airway."""
    c2 = spine.body("C2")
    d, h = c2.depth, _mean_h(c2)
    W = c2.to_world
    tip = -h / 2 - c2.dens_height
    j = lambda lo, hi: float(rng.uniform(lo, hi))  # noqa: E731
    # vault: an ellipsoidal shell; its lower rim (occiput) dips behind C1
    centre = np.array([j(-30.0, -5.0), tip - j(110.0, 130.0)])
    shell = j(6.0, 9.0)
    tilt = c2.phi - np.deg2rad(j(10.0, 25.0))
    for a, b_, dep, sign in ((100.0, 85.0, 150.0, 1.0), (100.0 - shell, 85.0 - shell, 150.0 - 2 * shell, -1.0)):
        canvas.add_ellipsoid(W(centre), a, b_, tilt, dep, material="cortical", density=sign * 0.5)
    # skull base: overlapping dense masses (basiocciput and clivus, occipital condyles over the
    # atlas, petrous ridges and mastoids behind), soft-edged where they thin out
    basion = np.array([-0.05 * d, tip - j(4.0, 8.0)])
    clivus = _irregular(rng, basion + [j(8.0, 14.0), -j(16.0, 22.0)], j(9.0, 12.0), 0.2, aspect=2.2, angle=c2.phi - 1.0)
    condyles = _irregular(rng, basion + [-j(6.0, 12.0), -j(3.0, 6.0)], j(6.0, 8.0), 0.2, aspect=0.7)
    canvas.add_shell([(W(clivus), 16.0), (W(condyles), 22.0)], cortex=1.2, edge=6.0, marrow=0.8)
    petrous = _irregular(rng, basion + [-j(10.0, 20.0), -j(22.0, 30.0)], j(13.0, 17.0), 0.3, aspect=0.55,
                         angle=c2.phi - j(0.3, 0.7))
    mastoid = _irregular(rng, basion + [-j(22.0, 32.0), -j(8.0, 14.0)], j(8.0, 11.0), 0.3, aspect=1.3)
    canvas.add_shell([(W(petrous), 22.0), (W(mastoid), 14.0)], cortex=1.0, edge=7.0, z=45.0, marrow=0.9)
    # hard palate (a plate seen edge-on) at about the level of the atlas
    pal0 = np.array([d / 2 + j(14.0, 22.0), tip - j(0.0, 10.0)])
    pal1 = pal0 + np.array([j(45.0, 55.0), -j(0.0, 6.0)])
    palate = np.array([pal0 + [0.0, -2.5], pal1 + [0.0, -1.5], pal1 + [0.0, 2.0], pal0 + [0.0, 3.5]])
    canvas.add_shell([(W(_round_poly(palate, 24, 1)), 30.0)], cortex=1.2, edge=2.0, marrow=0.7)
    # mandible: condyle under the skull base, ramus down to the angle, body forward to the chin
    cond = np.array([d / 2 + j(6.0, 12.0), tip - j(0.0, 8.0)])
    ang = np.array([d / 2 + j(10.0, 20.0), j(0.4, 1.1) * h + j(0.0, 8.0)])
    ramus = j(26.0, 32.0)
    body_h = j(24.0, 30.0)
    length = j(70.0, 85.0)
    ment = ang + [length, -j(5.0, 15.0)]
    # posterior border of the ramus down to the angle, the convex lower border forward to the
    # chin, the alveolar ridge back to the anterior border of the ramus and up to the coronoid
    lower = _bezier(np.array([ang + [0.0, 0.0], ang + [0.45 * length, 6.0], ment + [0.0, 0.0]]), 8)
    alveolar = _bezier(np.array([ment + [2.0, -body_h], ang + [0.5 * length, -body_h + 4.0],
                                 ang + [ramus + 4.0, -body_h + 2.0]]), 6)
    outline = np.vstack([[cond + [-3.0, -2.0], cond + [4.0, -3.0], cond + [6.0, 4.0]], [ang + [-4.0, -12.0]], lower,
                         [ment + [5.0, -8.0]], alveolar, [cond + [ramus + 4.0, 10.0], cond + [ramus + 2.0, 2.0],
                                                          cond + [ramus - 3.0, 4.0], cond + [12.0, 12.0]]])
    canvas.add_shell([(W(_round_poly(outline, 48, 1)), 8.0)], cortex=2.4, edge=3.0, z=45.0, marrow=0.5)
    # teeth: crowns with roots along both alveolar ridges (enamel is denser than bone)
    n_teeth = int(rng.integers(3, 8))
    for p_a, p_b, up in ((ang + [ramus + 4.0, -body_h], ment + [-6.0, -body_h], -1.0),
                         (pal0 + [4.0, 5.0], pal1 + [-4.0, 5.0], 1.0)):
        teeth = []
        for t in np.linspace(0.0, 1.0, n_teeth):
            base = p_a + t * (p_b - p_a) + rng.normal(0.0, 0.6, 2)
            w2 = rng.uniform(3.0, 4.0)
            crown = up * rng.uniform(7.0, 9.0)  # towards the occlusal plane
            root = -up * rng.uniform(10.0, 14.0)
            tooth = np.array([base + [-w2, crown], base + [w2, crown], base + [w2 - 0.5, 0.0], base + [1.0, root],
                              base + [-1.0, root], base + [-w2 + 0.5, 0.0]])
            teeth.append((W(_round_poly(tooth, 20, 1)), 8.0))
        canvas.add_shell(teeth, cortex=1.4, edge=2.0, marrow=1.1, density=1.3, z=20.0)
    # hyoid in front of C3
    c3 = spine.body("C3")
    canvas.add_ellipsoid(c3.to_world([c3.depth / 2 + j(22.0, 32.0), j(0.0, 0.8) * _mean_h(c3)]), 6.0, 3.0, c3.phi + 0.3, 25.0,
                         density=0.8, cortex=1.0)
    # airway: nasopharynx, oropharynx, larynx and trachea in front of the prevertebral soft tissue
    pts, radii = [W([d / 2 + 20.0, tip - 12.0])], [7.0]
    for b in spine.bodies[:7]:
        prevert = 4.0 if b.level in ("C2", "C3", "C4") else 13.0
        radius = 6.5 if b.level in ("C2", "C3") else 8.0
        pts.append(b.to_world([b.depth / 2 + prevert + radius, 0.0]))
        radii.append(radius)
    canvas.add_tube(np.array(pts), radii, 18.0 * min(strength, 1.5), material="air")


# ------------------------------------------------------------------------------------------------
# pelvis, sacrum and bowel


def add_sacrum(canvas: Canvas, spine: Spine, rng: np.random.Generator) -> None:
    """S2-S5 as one curved, tapering wedge continuing S1 down and back, the alae over S1-S2, the
    sacral canal's posterior wall with the median crest, and the coccyx."""
    s1 = spine.body("S1")
    sacral = [b for b in spine.bodies if b.segment == "sacral"]
    coccyx = [b for b in spine.bodies if b.segment == "coccyx"]
    front = [s1.corner("ant_bottom")] + [b.corner("ant_bottom") for b in sacral]
    back = [s1.corner("post_bottom")] + [b.corner("post_bottom") for b in sacral]
    poly = np.array(front + back[::-1])
    canvas.add_shell([(_round_poly(poly, 40, 1), 0.8 * s1.width)], cortex=1.1, edge=5.0, marrow=0.6, density=s1.density)
    # alae: lateral masses over the lower S1 body and S2, thin-walled and fatty, with soft edges
    sd, sh = s1.depth, _mean_h(s1)
    ala = np.array([[-0.5 * sd, 0.1 * sh], [0.4 * sd, 0.15 * sh], [0.3 * sd, 1.5 * sh], [-0.5 * sd, 1.4 * sh]])
    canvas.add_shell([(s1.to_world(_round_poly(ala)), 50.0)], cortex=0.5, edge=14.0, marrow=0.3)
    # posterior wall of the sacral canal with the median crest
    crest = [s1.to_world([-sd / 2 - 10.0, -0.3 * sh])] + [b.to_world([-b.depth / 2 - 8.0, 0.0]) for b in sacral]
    canvas.add_tube(np.array(crest), 4.5, 14.0, cortex=1.2, density=0.8)
    for b in coccyx:
        canvas.add_body(b)


def add_pelvis(canvas: Canvas, spine: Spine, rng: np.random.Generator, strength: float) -> None:
    """Both hip bones (iliac wing with its crest, the arcuate line, acetabular roof, ischium) and
    femoral heads with their necks, left and right apart by the beam's divergence and the roll."""
    s1 = spine.body("S1")
    pf, tw = spine.patient_frame, spine.to_world
    c = pf(s1.center)
    j = lambda lo, hi: float(rng.uniform(lo, hi))  # noqa: E731
    k = spine.size * j(0.92, 1.1)
    # the hip bone in the upright patient frame (mm from the S1 centre, x anterior, y caudal)
    crest_top = np.array([j(-10.0, 20.0), -j(45.0, 65.0)])
    psis = np.array([-j(45.0, 60.0), j(5.0, 20.0)])
    asis = np.array([j(85.0, 110.0), j(0.0, 20.0)])
    aiis = asis + [-j(10.0, 18.0), j(28.0, 38.0)]
    acet = np.array([j(40.0, 60.0), j(90.0, 110.0)])
    head_r = j(22.0, 26.0) * spine.size
    notch = np.array([j(-5.0, 10.0), j(55.0, 70.0)])
    crest = _bezier(np.array([psis, [psis[0] - 5.0, crest_top[1] + 15.0], crest_top,
                              [asis[0] - 5.0, crest_top[1] + 10.0], asis]), 14)
    wing = np.vstack([crest, aiis, acet + [head_r * 0.6, -head_r - 4.0], acet + [-head_r * 0.8, -head_r - 2.0],
                      notch, [psis[0] + 8.0, psis[1] + 35.0]])
    arcuate = _bezier(np.array([[-15.0, 10.0], [10.0, 55.0], [45.0, 80.0], [85.0, 105.0]]), 10)
    roof = acet + (head_r + 2.5) * np.stack([np.cos(np.linspace(3.4, 5.6, 8)), np.sin(np.linspace(3.4, 5.6, 8))], 1)
    ischium = np.array([acet + [-head_r - 2.0, -5.0], acet + [-5.0, head_r], acet + [-5.0, 85.0], acet + [-30.0, 80.0]])
    neck_dir = np.array([-0.55, 0.83])
    for side in (1.0, -1.0):
        off = side * canvas.side_offset(tw(c), 70.0 * k) + rng.normal(0.0, 1.0, 2)
        place = lambda pts: tw(c + k * np.asarray(pts)) + off  # noqa: E731
        canvas.add_shell([(place(_round_poly(wing, 48, 1)), 5.0)], cortex=1.5, edge=3.0, marrow=0.35)
        canvas.add_tube(place(crest[2:-3]), 2.5, 5.0 * min(max(strength, 0.3), 1.3), cortex=1.0, density=0.7)
        canvas.add_tube(place(arcuate), 1.5, 6.0, cortex=0.8, density=0.7)
        canvas.add_tube(place(roof), 2.0, 10.0, cortex=0.8, density=0.7)
        canvas.add_shell([(place(_round_poly(ischium)), 9.0)], cortex=1.4, edge=4.0, marrow=0.4)
        off_h = side * canvas.side_offset(tw(c), 90.0 * k)
        head = tw(c + k * acet) + off_h
        canvas.add_ellipsoid(head, head_r, head_r, 0.0, 1.7 * head_r, cortex=1.4, density=0.7)
        canvas.add_capsule(head + 0.6 * head_r * neck_dir, head + (head_r + 40.0 * k) * neck_dir, 14.0, 17.0, 28.0,
                           cortex=1.6, density=0.6)


def add_bowel(canvas: Canvas, spine: Spine, rng: np.random.Generator, strength: float) -> None:
    """Colon (flexures, ascending, descending, transverse, sigmoid and rectum) filled with stool
    (mottled: small gas bubbles) or gas (dark segments with haustral folds), and small-bowel gas."""
    if strength <= 0:
        return
    gx, gy = canvas.low_grid()
    shape = gx.shape
    ant, post, yc = _level_keys(spine)
    j = lambda lo, hi: float(rng.uniform(lo, hi))  # noqa: E731
    f = canvas.field
    sp = 2.0 * f.spacing  # mm per pixel of the half-resolution layer
    a, m = ant, lambda lv: 0.5 * (ant[lv] + post[lv])  # noqa: E731
    routes = [  # patient frame (x, y) control points, lumen radius (mm)
        ([[m("T12") + j(0, 30), yc["T11"]], [a["L1"] + j(0, 30), yc["L1"]], [m("L3") + j(0, 40), yc["L3"]],
          [a["L5"] + j(0, 30), yc["L5"]]], j(16, 24)),  # splenic flexure and descending colon
        ([[a["L1"] + j(10, 40), yc["L1"]], [a["L3"] + j(10, 50), yc["L3"]], [a["L5"] + j(20, 50), yc["S1"]]], j(20, 28)),  # ascending
        ([[a["L1"] + j(30, 60), yc["L1"]], [a["L2"] + j(70, 110), yc["L3"] + j(-20, 20)], [a["L3"] + j(110, 150), yc["L2"]]],
         j(18, 26)),  # transverse
        ([[a["L5"] + j(20, 60), yc["L5"]], [a["S1"] + j(30, 70), yc["S1"] + 40], [a["S1"] + j(5, 25), yc["S1"] + j(70, 110)],
          [a["S1"] - 5.0, yc["S1"] + 150]], j(18, 30)),  # sigmoid and rectum
    ]
    air = np.zeros(shape, np.float32)
    noise = rng.standard_normal(shape).astype(np.float32)
    bubbles = cv2.GaussianBlur(noise, (0, 0), max(0.5, 1.0 / sp))
    bubbles /= bubbles.std() + 1e-6
    world_to_low = lambda pts: (f.to_px(spine.to_world(np.asarray(pts))) - 0.5) / 2.0  # noqa: E731
    for ctrl, radius in routes:
        if rng.random() > 0.85 * min(strength, 1.0) + 0.1:
            continue
        full = _bezier(np.array(ctrl), 24)
        content, start, span = rng.random(), rng.random(), rng.uniform(0.35, 1.0)
        gas = content >= 0.55
        if gas:  # a gas-filled stretch of the segment, the rest collapsed
            span *= 0.6
        i0 = int(start * (1.0 - span) * 23)
        line = full[i0 : i0 + max(int(span * 24), 3)]
        q = world_to_low(line)
        r_px = radius / sp
        lo, hi = q.min(0) - r_px - 2, q.max(0) + r_px + 2
        x0, y0 = max(int(lo[0]), 0), max(int(lo[1]), 0)
        x1, y1 = min(int(hi[0]) + 1, shape[1]), min(int(hi[1]) + 1, shape[0])
        if x1 <= x0 or y1 <= y0:
            continue
        mask = np.full((y1 - y0, x1 - x0), 255, np.uint8)
        cv2.polylines(mask, [np.round((q - [x0, y0]) * 16).astype(np.int32)], False, 0, 1, cv2.LINE_8, shift=4)
        dist = np.minimum(cv2.distanceTransform(mask, cv2.DIST_L2, 3), 1e4) * sp
        # a lumpy wall: the lumen radius varies along the segment (haustra)
        wall = radius * (1.0 + 0.15 * np.clip(cv2.GaussianBlur(noise[y0:y1, x0:x1], (0, 0), max(1.0, 6.0 / sp)) * 3.0, -1.5, 1.5))
        chord = 2.0 * np.sqrt(np.clip(wall ** 2 - dist ** 2, 0.0, None))
        local = bubbles[y0:y1, x0:x1]
        if not gas:  # stool: a mottle of small gas bubbles
            fine = noise[y0:y1, x0:x1]
            frac = 0.06 + 0.11 * np.clip((local - 0.2) / 1.2, 0.0, 1.0) + 0.03 * np.clip(fine, -1.0, 2.0)
        else:
            frac = rng.uniform(0.35, 0.7) * (1.0 - 0.25 * np.clip(local, -1.0, 1.0))
        air[y0:y1, x0:x1] += (chord * frac).astype(np.float32)
    # small-bowel gas: a few small loops in front of the lumbar spine
    n = int(rng.poisson(2.0 * strength))
    for _ in range(n):
        y = j(yc["L1"], yc["S1"])
        x = np.interp(y, [yc["L1"], yc["S1"]], [a["L1"], a["S1"]]) + j(10.0, 120.0)
        blob = _irregular(rng, [x, y], j(6.0, 14.0), 0.3, aspect=j(0.5, 1.0), angle=j(0, np.pi))
        q = world_to_low(blob)
        x0, y0 = max(int(q[:, 0].min()) - 2, 0), max(int(q[:, 1].min()) - 2, 0)
        x1, y1 = min(int(q[:, 0].max()) + 3, shape[1]), min(int(q[:, 1].max()) + 3, shape[0])
        if x1 <= x0 or y1 <= y0:
            continue
        mask = np.zeros((y1 - y0, x1 - x0), np.uint8)
        cv2.fillPoly(mask, [np.round((q - [x0, y0]) * 16).astype(np.int32)], 1, cv2.LINE_8, shift=4)
        dist = cv2.distanceTransform(mask, cv2.DIST_L2, 3) * sp
        air[y0:y1, x0:x1] += (j(10.0, 25.0) * np.sqrt(np.clip(dist / 4.0, 0.0, 1.0))).astype(np.float32)
    air = cv2.GaussianBlur(air, (0, 0), 0.7)
    canvas.low -= np.float32(MU_SOFT * min(strength, 1.5)) * air


def add_aortic_calcification(canvas: Canvas, spine: Spine, rng: np.random.Generator) -> None:
    """Elderly patients: calcified plaques along the wall of the abdominal aorta, a dotted bright
    line in front of the lumbar bodies."""
    if rng.random() > 0.8 * spine.degeneration:
        return
    for level in ("T12", "L1", "L2", "L3", "L4"):
        b = spine.body(level)
        for _ in range(int(rng.integers(0, 4))):
            c = b.to_world([b.depth / 2 + rng.uniform(4.0, 14.0), rng.uniform(-0.6, 0.6) * _mean_h(b)])
            canvas.add_capsule(c, c + rng.normal(0.0, 3.0, 2) + [0.0, rng.uniform(3.0, 8.0)], 0.9, 0.7, 6.0,
                               material="cortical", density=1.0)


def add_disc_gas(canvas: Canvas, spine: Spine) -> None:
    """Vacuum phenomenon: a thin lens of gas inside some degenerated discs."""
    for i in spine.extra.get("_vacuum", []):
        upper, lower = spine.bodies[i], spine.bodies[i + 1]
        a = 0.5 * (upper.corner("ant_bottom") + lower.corner("ant_top"))
        p = 0.5 * (upper.corner("post_bottom") + lower.corner("post_top"))
        c = 0.6 * a + 0.4 * p
        ang = float(np.arctan2(*(a - p)[::-1]))
        canvas.add_ellipsoid(c, 0.3 * np.hypot(*(a - p)), 0.9, ang, 0.6 * upper.width, material="air")


# ------------------------------------------------------------------------------------------------
# implants


def _screw(canvas: Canvas, b: Body, rng: np.random.Generator, z: float, length: float, diameter: float) -> np.ndarray:
    """A threaded pedicle screw through the pedicle into the body; returns its head's position."""
    d, h = b.depth, _mean_h(b)
    entry = np.array([-d / 2 - 0.32 * d, -0.12 * h + rng.normal(0.0, 0.04 * h)])
    direction = np.array([1.0, rng.normal(0.0, 0.08)])
    direction /= np.hypot(*direction)
    normal = np.array([-direction[1], direction[0]])
    s = np.linspace(0.0, length, max(int(length / 1.4), 8))
    r = diameter / 2 * np.where(np.arange(len(s)) % 2 == 0, 1.0, 0.72)
    r[-2:] = [0.6 * diameter / 2, 0.3 * diameter / 2]  # tapered tip
    side_a = entry + s[:, None] * direction + r[:, None] * normal
    side_b = entry + s[::-1, None] * direction - r[::-1, None] * normal
    shank = np.vstack([side_a, side_b])
    head_c = entry - 6.0 * direction
    tulip = np.array([head_c - 6.0 * direction - 6.5 * normal, head_c + 3.0 * direction - 6.0 * normal,
                      head_c + 3.0 * direction + 6.0 * normal, head_c - 6.0 * direction + 6.5 * normal])
    off = canvas.side_offset(b.center, z)
    canvas.add_shell([(b.to_world(shank) + off, diameter)], edge=diameter / 2, material="metal")
    canvas.add_shell([(b.to_world(_round_poly(tulip, 16, 1)) + off, 11.0)], edge=3.0, material="metal")
    return b.to_world(head_c) + off


def add_implants(canvas: Canvas, spine: Spine, rng: np.random.Generator, probability: float,
                 visible: list[str]) -> list[dict]:
    """Pedicle screws and rods, interbody cages (titanium or PEEK with markers) and vertebral
    cement (thoracic and lumbar); anterior plate with screws and cage, or a disc prosthesis (neck)."""
    draw, kind_u, start_u, n_u = rng.random(4)
    if draw >= probability:
        return []
    implants: list[dict] = []
    cervical = spine.view in ("cervical", "cervicothoracic")
    if cervical:
        options = [lv for lv in ("C3", "C4", "C5", "C6") if lv in visible and f"C{int(lv[1]) + 1}" in visible] or ["C4"]
        start = options[int(start_u * len(options))]
        names = [start, f"C{int(start[1]) + 1}"]
        if n_u < 0.35 and start != "C6" and f"C{int(start[1]) + 2}" in visible:
            names.append(f"C{int(start[1]) + 2}")
        bodies = [spine.body(n) for n in names]
        if kind_u < 0.75:
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
                _cage(canvas, upper, lower, rng, peek=rng.random() < 0.5)
                implants.append({"type": "cage", "levels": [upper.level, lower.level]})
        else:  # disc prosthesis: two metal endplates with a keel
            upper, lower = bodies[0], bodies[1]
            for b, v in ((upper, 0.5), (lower, -0.5)):
                hh = _mean_h(b)
                plate = np.array([[-0.42 * b.depth, v * hh - 1.2], [0.45 * b.depth, v * hh - 1.2],
                                  [0.45 * b.depth, v * hh + 1.2], [-0.42 * b.depth, v * hh + 1.2]])
                canvas.add_polygon(b.to_world(plate), 14.0, material="metal")
            implants.append({"type": "disc_prosthesis", "levels": [upper.level, lower.level]})
        return implants
    region = [lv for lv in visible if lv[0] in "TL" or lv == "S1"]
    if spine.view in ("lumbar", "thoracolumbar"):
        region = [lv for lv in region if lv in ("T10", "T11", "T12", "L1", "L2", "L3", "L4", "L5", "S1")] or region
    if len(region) < 2:
        return []
    if kind_u < 0.2:  # cement in one to three (fractured-looking) bodies
        fractured = [f["level"] for f in spine.extra.get("fractures", [])]
        cands = [lv for lv in region if lv != "S1"]
        chosen = [lv for lv in fractured if lv in cands] or [cands[int(start_u * len(cands))]]
        extra = [lv for lv in cands if lv not in chosen]
        for _ in range(int(n_u * 3)):
            if extra:
                chosen.append(extra.pop(int(rng.random() * len(extra))))
        for lv in chosen:
            _cement(canvas, spine.body(lv), rng)
        implants.append({"type": "cement", "levels": sorted(chosen, key=CHAIN.index)})
        return implants
    count = 2 + int(n_u * (4 if spine.view != "lumbar" else 2.5))
    count = min(count, len(region))
    start = int(start_u * (len(region) - count + 1))
    names = region[start : start + count]
    bodies = [spine.body(n) for n in names]
    heads = {1.0: [], -1.0: []}
    diameter = rng.uniform(5.5, 7.0)
    for b in bodies:
        length = 0.72 * b.depth + 0.32 * b.depth
        for side in (1.0, -1.0):
            heads[side].append(_screw(canvas, b, rng, side * (b.width / 2 - 8.0), length, diameter))
    for side, hs in heads.items():
        hs = np.array(hs)
        ext = (hs[-1] - hs[0]) / max(len(hs) - 1, 1) * 0.25
        canvas.add_tube(np.array([hs[0] - ext, *hs[1:-1], hs[-1] + ext]), 2.75, 5.5, material="metal")
    implants.append({"type": "pedicle_screws_rods", "levels": names})
    if kind_u > 0.55:
        lumbar_pairs = [(u, l) for u, l in zip(bodies[:-1], bodies[1:]) if u.level[0] == "L"]
        for upper, lower in lumbar_pairs[-2:]:
            _cage(canvas, upper, lower, rng, peek=rng.random() < 0.6)
            implants.append({"type": "cage", "levels": [upper.level, lower.level]})
    return implants


def _plate(canvas: Canvas, top: np.ndarray, bottom: np.ndarray, thickness: float, width: float) -> None:
    axis = bottom - top
    normal = np.array([axis[1], -axis[0]]) / (np.hypot(*axis) + 1e-9) * thickness / 2
    canvas.add_polygon(np.array([top - normal, top + normal, bottom + normal, bottom - normal]), width, material="metal")


def _cage(canvas: Canvas, upper: Body, lower: Body, rng: np.random.Generator, peek: bool) -> None:
    """An interbody cage spanning the disc space: a hollow titanium box, or a nearly radiolucent
    PEEK box whose only bright parts are its tantalum marker pins."""
    a, b = upper.corner("post_bottom"), upper.corner("ant_bottom")
    c, d = lower.corner("ant_top"), lower.corner("post_top")
    centre = (a + b + c + d) / 4
    outer = centre + 0.8 * (np.array([a, b, c, d]) - centre)
    inner = centre + 0.55 * (np.array([a, b, c, d]) - centre)
    if not peek:
        canvas.add_polygon(outer, 7.0, material="metal")
        canvas.add_polygon(inner, -5.0, material="metal")
        return
    canvas.add_polygon(outer, 12.0, material="cortical")
    canvas.add_polygon(inner, -9.0, material="cortical")
    for t in (0.15, 0.85):
        p = outer[0] + t * (outer[1] - outer[0])
        q = outer[3] + t * (outer[2] - outer[3])
        canvas.add_capsule(p + 0.2 * (q - p), q - 0.2 * (q - p), 0.6, 0.6, 3.0, material="metal")


def _cement(canvas: Canvas, b: Body, rng: np.random.Generator) -> None:
    """PMMA cement in a body (vertebroplasty): a dense cloud with lobulated edges inside it."""
    inner = b.outline(inset_u=b.cortex + 1.0, inset_v=b.endplate + 1.0, n=48)
    centre = inner.mean(0) + rng.normal(0.0, 0.1, 2) * [b.depth, _mean_h(b)]
    blob = (inner - inner.mean(0)) * rng.uniform(0.55, 0.95) + centre
    t = np.linspace(0, 2 * np.pi, len(blob), endpoint=False)
    wob = 1.0 + 0.12 * np.sin(3 * t + rng.uniform(0, 6)) + 0.08 * np.sin(5 * t + rng.uniform(0, 6))
    blob = centre + (blob - centre) * wob[:, None]
    # keep it inside the body
    lo, hi = inner.min(0), inner.max(0)
    blob = np.clip(blob, lo, hi)
    canvas.add_shell([(b.to_world(blob), 0.6 * b.width)], edge=0.25 * b.width, material="cement")
