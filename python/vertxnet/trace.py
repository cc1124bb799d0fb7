"""From network outputs to outlines: the tracing steps of the inference path (SPEC §2, steps 3-4).

- U-Net: threshold the logits, one outline per connected component (:func:`trace_components`).
- Mask R-CNN: paste each 28x28 mask inside its own box only (never K full-image masks), trace
  its largest contour (:func:`trace_instance`), and merge twin detections of one vertebra
  (:func:`suppress_duplicates`); :func:`trace_detections` is the whole step, shared by the
  pipeline and by the export scripts' validation, so both measure the same outlines.

Tracing works in model-input coordinates; outlines are mapped back to original pixels through
:meth:`vertxnet.preprocess.Letterbox.to_original`. Contours from ``cv2.findContours`` (pixel
indices) become continuous coordinates as :func:`contour_polygon` says.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import cv2
import numpy as np

from .core import Detection, intersection_area, polygon_area
from .levels import MRCNN_CLASSES
from .preprocess import Letterbox
from .raster import signed_area

#: Ways of turning traced pixels into a polygon (see PipelineConfig.outline); the first is the default.
OUTLINES = ("centres", "edges")


def logit_cut(threshold: float) -> float:
    """The logit above which sigmoid(logit) > ``threshold`` (no exponential per pixel)."""
    t = min(max(threshold, 1e-7), 1 - 1e-7)
    return math.log(t / (1.0 - t))


def trace_detections(
    boxes: np.ndarray,
    scores: np.ndarray,
    labels: np.ndarray,
    mask_probs: np.ndarray,
    *,
    size: int,
    score_threshold: float,
    mask_threshold: float,
    duplicate_overlap: float,
    outline: str = "centres",
    to_original: Callable[[np.ndarray], np.ndarray] | None = None,
    class_probs: np.ndarray | None = None,
) -> list[Detection]:
    """Mask R-CNN outputs (ONNX contract, model-input pixels) → detections in descending score order.

    Detections below ``score_threshold`` or with a label outside 1…3 are dropped; each mask is
    traced inside its box (:func:`trace_instance`), mapped by ``to_original`` (identity when
    None), and twins are merged (:func:`suppress_duplicates` with ``duplicate_overlap``).
    ``class_probs`` (K, 4: background, vertebra, C2, S1), when the bundle's graph has it, gives
    each detection its probabilities of the three classes.
    """
    detections: list[Detection] = []
    for i in np.argsort(-np.asarray(scores), kind="stable"):
        label = int(labels[i])
        if scores[i] < score_threshold or not 1 <= label < len(MRCNN_CLASSES):
            continue
        polygon = trace_instance(mask_probs[i], boxes[i], mask_threshold, size, outline=outline)
        if polygon is None:
            continue
        if to_original is not None:
            polygon = to_original(polygon)
        probs = None if class_probs is None else _foreground_probs(class_probs[i])
        detections.append(Detection(polygon, MRCNN_CLASSES[label], float(scores[i]), probs))
    return suppress_duplicates(detections, duplicate_overlap)


def _foreground_probs(row: np.ndarray) -> tuple[float, float, float]:
    """(vertebra, C2, S1) probabilities from a (background, vertebra, C2, S1) softmax row."""
    fg = np.clip(np.asarray(row, dtype=np.float64)[1:4], 0.0, None)
    total = float(fg.sum())
    if not math.isfinite(total) or total <= 0.0:
        return (1.0, 0.0, 0.0)
    return tuple(float(v) for v in fg / total)  # type: ignore[return-value]


def _scores_as_probs(twins: list[Detection]) -> tuple[float, float, float]:
    """Class probabilities of one vertebra from the scores its twin detections give each class
    (bundles without a class softmax): the best score per class, the rest of the unit mass
    shared by the classes nobody claimed, normalised."""
    best = np.zeros(3)
    for d in twins:
        k = MRCNN_CLASSES.index(d.cls) - 1
        best[k] = max(best[k], d.score)
    rest = max(0.0, 1.0 - float(best.sum()))
    unclaimed = best == 0.0
    if unclaimed.any():
        best[unclaimed] = rest / int(unclaimed.sum())
    return tuple(float(v) for v in best / best.sum())  # type: ignore[return-value]


def suppress_duplicates(detections: list[Detection], max_overlap: float) -> list[Detection]:
    """Drop Mask R-CNN detections that repeat a higher-scoring one.

    Inputs are in descending score order. An outline overlapping a kept one by more than
    ``max_overlap`` of the smaller area (true polygon intersection, C++ core) is the same
    vertebra again; if it was classed as a reference (C2/S1) and the kept one as a plain
    "vertebra", the kept outline takes its class and score, so a reference is never lost to
    its own twin. ``max_overlap >= 1`` keeps everything.

    Every kept detection gets class probabilities: the mean of its twins' softmax rows when
    they have them, else what the twins' scores say (:func:`_scores_as_probs`). With
    ``max_overlap >= 1`` the detections come back as they are.
    """
    if max_overlap >= 1.0:
        return detections
    areas = [polygon_area(d.polygon) for d in detections]
    kept: list[int] = []
    twins: dict[int, list[Detection]] = {}
    out = list(detections)
    for i, d in enumerate(detections):
        twin = next((j for j in kept if intersection_area(d.polygon, detections[j].polygon) > max_overlap * min(areas[i], areas[j])), None)
        if twin is None:
            kept.append(i)
            twins[i] = [d]
            continue
        twins[twin].append(d)
        if d.cls != "vertebra" and out[twin].cls == "vertebra":
            out[twin] = Detection(out[twin].polygon, d.cls, d.score)
    result = []
    for i in kept:
        group = twins[i]
        rows = [g.class_probs for g in group if g.class_probs is not None]
        probs = tuple(float(v) for v in np.mean(rows, axis=0)) if len(rows) == len(group) else _scores_as_probs(group)
        result.append(Detection(out[i].polygon, out[i].cls, out[i].score, probs))  # type: ignore[arg-type]
    return result


def trace_components(
    probability_or_logits: np.ndarray, threshold: float, box: Letterbox, min_area: float, *, logits: bool = True, outline: str = "centres"
) -> list[np.ndarray]:
    """One outline per connected component of the U-Net output above ``threshold``, in ORIGINAL pixels.

    ``probability_or_logits`` is the (S, S) model output (logits unless ``logits=False``). Pixels
    in the letterbox padding are ignored; components smaller than ``min_area`` model pixels are
    dropped. Components are returned in raster order of their first pixel.
    """
    values = np.asarray(probability_or_logits, dtype=np.float32)
    cut = logit_cut(threshold) if logits else threshold
    foreground = np.zeros(values.shape, dtype=np.uint8)
    x0, y0, x1, y1 = box.content_box
    foreground[y0:y1, x0:x1] = values[y0:y1, x0:x1] > cut
    count, labels, stats, _ = cv2.connectedComponentsWithStats(foreground, connectivity=8)
    polygons = []
    for k in range(1, count):
        left, top, width, height, area = (int(v) for v in stats[k])
        if area < max(min_area, 1):
            continue
        component = (labels[top : top + height, left : left + width] == k).astype(np.uint8)
        contours, _ = cv2.findContours(component, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE, offset=(left, top))
        contour = max(contours, key=cv2.contourArea)
        if len(contour) < 3 or cv2.contourArea(contour) <= 0:
            continue  # a one-pixel-wide line has no interior once traced through pixel centres
        polygons.append(box.to_original(contour_polygon(contour, outline)))
    return polygons


def contour_polygon(contour: np.ndarray, outline: str = "centres") -> np.ndarray:
    """(N, 2) float64 polygon in continuous coordinates from a ``cv2.findContours`` contour."""
    if outline == "edges":
        return pixel_outline(contour)
    if outline != "centres":
        raise ValueError(f"outline must be one of {', '.join(OUTLINES)}, got {outline!r}")
    return contour.reshape(-1, 2).astype(np.float64) + 0.5  # pixel index → pixel centre


def pixel_outline(contour: np.ndarray) -> np.ndarray:
    """Polygon around the pixels of a ``cv2.findContours`` contour, in continuous coordinates.

    The contour runs through the centres of the boundary pixels (index + 0.5), which cuts half a
    pixel off every side of the traced pixel set. Here each vertex is moved outwards by half a
    pixel (mitred, so straight and 45° runs stay straight; the shift is capped at one pixel on
    sharp corners). For axis-aligned pixel runs this is exactly the boundary of the pixel squares,
    so re-rasterising the polygon by pixel centres gives back the traced pixels. Right for models
    trained on centre-sampled masks; models trained on masks that include every pixel an outline
    touches (cv2.fillPoly) already grow by about half a pixel and want "centres".
    """
    p = contour.reshape(-1, 2).astype(np.float64) + 0.5
    edges = np.roll(p, -1, axis=0) - p
    keep = np.hypot(edges[:, 0], edges[:, 1]) > 0
    p = p[keep]
    edges = np.roll(p, -1, axis=0) - p
    length = np.hypot(edges[:, 0], edges[:, 1])[:, None]
    # Right-hand normals point outwards when the signed area is positive (interior on the left).
    normals = np.sign(signed_area(p)) * np.stack([edges[:, 1], -edges[:, 0]], axis=1) / length
    before, after = np.roll(normals, 1, axis=0), normals  # normals of the edges into and out of each vertex
    cos_turn = np.sum(before * after, axis=1, keepdims=True)
    shift = 0.5 * (before + after) / np.maximum(1.0 + cos_turn, 1e-9)
    norm = np.hypot(shift[:, 0], shift[:, 1])[:, None]
    shift = np.where(norm > 1.0, shift / np.maximum(norm, 1e-12), shift)
    return p + shift


def trace_instance(mask_probs: np.ndarray, xyxy: np.ndarray, threshold: float, size: int, *, outline: str = "centres") -> np.ndarray | None:
    """Outline of one Mask R-CNN instance in model-input coordinates, or None if it is empty.

    The (M, M) mask covers the continuous box ``xyxy`` exactly; it is resampled (bilinear) onto
    the model pixels the box touches — only inside the box, never a full-image mask — then
    thresholded and its largest external contour traced (see :func:`contour_polygon`).
    """
    x1, y1, x2, y2 = (float(v) for v in xyxy)
    if not all(math.isfinite(v) for v in (x1, y1, x2, y2)) or x2 <= x1 or y2 <= y1:
        return None
    ix0, iy0 = max(0, math.floor(x1)), max(0, math.floor(y1))
    ix1, iy1 = min(size, math.ceil(x2)), min(size, math.ceil(y2))
    if ix1 <= ix0 or iy1 <= iy0:
        return None
    probs = np.asarray(mask_probs, dtype=np.float32)
    mh, mw = probs.shape
    sx, sy = (x2 - x1) / mw, (y2 - y1) / mh
    # Mask pixel centre u + 0.5 lies at x1 + (u + 0.5) * sx; ROI pixel j has its centre at ix0 + j + 0.5.
    warp = np.array([[sx, 0.0, x1 - ix0 + 0.5 * sx - 0.5], [0.0, sy, y1 - iy0 + 0.5 * sy - 0.5]])
    roi = cv2.warpAffine(probs, warp, (ix1 - ix0, iy1 - iy0), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0.0)
    binary = (roi > threshold).astype(np.uint8)
    contours, _ = cv2.findContours(binary, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE, offset=(ix0, iy0))
    if not contours:
        return None
    contour = max(contours, key=cv2.contourArea)
    if len(contour) < 3 or cv2.contourArea(contour) <= 0:
        return None
    return contour_polygon(contour, outline)
