"""Evaluation of named vertebra polygons against ground truth, at pixel level (SPEC §9).

Polygons are rasterised by pixel-centre sampling (``vertxnet.raster.polygon_mask``), each
once, on its own bounding-box window; pairwise overlaps are counted on the intersection of two
windows only, so an image with n vertebrae costs n small rasterisations, not n² full masks.

Metrics (seed papers in brackets):
- Dice per level [000, Tables 1-2]: in each image where the truth has level L, Dice between the
  truth vertebra L and the prediction(s) named L; 0 when no prediction is named L. Averaged over
  those images. ``dice_mean`` averages over every truth vertebra (all levels pooled).
- Panoptic Quality [000, Table 3; Kirillov et al. 2019]: a truth and a prediction of the same
  name match when IoU > threshold (one-to-one, largest IoU first). PQ = SQ x RQ with
  SQ = mean IoU of matches, RQ = TP / (TP + FP/2 + FN/2); counts pooled over images, per level
  and over all vertebrae. "Unnamed" is a name of its own: an unnamed prediction matches only an
  unnamed truth vertebra, so against a fully named truth it is a false positive.
- Identification accuracy: share of truth vertebrae matched at IoU > 0.5 by a prediction of the
  right name.
- Detection rate [003]: share of truth vertebrae matched at IoU > 0.7 by any prediction,
  whatever its name.
- Reference accuracy: share of truth images with a C2 or S1 whose best-scoring prediction named
  C2 or S1 overlaps a truth vertebra of that name at IoU > ``identification_iou`` (the reference
  the zipper names everything from).
- Merged masks [001, Table 1; Long et al. 2015]: all vertebrae vs background as a two-class
  segmentation per image; pixel accuracy, mean accuracy, mean IoU, frequency-weighted IoU,
  computed per image and averaged over images.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from ..levels import level_index
from ..raster import polygon_mask, polygon_window
from ..records import Record

#: The vertebrae the zipper names the others from.
REFERENCE_LEVELS = ("C2", "S1")


@dataclass(frozen=True)
class EvalConfig:
    """What to measure and how records are paired."""

    pq_thresholds: tuple[float, ...] = (0.7, 0.8)
    identification_iou: float = 0.5
    detection_iou: float = 0.7
    pair_by: str = "name"  # "name": image file base name; "id": image_id

    def __post_init__(self) -> None:
        for t in (*self.pq_thresholds, self.identification_iou, self.detection_iou):
            if not 0.0 <= t < 1.0:
                raise ValueError(f"IoU thresholds must lie in [0, 1), got {t}")
        if self.pair_by not in ("name", "id"):
            raise ValueError(f"pair_by must be 'name' or 'id', got {self.pair_by!r}")


@dataclass
class MatchCounts:
    """Pooled matching counts at one IoU threshold."""

    tp: int = 0
    fp: int = 0
    fn: int = 0
    iou_sum: float = 0.0

    @property
    def sq(self) -> float:
        return self.iou_sum / self.tp if self.tp else 0.0

    @property
    def rq(self) -> float:
        denom = self.tp + 0.5 * self.fp + 0.5 * self.fn
        return self.tp / denom if denom else 0.0

    @property
    def pq(self) -> float:
        return self.sq * self.rq

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 0.0

    def to_dict(self) -> dict[str, float]:
        return {"pq": self.pq, "sq": self.sq, "rq": self.rq, "tp": self.tp, "fp": self.fp, "fn": self.fn}


@dataclass
class ReferenceCounts:
    """Truth images with a reference vertebra (C2/S1), and those whose best-scoring predicted
    reference is right (its name, IoU above the identification threshold)."""

    images: int = 0
    correct: int = 0

    @property
    def accuracy(self) -> float:
        return self.correct / self.images if self.images else float("nan")


@dataclass
class EvalReport:
    """Evaluation results; ``to_dict()`` for JSON, ``table()`` for people."""

    levels: list[str]  # levels present in the truth, anatomical order
    n_images: int
    n_truth: int
    n_pred: int
    dice: dict[str, float]  # per level, mean over images with that truth level
    dice_mean: float  # mean over all truth vertebrae
    pq: dict[float, dict[str, MatchCounts]]  # threshold -> level or "all" -> counts
    identification: dict[str, MatchCounts]  # level or "all"; accuracy = recall
    detection: dict[str, MatchCounts]  # level or "all"; rate = recall
    merged: dict[str, float]  # pixel_accuracy, mean_accuracy, mean_iou, frequency_weighted_iou
    config: EvalConfig = field(default_factory=EvalConfig)
    reference: ReferenceCounts = field(default_factory=lambda: ReferenceCounts())
    unpaired_truth: list[str] = field(default_factory=list)
    unpaired_pred: list[str] = field(default_factory=list)

    @property
    def reference_accuracy(self) -> float:
        """NaN when no truth image has a reference vertebra."""
        return self.reference.accuracy

    @property
    def identification_accuracy(self) -> float:
        return self.identification["all"].recall

    @property
    def detection_rate(self) -> float:
        return self.detection["all"].recall

    def to_dict(self) -> dict[str, Any]:
        def per_level(counts: dict[str, MatchCounts], value) -> dict[str, float]:
            return {key: value(counts[key]) for key in [*self.levels, "all"]}

        return {
            "n_images": self.n_images,
            "n_truth": self.n_truth,
            "n_pred": self.n_pred,
            "levels": list(self.levels),
            "dice": {**{lv: self.dice[lv] for lv in self.levels}, "mean": self.dice_mean},
            "panoptic_quality": {
                f"{t:g}": {key: self.pq[t][key].to_dict() for key in [*self.levels, "all"]} for t in self.pq
            },
            "identification_accuracy": per_level(self.identification, lambda c: c.recall),
            "detection_rate": per_level(self.detection, lambda c: c.recall),
            "merged_mask": dict(self.merged),
            "reference_accuracy": self.reference.accuracy if self.reference.images else None,
            "reference_images": self.reference.images,
            "config": {
                "pq_thresholds": list(self.config.pq_thresholds),
                "identification_iou": self.config.identification_iou,
                "detection_iou": self.config.detection_iou,
                "pair_by": self.config.pair_by,
            },
            "unpaired_truth": list(self.unpaired_truth),
            "unpaired_pred": list(self.unpaired_pred),
        }

    def table(self) -> str:
        """Levels as columns (seed 000 Table 1 layout), then the merged-mask metrics."""
        columns = [*self.levels, "all"]
        rows: list[tuple[str, list[float]]] = [("Dice", [*(self.dice[lv] for lv in self.levels), self.dice_mean])]
        for t in self.pq:
            rows.append((f"PQ@{t:g}", [self.pq[t][c].pq for c in columns]))
        rows.append((f"identified@{self.config.identification_iou:g}", [self.identification[c].recall for c in columns]))
        rows.append((f"detected@{self.config.detection_iou:g}", [self.detection[c].recall for c in columns]))
        head_width = max(len(name) for name, _ in rows)
        col_width = 6
        lines = [
            f"{self.n_images} images, {self.n_truth} truth vertebrae, {self.n_pred} predicted",
            " " * head_width + "".join(f" {c:>{col_width}}" for c in columns),
        ]
        for name, values in rows:
            lines.append(f"{name:<{head_width}}" + "".join(f" {v:>{col_width}.3f}" for v in values))
        m = self.merged
        lines.append(
            "merged mask: pixel accuracy {:.4f}  mean accuracy {:.4f}  mean IoU {:.4f}  frequency-weighted IoU {:.4f}".format(
                m["pixel_accuracy"], m["mean_accuracy"], m["mean_iou"], m["frequency_weighted_iou"]
            )
        )
        if self.unpaired_truth:
            lines.append(f"truth images without prediction (counted as missed): {len(self.unpaired_truth)}")
        if self.unpaired_pred:
            lines.append(f"predictions without truth (ignored): {len(self.unpaired_pred)}")
        return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# Per-image geometry


@dataclass
class _Shape:
    """A polygon rasterised on its own window of the image."""

    level: str | None
    x0: int
    y0: int
    mask: np.ndarray
    area: int = field(init=False)

    def __post_init__(self) -> None:
        self.area = int(np.count_nonzero(self.mask))


def _shape(polygon: np.ndarray, level: str | None, height: int, width: int) -> _Shape:
    x0, y0, x1, y1 = polygon_window(polygon, height, width)
    return _Shape(level, x0, y0, polygon_mask(polygon, x0, y0, x1 - x0, y1 - y0))


def _shapes(record: Record, height: int, width: int) -> list[_Shape]:
    return [_shape(ann.polygon, ann.level, height, width) for ann in record.annotations]


def _intersection(a: _Shape, b: _Shape) -> int:
    x0, y0 = max(a.x0, b.x0), max(a.y0, b.y0)
    x1 = min(a.x0 + a.mask.shape[1], b.x0 + b.mask.shape[1])
    y1 = min(a.y0 + a.mask.shape[0], b.y0 + b.mask.shape[0])
    if x1 <= x0 or y1 <= y0:
        return 0
    wa = a.mask[y0 - a.y0 : y1 - a.y0, x0 - a.x0 : x1 - a.x0]
    wb = b.mask[y0 - b.y0 : y1 - b.y0, x0 - b.x0 : x1 - b.x0]
    return int(np.count_nonzero(wa & wb))


def _union_into(shapes: Sequence[_Shape], canvas: np.ndarray) -> None:
    for s in shapes:
        h, w = s.mask.shape
        canvas[s.y0 : s.y0 + h, s.x0 : s.x0 + w] |= s.mask


def _match(iou: np.ndarray, allowed: np.ndarray, threshold: float) -> list[tuple[int, int]]:
    """One-to-one matches with IoU > threshold, largest IoU first."""
    ti, pi = np.nonzero(allowed & (iou > threshold))
    order = np.argsort(-iou[ti, pi], kind="stable")
    used_t, used_p, pairs = set(), set(), []
    for k in order:
        t, p = int(ti[k]), int(pi[k])
        if t not in used_t and p not in used_p:
            used_t.add(t)
            used_p.add(p)
            pairs.append((t, p))
    return pairs


def _count(counts: dict[str, MatchCounts], truth: list[_Shape], pred: list[_Shape], pairs, iou) -> None:
    matched_t = {t for t, _ in pairs}
    matched_p = {p for _, p in pairs}
    for t, p in pairs:
        for key in (truth[t].level, "all"):
            if key is not None:
                counts[key].tp += 1
                counts[key].iou_sum += float(iou[t, p])
    for t, s in enumerate(truth):
        if t not in matched_t:
            counts["all"].fn += 1
            if s.level is not None:
                counts[s.level].fn += 1
    for p, s in enumerate(pred):
        if p not in matched_p:
            counts["all"].fp += 1
            if s.level is not None:
                counts[s.level].fp += 1


def _binary_scores(truth_mask: np.ndarray, pred_mask: np.ndarray) -> dict[str, float]:
    """Long et al. (2015) metrics for classes {background, vertebra}, as in seed 001.

    Following the reference implementation seed 001 used (M. Keršner), accuracies average over
    the classes present in the truth and IoUs over the classes present in either mask, divided
    by the number of truth classes.
    """
    n = truth_mask.size
    t_v = int(np.count_nonzero(truth_mask))
    p_v = int(np.count_nonzero(pred_mask))
    both = int(np.count_nonzero(truth_mask & pred_mask))
    t = np.array([n - t_v, t_v], dtype=np.float64)  # pixels of each truth class
    p = np.array([n - p_v, p_v], dtype=np.float64)
    n_ii = np.array([n - t_v - p_v + both, both], dtype=np.float64)
    in_truth = t > 0
    in_either = in_truth | (p > 0)
    union = t + p - n_ii
    iou = np.divide(n_ii, union, out=np.zeros(2), where=union > 0)
    acc = np.divide(n_ii, t, out=np.zeros(2), where=t > 0)
    n_truth_classes = int(in_truth.sum())
    return {
        "pixel_accuracy": float(n_ii.sum() / n),
        "mean_accuracy": float(acc[in_truth].sum() / n_truth_classes),
        "mean_iou": float(iou[in_either].sum() / n_truth_classes),
        "frequency_weighted_iou": float((t * iou)[in_either].sum() / n),
    }


# ---------------------------------------------------------------------------------------------
# Evaluation


def _key(record: Record, pair_by: str, side: str, index: int) -> str:
    if pair_by == "id":
        return str(record.image_id)
    if record.image_path is None:
        raise ValueError(f"{side} record {index} (image id {record.image_id}) has no image path to pair by name")
    return record.image_path.name


def _pair(truth: Sequence[Record], pred: Sequence[Record], pair_by: str):
    truth_keys: dict[str, Record] = {}
    for i, rec in enumerate(truth):
        key = _key(rec, pair_by, "truth", i)
        if key in truth_keys:
            raise ValueError(f"two truth images share the {'file name' if pair_by == 'name' else 'id'} {key!r}; pair by the other key")
        truth_keys[key] = rec
    pred_keys: dict[str, Record] = {}
    for i, rec in enumerate(pred):
        key = _key(rec, pair_by, "prediction", i)
        if key in pred_keys:
            raise ValueError(f"two predictions for image {key!r}")
        pred_keys[key] = rec
    pairs = [(key, rec, pred_keys.get(key)) for key, rec in truth_keys.items()]
    unpaired_truth = [key for key in truth_keys if key not in pred_keys]
    unpaired_pred = [key for key in pred_keys if key not in truth_keys]
    return pairs, unpaired_truth, unpaired_pred


def evaluate(truth: Sequence[Record], pred: Sequence[Record], *, config: EvalConfig | None = None) -> EvalReport:
    """Compare predicted records with truth records (paired by image file name or id).

    A truth image without a prediction counts as every vertebra missed; predictions for images
    not in the truth are ignored (both are listed in the report). ValueError for records that
    cannot be paired or whose image sizes disagree.
    """
    config = config or EvalConfig()
    pairs, unpaired_truth, unpaired_pred = _pair(truth, pred, config.pair_by)

    dice_values: dict[str, list[float]] = defaultdict(list)
    pq = {t: defaultdict(MatchCounts) for t in config.pq_thresholds}
    identification: dict[str, MatchCounts] = defaultdict(MatchCounts)
    detection: dict[str, MatchCounts] = defaultdict(MatchCounts)
    merged_scores: list[dict[str, float]] = []
    reference = ReferenceCounts()
    n_truth = n_pred = 0

    for key, t_rec, p_rec in pairs:
        height, width = t_rec.height, t_rec.width
        if p_rec is not None and (p_rec.height, p_rec.width) != (height, width):
            raise ValueError(
                f"image {key!r}: prediction is for {p_rec.width}x{p_rec.height} pixels, truth for {width}x{height}"
            )
        t_shapes = _shapes(t_rec, height, width)
        p_shapes = _shapes(p_rec, height, width) if p_rec is not None else []
        n_truth += len(t_shapes)
        n_pred += len(p_shapes)

        inter = np.array([[_intersection(a, b) for b in p_shapes] for a in t_shapes], dtype=np.float64)
        inter = inter.reshape(len(t_shapes), len(p_shapes))
        t_area = np.array([s.area for s in t_shapes], dtype=np.float64)[:, None]
        p_area = np.array([s.area for s in p_shapes], dtype=np.float64)[None, :]
        union = t_area + p_area - inter
        iou = np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)
        same_name = np.array(
            [[a.level == b.level for b in p_shapes] for a in t_shapes], dtype=bool
        ).reshape(iou.shape)
        any_name = np.ones_like(same_name)

        for threshold, counts in pq.items():
            _count(counts, t_shapes, p_shapes, _match(iou, same_name, threshold), iou)
        _count(identification, t_shapes, p_shapes, _match(iou, same_name, config.identification_iou), iou)
        _count(detection, t_shapes, p_shapes, _match(iou, any_name, config.detection_iou), iou)

        for ti, t_shape in enumerate(t_shapes):
            if t_shape.level is None:
                continue
            named = [pj for pj, p_shape in enumerate(p_shapes) if p_shape.level == t_shape.level]
            dice_values[t_shape.level].append(_dice(t_shape, [p_shapes[pj] for pj in named], inter[ti, named]))

        truth_mask = np.zeros((height, width), dtype=bool)
        pred_mask = np.zeros((height, width), dtype=bool)
        _union_into(t_shapes, truth_mask)
        _union_into(p_shapes, pred_mask)
        merged_scores.append(_binary_scores(truth_mask, pred_mask))

        truth_refs = [ti for ti, t_shape in enumerate(t_shapes) if t_shape.level in REFERENCE_LEVELS]
        if truth_refs:
            reference.images += 1
            pred_refs = [pj for pj, p_shape in enumerate(p_shapes) if p_shape.level in REFERENCE_LEVELS]
            if pred_refs:
                scores = [a.score if a.score is not None else 0.0 for a in p_rec.annotations]
                top = max(pred_refs, key=lambda pj: scores[pj])
                reference.correct += int(any(
                    iou[ti, top] > config.identification_iou and t_shapes[ti].level == p_shapes[top].level for ti in truth_refs
                ))  # fmt: skip

    levels = sorted(dice_values, key=level_index)
    for counts in (*pq.values(), identification, detection):
        for lv in [*levels, "all"]:
            counts.setdefault(lv, MatchCounts())
    all_dice = [v for lv in levels for v in dice_values[lv]]
    merged_names = ("pixel_accuracy", "mean_accuracy", "mean_iou", "frequency_weighted_iou")
    merged = {name: float(np.mean([s[name] for s in merged_scores])) if merged_scores else 0.0 for name in merged_names}
    return EvalReport(
        levels=levels,
        n_images=len(pairs),
        n_truth=n_truth,
        n_pred=n_pred,
        dice={lv: float(np.mean(dice_values[lv])) for lv in levels},
        dice_mean=float(np.mean(all_dice)) if all_dice else 0.0,
        pq={t: dict(c) for t, c in pq.items()},
        identification=dict(identification),
        detection=dict(detection),
        merged=merged,
        reference=reference,
        config=config,
        unpaired_truth=unpaired_truth,
        unpaired_pred=unpaired_pred,
    )


def _dice(truth: _Shape, named: list[_Shape], inter_with_named: np.ndarray) -> float:
    """Dice of one truth vertebra against the union of the predictions carrying its name."""
    if not named:
        return 0.0
    if len(named) == 1:
        inter, pred_area = float(inter_with_named[0]), named[0].area
    else:  # several predictions share the name: compare with their union
        x0 = min(s.x0 for s in (truth, *named))
        y0 = min(s.y0 for s in (truth, *named))
        x1 = max(s.x0 + s.mask.shape[1] for s in (truth, *named))
        y1 = max(s.y0 + s.mask.shape[0] for s in (truth, *named))
        shifted = [_Shape(s.level, s.x0 - x0, s.y0 - y0, s.mask) for s in named]
        canvas = np.zeros((y1 - y0, x1 - x0), dtype=bool)
        _union_into(shifted, canvas)
        own = np.zeros_like(canvas)
        _union_into([_Shape(truth.level, truth.x0 - x0, truth.y0 - y0, truth.mask)], own)
        inter, pred_area = float(np.count_nonzero(canvas & own)), int(np.count_nonzero(canvas))
    denom = truth.area + pred_area
    return 2.0 * inter / denom if denom else 0.0


def mask_dice(pred: np.ndarray, truth: np.ndarray) -> float:
    """Hard Dice of two boolean masks of one image; 1.0 when both are empty."""
    p, t = np.asarray(pred, dtype=bool), np.asarray(truth, dtype=bool)
    denom = int(np.count_nonzero(p)) + int(np.count_nonzero(t))
    return 1.0 if denom == 0 else 2.0 * int(np.count_nonzero(p & t)) / denom


def polygon_iou(a: np.ndarray, b: np.ndarray, height: int, width: int) -> float:
    """IoU of two (N, 2) polygons rasterised by pixel centre on a ``height`` x ``width`` image."""
    sa, sb = _shape(a, None, height, width), _shape(b, None, height, width)
    inter = _intersection(sa, sb)
    return inter / max(1, sa.area + sb.area - inter)


__all__ = ["EvalConfig", "EvalReport", "MatchCounts", "ReferenceCounts", "evaluate", "mask_dice", "polygon_iou"]
