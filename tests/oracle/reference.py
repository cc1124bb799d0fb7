"""Readable shapely implementation of the core rules (SPEC §3 ensemble, §4 zipper labelling).

This is the reference twin of the C++ core (``vertxnet.core``): same functions, same rules, same
results up to floating-point rounding. It is written for reading, not speed (no pruning, no
caching) and serves as the test oracle and the benchmark baseline (benchmarks/bench_core.py).
It needs shapely, a test dependency, and is not part of the package: tests import it as
``reference`` (tests/conftest.py puts tests/oracle on ``sys.path``).

Shared conventions (also those of the C++ core):

* A polygon is an (N, 2) array of (x, y) pixel coordinates, N >= 3, finite, |value| <= 1e6.
* Coordinates are first rounded to the nearest multiple of 1/1024 px (the C++ core's integer grid).
* A ring encloses the points it winds around a non-zero number of times (non-zero fill rule), so
  self-touching and self-intersecting traced outlines have a well-defined area.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import shapely
from shapely.geometry import LineString, Point, Polygon
from shapely.geometry.polygon import orient
from shapely.geometry.base import BaseGeometry
from shapely.ops import unary_union

from vertxnet.levels import LEVELS

SCALE = 1024.0
MAX_ABS_COORDINATE = 1.0e6
MASK_CLASSES = ("vertebra", "C2", "S1")

_C2 = LEVELS.index("C2") + 1  # 1-based level indices, as vertxnet.levels.level_index
_S1 = LEVELS.index("S1") + 1


# --------------------------------------------------------------------------- polygons


def _check_polygon(p, name: str) -> np.ndarray:
    """The polygon as float64 (N, 2), or ValueError naming the argument."""
    try:
        array = np.asarray(p)
    except (ValueError, TypeError):
        raise ValueError(f"{name}: cannot be read as an array of coordinates") from None
    if array.dtype.kind not in "fiu":
        raise ValueError(f"{name}: expected real-valued coordinates, got dtype {array.dtype}")
    if array.ndim != 2 or array.shape[1] != 2:
        raise ValueError(f"{name}: expected an (N, 2) array of (x, y) coordinates, got shape {array.shape}")
    array = array.astype(np.float64)
    if len(array) < 3:
        raise ValueError(f"{name}: polygon needs at least 3 points, got {len(array)}")
    if np.isnan(array).any():
        raise ValueError(f"{name}: polygon has NaN coordinates")
    if np.isinf(array).any():
        raise ValueError(f"{name}: polygon has infinite coordinates")
    if np.abs(array).max() > MAX_ABS_COORDINATE:
        raise ValueError(f"{name}: coordinate outside the supported range of +-{MAX_ABS_COORDINATE:g} px")
    return array


def _quantise(points: np.ndarray) -> np.ndarray:
    """Round to the 1/1024 px grid (halves away from zero) and drop repeated consecutive points."""
    scaled = points * SCALE
    q = np.sign(scaled) * np.floor(np.abs(scaled) + 0.5) / SCALE
    keep = np.ones(len(q), dtype=bool)
    keep[1:] = np.any(q[1:] != q[:-1], axis=1)
    q = q[keep]
    while len(q) > 1 and np.array_equal(q[0], q[-1]):
        q = q[:-1]
    return q


def _winding_number(ring: np.ndarray, x: float, y: float) -> int:
    """How many times the closed ring winds around (x, y) (the point must not lie on the ring)."""
    a = ring
    b = np.roll(ring, -1, axis=0)
    cross = (b[:, 0] - a[:, 0]) * (y - a[:, 1]) - (x - a[:, 0]) * (b[:, 1] - a[:, 1])
    upward = (a[:, 1] <= y) & (b[:, 1] > y) & (cross > 0)
    downward = (a[:, 1] > y) & (b[:, 1] <= y) & (cross < 0)
    return int(upward.sum()) - int(downward.sum())


def region(p, name: str = "p") -> BaseGeometry:
    """The area a ring encloses under the non-zero rule, as a valid shapely geometry."""
    ring = _quantise(_check_polygon(p, name))
    if len(np.unique(ring, axis=0)) < 3:
        return Polygon()
    polygon = Polygon(ring)
    if polygon.is_valid:
        return polygon  # a simple ring: its interior is exactly the non-zero region
    # Self-touching or self-intersecting: split the plane along the ring's own crossings and
    # keep the faces the ring winds around.
    noded = shapely.node(LineString(np.vstack([ring, ring[:1]])))
    faces = shapely.get_parts(shapely.polygonize(shapely.get_parts(noded)))
    kept = []
    for face in faces:
        inside = face.representative_point()
        if _winding_number(ring, inside.x, inside.y) != 0:
            kept.append(face)
    return unary_union(kept) if kept else Polygon()


def _with_vertex(coords: list, point: Point) -> list:
    """A ring's vertex list with a point of its boundary made a vertex (inserted in its edge)."""
    target = (point.x, point.y)
    if target in coords:
        return coords
    for k in range(len(coords)):
        if LineString([coords[k], coords[(k + 1) % len(coords)]]).distance(point) == 0:
            return coords[:k + 1] + [target] + coords[k + 1:]
    raise AssertionError("the point is not on the ring")


