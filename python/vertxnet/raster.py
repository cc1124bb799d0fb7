"""Polygons on the pixel grid: area, bounding box, pixel-centre rasterisation, label images.

Coordinates are continuous pixel coordinates (docs/DESIGN.md): the pixel at row i, column j covers
[j, j+1) x [i, i+1). A pixel belongs to a polygon when its centre lies inside it (even-odd rule;
a centre exactly on a left/top edge is inside, on a right/bottom edge outside), so the pixel count
matches the polygon's area without bias. ``cv2.fillPoly`` is not used: it also paints every pixel
the outline touches, about half the perimeter too much (benchmarks/RESULTS.md, section 3).

These are the plain numpy operations of file formats, metrics and training targets; the exact
polygon operations of the ensemble rules (non-zero fill rule, 1/1024 px grid) are the C++ core's
(:mod:`vertxnet.core`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import numpy as np

from .levels import level_index


def signed_area(polygon: np.ndarray) -> float:
    """Shoelace area of an (N, 2) polygon: positive when it runs anticlockwise in x-right/y-up
    terms (clockwise on screen, y down); 0.0 for fewer than 3 points."""
    p = np.asarray(polygon, dtype=np.float64)
    if len(p) < 3:
        return 0.0
    x, y = p[:, 0], p[:, 1]
    return 0.5 * float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1)))


def polygon_area(polygon: np.ndarray) -> float:
    """Unsigned shoelace area of an (N, 2) polygon."""
    return abs(signed_area(polygon))


def polygon_bbox(polygon: np.ndarray) -> tuple[float, float, float, float]:
    """(x0, y0, x1, y1) of an (N, 2) polygon."""
    p = np.asarray(polygon, dtype=np.float64)
    return float(p[:, 0].min()), float(p[:, 1].min()), float(p[:, 0].max()), float(p[:, 1].max())


def polygon_mask(polygon: np.ndarray, x0: int, y0: int, width: int, height: int) -> np.ndarray:
    """Boolean (height, width) mask of ``polygon`` over the pixel window starting at (x0, y0)."""
    p = np.asarray(polygon, dtype=np.float64)
    if p.ndim != 2 or p.shape[1] != 2 or len(p) < 3:
        raise ValueError(f"polygon must be an (N>=3, 2) array, got shape {p.shape}")
    if not np.all(np.isfinite(p)):
        raise ValueError("polygon has non-finite coordinates")
    if width <= 0 or height <= 0:
        return np.zeros((max(height, 0), max(width, 0)), dtype=bool)
    xa, ya = p[:, 0] - x0, p[:, 1] - y0
    xb, yb = np.roll(xa, -1), np.roll(ya, -1)
    row_centres = np.arange(height, dtype=np.float64)[:, None] + 0.5
    # Edge e crosses row r when its centre line lies in [min(ya, yb), max(ya, yb)).
    crosses = ((ya <= row_centres) & (row_centres < yb)) | ((yb <= row_centres) & (row_centres < ya))
    rows, edges = np.nonzero(crosses)
    if rows.size == 0:
        return np.zeros((height, width), dtype=bool)
    t = (row_centres[rows, 0] - ya[edges]) / (yb[edges] - ya[edges])
    x_cross = xa[edges] + t * (xb[edges] - xa[edges])
    # Each crossing flips inside/outside from the first pixel whose centre is at or right of it.
    first = np.clip(np.ceil(x_cross - 0.5), 0, width).astype(np.intp)
    flips = np.zeros((height, width + 1), dtype=np.int32)
    np.add.at(flips, (rows, first), 1)
    return (np.cumsum(flips[:, :width], axis=1) & 1).astype(bool)


def polygon_window(polygon: np.ndarray, height: int, width: int) -> tuple[int, int, int, int]:
    """Integer pixel window (x0, y0, x1, y1) holding every pixel centre inside ``polygon``,
    clipped to a ``width`` x ``height`` image (possibly empty)."""
    bx0, by0, bx1, by1 = polygon_bbox(polygon)
    x0 = min(max(int(math.floor(bx0)), 0), width)
    y0 = min(max(int(math.floor(by0)), 0), height)
    x1 = min(max(int(math.ceil(bx1)), x0), width)
    y1 = min(max(int(math.ceil(by1)), y0), height)
    return x0, y0, x1, y1


def image_mask(polygon: np.ndarray, height: int, width: int) -> np.ndarray:
    """Boolean (height, width) mask of ``polygon`` on a whole image (rasterised on its own window)."""
    mask = np.zeros((height, width), dtype=bool)
    x0, y0, x1, y1 = polygon_window(polygon, height, width)
    mask[y0:y1, x0:x1] = polygon_mask(polygon, x0, y0, x1 - x0, y1 - y0)
    return mask


def rasterize(
    annotations: Any,
    height: int | None = None,
    width: int | None = None,
    *,
    unnamed_value: int | None = None,
) -> np.ndarray:
    """uint16 label image: value = level index of the vertebra covering each pixel, 0 = background.

    Accepts a :class:`vertxnet.records.Record` (size taken from it unless given) or annotations
    (anything with ``.polygon`` and ``.level``) with ``height``/``width``. Unnamed annotations get
    ``unnamed_value`` (ValueError if one is met and none was given). Later annotations are
    painted over earlier ones where they overlap.
    """
    if hasattr(annotations, "annotations") and hasattr(annotations, "height"):  # a Record
        height = annotations.height if height is None else height
        width = annotations.width if width is None else width
        annotations = annotations.annotations
    if height is None or width is None or height <= 0 or width <= 0:
        raise ValueError(f"rasterize needs a positive height and width, got {height}x{width}")
    if unnamed_value is not None and not 0 <= unnamed_value <= np.iinfo(np.uint16).max:
        raise ValueError(f"unnamed_value {unnamed_value} does not fit a uint16 label image")
    label = np.zeros((height, width), dtype=np.uint16)
    items: Iterable[Any] = annotations
    for i, ann in enumerate(items):
        if ann.level is None:
            if unnamed_value is None:
                raise ValueError(f"annotation {i} has no level; pass unnamed_value to rasterize it")
            value = unnamed_value
        else:
            value = level_index(ann.level)
        x0, y0, x1, y1 = polygon_window(ann.polygon, height, width)
        mask = polygon_mask(ann.polygon, x0, y0, x1 - x0, y1 - y0)
        label[y0:y1, x0:x1][mask] = value
    return label
