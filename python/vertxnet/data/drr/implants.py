"""Spinal implants placed in a CT as dense 3D objects, relative to the labelled vertebrae.

Posterior fixation: two pedicle screws per instrumented level, through the pedicle (behind the
body's posterior wall, at a third of the body's width from the midline) converging into the
body, a polyaxial head at the entry point, one rod per side through the heads. Interbody cages in
the instrumented disc spaces (titanium, or PEEK with metal marker pins). Vertebroplasty cement
(barium-loaded PMMA, drawn as dense bone) in single bodies. Each object is voxelised on its own
0.5 mm grid, with a soft one-voxel edge, and projected like the CT.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .anatomy import Vertebra

#: Densities (g/cm3) of the implant materials, with the attenuation table each uses.
DENSITY = {"ti": 4.43, "fe": 8.3, "peek": 1.32, "marker": 16.6, "cement": 2.3}
#: Attenuation material (physics.MATERIALS) of each implant material.
ATTENUATES_AS = {"ti": "ti", "fe": "fe", "peek": "soft", "marker": "fe", "cement": "bone"}
GRID_MM = 0.5


@dataclass(frozen=True)
class Cylinder:
    p0: np.ndarray
    p1: np.ndarray
    radius: float
    material: str
    thread_pitch: float = 0.0  # > 0: a screw thread of this pitch
    thread_depth: float = 0.0
    taper_mm: float = 0.0  # the last ``taper_mm`` towards p1 narrow to a tip


@dataclass(frozen=True)
class Box:
    centre: np.ndarray
    axes: np.ndarray  # (3, 3) rows: unit axes
    half: np.ndarray  # half sizes along the axes
    material: str
    ellipsoid: bool = False


def _unit(v):
    return v / max(float(np.linalg.norm(v)), 1e-9)


def _rotate(v, axis, angle):
    axis = _unit(axis)
    return v * np.cos(angle) + np.cross(axis, v) * np.sin(angle) + axis * np.dot(axis, v) * (1 - np.cos(angle))


def _extent(shape) -> tuple[np.ndarray, np.ndarray]:
    if isinstance(shape, Cylinder):
        r = shape.radius + shape.thread_depth + 1.0
        lo, hi = np.minimum(shape.p0, shape.p1) - r, np.maximum(shape.p0, shape.p1) + r
    else:
        reach = np.abs(shape.axes.T) @ shape.half + 1.0
        lo, hi = shape.centre - reach, shape.centre + reach
    return lo, hi


def voxelise(shape, directions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Occupancy (I, J, K) float32 in 0..1 on a GRID_MM grid whose axes are ``directions``
    (columns: unit world vectors of the CT's voxel axes) and that grid's affine."""
    lo, hi = _extent(shape)
    corners = np.array([[x, y, z] for x in (lo[0], hi[0]) for y in (lo[1], hi[1]) for z in (lo[2], hi[2])])
    local = corners @ directions  # coordinates along the grid axes (directions orthonormal)
    start = local.min(axis=0)
    n = np.maximum(np.ceil((local.max(axis=0) - start) / GRID_MM).astype(int) + 1, 1)
    affine = np.eye(4)
    affine[:3, :3] = directions * GRID_MM
    affine[:3, 3] = directions @ start
    ii, jj, kk = np.meshgrid(*(np.arange(m, dtype=np.float32) for m in n), indexing="ij")
    pts = np.stack([ii, jj, kk], axis=-1) @ affine[:3, :3].T.astype(np.float32) + affine[:3, 3].astype(np.float32)
    edge = GRID_MM
    if isinstance(shape, Cylinder):
        axis = shape.p1 - shape.p0
        length = float(np.linalg.norm(axis))
        u = (axis / length).astype(np.float32)
        rel = pts - shape.p0.astype(np.float32)
        s = rel @ u
        r = np.linalg.norm(rel - s[..., None] * u, axis=-1)
        radius = np.full_like(s, shape.radius)
        if shape.thread_pitch > 0:
            phase = (s / shape.thread_pitch) % 1.0
            radius = radius + shape.thread_depth * (1.0 - 2.0 * np.abs(phase - 0.5))
        if shape.taper_mm > 0:
            radius = radius * np.clip((length - s) / shape.taper_mm, 0.35, 1.0)
        occ = np.clip((radius - r) / edge + 0.5, 0, 1) * np.clip(np.minimum(s, length - s) / edge + 0.5, 0, 1)
    else:
        q = (pts - shape.centre.astype(np.float32)) @ shape.axes.T.astype(np.float32)
        if shape.ellipsoid:
            rho = np.linalg.norm(q / shape.half.astype(np.float32), axis=-1)
            occ = np.clip((1.0 - rho) * float(shape.half.min()) / edge + 0.5, 0, 1)
        else:
            occ = np.ones(q.shape[:3], np.float32)
            for d in range(3):
                occ *= np.clip((shape.half[d] - np.abs(q[..., d])) / edge + 0.5, 0, 1)
    return occ.astype(np.float32), affine


