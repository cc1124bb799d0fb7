"""Lateral DRRs from labelled CT: case preparation, per-pose projection, per-image exposure, truth.

Work is organised by pose: image ``i`` belongs to pose ``i // images_per_pose``, which belongs
to case ``pose % len(cases)``. A pose (patient rotation, tilt, source distance, implants) is
projected once as mass thicknesses per material on a detector canvas; each of its images takes its
own field of view, collimation and crop from that canvas and its own spectrum, scatter, dose,
detector and processing. Every random draw comes from a stream seeded by (seed, pose or image
index), so the output is a pure function of the cases and the configuration, whatever the number
of worker processes.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

import cv2
import numpy as np

from ...records import Annotation, Record
from ...levels import view_of_levels
from .anatomy import ORDER, Vertebra, vertebrae_of
from .implants import ATTENUATES_AS, DENSITY, plan_implants, voxelise
from .physics import MATERIALS, Exposure, expose, tube_spectrum
from .projector import (Canvas, Pose, path_weight, plane_normal, plane_spacing_mm, project_mask, project_slabs,
                        project_points, to_canvas)
from .volume import load_ct, material_densities, patient_mask, suppress_contrast

FORMAT_VERSION = 1
#: A body less visible than this (share of its projected area inside the exposed field) is not annotated.
MIN_VISIBLE_FRACTION = 1.0 / 3.0
#: Truth silhouettes are traced on a grid this many times finer than the canvas.
TRUTH_SUPERSAMPLING = 2
#: Depth planes are summed into slabs about this thick (mm) before projection.
SLAB_MM = 3.0
#: Largest canvas side (pixels): bounds memory and time for very fine fields.
MAX_CANVAS = 2200
_STREAM_POSE, _STREAM_IMAGE, _STREAM_NOISE, _STREAM_IMPLANT, _STREAM_FIELD = 1, 2, 3, 4, 5


@dataclass(frozen=True)
class CTCase:
    """One labelled CT: NIfTI CT in HU, label map (or folder of structure masks), numbering."""

    name: str
    ct: Path
    labels: Path
    numbering: str = "auto"


@dataclass(frozen=True)
class DRRConfig:
    """Everything that determines a DRR data set besides the cases. Ranges are (low, high)."""

    size: int = 512  # longer image side, pixels
    seed: int = 0
    images_per_pose: int = 4
    kvp: tuple[float, float] = (60.0, 120.0)
    sdd_mm: tuple[float, float] = (1000.0, 1800.0)
    field_mm: tuple[float, float] = (200.0, 430.0)  # field height at the spine (cassettes: 24-43 cm)
    rotation_deg: float = 10.0  # patient rotation about the long axis, up to this either way
    tilt_deg: float = 5.0  # coronal obliquity of the beam and sagittal lean, up to this either way
    implant_prob: float = 0.3
    cement_prob: float = 0.08
    collimation_prob: float = 0.5
    bit_depth: int = 16

    def __post_init__(self) -> None:
        def positive_int(name, lo, hi):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
                raise ValueError(f"{name} must be an integer in {lo}..{hi}, got {v!r}")

        positive_int("size", 64, 8192)
        positive_int("images_per_pose", 1, 64)
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {self.seed!r}")
        if self.bit_depth not in (8, 16):
            raise ValueError(f"bit_depth must be 8 or 16, got {self.bit_depth!r}")
        for name, lo, hi in (("kvp", 40.0, 150.0), ("sdd_mm", 500.0, 3000.0), ("field_mm", 20.0, 1000.0)):
            r = tuple(float(x) for x in getattr(self, name))
            if len(r) != 2 or not lo <= r[0] <= r[1] <= hi:
                raise ValueError(f"{name} must be a range low <= high within {lo:g}..{hi:g}, got {getattr(self, name)!r}")
            object.__setattr__(self, name, r)
        for name, hi in (("rotation_deg", 45.0), ("tilt_deg", 30.0)):
            v = getattr(self, name)
            if not isinstance(v, (int, float)) or isinstance(v, bool) or not 0 <= v <= hi:
                raise ValueError(f"{name} must lie in 0..{hi:g} degrees, got {v!r}")
        for name in ("implant_prob", "cement_prob", "collimation_prob"):
            v = getattr(self, name)
            if not isinstance(v, (int, float)) or isinstance(v, bool) or not 0 <= v <= 1:
                raise ValueError(f"{name} is a probability and must lie in [0, 1], got {v!r}")


def _rng(seed: int, stream: int, index: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([seed, stream, index]))


# ---------------------------------------------------------------------------------------------
# Case preparation (once per CT)


@dataclass
class PreparedCase:
    """A CT reduced to what projection needs: material slabs, vertebrae, truncation."""

    case: CTCase
    numbering: str
    slabs: np.ndarray  # (S, K, J, 2) float32 soft / bone density g/cm3, indexed [slab, k, j]
    slab_boxes: list  # per slab (j0, j1, k0, k1) of its non-zero part
    slab_affine: np.ndarray  # slab index, j, k → mm
    slab_mm: float
    grid_affine: np.ndarray  # cropped voxel grid (i, j, k) → mm
    shape: tuple[int, int, int]  # cropped grid shape
    vertebrae: list[Vertebra]
    truncated: dict  # y_lo, y_hi, z_lo, z_hi: the anatomy continues beyond that face of the scan
    lateral_pad: dict  # side (-1, +1) → (K, J) bool silhouette of a cut lateral face
    lateral_pad_limit_mm: dict  # side → most soft tissue that can lie beyond that face
    trunk_silhouette: np.ndarray  # (K, J) bool: the patient seen from the side
    ap_depth_mm: float
    lateral_width_mm: float
    extra: dict = field(default_factory=dict)


def _row_intervals(silhouette: np.ndarray) -> np.ndarray:
    """Each row of a silhouette filled from its first to its last pixel (no holes)."""
    rows = silhouette.any(axis=1)
    first = np.argmax(silhouette, axis=1)
    last = silhouette.shape[1] - 1 - np.argmax(silhouette[:, ::-1], axis=1)
    j = np.arange(silhouette.shape[1])
    return rows[:, None] & (j[None, :] >= first[:, None]) & (j[None, :] <= last[:, None])


def prepare_case(case: CTCase) -> PreparedCase:
    """Load a CT and its labels, remove the table, decompose materials, separate the bodies."""
    vol = load_ct(case.ct, case.labels, case.numbering)
    body = patient_mask(vol.hu, vol.labels)
    extents = [np.nonzero(body.any(axis=tuple(a for a in range(3) if a != axis)))[0] for axis in range(3)]
    if len(extents[0]) == 0:
        from ...errors import InputError

        raise InputError(case.ct, "no patient found in the CT (nothing above -400 HU)")
    lo = [max(int(a[0]) - 1, 0) for a in extents]
    hi = [min(int(a[-1]) + 2, n) for a, n in zip(extents, body.shape)]
    sl = tuple(slice(a, b) for a, b in zip(lo, hi))
    hu, labels, body = vol.hu[sl], vol.labels[sl], body[sl]
    vol.hu = vol.labels = None  # keep only the crops
    hu = np.ascontiguousarray(hu)
    spacing = np.sqrt((vol.affine[:3, :3] ** 2).sum(axis=0))
    enhanced = vol.enhanced_voxels + suppress_contrast(hu, labels, spacing)
    grid = vol.affine.copy()
    grid[:3, 3] = vol.affine[:3, :3] @ np.array(lo, float) + vol.affine[:3, 3]
    spacing = np.sqrt((grid[:3, :3] ** 2).sum(axis=0))
    # depth planes are averaged into slabs before the decomposition (linear in HU but at two
    # kinks, so this changes nothing but partial-volume bone at the kinks)
    b = max(1, int(round(SLAB_MM / spacing[0])))
    n_slabs = -(-hu.shape[0] // b)
    binned = np.full((n_slabs * b,) + hu.shape[1:], -1000.0, np.float32)
    binned[: hu.shape[0]] = np.where(body, hu, np.float32(-1000.0))
    del hu
    binned = binned.reshape(n_slabs, b, *binned.shape[1:]).mean(axis=1)
    soft, bone = material_densities(binned)
    del binned
    slabs = np.ascontiguousarray(np.stack([soft, bone], axis=-1).transpose(0, 2, 1, 3))  # [slab, k, j, c]
    del soft, bone
    boxes = []
    occupied = slabs.max(axis=-1) > 1e-3
    for s in range(slabs.shape[0]):
        ks, js = np.nonzero(occupied[s])
        boxes.append(None if len(ks) == 0 else (int(js.min()), int(js.max()) + 1, int(ks.min()), int(ks.max()) + 1))
    slab_affine = grid @ np.array([[b, 0, 0, (b - 1) / 2.0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]], float)
    vertebrae = vertebrae_of(labels, grid, vol.vertebrae)
    if not vertebrae:
        from ...errors import InputError

        raise InputError(case.labels, "no vertebra large enough to outline (each needs 20 voxels or more)")
    # truncation: the patient is cut by a face of the scan (its cross-section near the face is
    # large) rather than ending inside it (skin, head top)
    trunc = {}
    for axis, name in ((1, "y"), (2, "z")):
        other = tuple(a for a in range(3) if a != axis)
        area = body.sum(axis=other).astype(float)
        near = max(1, int(round(6.0 / spacing[axis])))
        trunc[name + "_lo"] = bool(area[:near].max() > 0.15 * area.max())
        trunc[name + "_hi"] = bool(area[-near:].max() > 0.15 * area.max())
    area_x = body.sum(axis=(1, 2)).astype(float)
    near = max(1, int(round(6.0 / spacing[0])))
    pad, pad_limit = {}, {}
    for side, faces in ((-1, range(0, near)), (1, range(body.shape[0] - near, body.shape[0]))):
        face = max(faces, key=lambda f: area_x[f])
        if area_x[face] > 0.1 * area_x.max():
            pad[side] = _row_intervals(np.ascontiguousarray(body[face].T))  # [k, j]
            # how far beyond the face the trunk goes on: the cross-section shrinking towards the
            # face, extrapolated to zero (unbounded when it does not shrink)
            span = max(2, int(round(20.0 / spacing[0])))
            inner = face - side * span
            inner = int(np.clip(inner, 0, body.shape[0] - 1))
            shrink = (area_x[inner] - area_x[face]) / (abs(face - inner) * spacing[0])
            pad_limit[side] = float(area_x[face] / shrink) if shrink > 0 else float("inf")
    ys = np.nonzero(body.any(axis=(0, 2)))[0]
    xs = np.nonzero(area_x)[0]
    return PreparedCase(
        case=case, numbering=vol.numbering, slabs=slabs, slab_boxes=boxes, slab_affine=slab_affine,
        slab_mm=plane_spacing_mm(slab_affine), grid_affine=grid, shape=body.shape, vertebrae=vertebrae,
        truncated=trunc, lateral_pad=pad, lateral_pad_limit_mm=pad_limit, trunk_silhouette=np.ascontiguousarray(body.any(axis=0).T),
        ap_depth_mm=float((ys[-1] - ys[0] + 1) * spacing[1]), lateral_width_mm=float((xs[-1] - xs[0] + 1) * spacing[0]),
        extra={"body_cut": {v.name: v.cut_method for v in vertebrae},
               "contrast_removed_ml": round(enhanced * float(np.prod(spacing)) / 1000.0, 1)},
    )


# ---------------------------------------------------------------------------------------------
# Pose and fields


def _rotation(alpha: float, beta: float, gamma: float) -> np.ndarray:
    ca, sa, cb, sb, cg, sg = np.cos(alpha), np.sin(alpha), np.cos(beta), np.sin(beta), np.cos(gamma), np.sin(gamma)
    rz = np.array([[ca, -sa, 0], [sa, ca, 0], [0, 0, 1]])
    ry = np.array([[cb, 0, sb], [0, 1, 0], [-sb, 0, cb]])
    rx = np.array([[1, 0, 0], [0, cg, -sg], [0, sg, cg]])
    return rx @ ry @ rz


@dataclass
class Field:
    """One image's field on the detector (mm) and its pixel grid."""

    u0: float
    v0: float
    pixel: float  # detector mm per image pixel
    width: int
    height: int
    collimation: tuple | None  # (inset left, right, top, bottom as fractions, angle deg) or None
    mirror: bool


