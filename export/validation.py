"""Validation figures of the two networks, measured through the inference path.

The outlines come from :mod:`vertxnet.trace` exactly as the pipeline traces them (U-Net
components; each Mask R-CNN mask pasted inside its box, thresholded, traced, twins merged) and
are scored by :mod:`vertxnet.evaluation.metrics` against the truth polygons, all in model-input
pixels and rasterised by pixel centres (:mod:`vertxnet.raster`). Training (each epoch),
``export_bundle.py`` (the figures it writes into the manifest) and ``evaluate_bundle.py`` use
these functions, so the three report the same measurement. numpy only: no torch.

Figures:
  - U-Net foreground Dice: per-image Dice of the union of the traced U-Net outlines against the
    union of the truth polygons;
  - Mask R-CNN detection rate: share of truth vertebrae matched one-to-one by a traced detection
    (score >= the score threshold) with IoU > 0.5, whatever its class;
  - reference accuracy: share of images with a truth C2 or S1 whose best-scoring C2/S1
    detection overlaps it (IoU > 0.5) with the right class.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from vertxnet.evaluation.metrics import EvalConfig, evaluate, mask_dice
from vertxnet.levels import MRCNN_CLASSES
from vertxnet.preprocess import Letterbox
from vertxnet.raster import image_mask
from vertxnet.records import Annotation, Record
from vertxnet.trace import trace_components, trace_detections

#: IoU above which a detection matches a truth vertebra in these figures.
MATCH_IOU = 0.5


@dataclass(frozen=True)
class Tracing:
    """How outlines are traced: the pipeline's thresholds (a bundle manifest's, or its defaults)."""

    unet: float = 0.5
    mrcnn_score: float = 0.5
    mask: float = 0.5
    duplicate_overlap: float = 0.5
    outline: str = "centres"

    @classmethod
    def of_bundle(cls, thresholds: dict[str, float], postprocess: Any = None) -> "Tracing":
        outline = postprocess.get("outline") if isinstance(postprocess, dict) else None
        keys = ("unet", "mrcnn_score", "mask", "duplicate_overlap")
        return cls(**{k: float(thresholds[k]) for k in keys if k in thresholds}, outline=outline or "centres")


def _model_space(size: int) -> Letterbox:
    """The identity map of a size x size model input (figures stay in model-input pixels)."""
    return Letterbox(size, size, size, 1.0, 1.0, 0, 0)


def foreground(polygons: Sequence[np.ndarray], size: int) -> np.ndarray:
    """Boolean (S, S) union of ``polygons`` rasterised by pixel centres."""
    mask = np.zeros((size, size), dtype=bool)
    for p in polygons:
        mask |= image_mask(p, size, size)
    return mask


def unet_dice(logits: np.ndarray, content: np.ndarray, truth_polygons: Sequence[np.ndarray], tracing: Tracing) -> float:
    """Foreground Dice of the U-Net outlines traced from ``logits`` (S, S), padding ignored."""
    size = logits.shape[-1]
    inside = np.where(np.asarray(content) > 0, np.asarray(logits, dtype=np.float32), -np.inf)
    outlines = trace_components(inside, tracing.unet, _model_space(size), 1.0, outline=tracing.outline)
    return mask_dice(foreground(outlines, size), foreground(truth_polygons, size))


def truth_record(polygons: Sequence[np.ndarray], labels: Sequence[int], content: np.ndarray, image_id: int, *, min_pixels: int = 1) -> Record:
    """Model-space truth of one image: class C2/S1 as the name, plain vertebrae unnamed; instances
    with fewer than ``min_pixels`` pixels inside the image content are left out."""
    size = content.shape[0]
    annotations = []
    for polygon, label in zip(polygons, labels):
        if int(np.count_nonzero(image_mask(polygon, size, size) & (content > 0))) < min_pixels:
            continue
        cls = MRCNN_CLASSES[int(label)]
        annotations.append(Annotation(np.asarray(polygon, dtype=np.float64), None if cls == "vertebra" else cls))
    return Record(image_path=None, width=size, height=size, annotations=annotations, image_id=image_id)


def detection_record(outputs: Sequence[np.ndarray], size: int, image_id: int, tracing: Tracing) -> Record:
    """Model-space record of the detections the pipeline traces from Mask R-CNN ``outputs``
    (boxes, scores, labels, mask_probs of the ONNX contract; a class_probs output after them is
    not needed here)."""
    boxes, scores, labels, probs = (np.asarray(o) for o in outputs[:4])
    detections = trace_detections(
        boxes, scores, labels, probs, size=size, score_threshold=tracing.mrcnn_score, mask_threshold=tracing.mask,
        duplicate_overlap=tracing.duplicate_overlap, outline=tracing.outline,
    )  # fmt: skip
    annotations = [Annotation(d.polygon, None if d.cls == "vertebra" else d.cls, d.score) for d in detections]
    return Record(image_path=None, width=size, height=size, annotations=annotations, image_id=image_id)


def detection_figures(truth: Sequence[Record], predicted: Sequence[Record]) -> dict[str, float]:
    """Detection rate and reference accuracy at IoU > 0.5 (NaN where nothing to count), with counts."""
    if not truth:
        return {"detection_rate_iou50": float("nan"), "reference_accuracy": float("nan"), "images": 0, "gt_instances": 0, "reference_images": 0}
    report = evaluate(truth, predicted, config=EvalConfig(identification_iou=MATCH_IOU, detection_iou=MATCH_IOU, pair_by="id"))
    return {
        "detection_rate_iou50": report.detection_rate if report.n_truth else float("nan"),
        "reference_accuracy": report.reference_accuracy,
        "images": report.n_images,
        "gt_instances": report.n_truth,
        "reference_images": report.reference.images,
    }


def prefixed(figures: dict[str, float], prefix: str) -> dict[str, float]:
    """``figures`` with ``prefix`` on every key (``val_`` in training, ``check_`` in the manifest)."""
    return {f"{prefix}{k}": v for k, v in figures.items()}


def outline_for(target_masks: str | None) -> str:
    """The outline convention (PipelineConfig.outline) that fits networks trained on masks drawn
    by ``target_masks``: pixel-centre masks want "edges"; cv2.fillPoly masks, which include every
    pixel an outline touches (checkpoints without a record, and runs that began on them), "centres"."""
    return "edges" if target_masks == "pixel-centres" else "centres"