def _screw(v: Vertebra, side: float, rng: np.random.Generator) -> tuple[list, dict]:
    lumbar = v.name.startswith(("L", "S"))
    wall = v.centre - v.a * (v.depth_mm / 2)
    pedicle = wall - v.a * 7.0 + v.l * side * 0.34 * v.width_mm
    medial = np.deg2rad(rng.uniform(8, 22) if lumbar else rng.uniform(4, 14))
    d = _unit(v.a * np.cos(medial) - v.l * side * np.sin(medial))
    d = _unit(_rotate(d, v.l, np.deg2rad(rng.uniform(-6, 6))))
    entry = pedicle - d * 14.0
    reach = 7.0 + v.depth_mm * rng.uniform(0.6, 0.8)
    tip = pedicle + d * reach
    radius = (rng.uniform(2.75, 3.5) if lumbar else rng.uniform(2.25, 3.0))
    head_len = rng.uniform(11, 15)
    head_axis = _unit(_rotate(d, v.t, np.deg2rad(rng.uniform(-10, 10))))
    head_end = entry - head_axis * head_len
    shapes = [
        Cylinder(entry, tip, radius, "ti", thread_pitch=rng.uniform(2.4, 3.0), thread_depth=0.9, taper_mm=6.0),
        Cylinder(head_end, entry + d * 1.0, rng.uniform(5.0, 6.2), "ti"),
    ]
    return shapes, {"head": (entry + head_end) / 2, "length_mm": round(float(reach + 14.0), 1)}


def plan_implants(vertebrae: list[Vertebra], rng: np.random.Generator, probability: float,
                  cement_probability: float) -> tuple[list, list[dict]]:
    """Shapes (Cylinder/Box) and a description of what was placed (for the image's extra)."""
    shapes: list = []
    described: list[dict] = []
    candidates = [v for v in vertebrae if v.name[0] in "TLS" and (v.name[0] != "T" or int(v.name[1:]) >= 8)]
    if candidates and len(candidates) >= 2 and rng.random() < probability:
        k = int(rng.integers(2, min(5, len(candidates)) + 1))
        start = int(rng.integers(0, len(candidates) - k + 1))
        levels = candidates[start : start + k]
        heads = {-1.0: [], 1.0: []}
        for v in levels:
            for side in (-1.0, 1.0):
                s, info = _screw(v, side, rng)
                shapes += s
                heads[side].append(info["head"])
        rod_material = "ti" if rng.random() < 0.6 else "fe"
        rod_radius = rng.uniform(2.5, 3.0)
        for side, points in heads.items():
            pts = np.array(points)
            ext = _unit(pts[0] - pts[-1]) * 6.0
            pts[0] += ext
            pts[-1] -= ext
            for p, q in zip(pts[:-1], pts[1:]):
                shapes.append(Cylinder(p, q, rod_radius, rod_material))
        cages = []
        cage_material = "ti" if rng.random() < 0.4 else "peek"
        style = ("tlif", "plif", "alif")[int(rng.integers(0, 3))]
        for up, low in zip(levels[:-1], levels[1:]):
            if rng.random() >= 0.6:
                continue
            top = up.centre - up.t * up.height_mm / 2
            bottom = low.centre + low.t * low.height_mm / 2
            centre = (top + bottom) / 2
            t = _unit(top - bottom) if np.linalg.norm(top - bottom) > 1 else up.t
            a = _unit(up.a - np.dot(up.a, t) * t)
            l = np.cross(t, a)
            height = float(np.clip(np.linalg.norm(top - bottom) + 1.0, 6.0, 16.0))
            depth = 0.7 * min(up.depth_mm, low.depth_mm)
            if style == "alif":
                blocks = [(centre, a, 0.72 * min(up.width_mm, low.width_mm))]
            elif style == "plif":
                blocks = [(centre + l * 8.5, a, 10.0), (centre - l * 8.5, a, 10.0)]
            else:
                turn = np.deg2rad(rng.uniform(20, 40))
                blocks = [(centre, _unit(_rotate(a, t, turn)), 11.0)]
            for c, axis_a, width in blocks:
                axes = np.stack([_unit(axis_a), _unit(np.cross(t, axis_a)), t])
                half = np.array([depth / 2, width / 2, height / 2])
                shapes.append(Box(c, axes, half, cage_material))
                if cage_material == "peek":  # marker pins at both ends
                    for end in (-1, 1):
                        p = c + axes[0] * end * (half[0] - 1.5)
                        shapes.append(Cylinder(p - t * height * 0.35, p + t * height * 0.35, 0.5, "marker"))
            cages.append(f"{up.name}-{low.name}")
        described.append({"type": "posterior_fixation", "levels": [v.name for v in levels], "rod": rod_material,
                          "cages": cages, "cage_material": cage_material if cages else None,
                          "cage_style": style if cages else None})
    bodies = [v for v in vertebrae if v.name[0] in "TL"]
    if bodies and rng.random() < cement_probability:
        n = int(rng.integers(1, min(2, len(bodies)) + 1))
        for idx in sorted(rng.choice(len(bodies), size=n, replace=False)):
            v = bodies[int(idx)]
            # cement spreads through the trabecular bone as a few merging lobes
            axes = np.stack([v.a, v.l, v.t])
            size = np.array([v.depth_mm, v.width_mm, v.height_mm])
            centre = v.centre + v.a * rng.uniform(-0.1, 0.15) * v.depth_mm
            for _ in range(int(rng.integers(3, 6))):
                offset = (rng.uniform(-0.18, 0.18, size=3) * size) @ axes
                half = size * rng.uniform(0.12, 0.26, size=3)
                shapes.append(Box(centre + offset, axes, half, "cement", ellipsoid=True))
            described.append({"type": "cement", "level": v.name})
    return shapes, described