def _grid_corners(shape) -> np.ndarray:
    return np.array([[i, j, k] for i in (0, shape[0] - 1) for j in (0, shape[1] - 1) for k in (0, shape[2] - 1)], float)


def _plan_pose(prep: PreparedCase, config: DRRConfig, rng: np.random.Generator) -> tuple[Pose, dict]:
    deg = np.deg2rad
    alpha = deg(rng.uniform(-config.rotation_deg, config.rotation_deg))
    beta = deg(rng.uniform(-config.tilt_deg, config.tilt_deg))
    gamma = deg(rng.uniform(-config.tilt_deg, config.tilt_deg))
    sdd = rng.uniform(*config.sdd_mm)
    half_width = max(prep.lateral_width_mm, 200.0) / 2
    odd = half_width + rng.uniform(30.0, 90.0)  # isocentre to detector: half the patient + bucky gap
    odd = min(odd, 0.45 * sdd)
    centres = np.array([v.centre for v in prep.vertebrae])
    iso = centres.mean(axis=0) + rng.normal(0, 5.0, 3)
    pose = Pose(rotation=_rotation(alpha, beta, gamma), isocentre=iso, sod=sdd - odd, sdd=sdd)
    info = {"rotation_deg": round(float(np.rad2deg(alpha)), 3), "obliquity_deg": round(float(np.rad2deg(beta)), 3),
            "lean_deg": round(float(np.rad2deg(gamma)), 3), "sdd_mm": round(float(sdd), 1),
            "sod_mm": round(float(sdd - odd), 1), "magnification": round(float(pose.magnification), 4)}
    return pose, info


