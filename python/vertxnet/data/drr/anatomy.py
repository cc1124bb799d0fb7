"""Vertebral bodies from whole-vertebra labels: the truth a lateral film is annotated with.

Body separation, per vertebra, in 3D (``separate_body``):

1. A frame: ``t`` along the spine (from the centroids of the neighbouring vertebrae), ``a``
   anterior (the patient's anterior axis made perpendicular to ``t``), ``l`` lateral.
2. The vertebra's footprint in the (``l``, ``a``) plane (its voxels projected along ``t``): a ring
   of body, pedicles and lamina around the spinal canal.
3. The midline: the lateral centre of the most anterior 30 % of the footprint (pure body).
4. Along the midline, from the anterior surface backwards, the body is the first run of occupied
   footprint; the canal is the first gap behind it (the midline is empty between the posterior
   wall of the body and the lamina). The cut is the plane perpendicular to ``a`` at the posterior
   wall: everything in front is body (pedicles, laminae, processes lie behind it). Where the canal
   cannot be seen (coarse voxels, cropped labels), the cut falls at 42 % of the vertebra's
   anteroposterior depth from the front, the typical body share of lumbar and thoracic vertebrae.
5. The largest connected part in front of the cut is the body.

Validated against body/posterior-element sub-region maps (TPTBox ``seg-subreg`` labels 49/50 and
TotalSegmentator ``vertebrae_body``): see benchmarks/RESULTS.md. The cut is planar, so the
slightly concave posterior wall loses its posterolateral corners (1-3 mm) when its midline lies
in front of them.

S1 from a whole-sacrum label (``s1_from_sacrum``): the superior endplate is the patch of sacrum
facing the lowest lumbar body (within 5 mm of the sacrum's closest approach to it); its normal
(principal axis of least spread) is the S1 axis, and S1 is the sacrum within one L5 body height
below that plane, cut at the canal like any other vertebra. This is approximate: the S1-S2 fusion
line is not visible in the label.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ...levels import LEVELS
from .numbering import SACRUM, TRANSITIONAL

#: Anatomical order of every vertebra name a CT may label (transitional ones where they sit).
ORDER: tuple[str, ...] = (*LEVELS[:19], "T13", *LEVELS[19:24], "L6", "S1")
#: Share of a vertebra's anteroposterior depth that is body, where the canal is not seen.
BODY_DEPTH_SHARE = 0.42
#: Thickness of the midline band searched for the canal (mm) and the smallest canal gap (mm).
MIDLINE_HALF_WIDTH_MM = 3.0
MIN_CANAL_GAP_MM = 2.0


@dataclass
class Vertebra:
    """One labelled vertebra of a CT and its body, on the CT's voxel grid."""

    name: str  # C1 … L5, S1, or the transitional L6 / T13
    value: int  # label value
    whole_box: tuple[int, int, int, int, int, int]  # (i0, i1, j0, j1, k0, k1), half-open
    whole: np.ndarray  # bool mask over whole_box
    body_box: tuple[int, int, int, int, int, int]
    body: np.ndarray  # bool mask over body_box
    centre: np.ndarray  # body centroid (mm)
    t: np.ndarray  # unit vector along the spine, superior
    a: np.ndarray  # unit vector anterior
    l: np.ndarray  # unit vector lateral
    height_mm: float
    depth_mm: float
    width_mm: float
    cut_method: str  # "canal" | "proportion" | "sacrum"
    extra: dict = field(default_factory=dict)

    @property
    def level(self) -> str | None:
        """The name a radiograph annotation gives it (None for a transitional vertebra)."""
        return None if self.name in TRANSITIONAL else self.name


def _unit(v: np.ndarray) -> np.ndarray:
    n = float(np.linalg.norm(v))
    return v / n if n > 1e-9 else v


