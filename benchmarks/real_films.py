"""The real-film figures: detection, identification, Dice per named level, false positives per film
and view accuracy of a model bundle on annotated real lateral films.

The figures are exactly those of the real-film annotations' README (``shared/real-films/README.md``
beside the project), so that numbers from different runs and bundles compare:

- per film, each truth quadrilateral and each predicted outline is rasterised at the film's full
  size (a pixel belongs to a polygon when its centre lies inside, ``polygon_mask``);
- a truth body and a prediction may match when IoU >= 0.3 AND the centroid of one lies inside the
  other (the truth is coarse); matches are made greedily by descending IoU, one to one;
- detection = matched truth bodies / all truth bodies;
- identification = matched truth bodies whose predicted label equals the truth label / truth
  bodies that have a label (unnamed truth bodies, COCO category ``vertebra``, are not counted);
- Dice per named level = Dice between the truth body of level L and the union of the predictions
  named L (0 when none), averaged over named truth bodies;
- false positives = predictions matched to no truth body that overlap no truth body by more than
  10 % of their own area, per film;
- view accuracy = predicted view equals the annotated one, over films annotated cervical or lumbar.

Totals pool the bodies of all films (detection, identification, Dice) and average false positives
over the films. Beside them, each film records whether every named prediction matched to a named
truth body is off by the same non-zero number of levels ("all names shifted by k"): one wrong
reference shifts every name, which the identification figure alone does not tell apart from
scattered errors.

Rasters and centroids: the centroid of a shape is the mean of its pixel centres; it lies inside
the other shape when the pixel holding it belongs to the other's raster. Predictions whose raster
is empty (outlines thinner than a pixel centre) cannot be seen and are counted apart, not as false
positives.

A film of the truth file that is not in the films folder (or has another size there) is reported
by name and left out of the totals; a film on which the pipeline fails (for instance "no vertebra
found") counts as a film with no predictions and no view.

    python3 benchmarks/real_films.py --films data/real/dev --truth ../shared/real-films/dev.coco.json \
        --json data/real/baseline.json --sheet data/real/baseline_sheet.png

The figure computation (:func:`film_figures`, :func:`total_figures`) takes truth and predictions
as :class:`vertxnet.records.Record` and needs no model, so training scripts and ablations can
reuse it on predictions they made themselves (for example ``Result.to_record()`` with the
result's own ``view`` put back, as :func:`prediction_record` does).
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Sequence

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if not any(Path(p, "vertxnet").is_dir() for p in sys.path if p):
    sys.path.insert(0, str(ROOT / "python"))  # a source checkout without `pip install -e .`

from vertxnet.cli._args import add_decoder_argument, decoder_params, parse_args, positive_int  # noqa: E402
from vertxnet.cli.infer import add_threshold_arguments, chosen_thresholds  # noqa: E402
from vertxnet.data.datasets import read_coco  # noqa: E402
from vertxnet.files import atomic_write, write_json_atomic  # noqa: E402
from vertxnet.raster import polygon_mask, polygon_window  # noqa: E402
from vertxnet.records import Record  # noqa: E402
from vertxnet.errors import VertxError  # noqa: E402
from vertxnet.levels import LABELLINGS, level_index  # noqa: E402

#: A truth body and a prediction may match from this IoU on (inclusive).
MATCH_IOU = 0.3
#: An unmatched prediction overlapping some truth body by more than this share of its own area is
#: not a false positive (it lies on a vertebra, e.g. a second outline of one body).
FP_OVERLAP = 0.10
#: Annotated views over which view accuracy is measured.
SCORED_VIEWS = ("cervical", "lumbar")


# ---------------------------------------------------------------------------------------------
# Figures (pure: truth + predictions in, numbers out)


@dataclass
class _Raster:
    """A polygon rasterised on its own window of the film (full-size coordinates)."""

    x0: int
    y0: int
    mask: np.ndarray
    area: int
    centroid: tuple[float, float] | None  # mean pixel centre (x, y); None when empty

    @classmethod
    def of(cls, polygon: np.ndarray, height: int, width: int) -> "_Raster":
        x0, y0, x1, y1 = polygon_window(polygon, height, width)
        mask = polygon_mask(polygon, x0, y0, x1 - x0, y1 - y0)
        ys, xs = np.nonzero(mask)
        area = int(xs.size)
        centroid = (float(xs.mean()) + x0 + 0.5, float(ys.mean()) + y0 + 0.5) if area else None
        return cls(x0, y0, mask, area, centroid)

    def contains(self, point: tuple[float, float] | None) -> bool:
        if point is None:
            return False
        col, row = math.floor(point[0]) - self.x0, math.floor(point[1]) - self.y0
        return 0 <= row < self.mask.shape[0] and 0 <= col < self.mask.shape[1] and bool(self.mask[row, col])

    def intersection(self, other: "_Raster") -> int:
        x0, y0 = max(self.x0, other.x0), max(self.y0, other.y0)
        x1 = min(self.x0 + self.mask.shape[1], other.x0 + other.mask.shape[1])
        y1 = min(self.y0 + self.mask.shape[0], other.y0 + other.mask.shape[0])
        if x1 <= x0 or y1 <= y0:
            return 0
        a = self.mask[y0 - self.y0 : y1 - self.y0, x0 - self.x0 : x1 - self.x0]
        b = other.mask[y0 - other.y0 : y1 - other.y0, x0 - other.x0 : x1 - other.x0]
        return int(np.count_nonzero(a & b))

    def paint(self, canvas: np.ndarray) -> None:
        h, w = self.mask.shape
        canvas[self.y0 : self.y0 + h, self.x0 : self.x0 + w] |= self.mask


@dataclass
class Match:
    """One truth body matched to one prediction (indices into the records' annotations)."""

    truth: int
    prediction: int
    iou: float
    truth_label: str | None
    predicted_label: str | None


@dataclass
class FilmFigures:
    """The figures of one film. Ratios are None where their denominator is zero."""

    name: str
    width: int
    height: int
    truth_bodies: int
    named_truth_bodies: int
    predictions: int
    empty_predictions: int  # outlines with no pixel centre inside: invisible, counted apart
    matched: int
    identified: int  # matched named truth bodies whose predicted label equals theirs
    dice_sum: float  # sum over named truth bodies of their level Dice
    false_positives: int
    truth_view: str | None
    predicted_view: str | None
    view_scored: bool  # annotated cervical or lumbar
    view_correct: bool | None  # None when not scored
    shift: int | None  # k when every compared name is off by the same k != 0
    name_offsets: list[int]  # predicted minus truth level index, per matched named pair
    dice_by_level: dict[str, float]
    matches: list[Match]
    false_positive_indices: list[int]
    error: str | None = None  # why the pipeline gave no result for this film

    @property
    def detection(self) -> float | None:
        return self.matched / self.truth_bodies if self.truth_bodies else None

    @property
    def identification(self) -> float | None:
        return self.identified / self.named_truth_bodies if self.named_truth_bodies else None

    @property
    def dice(self) -> float | None:
        return self.dice_sum / self.named_truth_bodies if self.named_truth_bodies else None

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["matches"] = [asdict(m) for m in self.matches]
        out.update(detection=self.detection, identification=self.identification, dice=self.dice)
        return out


@dataclass
class TotalFigures:
    """The figures over all films that could be measured."""

    films: int
    truth_bodies: int
    named_truth_bodies: int
    predictions: int
    matched: int
    identified: int
    detection: float | None
    identification: float | None
    dice: float | None  # mean level Dice over named truth bodies
    dice_by_level: dict[str, float]  # mean per level over the named truth bodies of that level
    false_positives: int
    false_positives_per_film: float | None
    view_films: int  # films annotated cervical or lumbar
    view_correct: int
    view_accuracy: float | None
    shifted_films: int  # films where every compared name is off by the same non-zero offset
    shifted: dict[str, int]  # film name -> its offset k
    failed_films: list[str]  # films where the pipeline gave no result (counted with no predictions)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _offsets_shift(offsets: Sequence[int]) -> int | None:
    if offsets and offsets[0] != 0 and all(o == offsets[0] for o in offsets):
        return int(offsets[0])
    return None


def film_figures(truth: Record, prediction: Record | None, *, name: str | None = None, error: str | None = None) -> FilmFigures:
    """The figures of one film.

    ``truth`` holds the annotated bodies (``level`` None = unnamed) and the annotated ``view``;
    ``prediction`` the predicted outlines, their labels and the predicted ``view`` (None for a
    film the pipeline could not read: no predictions, no view; ``error`` says why). Both are in
    the film's full-size pixel coordinates, ``truth.width`` x ``truth.height``.
    """
    height, width = truth.height, truth.width
    preds = [] if prediction is None else prediction.annotations
    t_rasters = [_Raster.of(a.polygon, height, width) for a in truth.annotations]
    p_rasters = [_Raster.of(a.polygon, height, width) for a in preds]
    nt, npred = len(t_rasters), len(p_rasters)

    inter = np.zeros((nt, npred), dtype=np.int64)
    for i, t in enumerate(t_rasters):
        for j, p in enumerate(p_rasters):
            if t.area and p.area:
                inter[i, j] = t.intersection(p)
    t_area = np.array([t.area for t in t_rasters], dtype=np.float64).reshape(nt, 1)
    p_area = np.array([p.area for p in p_rasters], dtype=np.float64).reshape(1, npred)
    union = t_area + p_area - inter
    iou = np.divide(inter, union, out=np.zeros((nt, npred)), where=union > 0)

    candidates = []
    for i, j in zip(*np.nonzero(iou >= MATCH_IOU)):
        t, p = t_rasters[i], p_rasters[j]
        if t.contains(p.centroid) or p.contains(t.centroid):
            candidates.append((-float(iou[i, j]), int(i), int(j)))
    candidates.sort()  # descending IoU; ties by truth then prediction order
    used_t: set[int] = set()
    used_p: set[int] = set()
    matches: list[Match] = []
    for neg_iou, i, j in candidates:
        if i in used_t or j in used_p:
            continue
        used_t.add(i)
        used_p.add(j)
        matches.append(Match(i, j, -neg_iou, truth.annotations[i].level, preds[j].level))
    matches.sort(key=lambda m: m.truth)

    named = [i for i, a in enumerate(truth.annotations) if a.level is not None]
    identified = sum(1 for m in matches if m.truth_label is not None and m.predicted_label == m.truth_label)

    # Dice of each named truth body with the union of the predictions carrying its name.
    dice_by_level: dict[str, float] = {}
    dice_sum = 0.0
    for i in named:
        level = truth.annotations[i].level
        t = t_rasters[i]
        same = [p for p, a in zip(p_rasters, preds) if a.level == level and p.area]
        if not same or not t.area:
            d = 0.0
        else:
            canvas = np.zeros((height, width), dtype=bool)
            for p in same:
                p.paint(canvas)
            h, w = t.mask.shape
            both = int(np.count_nonzero(canvas[t.y0 : t.y0 + h, t.x0 : t.x0 + w] & t.mask))
            d = 2.0 * both / (t.area + int(np.count_nonzero(canvas)))
        dice_by_level[level] = d
        dice_sum += d

    false_positives = []
    for j, p in enumerate(p_rasters):
        if j in used_p or not p.area:
            continue
        if nt == 0 or not np.any(inter[:, j] > FP_OVERLAP * p.area):
            false_positives.append(j)

    offsets = [
        level_index(m.predicted_label) - level_index(m.truth_label)
        for m in matches
        if m.truth_label is not None and m.predicted_label is not None
    ]
    truth_view = truth.view
    predicted_view = None if prediction is None else prediction.view
    scored = truth_view in SCORED_VIEWS
    return FilmFigures(
        name=name or (truth.image_path.name if truth.image_path is not None else str(truth.image_id)),
        width=width,
        height=height,
        truth_bodies=nt,
        named_truth_bodies=len(named),
        predictions=npred,
        empty_predictions=sum(1 for p in p_rasters if not p.area),
        matched=len(matches),
        identified=identified,
        dice_sum=dice_sum,
        false_positives=len(false_positives),
        truth_view=truth_view,
        predicted_view=predicted_view,
        view_scored=scored,
        view_correct=(predicted_view == truth_view) if scored else None,
        shift=_offsets_shift(offsets),
        name_offsets=offsets,
        dice_by_level=dice_by_level,
        matches=matches,
        false_positive_indices=false_positives,
        error=error,
    )


def total_figures(films: Sequence[FilmFigures]) -> TotalFigures:
    """Totals over films: bodies pooled for detection, identification and Dice; false positives
    averaged over films; view accuracy over the films annotated cervical or lumbar."""
    truth = sum(f.truth_bodies for f in films)
    named = sum(f.named_truth_bodies for f in films)
    matched = sum(f.matched for f in films)
    identified = sum(f.identified for f in films)
    per_level: dict[str, list[float]] = {}
    for f in films:
        for level, d in f.dice_by_level.items():
            per_level.setdefault(level, []).append(d)
    fps = sum(f.false_positives for f in films)
    scored = [f for f in films if f.view_scored]
    correct = sum(1 for f in scored if f.view_correct)
    shifted = {f.name: f.shift for f in films if f.shift is not None}
    return TotalFigures(
        films=len(films),
        truth_bodies=truth,
        named_truth_bodies=named,
        predictions=sum(f.predictions for f in films),
        matched=matched,
        identified=identified,
        detection=matched / truth if truth else None,
        identification=identified / named if named else None,
        dice=sum(f.dice_sum for f in films) / named if named else None,
        dice_by_level={lv: float(np.mean(v)) for lv, v in sorted(per_level.items(), key=lambda kv: level_index(kv[0]))},
        false_positives=fps,
        false_positives_per_film=fps / len(films) if films else None,
        view_films=len(scored),
        view_correct=correct,
        view_accuracy=correct / len(scored) if scored else None,
        shifted_films=len(shifted),
        shifted=shifted,
        failed_films=[f.name for f in films if f.error is not None],
    )


# ---------------------------------------------------------------------------------------------
# Running a bundle over a folder of films


@dataclass(frozen=True)
class RealFilmsConfig:
    films: Path
    truth: Path
    bundle: Path | None = None  # None = the shipped demo bundle
    backend: str = "auto"
    threads: int | None = None
    labelling: str = "decoder"  # PipelineConfig.labelling: "decoder" or "zipper"
    decoder: Any = None  # PipelineConfig.decoder: a vertxnet.core.DecoderParams, None = its defaults
    thresholds: dict[str, float] = field(default_factory=dict)  # PipelineConfig fields; the rest from the manifest
    json_out: Path | None = None
    sheet: Path | None = None
    sheet_tile: int = 480  # longer side of one contact-sheet tile, pixels
    sheet_columns: int = 5


@dataclass
class Report:
    config: RealFilmsConfig
    bundle: dict[str, Any]
    totals: TotalFigures
    films: list[FilmFigures]
    missing: dict[str, str]  # film name -> why it could not be measured
    seconds: float
    predictions: dict[str, Record] = field(default_factory=dict, repr=False)

    def to_dict(self) -> dict[str, Any]:
        return {
            "figures": "shared/real-films/README.md",
            "films_dir": str(self.config.films),
            "truth": str(self.config.truth),
            "bundle": self.bundle,
            "decoder": None if self.config.decoder is None else self.config.decoder._asdict(),
            "thresholds": dict(self.config.thresholds),
            "totals": self.totals.to_dict(),
            "missing": self.missing,
            "films": [f.to_dict() for f in self.films],
            "predictions": {
                name: {
                    "view": rec.view,
                    "vertebrae": [{"label": a.level, "score": a.score, "polygon": np.round(a.polygon, 2).tolist()} for a in rec.annotations],
                }
                for name, rec in self.predictions.items()
            },
            "seconds": round(self.seconds, 2),
        }


def prediction_record(result: Any) -> Record:
    """A pipeline Result as a prediction Record, keeping the predicted view as reported
    (``Result.to_record`` keeps only cervical/lumbar; "whole" is a prediction too)."""
    record = result.to_record()
    record.view = result.view
    return record


def run(config: RealFilmsConfig) -> Report:
    """Run the bundle on every film of the truth file found in the films folder."""
    from vertxnet.pipeline import Pipeline, PipelineConfig

    t0 = time.perf_counter()
    truths = read_coco(config.truth, image_root=config.films)
    films: list[FilmFigures] = []
    missing: dict[str, str] = {}
    predictions: dict[str, Record] = {}
    pipeline_config = PipelineConfig(**config.thresholds, labelling=config.labelling, decoder=config.decoder)
    with Pipeline(config.bundle, backend=config.backend, threads=config.threads, config=pipeline_config) as pipe:
        bundle = {"name": pipe.bundle.name, "version": pipe.bundle.version, "path": str(pipe.bundle.path), "backend": pipe.backend}
        for truth in truths:
            name = film_name(truth, config.films)
            if not truth.image_path.is_file():
                missing[name] = "not in the films folder"
                continue
            try:
                result = pipe.predict(truth.image_path)
            except (VertxError, ValueError) as exc:
                if _size_mismatch(truth):
                    missing[name] = _size_mismatch(truth)
                    continue
                films.append(film_figures(truth, None, name=name, error=str(exc)))
                continue
            if (result.input.width, result.input.height) != (truth.width, truth.height):
                missing[name] = (
                    f"film is {result.input.width}x{result.input.height} pixels but its annotations are for {truth.width}x{truth.height}"
                )
                continue
            record = prediction_record(result)
            predictions[name] = record
            films.append(film_figures(truth, record, name=name))
    report = Report(config, bundle, total_figures(films), films, missing, time.perf_counter() - t0, predictions)
    if config.json_out is not None:
        Path(config.json_out).parent.mkdir(parents=True, exist_ok=True)
        write_json_atomic(report.to_dict(), config.json_out, indent=1)
    if config.sheet is not None:
        write_contact_sheet(report, truths, config.sheet, tile=config.sheet_tile, columns=config.sheet_columns)
    return report


def film_name(truth: Record, films: Path) -> str:
    """A film's name in reports: its file name as the truth file gives it (relative to the folder)."""
    try:
        return truth.image_path.relative_to(films).as_posix()
    except ValueError:
        return truth.image_path.name


def _size_mismatch(truth: Record) -> str | None:
    try:
        truth.load_image()
    except VertxError as exc:
        return str(exc)
    return None


# ---------------------------------------------------------------------------------------------
# Reporting


def _fmt(value: float | None, digits: int = 2) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def markdown(report: Report) -> str:
    """The per-film table and the totals, as Markdown."""
    t = report.totals
    lines = [
        f"Bundle {report.bundle['name']} {report.bundle['version']} ({report.bundle['backend']}), "
        f"{t.films} films measured, {len(report.missing)} missing, {report.seconds:.0f} s",
        "",
        "| film | view (truth → predicted) | truth (named) | predicted | matched | detection | identification | Dice | FP | names shifted | note |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for f in report.films:
        view = f"{f.truth_view} → {f.predicted_view}" + (" ✓" if f.view_correct else " ✗" if f.view_scored else "")
        shift = f"all by {f.shift:+d}" if f.shift is not None else ""
        note = f"pipeline failed: {f.error}" if f.error else ""
        lines.append(
            f"| {f.name} | {view} | {f.truth_bodies} ({f.named_truth_bodies}) | {f.predictions} | {f.matched} | "
            f"{_fmt(f.detection)} | {_fmt(f.identification)} | {_fmt(f.dice)} | {f.false_positives} | {shift} | {note} |"
        )
    for name, why in report.missing.items():
        lines.append(f"| {name} | | | | | | | | | | missing: {why} |")
    lines += [
        "",
        "| detection | identification | Dice (named levels) | false positives per film | view accuracy | films with all names shifted |",
        "|---|---|---|---|---|---|",
        f"| {_fmt(t.detection)} ({t.matched}/{t.truth_bodies}) | {_fmt(t.identification)} ({t.identified}/{t.named_truth_bodies}) | "
        f"{_fmt(t.dice)} | {_fmt(t.false_positives_per_film)} ({t.false_positives}/{t.films}) | "
        f"{_fmt(t.view_accuracy)} ({t.view_correct}/{t.view_films}) | {t.shifted_films} |",
    ]
    if t.failed_films:
        lines.append(f"\nPipeline gave no result (counted with no predictions): {', '.join(t.failed_films)}")
    if report.missing:
        lines.append(f"\nMissing films (not in the totals): {', '.join(report.missing)}")
    return "\n".join(lines)


TRUTH_COLOUR = (80, 220, 80)  # BGR: truth outlines, green
MISSED_COLOUR = (255, 200, 0)  # truth no prediction matched, cyan
MATCHED_COLOUR = (0, 165, 255)  # predictions matched to a truth body, orange
FP_COLOUR = (40, 40, 255)  # false positives, red
OTHER_COLOUR = (255, 80, 255)  # unmatched predictions lying on a truth body, magenta


def _grey8(record: Record) -> np.ndarray:
    """The film for display; mid-grey when it cannot be read or shown (a film the pipeline refused)."""
    from vertxnet.preprocess import to_gray, window01

    try:
        gray = to_gray(record.load_image()).astype(np.float32)
        return np.round(window01(gray) * 255).astype(np.uint8)
    except (VertxError, ValueError):
        return np.full((record.height, record.width), 96, dtype=np.uint8)


def _outline(canvas: np.ndarray, polygon: np.ndarray, scale: float, colour, thickness: int) -> None:
    shift = 4
    pts = np.round((np.asarray(polygon, dtype=np.float64) * scale - 0.5) * (1 << shift)).astype(np.int32)
    cv2.polylines(canvas, [pts.reshape(-1, 1, 2)], True, colour, thickness, cv2.LINE_AA, shift)


def _text(canvas: np.ndarray, text: str, org: tuple[int, int], colour, scale: float = 0.4) -> None:
    # On a dark box rather than over a thick dark copy of itself: glyph advances grow with the
    # stroke thickness in some OpenCV builds, so the two copies would drift apart.
    (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
    x, y = org
    cv2.rectangle(canvas, (x - 1, y - th - 1), (x + tw + 1, y + base), (0, 0, 0), cv2.FILLED)
    cv2.putText(canvas, text, org, cv2.FONT_HERSHEY_SIMPLEX, scale, colour, 1, cv2.LINE_AA)


def _tile(name: str, truth: Record, figures: FilmFigures | None, prediction: Record | None, why_missing: str | None, tile: int) -> np.ndarray:
    caption_h = 46
    out = np.full((tile + caption_h, tile, 3), 32, dtype=np.uint8)
    if figures is None:
        _text(out, name[:60], (4, 14), (255, 255, 255))
        _text(out, f"missing: {why_missing}"[:70], (4, 32), (120, 120, 255))
        return out
    scale = tile / max(truth.width, truth.height)
    w, h = max(1, round(truth.width * scale)), max(1, round(truth.height * scale))
    grey = cv2.resize(_grey8(truth), (w, h), interpolation=cv2.INTER_AREA)
    canvas = cv2.cvtColor(grey, cv2.COLOR_GRAY2BGR)
    matched_t = {m.truth for m in figures.matches}
    matched_p = {m.prediction for m in figures.matches}
    fps = set(figures.false_positive_indices)
    for i, a in enumerate(truth.annotations):
        _outline(canvas, a.polygon, scale, TRUTH_COLOUR if i in matched_t else MISSED_COLOUR, 1)
        # truth level at the posterior side (right of the body's box), small
        x1 = float(a.polygon[:, 0].max()) * scale
        cy = float(a.polygon[:, 1].mean()) * scale
        _text(canvas, a.level or "v", (min(int(x1) + 2, w - 22), int(cy) + 4), TRUTH_COLOUR, 0.33)
    preds = [] if prediction is None else prediction.annotations
    for j, a in enumerate(preds):
        colour = MATCHED_COLOUR if j in matched_p else FP_COLOUR if j in fps else OTHER_COLOUR
        _outline(canvas, a.polygon, scale, colour, 1)
        x0 = float(a.polygon[:, 0].min()) * scale
        cy = float(a.polygon[:, 1].mean()) * scale
        _text(canvas, a.level or "?", (max(int(x0) - 24, 0), int(cy) + 4), colour, 0.36)
    y_off, x_off = (tile - h) // 2, (tile - w) // 2
    out[caption_h + y_off : caption_h + y_off + h, x_off : x_off + w] = canvas
    f = figures
    view = f"view {f.truth_view}->{f.predicted_view}" + (" ok" if f.view_correct else " WRONG" if f.view_scored else "")
    _text(out, name[:60], (4, 14), (255, 255, 255))
    line = f"det {_fmt(f.detection)} id {_fmt(f.identification)} Dice {_fmt(f.dice)} FP {f.false_positives}  {view}"
    if f.shift is not None:
        line += f"  names {f.shift:+d}"
    _text(out, line, (4, 30), (230, 230, 230))
    if f.error:
        _text(out, f"failed: {f.error}"[:80], (4, 43), (120, 120, 255), 0.33)
    return out


def write_contact_sheet(report: Report, truths: Sequence[Record], path: Path, *, tile: int = 480, columns: int = 5) -> Path:
    """One tile per film of the truth file: predictions (orange matched, red false positive,
    magenta other unmatched; predicted names left of each body) over the film, truth outlines
    (green matched, cyan missed; truth names right of each body), film name and figures above."""
    by_name = {f.name: f for f in report.films}
    tiles = []
    for truth in truths:
        name = film_name(truth, report.config.films)
        tiles.append(_tile(name, truth, by_name.get(name), report.predictions.get(name), report.missing.get(name), tile))
    legend_h = 24
    rows = max(1, math.ceil(len(tiles) / columns))
    th, tw = tiles[0].shape[:2] if tiles else (tile, tile)
    sheet = np.full((legend_h + rows * th, columns * tw, 3), 16, dtype=np.uint8)
    x = 4
    for text, colour in (
        ("truth matched", TRUTH_COLOUR), ("truth missed", MISSED_COLOUR), ("prediction matched", MATCHED_COLOUR),
        ("false positive", FP_COLOUR), ("other unmatched prediction", OTHER_COLOUR),
    ):  # fmt: skip
        _text(sheet, text, (x, 16), colour, 0.45)
        x += 12 + cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, 0.45, 1)[0][0]
    for k, t in enumerate(tiles):
        r, c = divmod(k, columns)
        sheet[legend_h + r * th : legend_h + (r + 1) * th, c * tw : (c + 1) * tw] = t
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    ok, data = cv2.imencode(".png", sheet)
    if not ok:
        raise RuntimeError(f"{path}: PNG encoding failed")
    return atomic_write(path, data.tobytes())


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="real_films.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--films", required=True, type=Path, help="folder holding the films named in the truth file")
    p.add_argument("--truth", required=True, type=Path, help="COCO instances JSON with the annotated bodies and each film's view")
    p.add_argument("--model", type=Path, default=None, help="model bundle folder (default: the shipped demo bundle)")
    p.add_argument("--backend", default="auto", help="inference backend (default auto)")
    p.add_argument("--threads", type=positive_int, default=None, help="intra-op threads per model session")
    p.add_argument("--labelling", default="decoder", choices=LABELLINGS, help="how names are given (default: decoder)")
    add_decoder_argument(p)
    p.add_argument("--json", type=Path, default=None, help="write every figure, per film and in total, to this JSON")
    p.add_argument("--sheet", type=Path, default=None, help="write a contact sheet of overlays (PNG) here")
    p.add_argument("--tile", type=positive_int, default=480, help="contact-sheet tile size, pixels (default 480)")
    add_threshold_arguments(p)  # as vertx-infer
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(build_parser(), argv)
    if isinstance(args, int):
        return args
    if not args.films.is_dir():
        print(f"error: {args.films}: films folder not found", file=sys.stderr)
        return 2
    thresholds = chosen_thresholds(args)
    try:
        from vertxnet.pipeline import PipelineConfig

        PipelineConfig(**thresholds).validate()
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    config = RealFilmsConfig(
        films=args.films, truth=args.truth, bundle=args.model, backend=args.backend, threads=args.threads,
        labelling=args.labelling, decoder=decoder_params(args.decoder),
        thresholds=thresholds, json_out=args.json, sheet=args.sheet, sheet_tile=args.tile,
    )  # fmt: skip
    try:
        report = run(config)
    except VertxError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(markdown(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
