"""Accuracy of the clinical measurements: body heights and Genant grades against their truth.

Two sets of films:

``phantoms``: ``vertx-phantom`` films generated in memory. Every annotated body carries its exact
morphometric truth (``morphometry`` in the COCO annotation: rim corners, endplate middles,
anterior / middle / posterior heights in mm). Reported for two kinds of outline, so that the
geometry and the networks can be told apart:

- ``truth outlines``: the annotated outline itself, filled and traced on the pixel grid as the
  pipeline traces a mask (the error of the morphometry alone, pixel quantisation included);
- ``pipeline``: the bundle's outlines, each matched to a truth body by the real-film rule
  (:func:`real_films.film_figures`: IoU >= 0.3 and a centroid inside the other).

Per kind: median and 95th-percentile absolute height error in mm (anterior, middle and
posterior heights pooled, and each apart; C2 is left out, its outline includes the dens), and the
agreement of Genant grades with the grades of the true heights (same rule, same neighbours:
Cohen's kappa, unweighted and linearly weighted, with the confusion matrix). The truth grade of a
body uses the true posterior heights of its annotated, whole neighbours.

``real``: the annotated real dev films (``shared/real-films/dev.coco.json``; each body a coarse
quadrilateral of its four corners). The bundle's outlines are matched to the truth bodies by the
same rule; for every matched body the anterior and posterior heights measured on the predicted
outline are compared with the distances between the annotated corners (relative error), with the
film's annotated facing. The same morphometry run on the truth quadrilaterals themselves gives
back their corner heights (a check of the conventions, printed too).

    python3 benchmarks/measure.py phantoms --n 200 --seed 11 --json data/bench/measure_phantoms.json
    python3 benchmarks/measure.py real --films data/real/dev --truth ../shared/real-films/dev.coco.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if not any(Path(p, "vertxnet").is_dir() for p in sys.path if p):
    sys.path.insert(0, str(ROOT / "python"))  # a source checkout without `pip install -e .`
sys.path.insert(0, str(ROOT / "benchmarks"))

from real_films import film_figures, prediction_record  # noqa: E402

from vertxnet import _core  # noqa: E402
from vertxnet.cli._args import parse_args, positive_int  # noqa: E402
from vertxnet.errors import VertxError  # noqa: E402
from vertxnet.files import write_json_atomic  # noqa: E402
from vertxnet.levels import level_index, level_name  # noqa: E402
from vertxnet.measure import MeasureConfig, measure, partial_at_edge  # noqa: E402
from vertxnet.records import Record  # noqa: E402

HEIGHTS = ("anterior", "middle", "posterior")
#: Graded levels (C3..L5), as in the core.
GRADED = range(level_index("C3"), level_index("L5") + 1)


# ---- statistics ---------------------------------------------------------------------------------


def cohen_kappa(truth: Sequence[int], measured: Sequence[int], *, weights: str | None = None) -> float | None:
    """Cohen's kappa of two gradings (0..3); ``weights="linear"`` for the linearly weighted one.
    None for fewer than two items or when chance agreement is perfect."""
    a, b = np.asarray(truth, int), np.asarray(measured, int)
    if a.size < 2:
        return None
    k = int(max(a.max(), b.max())) + 1
    observed = np.zeros((k, k))
    np.add.at(observed, (a, b), 1.0)
    observed /= observed.sum()
    expected = np.outer(observed.sum(1), observed.sum(0))
    i, j = np.indices((k, k))
    w = (np.abs(i - j) / max(k - 1, 1)) if weights == "linear" else (i != j).astype(float)
    chance = float((w * expected).sum())
    return None if chance == 0 else 1.0 - float((w * observed).sum()) / chance


def error_summary(errors: Sequence[float]) -> dict[str, Any]:
    e = np.abs(np.asarray(errors, float))
    if e.size == 0:
        return {"n": 0, "median": None, "p95": None}
    return {"n": int(e.size), "median": float(np.median(e)), "p95": float(np.percentile(e, 95)),
            "bias_median": float(np.median(np.asarray(errors, float)))}


def confusion(truth: Sequence[int], measured: Sequence[int]) -> list[list[int]]:
    m = np.zeros((4, 4), int)
    for t, g in zip(truth, measured):
        m[t, g] += 1
    return m.tolist()


def grade_summary(truth: Sequence[int], measured: Sequence[int]) -> dict[str, Any]:
    return {
        "n": len(truth),
        "kappa": cohen_kappa(truth, measured),
        "kappa_linear": cohen_kappa(truth, measured, weights="linear"),
        "agreement": float(np.mean(np.asarray(truth) == np.asarray(measured))) if truth else None,
        "confusion_truth_by_measured": confusion(truth, measured),
    }


# ---- truth --------------------------------------------------------------------------------------


def truth_grades(bodies: dict[str, dict[str, float]], partial: set[str]) -> dict[str, int]:
    """Genant grades of the true heights (mm) of a film's bodies, keyed by level; the reference
    posterior height is the mean over the annotated, whole, graded neighbour levels."""
    out = {}
    for level, h in bodies.items():
        li = level_index(level)
        if li not in GRADED or level in partial:
            continue
        refs = [bodies[level_name(n)]["posterior"] for n in (li - 1, li + 1)
                if 1 <= n <= 25 and n in GRADED and level_name(n) in bodies and level_name(n) not in partial]
        g = _core.genant_grade(h["anterior"], h["middle"], h["posterior"], float(np.mean(refs)) if refs else None)
        out[level] = g.grade
    return out


def traced(polygon: np.ndarray, width: int, height: int) -> np.ndarray:
    """The outline as the pipeline would see a perfect mask of it: filled (every pixel the
    outline touches, like the training masks) and traced through the boundary pixel centres."""
    mask = np.zeros((height, width), np.uint8)
    cv2.fillPoly(mask, [np.round((polygon - 0.5) * 16).astype(np.int32)], 1, shift=4)
    contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    if not contours:
        return polygon
    return max(contours, key=cv2.contourArea)[:, 0, :].astype(np.float64) + 0.5


# ---- phantoms -----------------------------------------------------------------------------------


@dataclass
class PhantomConfig:
    n: int = 200
    seed: int = 11
    difficulty: str = "normal"
    view: str = "mixed"
    size: int = 512
    bundle: Path | None = None
    backend: str = "auto"
    threads: int | None = None
    faces: str = "given"  # "given" (the phantom's facing) or "auto"
    style: str = "classic"  # the renderer (the demo bundle was trained on classic phantoms)


class _Collector:
    def __init__(self) -> None:
        self.errors: dict[str, list[float]] = {h: [] for h in HEIGHTS}
        self.truth_grades: list[int] = []
        self.grades: list[int] = []
        self.matched = 0
        self.truth_bodies = 0

    def add(self, measured, truth_mm: dict[str, float], truth_grade: int | None) -> None:
        if not measured.measured:
            return
        for h in HEIGHTS:
            value = getattr(measured, f"height_{h}_mm")
            if value is not None:
                self.errors[h].append(value - truth_mm[h])
        if truth_grade is not None and measured.genant_grade is not None:
            self.truth_grades.append(truth_grade)
            self.grades.append(measured.genant_grade)

    def summary(self) -> dict[str, Any]:
        pooled = [e for h in HEIGHTS for e in self.errors[h]]
        return {
            "height_error_mm": {"all": error_summary(pooled), **{h: error_summary(self.errors[h]) for h in HEIGHTS}},
            "genant": grade_summary(self.truth_grades, self.grades),
            "matched_bodies": self.matched,
            "truth_bodies": self.truth_bodies,
        }


def run_phantoms(config: PhantomConfig) -> dict[str, Any]:
    from vertxnet.data.phantom import PhantomConfig as Phantoms
    from vertxnet.data.phantom import generate
    from vertxnet.pipeline import Pipeline

    t0 = time.perf_counter()
    phantoms = Phantoms(view=config.view, size=config.size, seed=config.seed, difficulty=config.difficulty, style=config.style)
    kinds = {"truth_outlines": _Collector(), "pipeline": _Collector()}
    facing_right = facing_auto_right = 0
    with Pipeline(config.bundle, backend=config.backend, threads=config.threads) as pipe:
        bundle = {"name": pipe.bundle.name, "version": pipe.bundle.version, "backend": pipe.backend}
        for index in range(config.n):
            image, record = generate(phantoms, index)
            facing = record.extra["phantom"]["facing"]
            spacing = record.pixel_spacing_mm
            faces = facing if config.faces == "given" else "auto"
            cfg = MeasureConfig(faces=faces, radiomics=False)
            anns = [a for a in record.annotations if a.extra.get("morphometry")]
            truth_mm = {a.level: {h: a.extra["morphometry"][f"height_{h}_mm"] for h in HEIGHTS} for a in anns}
            partial = {a.level for a in anns if partial_at_edge(a.polygon, record.width, record.height)}
            grades = truth_grades(truth_mm, partial)
            # the morphometry alone, on the traced truth outlines
            outlines = [traced(a.polygon, record.width, record.height) for a in anns]
            m = measure(outlines, [a.level for a in anns], config=cfg, pixel_spacing_mm=spacing,
                        partial=[a.level in partial for a in anns])
            collector = kinds["truth_outlines"]
            collector.truth_bodies += len(anns)
            collector.matched += len(anns)
            for a, v in zip(anns, m.vertebrae):
                if a.level != "C2" and a.level not in partial:
                    collector.add(v, truth_mm[a.level], grades.get(a.level))
            facing_auto = measure(outlines, [a.level for a in anns], config=MeasureConfig(radiomics=False)).spine.facing
            facing_auto_right += facing_auto == facing
            facing_right += 1
            # the pipeline
            collector = kinds["pipeline"]
            collector.truth_bodies += len(anns)
            try:
                result = pipe.predict(image, pixel_spacing_mm=spacing)
            except (VertxError, ValueError):
                continue
            truth_record = Record(image_path=None, width=record.width, height=record.height, annotations=anns, view=record.view)
            figures = film_figures(truth_record, prediction_record(result))
            predicted = measure([v.polygon for v in result.vertebrae], [v.label for v in result.vertebrae], config=cfg,
                                pixel_spacing_mm=spacing, image=image)
            for match in figures.matches:
                a = anns[match.truth]
                collector.matched += 1
                v = predicted.vertebrae[match.prediction]
                if a.level == "C2" or a.level in partial or v.partial:
                    continue
                # the grade is compared where the prediction names the body right (its
                # neighbours, and so its crush reference, are then the same levels)
                same_name = result.vertebrae[match.prediction].label == a.level
                collector.add(v, truth_mm[a.level], grades.get(a.level) if same_name else None)
    return {
        "set": f"{config.n} {config.style} phantoms, view {config.view}, difficulty {config.difficulty}, seed {config.seed}, size {config.size}",
        "faces": config.faces,
        "bundle": bundle,
        "facing_auto_correct": f"{facing_auto_right}/{facing_right}",
        **{kind: c.summary() for kind, c in kinds.items()},
        "seconds": round(time.perf_counter() - t0, 1),
    }


# ---- real films ---------------------------------------------------------------------------------


@dataclass
class RealConfig:
    films: Path
    truth: Path
    bundle: Path | None = None
    backend: str = "auto"
    threads: int | None = None


def _corner_heights(corners: np.ndarray) -> dict[str, float]:
    ps, as_, ai, pi = corners
    return {
        "anterior": float(np.hypot(*(ai - as_))),
        "middle": float(np.hypot(*((ai + pi) / 2 - (as_ + ps) / 2))),
        "posterior": float(np.hypot(*(pi - ps))),
    }


def run_real(config: RealConfig) -> dict[str, Any]:
    from vertxnet.data.datasets import read_coco
    from vertxnet.pipeline import Pipeline

    t0 = time.perf_counter()
    raw = json.loads(Path(config.truth).read_text(encoding="utf-8"))
    faces = {img["id"]: img.get("faces") for img in raw["images"]}
    corners_of: dict[tuple[int, tuple[float, ...]], np.ndarray] = {}
    for ann in raw["annotations"]:
        if ann.get("corners"):
            key = (ann["image_id"], tuple(np.round(np.asarray(ann["segmentation"][0], float), 3)))
            corners_of[key] = np.asarray(ann["corners"], float)
    truths = read_coco(config.truth, image_root=config.films)
    relative: dict[str, list[float]] = {"anterior": [], "posterior": [], "middle": []}
    named: dict[str, list[float]] = {"anterior": [], "posterior": [], "middle": []}  # matched and named as annotated
    check: list[float] = []
    films: list[dict[str, Any]] = []
    with Pipeline(config.bundle, backend=config.backend, threads=config.threads) as pipe:
        bundle = {"name": pipe.bundle.name, "version": pipe.bundle.version, "backend": pipe.backend}
        for truth in truths:
            name = truth.image_path.name
            if not truth.image_path.is_file():
                films.append({"film": name, "note": "not in the films folder"})
                continue
            facing = faces.get(truth.image_id) or "auto"
            corners = []
            for a in truth.annotations:
                key = (truth.image_id, tuple(np.round(np.asarray(a.polygon, float).reshape(-1), 3)))
                corners.append(corners_of.get(key))
            # conventions: the morphometry of the quadrilaterals themselves gives their corner heights
            quads = [c for c in corners if c is not None]
            if quads:
                own = measure(quads, [None] * len(quads), config=MeasureConfig(faces=facing, radiomics=False))
                for c, v in zip(quads, own.vertebrae):
                    h = _corner_heights(c)
                    if v.measured:
                        check += [abs(v.height_anterior_px - h["anterior"]) / h["anterior"],
                                  abs(v.height_posterior_px - h["posterior"]) / h["posterior"]]
            try:
                result = pipe.predict(truth.image_path)
            except (VertxError, ValueError) as exc:
                films.append({"film": name, "note": f"pipeline failed: {exc}"})
                continue
            figures = film_figures(truth, prediction_record(result))
            predicted = measure([v.polygon for v in result.vertebrae], [v.label for v in result.vertebrae],
                                config=MeasureConfig(faces=facing, radiomics=False), image=result.pixels)
            film_errors = []
            for match in figures.matches:
                c = corners[match.truth]
                v = predicted.vertebrae[match.prediction]
                if c is None or not v.measured or v.partial:
                    continue
                h = _corner_heights(c)
                for part in ("anterior", "posterior", "middle"):
                    rel = (getattr(v, f"height_{part}_px") - h[part]) / h[part]
                    relative[part].append(rel)
                    if match.truth_label is not None and match.predicted_label == match.truth_label:
                        named[part].append(rel)
                    if part != "middle":
                        film_errors.append(abs(rel))
            films.append({
                "film": name, "faces": facing, "truth_bodies": len(truth.annotations), "matched": len(figures.matches),
                "measured": len(film_errors) // 2,
                "median_relative_error": float(np.median(film_errors)) if film_errors else None,
            })
    pooled = relative["anterior"] + relative["posterior"]
    return {
        "set": f"real dev films ({config.truth})",
        "bundle": bundle,
        "relative_height_error": {
            "anterior_and_posterior": error_summary(pooled),
            **{part: error_summary(values) for part, values in relative.items()},
        },
        "relative_height_error_named": {
            "anterior_and_posterior": error_summary(named["anterior"] + named["posterior"]),
            **{part: error_summary(values) for part, values in named.items()},
        },
        "truth_quadrilaterals_check": error_summary(check),
        "films": films,
        "seconds": round(time.perf_counter() - t0, 1),
    }


# ---- report -------------------------------------------------------------------------------------


def _f(value: Any, digits: int = 3) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def markdown(report: dict[str, Any]) -> str:
    lines = [f"{report['set']}; bundle {report['bundle']['name']} {report['bundle']['version']} ({report['bundle']['backend']}), {report['seconds']} s", ""]
    if "pipeline" in report:
        lines += [f"facing given to the measurements: {report['faces']}; facing inferred correctly on the truth outlines: {report['facing_auto_correct']}", "",
                  "| outlines | bodies | height error median (mm) | p95 (mm) | anterior med / p95 | middle med / p95 | posterior med / p95 | graded | kappa | weighted kappa |",
                  "|---|---|---|---|---|---|---|---|---|---|"]
        for kind in ("truth_outlines", "pipeline"):
            s = report[kind]
            e, g = s["height_error_mm"], s["genant"]
            lines.append(
                f"| {kind.replace('_', ' ')} | {s['matched_bodies']}/{s['truth_bodies']} | {_f(e['all']['median'])} | {_f(e['all']['p95'])} | "
                + " | ".join(f"{_f(e[h]['median'])} / {_f(e[h]['p95'])}" for h in HEIGHTS)
                + f" | {g['n']} | {_f(g['kappa'])} | {_f(g['kappa_linear'])} |"
            )
        for kind in ("truth_outlines", "pipeline"):
            lines += ["", f"Genant grades, {kind.replace('_', ' ')} (rows truth 0-3, columns measured 0-3): {report[kind]['genant']['confusion_truth_by_measured']}"]
    else:
        lines += ["| bodies | heights | values | median relative error | p95 | median signed error |", "|---|---|---|---|---|---|"]
        for key, which in (("relative_height_error", "matched"), ("relative_height_error_named", "matched and named as annotated")):
            r = report[key]
            for part in ("anterior_and_posterior", "anterior", "posterior", "middle"):
                lines.append(f"| {which} | {part.replace('_', ' ')} | {r[part]['n']} | {_f(r[part]['median'])} | {_f(r[part]['p95'])} | {_f(r[part].get('bias_median'))} |")
        lines += ["", f"truth quadrilaterals measured by the same code: median relative error {_f(report['truth_quadrilaterals_check']['median'], 5)}", "",
                  "| film | faces | truth | matched | measured | median relative error |", "|---|---|---|---|---|---|"]
        for f in report["films"]:
            if "note" in f:
                lines.append(f"| {f['film']} | | | | | {f['note']} |")
            else:
                lines.append(f"| {f['film']} | {f['faces']} | {f['truth_bodies']} | {f['matched']} | {f['measured']} | {_f(f['median_relative_error'])} |")
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="measure.py", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="set", required=True)
    ph = sub.add_parser("phantoms", help="generated phantoms with exact morphometric truth")
    ph.add_argument("--n", type=positive_int, default=200)
    ph.add_argument("--seed", type=int, default=11)
    ph.add_argument("--difficulty", default="normal", choices=("easy", "normal", "hard"))
    ph.add_argument("--view", default="mixed")
    ph.add_argument("--size", type=positive_int, default=512)
    ph.add_argument("--faces", default="given", choices=("given", "auto"))
    ph.add_argument("--style", default="classic", choices=("classic", "film"), help="phantom renderer (default classic, the demo bundle's training data)")
    real = sub.add_parser("real", help="annotated real dev films (corner heights)")
    real.add_argument("--films", required=True, type=Path)
    real.add_argument("--truth", required=True, type=Path)
    for q in (ph, real):
        q.add_argument("--model", type=Path, default=None, help="model bundle folder (default: the shipped demo bundle)")
        q.add_argument("--backend", default="auto")
        q.add_argument("--threads", type=positive_int, default=None)
        q.add_argument("--json", type=Path, default=None, help="write the figures to this JSON")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(build_parser(), argv)
    if isinstance(args, int):
        return args
    try:
        if args.set == "phantoms":
            report = run_phantoms(PhantomConfig(n=args.n, seed=args.seed, difficulty=args.difficulty, view=args.view, size=args.size,
                                                bundle=args.model, backend=args.backend, threads=args.threads, faces=args.faces,
                                                style=args.style))
        else:
            if not args.films.is_dir():
                print(f"error: {args.films}: films folder not found", file=sys.stderr)
                return 2
            report = run_real(RealConfig(films=args.films, truth=args.truth, bundle=args.model, backend=args.backend, threads=args.threads))
    except VertxError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if args.json is not None:
        write_json_atomic(report, args.json, indent=1)
    print(markdown(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