def _plan_field(prep: PreparedCase, pose: Pose, config: DRRConfig, rng: np.random.Generator,
                height_mm: float) -> Field:
    """A field about ``height_mm`` tall at the spine, centred near a random vertebra, kept over the
    scanned range; the spine sits between a third and two thirds of the way across."""
    m = pose.magnification
    verts = prep.vertebrae
    uv = project_points(pose, np.array([v.centre for v in verts]))
    height = height_mm * m * rng.uniform(0.88, 1.12)
    centre = int(rng.integers(0, len(verts)))
    v_mid = uv[centre, 1] + rng.uniform(-0.25, 0.25) * height
    # the scanned volume bounds the field: beyond it lies no anatomy (collimated if reached)
    cov_back, cov_front, cov_top, cov_bottom = _coverage_bounds(prep, pose)
    if np.isfinite(cov_top) or np.isfinite(cov_bottom):
        top = cov_top if np.isfinite(cov_top) else -1e9
        bottom = cov_bottom if np.isfinite(cov_bottom) else 1e9
        height = min(height, 1.04 * (bottom - top))
        slack = 0.04 * height
        v_mid = float(np.clip(v_mid, top + height / 2 - slack, max(top + height / 2 - slack, bottom - height / 2 + slack)))
    v_top = v_mid - height / 2
    width = rng.uniform(0.45, 1.0) * height
    near = np.abs(uv[:, 1] - v_mid) <= height / 2
    u_spine = float(np.mean(uv[near, 0])) if near.any() else float(uv[centre, 0])
    u0 = u_spine - rng.uniform(0.35, 0.65) * width
    if np.isfinite(cov_back):
        u0 = max(u0, cov_back - 0.04 * width)
    if np.isfinite(cov_front):
        u0 = min(u0, cov_front + 0.04 * width - width)
    pixel = height / config.size
    w_px = max(int(round(width / pixel)), 64)
    collimation = None
    if rng.random() < config.collimation_prob:
        insets = rng.uniform(0.0, 0.1, size=4)
        collimation = (*(float(x) for x in insets), float(rng.uniform(-3.0, 3.0)))
    return Field(u0=float(u0), v0=float(v_top), pixel=float(pixel), width=w_px, height=config.size,
                 collimation=collimation, mirror=bool(rng.random() < 0.5))