def _outline(parts: list[Polygon]) -> np.ndarray:
    """One ring around parts that touch each other at single points (a tree of parts): the
    largest part's exterior (counter-clockwise), with the exterior of each part touching it
    spliced in at the touching point, recursively. The ring passes through each touching point
    once per part there."""

    def ring_of(k: int, parent: int | None, start: Point | None) -> list:
        coords = [tuple(c) for c in np.asarray(orient(parts[k], sign=1.0).exterior.coords)[:-1]]
        if start is not None:
            coords = _with_vertex(coords, start)
            first = coords.index((start.x, start.y))
            coords = coords[first:] + coords[:first]
        for j in range(len(parts)):
            if j in (k, parent) or not parts[k].touches(parts[j]):
                continue
            touch = parts[k].boundary.intersection(parts[j].boundary)
            touch = touch if isinstance(touch, Point) else shapely.get_parts(touch)[0]
            coords = _with_vertex(coords, touch)
            at = coords.index((touch.x, touch.y))
            coords = coords[:at] + ring_of(j, k, touch) + coords[at:]
        return coords

    root = max(range(len(parts)), key=lambda k: parts[k].area)
    return np.asarray(ring_of(root, None, None), dtype=np.float64)


def _outer_ring(geometry: BaseGeometry) -> np.ndarray:
    """The union rule: the outer boundary of the largest connected part of the region with every
    hole filled, where parts that touch at a point count as connected. Positive shoelace area,
    not closed; (0, 2) when there is no area.

    Filling first (every bounded face of the boundary) closes the holes between parts touching at
    two or more points; parts still touching at single points then form a tree, and the ring
    around them passes through each touching point once per part (it touches itself there but
    never crosses), so it is never smaller than any connected input.
    """
    if geometry.is_empty or geometry.area <= 0:
        return np.zeros((0, 2))
    faces = shapely.polygonize(shapely.get_parts(shapely.node(geometry.boundary)))
    filled = unary_union([geometry, faces])
    parts = [Polygon(g.exterior) for g in shapely.get_parts(filled) if isinstance(g, Polygon) and g.area > 0]
    # Groups of parts connected through touching points; the group of largest area wins (ties:
    # the group of the largest part).
    groups: list[list[Polygon]] = []
    for part in sorted(parts, key=lambda g: -g.area):
        joined = [g for g in groups if any(part.touches(q) for q in g)]
        merged = [part] + [q for g in joined for q in g]
        groups = [g for g in groups if not any(g is j for j in joined)] + [merged]
    best = max(groups, key=lambda g: sum(q.area for q in g))
    return _outline(best)


def polygon_area(p) -> float:
    """Area (px^2) enclosed by the ring (non-zero rule); 0 for degenerate rings."""
    return region(p, "p").area


def intersection_area(a, b) -> float:
    """Area (px^2) of the intersection of the two enclosed regions."""
    return region(a, "a").intersection(region(b, "b")).area


def polygon_union(a, b) -> np.ndarray:
    """Outer ring of the union (holes filled); for disjoint inputs the ring of the larger part."""
    return _outer_ring(region(a, "a").union(region(b, "b")))


