"""Cone-beam projection of voxel volumes onto a flat detector, plane by plane, with OpenCV.

Every plane of constant first voxel index of a volume (a sagittal slab, the beam being lateral)
maps onto the detector by a central projection from the source: a plane-to-plane homography. So
the line integral along each ray is the sum over planes of the plane's values resampled by its
homography (``cv2.warpPerspective``, bilinear), times the ray's path length through one plane's
thickness (``thickness / |cos angle between ray and plane normal|``). This is exact for any patient
pose and source distance up to the in-plane interpolation, and runs as a few hundred image warps
per projection instead of a ray march through the volume. Up to four materials travel together
as the channels of one warp.

Frames: world = CT millimetres (RAS). The beam frame is the world rotated by ``pose.rotation``
about ``pose.isocentre``: the central ray runs along beam +x from the source at x = -SOD to the
detector at x = SDD - SOD; detector u runs along beam +y (the patient's anterior before
rotation), detector v along beam -z (image rows go down, the patient's feet). A canvas is a pixel
grid on the detector: pixel (col, row) covers u in [u0 + col*c, u0 + (col+1)*c), likewise v.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class Pose:
    rotation: np.ndarray  # (3, 3) world → beam
    isocentre: np.ndarray  # (3,) world mm, the point on the central ray at SOD from the source
    sod: float  # source to isocentre, mm
    sdd: float  # source to detector, mm

    @property
    def magnification(self) -> float:
        return self.sdd / self.sod


@dataclass(frozen=True)
class Canvas:
    u0: float  # detector mm at the left edge
    v0: float  # detector mm at the top edge
    pixel: float  # detector mm per pixel
    width: int
    height: int

    def sub(self, x0: int, y0: int, width: int, height: int, factor: int = 1) -> "Canvas":
        """The window starting at pixel (x0, y0) (may lie outside), ``factor`` times finer."""
        return Canvas(self.u0 + x0 * self.pixel, self.v0 + y0 * self.pixel, self.pixel / factor,
                      width * factor, height * factor)


def project_points(pose: Pose, points: np.ndarray) -> np.ndarray:
    """Detector (u, v) in mm of world points (N, 3)."""
    q = (np.asarray(points, float) - pose.isocentre) @ pose.rotation.T
    w = q[:, 0] + pose.sod
    return np.stack([pose.sdd * q[:, 1] / w, -pose.sdd * q[:, 2] / w], axis=1)


def to_canvas(canvas: Canvas, uv: np.ndarray) -> np.ndarray:
    """Continuous canvas pixel coordinates of detector points (pixel centres at +0.5)."""
    uv = np.asarray(uv, float)
    return np.stack([(uv[:, 0] - canvas.u0) / canvas.pixel, (uv[:, 1] - canvas.v0) / canvas.pixel], axis=1)


def plane_homography(pose: Pose, canvas: Canvas, affine: np.ndarray, i: float) -> np.ndarray:
    """3x3 map from (j, k) voxel indices of plane ``i`` (OpenCV source x = j, y = k) to OpenCV
    canvas coordinates (pixel centres at integers)."""
    a3, at = affine[:3, :3], affine[:3, 3]
    r = pose.rotation
    proj = np.stack([pose.sdd * r[1], -pose.sdd * r[2], r[0]])  # beam point → homogeneous (u, v)
    cols = np.stack([a3[:, 1], a3[:, 2], a3[:, 0] * i + at - pose.isocentre], axis=1)
    h = proj @ cols
    h[2, 2] += pose.sod
    k = np.array([[1.0 / canvas.pixel, 0.0, -canvas.u0 / canvas.pixel - 0.5],
                  [0.0, 1.0 / canvas.pixel, -canvas.v0 / canvas.pixel - 0.5],
                  [0.0, 0.0, 1.0]])
    return k @ h


def plane_normal(affine: np.ndarray) -> np.ndarray:
    """Unit normal of the planes of constant first index of a grid."""
    a3 = affine[:3, :3]
    normal = np.cross(a3[:, 1], a3[:, 2])
    return normal / np.linalg.norm(normal)


def plane_spacing_mm(affine: np.ndarray) -> float:
    """Distance between neighbouring planes of constant first index."""
    return abs(float(np.dot(affine[:3, 0], plane_normal(affine))))


def path_weight(pose: Pose, canvas: Canvas, normal: np.ndarray) -> np.ndarray:
    """Per canvas pixel, the ray's path length (cm) per millimetre of slab thickness, for slabs
    with unit normal ``normal`` (world): 0.1 / |cos(ray, normal)|."""
    u = canvas.u0 + (np.arange(canvas.width) + 0.5) * canvas.pixel
    v = canvas.v0 + (np.arange(canvas.height) + 0.5) * canvas.pixel
    uu, vv = np.meshgrid(u, v)
    direction_beam = np.stack([np.full_like(uu, pose.sdd), uu, -vv], axis=-1)
    direction_beam /= np.linalg.norm(direction_beam, axis=-1, keepdims=True)
    cos = np.abs(direction_beam @ (pose.rotation @ normal))
    return (0.1 / np.maximum(cos, 1e-3)).astype(np.float32)


def _plane_window(h: np.ndarray, box: tuple[int, int, int, int], canvas: Canvas) -> tuple[int, int, int, int] | None:
    j0, j1, k0, k1 = box
    corners = np.array([[j0 - 1, k0 - 1, 1], [j1, k0 - 1, 1], [j0 - 1, k1, 1], [j1, k1, 1]], float).T
    p = h @ corners
    if np.any(p[2] <= 0):
        return 0, 0, canvas.width, canvas.height
    x, y = p[0] / p[2], p[1] / p[2]
    x0, x1 = max(int(np.floor(x.min())) - 1, 0), min(int(np.ceil(x.max())) + 2, canvas.width)
    y0, y1 = max(int(np.floor(y.min())) - 1, 0), min(int(np.ceil(y.max())) + 2, canvas.height)
    if x1 <= x0 or y1 <= y0:
        return None
    return x0, y0, x1, y1


def project_planes(planes, pose: Pose, canvas: Canvas, affine: np.ndarray, channels: int, *,
                   mode: str = "sum", out: np.ndarray | None = None) -> np.ndarray:
    """Accumulate planes onto the canvas: ``planes`` yields ``(i, image, box)`` with ``image`` a
    (K, J[, C]) float32 array indexed [k, j] (plane index ``i`` may be fractional or outside the
    volume) and ``box`` = (j0, j1, k0, k1), the part of the image that is not zero. ``mode`` "sum"
    (line integrals, before :func:`path_weight`) or "max" (silhouettes)."""
    if out is None:
        shape = (canvas.height, canvas.width) if channels == 1 else (canvas.height, canvas.width, channels)
        out = np.zeros(shape, np.float32)
    for i, image, box in planes:
        h = plane_homography(pose, canvas, affine, i)
        window = _plane_window(h, box, canvas)
        if window is None:
            continue
        x0, y0, x1, y1 = window
        shift = np.array([[1.0, 0.0, -x0], [0.0, 1.0, -y0], [0.0, 0.0, 1.0]])
        warped = cv2.warpPerspective(image, shift @ h, (x1 - x0, y1 - y0), flags=cv2.INTER_LINEAR,
                                     borderMode=cv2.BORDER_CONSTANT, borderValue=0)
        target = out[y0:y1, x0:x1]
        if mode == "sum":
            target += warped
        else:
            np.maximum(target, warped, out=target)
    return out


def project_slabs(slabs: np.ndarray, boxes: list, pose: Pose, canvas: Canvas, affine: np.ndarray,
                  extra_planes=(), *, mode: str = "sum", first_index: float = 0.0) -> np.ndarray:
    """Line integrals (before :func:`path_weight`) of a stack of parallel planes, by shear-warp.

    ``slabs``: (S, K, J, C) float32 with plane ``s`` at first index ``s`` of ``affine``;
    ``boxes``: per plane (j0, j1, k0, k1) of its non-zero part or None; ``extra_planes``: more
    ``(i, image, box)`` planes parallel to them (e.g. virtual soft tissue beyond a cut face);
    ``mode`` "sum" or "max" (silhouettes); plane ``s`` of ``slabs`` sits at first index
    ``first_index + s`` of ``affine``.

    Parallel planes map onto each other by a homothety about the foot of the source, so every
    plane is scaled (``cv2.warpAffine`` on the planes' own small grid) onto the plane nearest the
    detector and summed there; one homography takes that sum onto the detector. This equals
    :func:`project_planes` up to one more bilinear resampling, at a fraction of the cost.
    """
    planes = [(first_index + i, slabs[i], b) for i, b in enumerate(boxes) if b is not None] + list(extra_planes)
    channels = slabs.shape[3] if slabs.ndim == 4 else 1
    if not planes:
        return np.zeros((canvas.height, canvas.width, channels), np.float32)
    n = plane_normal(affine)
    source = pose.isocentre + pose.rotation.T @ np.array([-pose.sod, 0.0, 0.0])
    e = affine[:3, 1:3]
    pinv = np.linalg.pinv(e)

    def geometry(i):
        origin = affine[:3, 0] * i + affine[:3, 3]
        delta = float(np.dot(n, origin - source))
        foot = source + delta * n
        return delta, pinv @ (foot - origin)

    geo = [geometry(i) for i, _, _ in planes]
    ref = int(np.argmax([abs(d) for d, _ in geo]))
    d_ref, f_ref = geo[ref]
    lo, hi = np.array([np.inf, np.inf]), np.array([-np.inf, -np.inf])
    scales = []
    for (i, _, box), (d, f) in zip(planes, geo):
        lam = d_ref / d
        scales.append(lam)
        corners = np.array([[box[0] - 1, box[2] - 1], [box[1], box[3]]], float)
        mapped = f_ref + lam * (corners - f)
        lo, hi = np.minimum(lo, mapped.min(axis=0)), np.maximum(hi, mapped.max(axis=0))
    j0, k0 = int(np.floor(lo[0])) - 1, int(np.floor(lo[1])) - 1
    width, height = int(np.ceil(hi[0])) + 2 - j0, int(np.ceil(hi[1])) + 2 - k0
    acc = np.zeros((height, width, channels), np.float32)
    for (i, image, box), (d, f), lam in zip(planes, geo, scales):
        # footprint of the plane's box on the reference grid
        corners = np.array([[box[0] - 1, box[2] - 1], [box[1], box[3]]], float)
        mapped = f_ref + lam * (corners - f) - np.array([j0, k0])
        x0, y0 = max(int(np.floor(mapped[:, 0].min())), 0), max(int(np.floor(mapped[:, 1].min())), 0)
        x1, y1 = min(int(np.ceil(mapped[:, 0].max())) + 1, width), min(int(np.ceil(mapped[:, 1].max())) + 1, height)
        if x1 <= x0 or y1 <= y0:
            continue
        # reference pixel (x, y) of the window ↔ plane indices f + ((x + x0 + j0, y + y0 + k0) - f_ref) / lam
        m = np.array([[1.0 / lam, 0.0, f[0] + (x0 + j0 - f_ref[0]) / lam],
                      [0.0, 1.0 / lam, f[1] + (y0 + k0 - f_ref[1]) / lam]])
        warped = cv2.warpAffine(image, m, (x1 - x0, y1 - y0), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                                borderMode=cv2.BORDER_CONSTANT, borderValue=0)
        target = acc[y0:y1, x0:x1]
        warped = warped.reshape(target.shape)
        if mode == "sum":
            target += warped
        else:
            np.maximum(target, warped, out=target)
    h = plane_homography(pose, canvas, affine, planes[ref][0]) @ np.array([[1.0, 0, j0], [0, 1.0, k0], [0, 0, 1.0]])
    out = cv2.warpPerspective(acc, h, (canvas.width, canvas.height), flags=cv2.INTER_LINEAR,
                              borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    return out.reshape(canvas.height, canvas.width, channels)


def project_mask(mask: np.ndarray, box_offset: tuple[int, int, int], pose: Pose, canvas: Canvas,
                 affine: np.ndarray, group_mm: float = 1.5) -> np.ndarray:
    """Silhouette (float32, 0..1; threshold at 0.5) of a (I, J, K) mask whose voxel (0, 0, 0) is
    voxel ``box_offset`` of the grid ``affine`` describes. Planes are merged (maximum) in groups
    about ``group_mm`` thick, each projected from the group's middle, by shear-warp."""
    i0, j0, k0 = box_offset
    shifted = affine.copy()
    shifted[:3, 3] = affine[:3, :3] @ np.array([0.0, j0, k0]) + affine[:3, 3]
    m = mask.astype(np.float32)
    g = max(1, int(round(group_mm / plane_spacing_mm(affine))))
    n = -(-m.shape[0] // g)
    padded = np.zeros((n * g,) + m.shape[1:], np.float32)
    padded[: m.shape[0]] = m
    grouped = np.ascontiguousarray(padded.reshape(n, g, *m.shape[1:]).max(axis=1).transpose(0, 2, 1))  # [s, k, j]
    boxes = []
    for s in range(n):
        ks, js = np.nonzero(grouped[s] > 0)
        boxes.append(None if len(ks) == 0 else (int(js.min()), int(js.max()) + 1, int(ks.min()), int(ks.max()) + 1))
    # group s covers planes i0 + s*g ... i0 + s*g + g - 1: its middle on a grid g times coarser
    coarse = shifted.copy()
    coarse[:3, 0] = shifted[:3, 0] * g
    coarse[:3, 3] = shifted[:3, 3] + shifted[:3, 0] * (i0 + (g - 1) / 2.0)
    out = project_slabs(grouped[..., None], boxes, pose, canvas, coarse, mode="max")
    return out[..., 0]