# ---------------------------------------------------------------------------------------------
# Projection of a pose


@dataclass
class PoseProjection:
    canvas: Canvas
    paths: np.ndarray  # (H, W, len(MATERIALS)) g/cm2
    coverage: np.ndarray  # (H, W) float32: 1 where the rays cross the scanned anatomy
    bodies: dict  # vertebra name → (x0, y0 canvas px, fine bool mask at TRUTH_SUPERSAMPLING)
    implants: list[dict]
    padding_mm: float  # soft tissue added beyond lateral faces the scan cut


def _canvas_for(fields: list[Field]) -> Canvas:
    pixel = min(f.pixel for f in fields)
    u_lo = min(f.u0 for f in fields)
    v_lo = min(f.v0 for f in fields)
    u_hi = max(f.u0 + f.width * f.pixel for f in fields)
    v_hi = max(f.v0 + f.height * f.pixel for f in fields)
    pixel = max(pixel, (u_hi - u_lo) / MAX_CANVAS, (v_hi - v_lo) / MAX_CANVAS)
    margin = 3 * pixel
    return Canvas(u0=u_lo - margin, v0=v_lo - margin, pixel=pixel,
                  width=int(math.ceil((u_hi - u_lo + 2 * margin) / pixel)),
                  height=int(math.ceil((v_hi - v_lo + 2 * margin) / pixel)))


