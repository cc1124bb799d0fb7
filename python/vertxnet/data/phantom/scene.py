"""One phantom film: anatomy, pathology and pose, drawn from per-feature random streams.

Every feature draws from its own child of ``SeedSequence([seed, index])``, so switching one knob
changes that feature only and image ``i`` never depends on how many images are generated.
The whole column C2-S1 (with the sacrum and coccyx) is built for every film; the view decides
which part of it the field shows.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .anatomy import Body, disc_angle_deg, level_dims, place_below, transform_bodies
from .config import Knobs

CHAIN = (
    "C2", "C3", "C4", "C5", "C6", "C7",
    *(f"T{i}" for i in range(1, 13)),
    "L1", "L2", "L3", "L4", "L5", "S1",
)
SACRAL_SEGMENTS = 4  # S2..S5 under S1, then a short coccyx

STREAMS = (
    "view", "spine", "field", "fracture", "osteophyte", "disc", "implant", "soft", "texture",
    "detector", "noise", "touching", "oblique", "thorax", "bowel", "pelvis", "head", "posterior", "film",
)

#: The run of levels the generator frames upright (before the tilt) for each view.
UPRIGHT_RUN = {
    "cervical": ("C2", "C7"),
    "cervicothoracic": ("C5", "T4"),
    "thoracic": ("T2", "T11"),
    "thoracolumbar": ("T10", "L4"),
    "lumbar": ("L1", "L5"),
}


def streams(seed: int, index: int) -> dict[str, np.random.Generator]:
    children = np.random.SeedSequence([seed, index]).spawn(len(STREAMS))
    return {name: np.random.default_rng(child) for name, child in zip(STREAMS, children)}


@dataclass
class Spine:
    view: str
    bodies: list[Body]  # top to bottom, incl. sacral/coccygeal segments (level None)
    rotation: float = 0.0  # radians applied after straightening
    shift: np.ndarray = field(default_factory=lambda: np.zeros(2))
    straighten: float = 0.0
    bone_density: float = 1.0
    degeneration: float = 0.0  # 0 young .. 1 old: disc narrowing, sclerosis, osteophytes
    size: float = 1.0
    extra: dict = field(default_factory=dict)

    def body(self, level: str) -> Body | None:
        for b in self.bodies:
            if b.level == level:
                return b
        return None

    @property
    def named(self) -> list[Body]:
        return [b for b in self.bodies if b.level is not None]

    def patient_frame(self, pts: np.ndarray) -> np.ndarray:
        """World (as filmed) -> the upright patient frame the anatomy was built in."""
        c, s = np.cos(self.rotation), np.sin(self.rotation)
        return np.dot(np.asarray(pts, float) - self.shift, np.array([[c, -s], [s, c]]))

    def to_world(self, pts: np.ndarray) -> np.ndarray:
        """Inverse of :meth:`patient_frame`."""
        c, s = np.cos(self.rotation), np.sin(self.rotation)
        return np.dot(np.asarray(pts, float), np.array([[c, s], [-s, c]])) + self.shift


def _jitter(rng: np.random.Generator, sd: float) -> float:
    return float(1.0 + np.clip(rng.normal(0.0, sd), -2.5 * sd, 2.5 * sd))


def build_spine(view: str, knobs: Knobs, rngs: dict[str, np.random.Generator]) -> Spine:
    rng = rngs["spine"]
    size = _jitter(rng, 0.07)  # patient size
    # most spine films are of older patients: thin trabecular bone, narrowed discs
    age = float(rng.beta(2.2, 1.6))
    bone_density = float(np.clip(1.15 - 0.55 * age + rng.normal(0.0, 0.12), 0.35, 1.4))
    bodies: list[Body] = []
    for level in CHAIN:
        h, d, w, _ = level_dims(level)
        h, d, w = h * size * _jitter(rng, 0.03), d * size * _jitter(rng, 0.03), w * size * _jitter(rng, 0.04)
        region = level[0]
        conc_bottom = (0.04 if region == "C" else 0.05) * d * _jitter(rng, 0.25)
        conc_top = (0.015 if region == "C" else 0.045) * d * _jitter(rng, 0.25)
        h_ant, h_post = h, h
        if region == "T":
            h_ant = h * (0.95 - 0.03 * age)  # physiological anterior wedging of thoracic bodies
        if level == "L5":
            h_ant, h_post = h * 1.08, h * 0.92
        if level == "S1":
            h_ant, h_post = h * 1.05, h * 0.85
        sclerosis = 1.0 + 0.5 * age * rng.random()
        b = Body(
            level=level, center=np.zeros(2), phi=0.0, depth=d, h_ant=h_ant, h_post=h_post, width=w,
            concavity_top=conc_top, concavity_bottom=conc_bottom,
            waist_ant=0.03 * d * _jitter(rng, 0.4), waist_post=0.02 * d,
            corner_radius=0.1 * min(h, d) * _jitter(rng, 0.25), cortex=(0.3 + 0.018 * d),
            endplate=(0.45 + 0.018 * d) * sclerosis,
            density=bone_density * _jitter(rng, 0.05), nominal_height=h,
        )
        if level == "C2":
            b.dens_height = 14.0 * size * _jitter(rng, 0.06)
            b.dens_depth = 9.5 * size * _jitter(rng, 0.05)
            b.concavity_top = 0.0
        if level == "S1":
            b.concavity_top = 0.02 * d
            b.concavity_bottom = 0.0
            b.endplate *= 0.35  # fused with S2 below; the top endplate is drawn by the sacrum
        bodies.append(b)
    prev = bodies[-1]  # S2-S5 and the coccyx: fused, shrinking, curving forward
    for k in range(SACRAL_SEGMENTS + 3):
        coccyx = k >= SACRAL_SEGMENTS
        depth = max(prev.depth * (0.80 if not coccyx else 0.7), 6.0)
        height = max(prev.nominal_height * (0.84 if not coccyx else 0.75), 5.0)
        wedge = 0.0 if coccyx else depth * np.tan(np.deg2rad(12.0 * _jitter(rng, 0.25))) / 2
        seg = Body(
            level=None, center=np.zeros(2), phi=0.0, depth=depth, h_ant=height - wedge,
            h_post=height + wedge, width=prev.width * 0.8, concavity_top=0.0, concavity_bottom=0.0,
            waist_ant=0.5, waist_post=0.2, corner_radius=0.5, cortex=0.6, endplate=0.15 if not coccyx else 0.5,
            density=bone_density * 0.95, nominal_height=height, segment="coccyx" if coccyx else "sacral",
        )
        bodies.append(seg)
        prev = seg
    # sagittal curves: one factor per film for each curve plus per-disc variation, scaled by the knob
    lordosis = 1.0 + knobs.curvature * float(np.clip(rng.normal(0.0, 0.45), -1.6, 1.6))
    kyphosis = 1.0 + knobs.curvature * float(np.clip(rng.normal(0.0, 0.4), -1.5, 1.5)) + 0.4 * age
    wedges: list[float] = []
    discs: list[float] = []
    for upper, lower in zip(bodies[:-1], bodies[1:]):
        if upper.level is not None and lower.level is not None:
            base = disc_angle_deg(upper.level)
            scale = lordosis if base > 0 else kyphosis
            deg = base * scale + knobs.curvature * rng.normal(0.0, 1.2)
            # discs narrow with age, unevenly (the lower lumbar and mid-cervical ones most)
            loss = age * rng.uniform(0.0, 0.45)
            disc = level_dims(upper.level)[3] * size * _jitter(rng, 0.15) * (1.0 - loss)
        else:  # fused sacral segments keep a faint remnant line
            coccyx = lower.segment == "coccyx"
            deg = -20.0 * _jitter(rng, 0.2) if coccyx else 0.0
            disc = 2.0 if coccyx else 0.0
        wedges.append(np.deg2rad(deg))
        discs.append(disc)
    spine = Spine(view=view, bodies=bodies, bone_density=bone_density, degeneration=age, size=size)
    _pathology(spine, knobs, rngs, discs)
    for i, (upper, lower) in enumerate(zip(bodies[:-1], bodies[1:])):
        delta = wedges[i]
        touching = spine.extra.get("_touching_index") == i
        gap_min = 0.0 if touching or lower.segment == "sacral" else 0.6
        d_post = discs[i] - lower.depth / 2 * np.sin(delta)
        d_post = max(d_post, gap_min - lower.depth * np.sin(delta), gap_min)
        if touching:
            d_post = max(0.0, -lower.depth * np.sin(delta))
        place_below(upper, lower, d_post, delta)
    if "_touching_index" in spine.extra:
        _close_gap(bodies, spine.extra["_touching_index"])
    _straighten_and_tilt(spine, knobs, rngs["field"])
    return spine


def _point_segment_gap(points: np.ndarray, ring: np.ndarray) -> tuple[float, np.ndarray]:
    """Smallest distance from any of ``points`` to the closed polyline ``ring`` and its vector."""
    a, b = ring, np.roll(ring, -1, axis=0)
    ab = b - a
    t = np.clip(np.einsum("psk,sk->ps", points[:, None, :] - a[None], ab) / np.maximum((ab * ab).sum(1), 1e-12), 0, 1)
    nearest = a[None] + t[..., None] * ab[None]
    vec = nearest - points[:, None, :]
    dist = np.hypot(vec[..., 0], vec[..., 1])
    k = np.unravel_index(np.argmin(dist), dist.shape)
    return float(dist[k]), vec[k]


def _close_gap(bodies: list[Body], i: int) -> None:
    """Move everything below disc ``i`` up until the two rims touch (rounded corners included)."""
    for _ in range(4):
        upper = bodies[i].to_world(bodies[i].outline())
        lower = bodies[i + 1].to_world(bodies[i + 1].outline())
        d1, v1 = _point_segment_gap(upper, lower)
        d2, v2 = _point_segment_gap(lower, upper)
        gap, vec = (d1, v1) if d1 <= d2 else (d2, -v2)  # vec points from upper towards lower
        if gap < 0.005:
            break
        shift = -vec / max(np.hypot(*vec), 1e-12) * (gap - 0.002)
        for b in bodies[i + 1 :]:
            b.center = b.center + shift


_FRACTURE_LEVELS = {
    "cervical": ["C4", "C5", "C6", "C7"],
    "cervicothoracic": ["C6", "C7", "T1", "T2", "T3"],
    "thoracic": ["T5", "T6", "T7", "T8", "T9", "T10", "T11"],
    "thoracolumbar": ["T11", "T12", "T12", "L1", "L1", "L2", "L3"],
    "lumbar": ["T12", "L1", "L1", "L2", "L3", "L4"],
}
_TOUCHING_LEVELS = {
    "cervical": ["C3", "C4", "C5", "C6"],
    "cervicothoracic": ["C4", "C5", "C6"],
    "thoracic": ["T4", "T5", "T6", "T7", "T8", "T9", "T10"],
    "thoracolumbar": ["T11", "T12", "L1", "L2", "L3", "L4"],
    "lumbar": ["L1", "L2", "L3", "L4", "L5"],
}


def _pathology(spine: Spine, knobs: Knobs, rngs: dict[str, np.random.Generator], discs: list[float]) -> None:
    view = spine.view
    named = spine.named
    # fracture: one body, wedge / crush / biconcave, with its resulting heights recorded
    rng = rngs["fracture"]
    draw, kind_u, ratio_u, pick_u = rng.random(), rng.random(), rng.random(), rng.random()
    fractures = []
    if draw < knobs.fracture_prob:
        candidates = _FRACTURE_LEVELS[view]
        level = candidates[int(pick_u * len(candidates))]
        b = spine.body(level)
        kind = "wedge" if kind_u < 0.5 else ("compression" if kind_u < 0.8 else "biconcave")
        ratio = 0.2 + 0.35 * ratio_u  # Genant grades 1-3: 20-55 % height loss
        nominal = b.nominal_height
        if kind == "wedge":
            b.h_ant = nominal * (1.0 - ratio)
        elif kind == "compression":
            b.h_ant = nominal * (1.0 - ratio)
            b.h_post = nominal * (1.0 - 0.7 * ratio)
        else:
            extra = nominal * ratio / 2
            b.concavity_top += extra
            b.concavity_bottom += extra
        b.density *= 1.3  # compacted trabeculae look sclerotic
        b.endplate *= 1.4
        fractures.append({
            "level": level, "type": kind, "height_loss": round(float(ratio), 4),
            "nominal_height_mm": round(float(nominal), 3),
            "anterior_height_mm": round(float(b.h_ant), 3),
            "middle_height_mm": round(float(b.middle_height), 3),
            "posterior_height_mm": round(float(b.h_post), 3),
        })
    spine.extra["fractures"] = fractures
    # osteophytes: anterior beaks towards the neighbouring discs
    rng = rngs["osteophyte"]
    osteo = []
    for b in named:
        u1, u2, l1, l2 = rng.random(4)
        if b.level in ("C2", "S1") or u1 >= knobs.osteophyte_prob:
            continue
        limit = 1.2 if b.level.startswith("C") else (2.5 if b.level.startswith("T") else 3.5)
        for corner, lu in (("ant_top", l1), ("ant_bottom", l2)):
            length = limit * (0.35 + 0.65 * lu)
            b.osteophytes.append((corner, float(length)))
        osteo.append(b.level)
    spine.extra["osteophytes"] = osteo
    # degenerated discs: narrowed; one disc may be narrowed until the bodies touch
    rng = rngs["disc"]
    narrowed = []
    pairs = [(i, u.level, l.level) for i, (u, l) in enumerate(zip(spine.bodies[:-1], spine.bodies[1:]))
             if u.level is not None and l.level is not None]
    vacuum = []
    for i, upper, lower in pairs:
        u, f, g = rng.random(3)
        if u < knobs.degenerate_disc_prob:
            discs[i] *= 0.3 + 0.3 * f
            narrowed.append([upper, lower])
            if g < 0.3 and upper[0] != "T":
                vacuum.append(i)  # gas in a degenerated disc (vacuum phenomenon)
    spine.extra["narrowed_discs"] = narrowed
    spine.extra["_vacuum"] = vacuum
    rng = rngs["touching"]
    u, pick = rng.random(2)
    touching = []
    if u < knobs.touching_disc_prob:
        wanted = _TOUCHING_LEVELS[view]
        options = [p for p in pairs if p[1] in wanted]
        i, upper, lower = options[int(pick * len(options))]
        spine.extra["_touching_index"] = i
        touching.append([upper, lower])
    spine.extra["touching_discs"] = touching


def _straighten_and_tilt(spine: Spine, knobs: Knobs, rng: np.random.Generator) -> None:
    first, last = UPRIGHT_RUN[spine.view]
    d = spine.body(last).center - spine.body(first).center
    straighten = float(np.arctan2(d[0], d[1]))  # rotate so the framed run points straight down
    tilt = float(np.deg2rad(knobs.rotation_deg) * rng.uniform(-1.0, 1.0))
    spine.straighten, spine.rotation = straighten, tilt
    transform_bodies(spine.bodies, straighten + tilt, np.zeros(2))
    spine.extra["rotation_deg"] = round(float(np.rad2deg(tilt)), 4)


__all__ = ["CHAIN", "Spine", "build_spine", "streams"]
