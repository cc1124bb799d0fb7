#!/usr/bin/env python3
"""The evidence the decoder's size term and the Mask R-CNN score rest on, measured on a folder of
annotated films (real films, DRRs or phantoms, as for ``real_films.py``).

    python benchmarks/naming_diagnostics.py --films data/real/dev --truth ../shared/real-films/dev.coco.json
    python benchmarks/naming_diagnostics.py --films data/drr/val --truth data/drr/val/annotations.json

Prints, as JSON:
- ``truth_size``: the log area ratio between annotated neighbours (levels L, L+1) minus the
  decoder's table ratio (``DecoderParams.level_area``): its sd, robust sd (1.4826 x MAD) and
  count; the mean of that residual for L5 -> S1; the median ratio of the L5 -> S1 centroid step to
  the L4 -> L5 step.
- ``predicted_size``: the same residual for the bundle's outlines matched to truth bodies
  (levels from the truth).
- ``predicted_s1``: for every outline the bundle names S1, its area over the area of the outline
  above it, split by whether its truth body is S1.
- ``scores``: the Mask R-CNN score of matched outlines and of false positives (median, 5th
  percentile).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if not any(Path(p, "vertxnet").is_dir() for p in sys.path if p):
    sys.path.insert(0, str(ROOT / "python"))  # a source checkout without `pip install -e .`
sys.path.insert(0, str(Path(__file__).resolve().parent))

import real_films  # noqa: E402
from vertxnet.cli._args import parse_args  # noqa: E402
from vertxnet.core import DecoderParams, polygon_area  # noqa: E402
from vertxnet.data.datasets import read_coco  # noqa: E402
from vertxnet.levels import LEVELS  # noqa: E402

LOG_TABLE = np.log(np.asarray(DecoderParams().level_area, float))


def _spread(values: Sequence[float]) -> dict[str, float | int | None]:
    v = np.asarray(values, float)
    if not v.size:
        return {"n": 0, "mean": None, "sd": None, "robust_sd": None}
    return {"n": int(v.size), "mean": round(float(v.mean()), 3), "sd": round(float(v.std()), 3),
            "robust_sd": round(float(1.4826 * np.median(np.abs(v - np.median(v)))), 3)}  # fmt: skip


def _residuals(bodies: Sequence[tuple[int, float, np.ndarray]]) -> tuple[list[float], list[float], list[float]]:
    """(all neighbour residuals, L5->S1 residuals, L5->S1 / L4->L5 step ratios) of one film's
    (level index, area, centroid) bodies."""
    by_level = {level: (area, centroid) for level, area, centroid in bodies}
    out, s1, steps = [], [], []
    for level, (area, _) in by_level.items():
        if level + 1 in by_level:
            r = float(np.log(by_level[level + 1][0] / area) - (LOG_TABLE[level + 1] - LOG_TABLE[level]))
            out.append(r)
            if LEVELS[level + 1] == "S1":
                s1.append(r)
    l4, l5, s = (LEVELS.index(n) for n in ("L4", "L5", "S1"))
    if all(k in by_level for k in (l4, l5, s)):
        step = lambda a, b: float(np.linalg.norm(by_level[b][1] - by_level[a][1]))  # noqa: E731
        steps.append(step(l5, s) / step(l4, l5))
    return out, s1, steps


def _body(polygon: np.ndarray, level: str) -> tuple[int, float, np.ndarray]:
    p = np.asarray(polygon, float)
    return LEVELS.index(level), abs(float(polygon_area(p))), p.mean(axis=0)


def diagnose(films: Path, truth_path: Path, bundle: Path | None = None) -> dict:
    truths = {real_films.film_name(t, films): t for t in read_coco(truth_path, image_root=films)}
    report = real_films.run(real_films.RealFilmsConfig(films=films, truth=truth_path, bundle=bundle))
    truth_res, truth_s1, truth_steps, pred_res = [], [], [], []
    s1_right, s1_wrong, matched_scores, fp_scores = [], [], [], []
    for name, truth in truths.items():
        r, s1, st = _residuals([_body(a.polygon, a.level) for a in truth.annotations if a.level in LEVELS])
        truth_res += r
        truth_s1 += s1
        truth_steps += st
    for film in report.films:
        pred = report.predictions.get(film.name)
        if pred is None:
            continue
        matched = {m.prediction: m for m in film.matches}
        bodies = [
            _body(pred.annotations[m.prediction].polygon, m.truth_label) for m in film.matches if m.truth_label in LEVELS
        ]
        pred_res += _residuals(bodies)[0]
        areas = [abs(float(polygon_area(np.asarray(a.polygon, float)))) for a in pred.annotations]
        for i, a in enumerate(pred.annotations):
            if a.level == "S1" and i > 0:
                truth_level = matched[i].truth_label if i in matched else None
                (s1_right if truth_level == "S1" else s1_wrong).append(round(areas[i] / areas[i - 1], 2))
            if i in matched:
                matched_scores.append(a.score)
            elif i in film.false_positive_indices:
                fp_scores.append(a.score)
    pct = lambda v, q: None if not v else round(float(np.percentile(v, q)), 2)  # noqa: E731
    return {
        "films": str(films),
        "truth_size": {**_spread(truth_res), "l5_s1_mean": _spread(truth_s1)["mean"],
                       "l5_s1_over_l4_l5_step_median": pct(truth_steps, 50)},  # fmt: skip
        "predicted_size": _spread(pred_res),
        "predicted_s1": {"right": sorted(s1_right), "wrong": sorted(s1_wrong)},
        "scores": {"matched": {"n": len(matched_scores), "median": pct(matched_scores, 50), "p5": pct(matched_scores, 5)},
                   "false_positive": {"n": len(fp_scores), "median": pct(fp_scores, 50), "p5": pct(fp_scores, 5)}},  # fmt: skip
    }


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="naming_diagnostics.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--films", required=True, type=Path, help="folder holding the films named in the truth file")
    p.add_argument("--truth", required=True, type=Path, help="COCO instances JSON with the annotated bodies")
    p.add_argument("--model", type=Path, default=None, help="model bundle folder (default: the shipped demo bundle)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(build_parser(), argv)
    if isinstance(args, int):
        return args
    if not args.films.is_dir():
        print(f"error: {args.films}: films folder not found", file=sys.stderr)
        return 2
    print(json.dumps(diagnose(args.films, args.truth, args.model), indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