def _padding_planes(prep: PreparedCase, rng: np.random.Generator):
    """Soft tissue beyond a lateral face the scan cut: one virtual slab per cut face holding, per
    row, the chord an elliptical trunk of plausible width adds outside the scanned width."""
    target = float(np.clip(1.3 * prep.ap_depth_mm, 260.0, 420.0)) * rng.uniform(0.9, 1.12)
    extra = max(0.0, target - prep.lateral_width_mm)
    if not prep.lateral_pad or extra <= 0:
        return [], 0.0
    spacing = np.sqrt((prep.slab_affine[:3, :3] ** 2).sum(axis=0))
    half_width = target / 2
    density = rng.uniform(0.96, 1.02)
    planes, total = [], 0.0
    # the trunk's front-to-back extent per row, from the whole body's lateral silhouette
    trunk = prep.trunk_silhouette
    rows_t = trunk.any(axis=1)
    first_t = np.argmax(trunk, axis=1)
    last_t = trunk.shape[1] - 1 - np.argmax(trunk[:, ::-1], axis=1)
    centre, half = (first_t + last_t) / 2.0, np.maximum((last_t - first_t) / 2.0, 1.0)
    js = np.arange(trunk.shape[1], dtype=np.float64)
    y = (js[None, :] - centre[:, None]) / (half[:, None] + 0.5)
    chord = 2.0 * half_width * np.sqrt(np.clip(1.0 - y * y, 0.0, 1.0)) * rows_t[:, None]  # mm along the ray
    for side, silhouette in prep.lateral_pad.items():
        rows = silhouette.any(axis=1)
        added = np.clip(chord - prep.lateral_width_mm, 0.0, None) / len(prep.lateral_pad)
        limit = prep.lateral_pad_limit_mm.get(side, float("inf"))
        np.minimum(added, limit, out=added)
        # only in front of the cut face, faded over ~8 mm so that the face leaves no edge
        sigma = 8.0 / float(spacing[1])
        face = cv2.GaussianBlur(silhouette.astype(np.float32), (0, 0), sigma) * rows[:, None]
        added *= face
        if not added.any():
            continue
        plane = np.zeros(silhouette.shape + (2,), np.float32)
        plane[..., 0] = added * density / prep.slab_mm
        ks, jj = np.nonzero(added)
        box = (int(jj.min()), int(jj.max()) + 1, int(ks.min()), int(ks.max()) + 1)
        edge_index = 0 if side < 0 else prep.slabs.shape[0] - 1
        depth = 0.5 * min(extra / len(prep.lateral_pad), limit)
        planes.append((edge_index + side * depth / spacing[0], plane, box))
        total += 2 * depth
    return planes, total


def _coverage(prep: PreparedCase, pose: Pose, canvas: Canvas) -> np.ndarray:
    """1 where a ray enters and leaves the patient inside the scanned range of every face the
    anatomy crosses (front/back, head/foot), else 0."""
    cover = np.ones((canvas.height, canvas.width), np.float32)
    t = prep.truncated
    if not any(t.values()):
        return cover
    from .projector import plane_homography

    xs, ys = np.meshgrid(np.arange(canvas.width, dtype=np.float64), np.arange(canvas.height, dtype=np.float64))
    pts = np.stack([xs.ravel(), ys.ravel(), np.ones(xs.size)])
    nj, nk = prep.slabs.shape[2], prep.slabs.shape[1]
    for s in (0, prep.slabs.shape[0] - 1):
        h = plane_homography(pose, canvas, prep.slab_affine, s)
        q = np.linalg.inv(h) @ pts
        j, k = q[0] / q[2], q[1] / q[2]
        ok = np.ones(j.shape, bool)
        if t["y_lo"]:
            ok &= j >= 0
        if t["y_hi"]:
            ok &= j <= nj - 1
        if t["z_lo"]:
            ok &= k >= 0
        if t["z_hi"]:
            ok &= k <= nk - 1
        cover *= ok.reshape(cover.shape)
    return cover


def _coverage_bounds(prep: PreparedCase, pose: Pose) -> tuple[float, float, float, float]:
    """(u back, u front, v top, v bottom) on the detector inside which every ray crosses the
    scanned range of the truncated faces (conservative: both lateral planes, both far corners)."""
    t = prep.truncated
    nj, nk = prep.slabs.shape[2], prep.slabs.shape[1]
    bounds = [-np.inf, np.inf, -np.inf, np.inf]
    for s in (0, prep.slabs.shape[0] - 1):
        corners = np.array([[s, j, k, 1.0] for j in (0, nj - 1) for k in (0, nk - 1)])
        uv = project_points(pose, corners @ prep.slab_affine[:3].T)
        # corners ordered (j lo, k lo), (j lo, k hi), (j hi, k lo), (j hi, k hi)
        if t["z_hi"]:
            bounds[2] = max(bounds[2], uv[[1, 3], 1].max())
        if t["z_lo"]:
            bounds[3] = min(bounds[3], uv[[0, 2], 1].min())
        if t["y_lo"]:
            bounds[0] = max(bounds[0], uv[[0, 1], 0].max())
        if t["y_hi"]:
            bounds[1] = min(bounds[1], uv[[2, 3], 0].min())
    return tuple(float(b) for b in bounds)