def polygon_centroid(p) -> tuple[float, float]:
    """Centroid of the enclosed region; the vertex mean when it encloses no area."""
    enclosed = region(p, "p")
    if enclosed.area > 0:
        return (enclosed.centroid.x, enclosed.centroid.y)
    mean = _check_polygon(p, "p").mean(axis=0)
    return (float(mean[0]), float(mean[1]))


# --------------------------------------------------------------------------- ensemble


@dataclass(frozen=True)
class EnsembleMask:
    """One vertebra of the ensemble (same fields as ``vertxnet.core.EnsembleMask``)."""

    polygon: np.ndarray
    cls: str  # "vertebra" | "C2" | "S1"
    score: float  # Mask R-CNN score, 0.0 for U-Net-only masks
    source: str  # "agreement" | "split" | "rescued"
    area: float
    centroid: tuple[float, float]
    unet_index: int | None = None
    mrcnn_index: int | None = None


@dataclass(eq=False)
class _Outline:
    polygon: np.ndarray
    geometry: BaseGeometry
    index: int
    used: bool = False


def _check_parameters(eta: float, lam: float, tau: float, ref_score: float, min_area: float) -> None:
    checks = [
        ("eta", eta, 0 < eta <= 1, "in (0, 1]"),
        ("lam", lam, 0 < lam < math.inf, "finite and > 0"),
        ("tau", tau, 0 <= tau <= 1, "in [0, 1]"),
        ("ref_score", ref_score, 0 <= ref_score <= 1, "in [0, 1]"),
        ("min_area", min_area, 0 <= min_area < math.inf, "finite and >= 0"),
    ]
    for name, value, ok, allowed in checks:
        if not ok:
            raise ValueError(f"{name}: must be {allowed}, got {value}")


def _mask(polygon: np.ndarray, geometry: BaseGeometry, cls: str, score: float, source: str,
          unet_index: int | None, mrcnn_index: int | None) -> tuple[EnsembleMask, BaseGeometry]:
    """An ensemble member: the public mask and the region it covers."""
    centroid = geometry.centroid
    mask = EnsembleMask(
        polygon=polygon, cls=cls, score=float(score), source=source, area=geometry.area,
        centroid=(centroid.x, centroid.y), unet_index=unet_index, mrcnn_index=mrcnn_index,
    )
    return mask, geometry


