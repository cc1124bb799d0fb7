"""Sagittal anatomy of the spine in millimetres: vertebral bodies, discs and their outlines.

World frame (mm): x points anteriorly, y caudally. A body's pose is its centre and an angle phi;
its local axes are e_u = (cos phi, sin phi) (anterior) and e_v = (-sin phi, cos phi) (caudal),
so a positive phi tilts the caudal axis posteriorly and lordosis is phi growing downwards.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

# Typical adult dimensions (mm): body height, antero-posterior depth, transverse width, disc below.
# Sources: standard anatomy tables (cervical 13-15 mm bodies, lumbar 25-28 mm, discs 4-12 mm).
_DIMS: dict[str, tuple[float, float, float, float]] = {
    "C2": (16.0, 15.5, 17.0, 4.0),
    "C3": (13.5, 15.5, 17.5, 4.5),
    "C4": (13.5, 16.0, 18.5, 4.5),
    "C5": (13.5, 16.0, 19.5, 5.0),
    "C6": (13.5, 16.5, 21.0, 5.0),
    "C7": (14.5, 17.0, 24.0, 4.5),
    **{
        f"T{i}": (16.0 + (i - 1) * 8.0 / 11, 17.5 + (i - 1) * 13.5 / 11, 27.0 + (i - 1) * 13.0 / 11, 3.5 + (i - 1) * 3.0 / 11)
        for i in range(1, 13)
    },
    # adult discs as filmed: mid-disc heights, thinner than cadaver tables (the population is older)
    "L1": (25.0, 33.0, 42.0, 7.5),
    "L2": (26.0, 34.0, 44.0, 8.5),
    "L3": (27.0, 35.0, 46.0, 9.0),
    "L4": (27.0, 36.0, 48.0, 9.5),
    "L5": (26.0, 36.0, 50.0, 9.5),
    "S1": (27.0, 40.0, 48.0, 0.0),
}

# Typical disc wedge angle (degrees, + = lordotic) below each level.
_DISC_ANGLE: dict[str, float] = {
    "C2": 3.0, "C3": 4.0, "C4": 4.0, "C5": 3.5, "C6": 2.5, "C7": -1.0,
    **{f"T{i}": -1.0 for i in range(1, 12)},
    "T12": 0.0, "L1": 4.0, "L2": 6.0, "L3": 8.0, "L4": 10.0, "L5": 12.0,
}


@dataclass
class Body:
    """A vertebral body (or fused sacral segment) placed in the world frame."""

    level: str | None
    center: np.ndarray
    phi: float
    depth: float  # antero-posterior (mm)
    h_ant: float
    h_post: float
    width: float  # transverse, i.e. along the beam (mm)
    concavity_top: float = 1.0
    concavity_bottom: float = 1.0
    waist_ant: float = 0.6
    waist_post: float = 0.3
    corner_radius: float = 1.5
    cortex: float = 0.8
    endplate: float = 1.0
    density: float = 1.0
    dens_height: float = 0.0  # C2 odontoid peg above the body
    dens_depth: float = 0.0
    osteophytes: list[tuple[str, float]] = field(default_factory=list)  # (corner, length mm)
    nominal_height: float = 0.0
    segment: str = "vertebra"  # "vertebra", "sacral" (S2-S5, fused) or "coccyx"

    @property
    def e_u(self) -> np.ndarray:
        return np.array([np.cos(self.phi), np.sin(self.phi)])

    @property
    def e_v(self) -> np.ndarray:
        return np.array([-np.sin(self.phi), np.cos(self.phi)])

    def to_world(self, uv: np.ndarray) -> np.ndarray:
        c, s = np.cos(self.phi), np.sin(self.phi)
        # rows of the matrix are e_u and e_v: world = center + u * e_u + v * e_v
        return np.dot(np.asarray(uv, dtype=np.float64), np.array([[c, s], [-s, c]])) + self.center

    def corner(self, name: str) -> np.ndarray:
        """World position of a rim corner: 'ant_top', 'post_top', 'ant_bottom', 'post_bottom'."""
        u = self.depth / 2 if name.startswith("ant") else -self.depth / 2
        h = self.h_ant if name.startswith("ant") else self.h_post
        v = -h / 2 if name.endswith("top") else h / 2
        return self.to_world(np.array([u, v]))

    @property
    def middle_height(self) -> float:
        return (self.h_ant + self.h_post) / 2 - self.concavity_top - self.concavity_bottom

    def outline(self, inset_u: float = 0.0, inset_v: float = 0.0, n: int = 96) -> np.ndarray:
        """Closed outline (n, 2) in local (u, v) mm, inset by cortex/endplate thickness when asked.

        Concave endplates and walls, rounded corners, the C2 dens and anterior osteophytes.
        """
        key = (self.depth, self.h_ant, self.h_post, self.concavity_top, self.concavity_bottom, self.waist_ant,
               self.waist_post, self.corner_radius, self.dens_height, self.dens_depth, tuple(self.osteophytes),
               inset_u, inset_v, n)
        cache = self.__dict__.setdefault("_outline_cache", {})
        if key not in cache:  # the shape is local: it does not change when the body moves
            cache[key] = _body_outline(self, inset_u, inset_v, n)
            cache[key].flags.writeable = False
        return cache[key]


def _smooth_closed(points: np.ndarray, window: int) -> np.ndarray:
    if window < 2:
        return points
    kernel = np.ones(window) / window
    pad = np.concatenate([points[-window:], points, points[:window]])
    out = np.stack([np.convolve(pad[:, k], kernel, mode="same") for k in range(2)], axis=1)
    return out[window:-window]


def _resample_closed(points: np.ndarray, n: int) -> np.ndarray:
    closed = np.vstack([points, points[:1]])
    seg = np.hypot(*np.diff(closed, axis=0).T)
    s = np.concatenate([[0.0], np.cumsum(seg)])
    t = np.linspace(0.0, s[-1], n, endpoint=False)
    return np.stack([np.interp(t, s, closed[:, 0]), np.interp(t, s, closed[:, 1])], axis=1)


def _body_outline(b: Body, inset_u: float, inset_v: float, n: int) -> np.ndarray:
    half = b.depth / 2 - inset_u
    m = 48  # samples per side before smoothing and resampling
    u = np.linspace(-half, half, m)
    frac = (u + b.depth / 2) / b.depth  # 0 posterior .. 1 anterior
    h = b.h_post + (b.h_ant - b.h_post) * frac
    bowl = 1.0 - (u / max(half, 1e-6)) ** 2
    top = -h / 2 + inset_v + b.concavity_top * bowl
    bottom = h / 2 - inset_v - b.concavity_bottom * bowl
    if b.dens_height > 0:
        # odontoid peg: a rounded column slightly posterior of the body centre
        centre, radius = -0.12 * b.depth, b.dens_depth / 2 - inset_u
        q = np.clip(1.0 - ((u - centre) / max(radius, 1e-6)) ** 2, 0.0, None)
        top = np.minimum(top, -h / 2 + inset_v - (b.dens_height - inset_v) * q ** 0.35 * np.where(q > 0, 1.0, 0.0))
    v_post = np.linspace(bottom[0], top[0], m)
    v_ant = np.linspace(top[-1], bottom[-1], m)
    hp, ha = max(bottom[0] - top[0], 1e-6), max(bottom[-1] - top[-1], 1e-6)
    u_post = -half + b.waist_post * (1.0 - ((v_post - (top[0] + bottom[0]) / 2) / (hp / 2)) ** 2)
    u_ant = half - b.waist_ant * (1.0 - ((v_ant - (top[-1] + bottom[-1]) / 2) / (ha / 2)) ** 2)
    # clockwise in (u right, v down): top edge posterior->anterior, anterior wall down,
    # bottom edge anterior->posterior, posterior wall up
    pts = np.concatenate(
        [
            np.stack([u, top], 1),
            np.stack([u_ant, v_ant], 1)[1:-1],
            np.stack([u[::-1], bottom[::-1]], 1),
            np.stack([u_post, v_post], 1)[1:-1],
        ]
    )
    for corner, length in b.osteophytes:
        if length <= 0:
            continue
        sign_v = -1.0 if corner.endswith("top") else 1.0
        cu, cv = half, (top[-1] if sign_v < 0 else bottom[-1])
        d = np.hypot(pts[:, 0] - cu, pts[:, 1] - cv)
        # beak: push the rim near the corner outwards, mostly towards the neighbouring disc
        direction = np.array([0.45, sign_v]) / np.hypot(0.45, 1.0)
        pts = pts + (length * np.exp(-((d / (0.09 * b.depth + 1.0)) ** 2)))[:, None] * direction
    window = max(2, int(round(len(pts) * b.corner_radius / (2 * (b.depth + (b.h_ant + b.h_post) / 2)))))
    pts = _smooth_closed(_resample_closed(pts, 4 * m), window)
    return _resample_closed(pts, n)


def level_dims(level: str) -> tuple[float, float, float, float]:
    return _DIMS[level]


def disc_angle_deg(level: str) -> float:
    return _DISC_ANGLE.get(level, 0.0)


def place_below(upper: Body, lower: Body, disc_post: float, wedge_rad: float, slip: float = 0.0) -> None:
    """Place ``lower`` under ``upper``: posterior disc height ``disc_post`` (mm) and disc wedge angle."""
    rim = upper.corner("ant_bottom") - upper.corner("post_bottom")
    alpha = np.arctan2(rim[1], rim[0])  # world angle of the upper body's lower rim
    beta = np.arctan2((lower.h_post - lower.h_ant) / 2, lower.depth)  # local angle of lower's top rim
    lower.phi = alpha + wedge_rad - beta
    mid = alpha + wedge_rad / 2
    normal = np.array([-np.sin(mid), np.cos(mid)])
    along = np.array([np.cos(mid), np.sin(mid)])
    post_top = upper.corner("post_bottom") + disc_post * normal + slip * along
    lower.center = np.zeros(2)
    lower.center = post_top - lower.corner("post_top")


def transform_bodies(bodies: list[Body], rotation: float, shift: np.ndarray) -> None:
    """Rotate every body about the origin by ``rotation`` (rad), then shift (mm)."""
    c, s = np.cos(rotation), np.sin(rotation)
    rot = np.array([[c, -s], [s, c]])
    for b in bodies:
        b.center = rot @ b.center + shift
        b.phi += rotation