def project_pose(prep: PreparedCase, pose: Pose, canvas: Canvas, rng: np.random.Generator,
                 config: DRRConfig) -> PoseProjection:
    """Mass thickness per material, coverage and body silhouettes of one pose on a canvas."""
    weight = path_weight(pose, canvas, plane_normal(prep.slab_affine))
    pad_planes, pad_mm = _padding_planes(prep, rng)
    tissue = project_slabs(prep.slabs, prep.slab_boxes, pose, canvas, prep.slab_affine, pad_planes)
    tissue *= (weight * prep.slab_mm)[..., None]
    paths = np.zeros((canvas.height, canvas.width, len(MATERIALS)), np.float32)
    paths[..., 0] = tissue[..., 0]
    paths[..., 1] = tissue[..., 1]
    shapes, implants = plan_implants(prep.vertebrae, rng, config.implant_prob, config.cement_prob)
    directions = prep.grid_affine[:3, :3] / np.sqrt((prep.grid_affine[:3, :3] ** 2).sum(axis=0))
    for shape in shapes:
        occ, affine = voxelise(shape, directions)
        material = MATERIALS.index(ATTENUATES_AS[shape.material])
        density = DENSITY[shape.material]

        slabs = np.ascontiguousarray(occ.transpose(0, 2, 1))[..., None]  # [i, k, j, 1]
        boxes = []
        for i in range(slabs.shape[0]):
            ks, js = np.nonzero(slabs[i, ..., 0] > 0)
            boxes.append(None if len(ks) == 0 else (int(js.min()), int(js.max()) + 1, int(ks.min()), int(ks.max()) + 1))
        acc = project_slabs(slabs, boxes, pose, canvas, affine)[..., 0]
        paths[..., material] += acc * weight * (plane_spacing_mm(affine) * density)
        if shape.material in ("ti", "fe", "marker", "peek"):  # the implant displaces tissue
            paths[..., 1] -= np.minimum(paths[..., 1], acc * weight * plane_spacing_mm(affine) * 0.3)
    bodies = project_vertebrae(prep, pose, canvas, part="body")
    return PoseProjection(canvas=canvas, paths=paths, coverage=_coverage(prep, pose, canvas), bodies=bodies,
                          implants=implants, padding_mm=round(float(pad_mm), 1))


def project_vertebrae(prep: PreparedCase, pose: Pose, canvas: Canvas, part: str = "body") -> dict:
    """Silhouettes of the bodies (``part="body"``) or whole vertebrae (``"whole"``) on a grid
    TRUTH_SUPERSAMPLING times finer than ``canvas``: name → (x0, y0 canvas pixel of the window,
    bool mask). Windows may reach beyond the canvas (the full silhouette, for the visible share)."""
    if part not in ("body", "whole"):
        raise ValueError(f"part must be 'body' or 'whole', got {part!r}")
    out = {}
    for v in prep.vertebrae:
        box = v.body_box if part == "body" else v.whole_box
        mask = v.body if part == "body" else v.whole
        i0, i1, j0, j1, k0, k1 = box
        corners = np.array([[i, j, k] for i in (i0, i1) for j in (j0, j1) for k in (k0, k1)], float) - 0.5
        world = np.c_[corners, np.ones(8)] @ prep.grid_affine[:3].T
        xy = to_canvas(canvas, project_points(pose, world))
        x0, y0 = int(np.floor(xy[:, 0].min())) - 2, int(np.floor(xy[:, 1].min())) - 2
        x1, y1 = int(np.ceil(xy[:, 0].max())) + 2, int(np.ceil(xy[:, 1].max())) + 2
        if x1 < 0 or y1 < 0 or x0 > canvas.width or y0 > canvas.height:
            continue
        fine = canvas.sub(x0, y0, x1 - x0, y1 - y0, TRUTH_SUPERSAMPLING)
        silhouette = project_mask(_smooth(mask), (i0, j0, k0), pose, fine, prep.grid_affine)
        out[v.name] = (x0, y0, silhouette >= 0.5)
    return out


def _smooth(mask: np.ndarray) -> np.ndarray:
    """A label's staircase softened (Gaussian, 0.6 voxel) so that its 0.5 level is smooth."""
    padded = np.pad(mask.astype(np.float32), 2)
    from scipy import ndimage

    return ndimage.gaussian_filter(padded, 0.6)[2:-2, 2:-2, 2:-2] if mask.size else padded


# ---------------------------------------------------------------------------------------------
# One image


def _draw_exposure(config: DRRConfig, rng: np.random.Generator, pixel_mm: float) -> Exposure:
    kvp = float(rng.uniform(*config.kvp))
    al = float(rng.uniform(2.5, 4.0))
    cu = float(rng.choice([0.0, 0.0, 0.1, 0.2]))
    u = rng.random(16)
    return Exposure(
        spectrum=tube_spectrum(kvp, al, cu),
        scatter_to_primary=float(np.exp(np.log(0.3) + u[0] * np.log(3.0 / 0.3))),
        scatter_sigma_px=float((25.0 + 45.0 * u[1]) / pixel_mm),
        quanta_at_spine=float(np.exp(np.log(3000.0) + u[2] * np.log(60000.0 / 3000.0))),
        heel=float(0.3 * (2 * u[3] - 1)),
        blur_px=float(0.4 + 0.6 * u[4]),
        glare=float(0.05 * u[5]),
        electronic_noise=float(0.3 + 2.5 * u[6]),
        drc_strength=float(0.6 + 0.35 * u[7]),
        drc_sigma_px=float((20.0 + 40.0 * u[8]) / pixel_mm),
        usm_strength=float(0.3 + 0.9 * u[9]),
        usm_sigma_px=float((1.0 + 3.0 * u[10]) / pixel_mm),
        contrast=float(3.0 + 3.5 * u[11]),
        brightness=float(0.45 + 0.2 * u[12]),
        gamma=float(0.9 + 0.7 * u[13]),
        window_low_pct=float(1.0 + 11.0 * u[14]),
        window_high_pct=float(99.0 + 0.9 * u[15]),
        shutter_black=bool(rng.random() < 0.7),
    )