def ensemble(unet, detections, *, eta: float = 0.6, lam: float = 2.0, tau: float = 0.3,
             ref_score: float = 0.5, min_area: float = 1.0) -> list[EnsembleMask]:
    """Algorithm 1 of VertXNet made exact (SPEC §3); masks ordered top to bottom.

    ``detections``: Mask R-CNN instances with ``.polygon``, ``.cls`` and ``.score``
    (:class:`vertxnet.core.Detection`), as ``vertxnet.core.ensemble`` takes them.
    """
    detections = list(detections)
    mrcnn = [d.polygon for d in detections]
    mrcnn_classes = [d.cls for d in detections]
    mrcnn_scores = [d.score for d in detections]
    _check_parameters(eta, lam, tau, ref_score, min_area)
    unet = [_check_polygon(p, f"unet[{i}]") for i, p in enumerate(unet)]
    mrcnn = [_check_polygon(p, f"mrcnn[{j}]") for j, p in enumerate(mrcnn)]
    classes = list(mrcnn_classes)
    scores_array = np.asarray(mrcnn_scores, dtype=np.float64)
    if scores_array.ndim != 1:
        raise ValueError(f"mrcnn_scores: expected a 1-D list of scores, got {scores_array.ndim} dimensions")
    scores = [float(s) for s in scores_array]
    if len(classes) != len(mrcnn):
        raise ValueError(f"mrcnn_classes: expected {len(mrcnn)} classes for {len(mrcnn)} mrcnn polygons, got {len(classes)}")
    if len(scores) != len(mrcnn):
        raise ValueError(f"mrcnn_scores: expected {len(mrcnn)} scores for {len(mrcnn)} mrcnn polygons, got {len(scores)}")
    for j, (cls, score) in enumerate(zip(classes, scores)):
        if cls not in MASK_CLASSES:
            raise ValueError(f"mrcnn_classes[{j}]: unknown class {cls!r}; expected 'vertebra', 'C2' or 'S1'")
        if not math.isfinite(score):
            raise ValueError(f"mrcnn_scores[{j}]: score is not finite")

    # Drop degenerate outlines (fewer than 3 distinct points or no enclosed area).
    cu, cm, dropped = [], [], []
    for name, polygons, outlines in (("unet", unet, cu), ("mrcnn", mrcnn, cm)):
        for i, p in enumerate(polygons):
            enclosed = region(p, f"{name}[{i}]")
            if enclosed.area > 0:
                outlines.append(_Outline(p, enclosed, i))
            else:
                dropped.append(f"{name}[{i}]")
    if dropped:
        warnings.warn(
            f"ensemble: dropped {len(dropped)} degenerate polygon(s) (fewer than 3 distinct points "
            f"or no enclosed area): {', '.join(dropped)}", RuntimeWarning, stacklevel=2)

    E: list[tuple[EnsembleMask, BaseGeometry]] = []

    # Agreement and split, in input order.
    for u in cu:
        for m in cm:
            if m.used:
                continue
            inter = u.geometry.intersection(m.geometry).area
            if inter / max(u.geometry.area, m.geometry.area) > eta:
                ring = _outer_ring(u.geometry.union(m.geometry))
                E.append(_mask(ring, region(ring, "union"), classes[m.index], scores[m.index],
                               "agreement", u.index, m.index))
                u.used = m.used = True
                break
            if inter / m.geometry.area > eta:
                E.append(_mask(m.polygon, m.geometry, classes[m.index], scores[m.index], "split", None, m.index))
                m.used = True  # u stays: it may split further

    if not E:
        # Nothing agreed: keep every Mask R-CNN outline (or, without any, every U-Net outline).
        if cm:
            E = [_mask(m.polygon, m.geometry, classes[m.index], scores[m.index], "rescued", None, m.index)
                 for m in cm if m.geometry.area >= min_area]
        else:
            E = [_mask(u.polygon, u.geometry, "vertebra", 0.0, "rescued", u.index, None)
                 for u in cu if u.geometry.area >= min_area]
    else:
        areas = np.array([mask.area for mask, _ in E])
        mu = float(areas.mean())
        sigma = max(float(areas.std()), 0.1 * mu)  # population standard deviation
        remaining = [(m, True) for m in sorted((m for m in cm if not m.used), key=lambda m: -scores[m.index])]
        remaining += [(u, False) for u in sorted((u for u in cu if not u.used), key=lambda u: -u.geometry.area)]
        union_e = unary_union([g for _, g in E])
        for r, from_mrcnn in remaining:
            cls = classes[r.index] if from_mrcnn else "vertebra"
            score = scores[r.index] if from_mrcnn else 0.0
            area = r.geometry.area
            if from_mrcnn and cls in ("C2", "S1") and score >= ref_score:
                accept = True  # a reference vertebra is never dropped
            elif mu - lam * sigma < area < mu + lam * sigma:
                accept = r.geometry.intersection(union_e).area / area <= tau
            else:
                accept = False
            if accept:
                E.append(_mask(r.polygon, r.geometry, cls, score, "rescued",
                               None if from_mrcnn else r.index, r.index if from_mrcnn else None))
                union_e = union_e.union(r.geometry)

    return sorted((mask for mask, _ in E), key=lambda mask: mask.centroid[1])


# --------------------------------------------------------------------------- labelling


@dataclass(frozen=True)
class Labelling:
    """Anatomical names of a list of masks (same fields as ``vertxnet.core.Labelling``)."""

    labels: list
    view: str | None
    reference: str
    flags: list
    excluded: dict