def _points(mask: np.ndarray, offset: tuple[int, int, int], affine: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    idx = np.argwhere(mask)
    world = (idx + np.asarray(offset)) @ affine[:3, :3].T + affine[:3, 3]
    return idx, world


def _box_of(mask: np.ndarray) -> tuple[int, int, int, int, int, int]:
    nz = [np.nonzero(mask.any(axis=tuple(j for j in range(3) if j != i)))[0] for i in range(3)]
    return (int(nz[0][0]), int(nz[0][-1]) + 1, int(nz[1][0]), int(nz[1][-1]) + 1, int(nz[2][0]), int(nz[2][-1]) + 1)


def frame(t: np.ndarray, affine: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(t, a, l): ``a`` is the world anterior (+y, RAS) made perpendicular to ``t``."""
    t = _unit(np.asarray(t, float))
    ant = np.array([0.0, 1.0, 0.0])
    a = _unit(ant - np.dot(ant, t) * t)
    return t, a, _unit(np.cross(t, a))


def posterior_wall(pa: np.ndarray, pl: np.ndarray, bin_mm: float) -> tuple[float | None, float]:
    """Anterior coordinate of the body's posterior wall from the midline gap (None when no canal
    is seen) and the lateral midline used. ``pa``/``pl``: anterior / lateral coordinates (mm)."""
    from scipy import ndimage

    a_min, a_max = float(pa.min()), float(pa.max())
    front = pa >= a_max - 0.3 * (a_max - a_min)
    l_mid = float(np.median(pl[front]))
    ia = np.floor((a_max - pa) / bin_mm).astype(int)  # 0 = most anterior row
    il = np.floor((pl - l_mid) / bin_mm).astype(int)
    half = int(np.ceil(max(MIDLINE_HALF_WIDTH_MM, 1.5 * bin_mm) / bin_mm))
    lo, hi = il.min(), il.max()
    grid = np.zeros((ia.max() + 1, hi - lo + 1), bool)
    grid[ia, il - lo] = True
    grid = ndimage.binary_closing(grid, structure=np.ones((2, 2), bool)) | grid
    centre = -lo
    band = grid[:, max(centre - half, 0) : centre + half + 1]
    occupied = band.mean(axis=1) >= 0.5
    gap = max(1, int(np.ceil(MIN_CANAL_GAP_MM / bin_mm)))
    min_body = int(np.ceil(8.0 / bin_mm))
    row = int(np.argmax(occupied)) if occupied.any() else 0
    n = len(occupied)
    while row < n:
        # end of the current occupied run
        end = row
        while end < n and occupied[end]:
            end += 1
        if end >= n:
            return None, l_mid
        empty = end
        while empty < n and not occupied[empty]:
            empty += 1
        if empty - end >= gap and end >= min_body and empty < n:
            return a_max - end * bin_mm, l_mid
        row = empty
    return None, l_mid


def _largest_component(mask: np.ndarray) -> np.ndarray:
    from scipy import ndimage

    lab, n = ndimage.label(mask, structure=np.ones((3, 3, 3), bool))
    if n <= 1:
        return mask
    sizes = np.bincount(lab.ravel())
    sizes[0] = 0
    return lab == int(np.argmax(sizes))


def separate_body(whole: np.ndarray, offset: tuple[int, int, int], affine: np.ndarray, t: np.ndarray,
                  *, a_cut_override: float | None = None) -> tuple[np.ndarray, dict]:
    """Body mask (same box as ``whole``) and the cut's description."""
    idx, world = _points(whole, offset, affine)
    t, a, l = frame(t, affine)
    centre = world.mean(axis=0)
    rel = world - centre
    pa, pl = rel @ a, rel @ l
    spacing = np.sqrt((affine[:3, :3] ** 2).sum(axis=0))
    bin_mm = max(1.0, 0.75 * float(spacing.max()))
    if a_cut_override is not None:
        a_cut, method, l_mid = a_cut_override, "sacrum", 0.0
    else:
        a_cut, l_mid = posterior_wall(pa, pl, bin_mm)
        extent = float(pa.max() - pa.min())
        front = pa >= pa.max() - 0.3 * extent
        front_width = float(np.percentile(pl[front], 98) - np.percentile(pl[front], 2))
        method = "canal"
        if a_cut is None and extent < 1.1 * front_width:
            # no canal and no longer than wide: a label of the body alone
            a_cut, method = float(pa.min()) - 1.0, "body label"
        elif a_cut is None or not 0.2 * extent <= pa.max() - a_cut <= 0.75 * extent:
            a_cut, method = float(pa.max() - BODY_DEPTH_SHARE * extent), "proportion"
    keep = pa > a_cut
    body = np.zeros_like(whole)
    body[tuple(idx[keep].T)] = True
    body = _largest_component(body)
    return body, {"a_cut_mm": float(a_cut), "method": method, "t": t, "a": a, "l": l, "centre": centre}


def _dims(mask: np.ndarray, offset, affine, t, a, l) -> tuple[np.ndarray, float, float, float]:
    _, world = _points(mask, offset, affine)
    c = world.mean(axis=0)
    rel = world - c
    ext = [float(np.percentile(rel @ v, 98) - np.percentile(rel @ v, 2)) for v in (t, a, l)]
    return c, ext[0], ext[1], ext[2]


def s1_from_sacrum(sacrum: np.ndarray, offset, affine: np.ndarray, above: "Vertebra | None") -> tuple[np.ndarray, np.ndarray]:
    """The S1 segment of a whole-sacrum mask (same box) and its axis (unit vector, superior)."""
    from scipy.spatial import cKDTree

    idx, world = _points(sacrum, offset, affine)
    if above is None:
        t = np.array([0.0, 0.0, 1.0])
        top = world[:, 2].max()
        height = 30.0
        depth = top - world[:, 2]
    else:
        _, above_world = _points(above.body, above.body_box[::2], affine)
        dist, _ = cKDTree(above_world[:: max(1, len(above_world) // 20000)]).query(world, k=1)
        patch = world[dist <= dist.min() + 5.0]
        if len(patch) < 10:
            patch = world[np.argsort(dist)[:50]]
        centred = patch - patch.mean(axis=0)
        _, _, vt = np.linalg.svd(centred, full_matrices=False)
        t = _unit(vt[-1])
        if np.dot(t, above.centre - patch.mean(axis=0)) < 0:
            t = -t
        if np.dot(t, above.t) < 0.3:  # a flat or noisy patch: follow the spine instead
            t = above.t
        height = 0.95 * above.height_mm
        depth = (patch.mean(axis=0) - world) @ t
    keep = (depth >= -3.0) & (depth <= height)
    s1 = np.zeros_like(sacrum)
    s1[tuple(idx[keep].T)] = True
    return _largest_component(s1) if s1.any() else s1, t


def _neighbour_tangents(centroids: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    names = [n for n in ORDER if n in centroids]
    out = {}
    for i, n in enumerate(names):
        up = centroids[names[i - 1]] if i > 0 else None
        down = centroids[names[i + 1]] if i + 1 < len(names) else None
        c = centroids[n]
        if up is not None and np.linalg.norm(up - c) > 80:
            up = None
        if down is not None and np.linalg.norm(down - c) > 80:
            down = None
        if up is not None and down is not None:
            t = up - down
        elif up is not None:
            t = up - c
        elif down is not None:
            t = c - down
        else:
            t = np.array([0.0, 0.0, 1.0])
        t = _unit(t)
        if t[2] < 0:
            t = -t
        out[n] = t
    return out


def vertebrae_of(labels: np.ndarray, affine: np.ndarray, present: dict[int, str]) -> list[Vertebra]:
    """Every labelled vertebra with its body, top to bottom. The sacrum becomes S1 unless an S1
    label exists."""
    from scipy import ndimage

    objects = ndimage.find_objects(labels)
    masks: dict[str, tuple[int, np.ndarray, tuple]] = {}
    for value, name in present.items():
        if value > len(objects) or objects[value - 1] is None:
            continue
        sl = objects[value - 1]
        mask = labels[sl] == value
        mask = _largest_component(mask)
        box = (sl[0].start, sl[0].stop, sl[1].start, sl[1].stop, sl[2].start, sl[2].stop)
        if mask.sum() < 20:
            continue
        masks[name] = (value, mask, box)
    sacrum = masks.pop(SACRUM, None)
    if "S1" in masks:
        sacrum = None
    centroids = {n: _points(m, b[::2], affine)[1].mean(axis=0) for n, (_, m, b) in masks.items()}
    if sacrum is not None:
        centroids["S1"] = _points(sacrum[1], sacrum[2][::2], affine)[1].mean(axis=0)
    tangents = _neighbour_tangents(centroids)
    out: list[Vertebra] = []
    for name in ORDER:
        if name == "S1" and sacrum is not None:
            continue
        if name not in masks:
            continue
        value, whole, box = masks[name]
        out.append(_make(name, value, whole, box, affine, tangents[name]))
    if sacrum is not None:
        value, whole, box = sacrum
        above = next((v for v in reversed(out) if v.name in ("L5", "L6")), None)
        s1, t = s1_from_sacrum(whole, box[::2], affine, above)
        if s1.sum() >= 20:
            out.append(_make("S1", value, whole, box, affine, t, segment=s1))
    return out


def _make(name, value, whole, box, affine, t, *, segment=None) -> Vertebra:
    source = whole if segment is None else segment
    body, info = separate_body(source, box[::2], affine, t)
    if segment is not None:
        info["method"] = "sacrum/" + info["method"]
    if not body.any():
        body = source.copy()
    bb = _box_of(body)
    body_crop = body[bb[0] : bb[1], bb[2] : bb[3], bb[4] : bb[5]]
    body_box = (box[0] + bb[0], box[0] + bb[1], box[2] + bb[2], box[2] + bb[3], box[4] + bb[4], box[4] + bb[5])
    centre, h, d, w = _dims(body_crop, body_box[::2], affine, info["t"], info["a"], info["l"])
    return Vertebra(name=name, value=int(value), whole_box=tuple(int(v) for v in box), whole=whole,
                    body_box=tuple(int(v) for v in body_box), body=body_crop, centre=centre, t=info["t"], a=info["a"],
                    l=info["l"], height_mm=h, depth_mm=d, width_mm=w, cut_method=info["method"],
                    extra={"a_cut_mm": info["a_cut_mm"]})