def _collimation_mask(fld: Field) -> np.ndarray:
    mask = np.zeros((fld.height, fld.width), np.float32)
    if fld.collimation is None:
        mask[:] = 1.0
        return mask
    left, right, top, bottom, angle = fld.collimation
    x0, x1 = left * fld.width, fld.width * (1 - right)
    y0, y1 = top * fld.height, fld.height * (1 - bottom)
    c = ((x0 + x1) / 2, (y0 + y1) / 2)
    box = cv2.boxPoints((c, (x1 - x0, y1 - y0), angle)).astype(np.float64)
    cv2.fillPoly(mask, [np.round((box - 0.5) * 16).astype(np.int32)], 1.0, lineType=cv2.LINE_AA, shift=4)
    return cv2.GaussianBlur(mask, (0, 0), 0.8)


def _to_image(canvas_map: np.ndarray, canvas: Canvas, fld: Field, interpolation=cv2.INTER_LINEAR) -> np.ndarray:
    """Resample a canvas map onto a field's pixel grid (area-averaged when coarser)."""
    s = fld.pixel / canvas.pixel
    x0 = (fld.u0 - canvas.u0) / canvas.pixel
    y0 = (fld.v0 - canvas.v0) / canvas.pixel
    src = canvas_map
    if s > 1.05 and interpolation == cv2.INTER_LINEAR:
        sigma = 0.5 * math.sqrt(s * s - 1.0)
        src = cv2.GaussianBlur(canvas_map, (0, 0), sigma)
    m = np.array([[s, 0.0, x0 + 0.5 * s - 0.5], [0.0, s, y0 + 0.5 * s - 0.5]])
    return cv2.warpAffine(src, m, (fld.width, fld.height), flags=interpolation | cv2.WARP_INVERSE_MAP,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=0)