def _label_input(item, name: str) -> tuple[tuple[float, float], str, float]:
    if hasattr(item, "polygon") and hasattr(item, "cls") and hasattr(item, "score"):
        polygon, cls, score = item.polygon, item.cls, item.score
    else:
        try:
            polygon, cls, score = item
        except (TypeError, ValueError):
            raise ValueError(f"{name}: expected an EnsembleMask or a (polygon, cls, score) tuple") from None
    if cls not in MASK_CLASSES:
        raise ValueError(f"{name}.cls: unknown class {cls!r}; expected 'vertebra', 'C2' or 'S1'")
    if isinstance(score, bool) or not math.isfinite(float(score)):
        raise ValueError(f"{name}.score: score is not finite")
    enclosed = region(polygon, f"{name}.polygon")
    if enclosed.area <= 0:
        raise ValueError(f"{name}.polygon: polygon encloses no area")
    return (enclosed.centroid.x, enclosed.centroid.y), cls, float(score)


def _best(masks: list, order: list[int], cls: str) -> int | None:
    """Sorted position of the best-scoring mask of a class (ties: lower input index)."""
    candidates = [k for k in range(len(order)) if masks[order[k]][1] == cls]
    if not candidates:
        return None
    return min(candidates, key=lambda k: (-masks[order[k]][2], order[k]))


def zip_labels(masks: Iterable, *, gap_factor: float = 1.6) -> Labelling:
    """Zipper labelling from the best-scoring C2 and/or S1 mask (SPEC §4).

    Masks are ordered by centroid y. With d the median distance between consecutive centroids,
    a step D > gap_factor * d between neighbours skips round(D / d) - 1 levels (at least one).
    """
    if not (math.isfinite(gap_factor) and gap_factor > 1):
        raise ValueError(f"gap_factor: must be finite and > 1, got {gap_factor}")
    if isinstance(masks, (str, bytes, dict)):
        raise TypeError("masks: expected a list")
    items = [_label_input(item, f"masks[{i}]") for i, item in enumerate(masks)]
    n = len(items)
    labels: list = [None] * n
    flags: list[str] = []
    excluded: dict[int, str] = {}

    order = sorted(range(n), key=lambda i: items[i][0][1])
    centroids = np.array([items[i][0] for i in order]).reshape(-1, 2)
    steps = np.hypot(*np.diff(centroids, axis=0).T) if n >= 2 else np.zeros(0)
    spacing = float(np.median(steps)) if len(steps) else 0.0
    chain = [0]  # position along the spine, counting inferred missing levels
    for step in steps:
        skip = 0
        if spacing > 0 and step > gap_factor * spacing:
            skip = max(1, math.floor(min(step / spacing, 1e6) + 0.5) - 1)
        chain.append(chain[-1] + 1 + skip)

    c2 = _best(items, order, "C2")
    s1 = _best(items, order, "S1")
    if c2 is not None and s1 is not None and s1 < c2:
        flags.append("label_conflict")  # S1 above C2: keep the better-scoring one (ties to C2)
        if items[order[s1]][2] > items[order[c2]][2]:
            c2 = None
        else:
            s1 = None
    if c2 is None and s1 is None:
        return Labelling(labels, None, "none", flags + ["no_reference"], {})

    gap_used = False
    for k in range(n):
        if c2 is not None and k < c2:
            excluded[order[k]] = "above_reference"
            continue
        if s1 is not None and k > s1:
            excluded[order[k]] = "below_reference"
            continue
        use_c2 = s1 is None or (c2 is not None and k - c2 <= s1 - k)
        if use_c2:
            level = _C2 + chain[k] - chain[c2]
            gap_used |= chain[k] - chain[c2] != k - c2
        else:
            level = _S1 - (chain[s1] - chain[k])
            gap_used |= chain[s1] - chain[k] != s1 - k
        if 1 <= level <= len(LEVELS):
            labels[order[k]] = LEVELS[level - 1]
        else:
            excluded[order[k]] = "past_sequence_end"

    if c2 is not None and s1 is not None:
        view, reference = "whole", "C2+S1"
        if _C2 + chain[s1] - chain[c2] != _S1:
            flags.append("label_conflict")
    elif c2 is not None:
        view, reference = "cervical", "C2"
    else:
        view, reference = "lumbar", "S1"
    if gap_used:
        flags.append("gap_inferred")
    return Labelling(labels, view, reference, flags, dict(sorted(excluded.items())))
