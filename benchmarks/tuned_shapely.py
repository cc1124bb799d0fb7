"""A tuned shapely implementation of the ensemble rules (SPEC §3): the fair baseline for the C++ core.

The readable reference twin computes every intersection it names. This one does what a careful
Python engineer would do with shapely 2 and GEOS: outlines become geometries in one vectorised
call, only rings that are not simple are repaired, candidate pairs come from an STRtree and are
pruned exactly before any clipping (a pair can only agree or split when the overlap of the
bounding boxes, and the smaller area, exceed eta times the Mask R-CNN area; a rescued outline
passes the overlap guard at once when its box overlaps with the members' boxes stay within tau
times its area), and the remaining intersection tests run on prepared geometries. Rules, fill
rule, grid and union rule are those of the twin, so the results are the same masks.

Used by benchmarks/bench_core.py only; never imported by the package.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import shapely
from shapely.geometry import LineString, Polygon

# The grid is the twin's (tests/oracle/reference.py, on sys.path in bench_core.py): one rounding rule.
from reference import _quantise  # noqa: E402

PRUNE_SLACK = 1.0 + 1e-9  # a computed intersection never exceeds its bound by more than rounding


def _repair(ring: np.ndarray):
    """Non-zero region of a ring that is not simple (faces the ring winds around)."""
    noded = shapely.node(LineString(np.vstack([ring, ring[:1]])))
    faces = shapely.get_parts(shapely.polygonize(shapely.get_parts(noded)))
    if len(faces) == 0:
        return Polygon()
    points = shapely.point_on_surface(faces)
    xy = shapely.get_coordinates(points)
    a, b = ring, np.roll(ring, -1, axis=0)
    x, y = xy[:, :1], xy[:, 1:]
    cross = (b[:, 0] - a[:, 0]) * (y - a[:, 1]) - (x - a[:, 0]) * (b[:, 1] - a[:, 1])
    upward = (a[:, 1] <= y) & (b[:, 1] > y) & (cross > 0)
    downward = (a[:, 1] > y) & (b[:, 1] <= y) & (cross < 0)
    winding = upward.sum(axis=1) - downward.sum(axis=1)
    kept = faces[winding != 0]
    return shapely.union_all(kept) if len(kept) else Polygon()


def regions(polygons) -> tuple[np.ndarray, np.ndarray]:
    """Geometries (non-zero rule, on the 1/1024 px grid) and their areas, vectorised."""
    rings = [_quantise(np.asarray(p, dtype=np.float64)) for p in polygons]
    geoms = np.empty(len(rings), dtype=object)
    for k, ring in enumerate(rings):
        geoms[k] = Polygon(ring) if len(ring) >= 3 and len(np.unique(ring, axis=0)) >= 3 else Polygon()
    invalid = ~shapely.is_valid(geoms)
    for k in np.flatnonzero(invalid):
        geoms[k] = _repair(rings[k])
    return geoms, shapely.area(geoms)


def _box_overlap(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Overlap areas of box a (4,) with boxes b (n, 4)."""
    w = np.minimum(a[2], b[:, 2]) - np.maximum(a[0], b[:, 0])
    h = np.minimum(a[3], b[:, 3]) - np.maximum(a[1], b[:, 1])
    return np.clip(w, 0, None) * np.clip(h, 0, None)


def ensemble(unet, mrcnn, mrcnn_classes, mrcnn_scores, *, union_ring: Callable, eta: float = 0.6,
             lam: float = 2.0, tau: float = 0.3, ref_score: float = 0.5,
             min_area: float = 1.0) -> list[tuple]:
    """SPEC §3 with pruning. Returns (source, cls, unet_index, mrcnn_index, area, centroid_y)
    per mask, top to bottom. `union_ring(geometry)` is the union rule (the twin's), giving the
    agreement ring of the union of two regions."""
    ug, ua = regions(unet)
    mg, ma = regions(mrcnn)
    cu = [i for i in range(len(ug)) if ua[i] > 0]
    cm = [j for j in range(len(mg)) if ma[j] > 0]
    ub, mb = shapely.bounds(ug), shapely.bounds(mg)
    scores = [float(s) for s in mrcnn_scores]
    shapely.prepare(mg)
    tree = shapely.STRtree(mg)
    used_u, used_m = set(), set()
    members: list[tuple] = []  # (geometry, source, cls, score, unet_index, mrcnn_index)

    for i in cu:
        u, au = ug[i], ua[i]
        candidates = sorted(j for j in tree.query(u) if ma[j] > 0)
        if not candidates:
            continue
        overlap = dict(zip(candidates, _box_overlap(ub[i], mb[candidates])))
        for j in candidates:
            if j in used_m:
                continue
            am = ma[j]
            if min(overlap[j], au) * PRUNE_SLACK <= eta * am:
                continue
            inter = shapely.intersection(u, mg[j]).area
            if inter / max(au, am) > eta:
                ring = union_ring(shapely.union(u, mg[j]))
                # The outline may touch itself where parts of the union meet at a point.
                outline = Polygon(ring)
                members.append((outline if outline.is_valid else _repair(ring), "agreement", mrcnn_classes[j],
                                scores[j], i, j))
                used_u.add(i)
                used_m.add(j)
                break
            if inter / am > eta:
                members.append((mg[j], "split", mrcnn_classes[j], scores[j], None, j))
                used_m.add(j)

    if not members:
        if cm:
            members = [(mg[j], "rescued", mrcnn_classes[j], scores[j], None, j) for j in cm if ma[j] >= min_area]
        else:
            members = [(ug[i], "rescued", "vertebra", 0.0, i, None) for i in cu if ua[i] >= min_area]
    else:
        areas = shapely.area([m[0] for m in members])
        mu = float(areas.mean())
        sigma = max(float(areas.std()), 0.1 * mu)
        low, high = mu - lam * sigma, mu + lam * sigma
        remaining = [(j, True) for j in sorted((j for j in cm if j not in used_m), key=lambda j: -scores[j])]
        remaining += [(i, False) for i in sorted((i for i in cu if i not in used_u), key=lambda i: -ua[i])]
        boxes = [shapely.bounds(m[0]) for m in members]
        for index, from_mrcnn in remaining:
            g, area, box = (mg[index], ma[index], mb[index]) if from_mrcnn else (ug[index], ua[index], ub[index])
            cls = mrcnn_classes[index] if from_mrcnn else "vertebra"
            score = scores[index] if from_mrcnn else 0.0
            if from_mrcnn and cls in ("C2", "S1") and score >= ref_score:
                accept = True
            elif low < area < high:
                overlaps = _box_overlap(box, np.array(boxes))
                if overlaps.sum() * PRUNE_SLACK <= tau * area:
                    accept = True
                else:
                    touching = [members[k][0] for k in np.flatnonzero(overlaps > 0)]
                    shapely.prepare(g)
                    touching = [t for t in touching if g.intersects(t)]
                    covered = shapely.intersection(g, shapely.union_all(touching)).area if touching else 0.0
                    accept = covered / area <= tau
            else:
                accept = False
            if accept:
                members.append((g, "rescued", cls, score, None if from_mrcnn else index,
                                index if from_mrcnn else None))
                boxes.append(box)

    centroids = shapely.get_coordinates(shapely.centroid([m[0] for m in members])) if members else np.zeros((0, 2))
    out = [(m[1], m[2], m[4], m[5], m[0].area, float(c[1])) for m, c in zip(members, centroids)]
    return sorted(out, key=lambda t: t[5])