def _truth(proj: PoseProjection, fld: Field, exposed: np.ndarray, vertebrae: list[Vertebra]):
    """Annotations of the bodies visible in a field, top to bottom, and the visible shares."""
    canvas = proj.canvas
    s = fld.pixel / canvas.pixel
    fx0 = (fld.u0 - canvas.u0) / canvas.pixel
    fy0 = (fld.v0 - canvas.v0) / canvas.pixel
    ss = TRUTH_SUPERSAMPLING
    annotations, visible, cut = [], {}, {}
    for v in vertebrae:
        if v.name not in proj.bodies:
            continue
        x0, y0, mask = proj.bodies[v.name]
        full = int(mask.sum())
        if full == 0:
            continue
        h, w = mask.shape
        # image coordinates of the fine pixel centres
        xi = (x0 + (np.arange(w) + 0.5) / ss - fx0) / s
        yi = (y0 + (np.arange(h) + 0.5) / ss - fy0) / s
        cols = np.floor(xi).astype(int)
        rows = np.floor(yi).astype(int)
        inside_x = (cols >= 0) & (cols < fld.width)
        inside_y = (rows >= 0) & (rows < fld.height)
        field = np.zeros((h, w), bool)
        if inside_x.any() and inside_y.any():
            sub = exposed[np.clip(rows, 0, fld.height - 1)][:, np.clip(cols, 0, fld.width - 1)] >= 0.5
            field = sub & inside_y[:, None] & inside_x[None, :]
        seen = mask & field
        fraction = seen.sum() / full
        if fraction <= 0:
            continue
        if fraction < MIN_VISIBLE_FRACTION:
            cut[v.name] = round(float(fraction), 4)
            continue
        contours, _ = cv2.findContours(seen.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
        if not contours:
            continue
        contour = max(contours, key=cv2.contourArea)
        contour = cv2.approxPolyDP(contour, 0.25 * ss * s, True).reshape(-1, 2).astype(np.float64)
        if len(contour) < 3:
            continue
        px = (x0 + (contour[:, 0] + 0.5) / ss - fx0) / s
        py = (y0 + (contour[:, 1] + 0.5) / ss - fy0) / s
        snap = 0.5 / (ss * s) + 1e-6  # boundary fine pixels lie half a fine pixel inside the edge
        px = np.where(px <= snap, 0.0, np.where(px >= fld.width - snap, float(fld.width), px))
        py = np.where(py <= snap, 0.0, np.where(py >= fld.height - snap, float(fld.height), py))
        polygon = np.stack([px, py], axis=1)
        if len(np.unique(polygon, axis=0)) < 3:
            continue
        annotations.append(Annotation(polygon=polygon, level=v.level))
        visible[v.name] = round(float(fraction), 4)
    return annotations, visible, cut


def render_image(prep: PreparedCase, proj: PoseProjection, fld: Field, config: DRRConfig, index: int,
                 pose_info: dict) -> tuple[np.ndarray, Record]:
    """The displayed image (uint8/uint16) and its record for one field of a projected pose."""
    rng = _rng(config.seed, _STREAM_IMAGE, index)
    noise = _rng(config.seed, _STREAM_NOISE, index)
    paths = _to_image(proj.paths, proj.canvas, fld)
    coverage = _to_image(proj.coverage, proj.canvas, fld)
    exposed = _collimation_mask(fld) * np.clip(coverage, 0.0, 1.0)
    exposed = cv2.GaussianBlur(exposed, (0, 0), 0.7)
    annotations, visible, cut = _truth(proj, fld, exposed, prep.vertebrae)
    spine = np.zeros((fld.height, fld.width), np.uint8)
    for ann in annotations:
        cv2.fillPoly(spine, [np.round((ann.polygon - 0.5) * 16).astype(np.int32)], 1, shift=4)
    ex = _draw_exposure(config, rng, fld.pixel)
    display = expose(paths, exposed, spine.astype(bool), ex, noise)
    top = (1 << config.bit_depth) - 1
    image = np.round(display * top).astype(np.uint16 if config.bit_depth == 16 else np.uint8)
    if fld.mirror:
        image = np.ascontiguousarray(image[:, ::-1])
        for ann in annotations:
            ann.polygon = np.stack([fld.width - ann.polygon[:, 0], ann.polygon[:, 1]], axis=1)[::-1].copy()
    transitional = [v.name for v in prep.vertebrae if v.level is None and v.name in visible]
    named = [a.level for a in annotations if a.level is not None]
    m = pose_info["magnification"]
    exposure = {k: (round(v, 4) if isinstance(v, float) else v) for k, v in asdict(ex).items() if k != "spectrum"}
    exposure.update(kvp=round(ex.spectrum.kvp, 2), mean_kev=round(ex.spectrum.mean_kev, 2))
    extra = {"drr": {
        "format_version": FORMAT_VERSION, "seed": config.seed, "index": index, "case": prep.case.name,
        "ct": prep.case.ct.name, "labels": prep.case.labels.name, "numbering": prep.numbering,
        "pose": pose_info, "exposure": exposure, "detector_pixel_mm": round(fld.pixel, 5),
        "facing": "left" if fld.mirror else "right", "collimated": fld.collimation is not None,
        "implants": proj.implants, "lateral_padding_mm": proj.padding_mm, "visible_fraction": visible, "unannotated_partial": cut,
        "transitional": transitional, "body_cut": {k: prep.extra["body_cut"][k] for k in visible},
    }}
    record = Record(image_path=None, width=fld.width, height=fld.height, annotations=annotations,
                    view=view_of_levels(named), pixel_spacing_mm=(round(fld.pixel / m, 6), round(fld.pixel / m, 6)),
                    image_id=index + 1, image=image, extra=extra)
    return image, record


def render_pose(prep: PreparedCase, config: DRRConfig, pose_index: int, indices: list[int]):
    """Images and records for the given image indices of one pose."""
    rng = _rng(config.seed, _STREAM_POSE, pose_index)
    pose, info = _plan_pose(prep, config, rng)
    height_mm = float(rng.uniform(*config.field_mm))
    info["field_height_mm"] = round(height_mm, 1)
    fields = [_plan_field(prep, pose, config, _rng(config.seed, _STREAM_FIELD, i), height_mm) for i in indices]
    canvas = _canvas_for(fields)
    proj = project_pose(prep, pose, canvas, _rng(config.seed, _STREAM_IMPLANT, pose_index), config)
    return [render_image(prep, proj, f, config, i, info) for f, i in zip(fields, indices)]


def pose_plan(n_images: int, n_cases: int, images_per_pose: int) -> list[tuple[int, int, list[int]]]:
    """(pose index, case index, image indices) of a data set of ``n_images``."""
    out = []
    for p in range(math.ceil(n_images / images_per_pose)):
        idx = list(range(p * images_per_pose, min((p + 1) * images_per_pose, n_images)))
        out.append((p, p % n_cases, idx))
    return out


__all__ = ["CTCase", "DRRConfig", "MIN_VISIBLE_FRACTION", "PreparedCase", "ORDER", "pose_plan", "prepare_case",
           "project_pose", "render_image", "render_pose"]
