"""Naming on phantoms, before and after: SPEC §4's zipper against the sequence decoder, same films,
same bundle, same network outputs.

Each film is generated in memory from a test seed (>= 900000, never used in training); both
labellings run the same deterministic networks and ensemble on it, so they name the same masks. Reported per
labelling: identification accuracy, detection rate, mean Dice (vertxnet.evaluation.metrics), the
share of films whose every matched name is shifted by one same non-zero offset, and the share of
names withheld as uncertain.

    python benchmarks/naming_phantoms.py --n 40 --style classic                 # the demo bundle
    python benchmarks/naming_phantoms.py --n 40 --style film --model BUNDLE --json out.json
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import Any, Sequence

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if not any(Path(p, "vertxnet").is_dir() for p in sys.path if p):
    sys.path.insert(0, str(ROOT / "python"))  # a source checkout without `pip install -e .`

from vertxnet.cli._args import add_decoder_argument, decoder_params, parse_args, positive_int  # noqa: E402
from vertxnet.data.phantom import PhantomConfig, generate  # noqa: E402
from vertxnet.data.phantom.config import STYLES, VIEWS  # noqa: E402
from vertxnet.errors import InputError  # noqa: E402
from vertxnet.evaluation.metrics import EvalConfig, evaluate  # noqa: E402
from vertxnet.files import write_json_atomic  # noqa: E402
from vertxnet.levels import LABELLINGS, level_index  # noqa: E402
from vertxnet.raster import image_mask  # noqa: E402


def film_offset(truth: Any, predicted: Any, shape: tuple[int, int]) -> int | None:
    """The one level offset (predicted - truth) shared by every named body that overlaps its
    truth body best with IoU >= 0.5; None when the offsets differ or nothing is matched."""
    offsets = []
    truth_masks = [(a.level, image_mask(np.asarray(a.polygon, float), *shape)) for a in truth.annotations if a.level]
    for p in predicted.annotations:
        if p.level is None:
            continue
        pm = image_mask(np.asarray(p.polygon, float), *shape)
        best, best_iou = None, 0.5
        for level, tm in truth_masks:
            inter = np.count_nonzero(pm & tm)
            iou = inter / max(1, np.count_nonzero(pm | tm))
            if iou >= best_iou:
                best, best_iou = level, iou
        if best is not None:
            offsets.append(level_index(p.level) - level_index(best))
    return offsets[0] if offsets and len(set(offsets)) == 1 else None


def run(args: argparse.Namespace) -> dict[str, Any]:
    from vertxnet.pipeline import Pipeline, PipelineConfig

    config = PhantomConfig(view=args.view, size=args.size, seed=args.seed, difficulty=args.difficulty, style=args.style)
    truth = [generate(config, i) for i in range(args.n)]
    report: dict[str, Any] = {"films": args.n, "style": args.style, "view": args.view, "seed": args.seed}
    decoder = decoder_params(args.decoder)  # the zipper does not use it
    report["decoder"] = None if decoder is None else decoder._asdict()
    pipelines = {
        name: Pipeline(args.model, threads=args.threads, config=PipelineConfig(labelling=name, decoder=decoder)) for name in LABELLINGS
    }
    try:
        report["bundle"] = pipelines["decoder"].bundle.name
        preds: dict[str, list] = {name: [] for name in LABELLINGS}
        stats = {name: Counter() for name in LABELLINGS}
        for image, record in truth:
            for name, pipe in pipelines.items():
                try:
                    result = pipe.predict(image, pixel_spacing_mm=record.pixel_spacing_mm)
                except InputError:
                    continue
                predicted = replace(result.to_record(), image_id=record.image_id)
                preds[name].append(predicted)
                offset = film_offset(record, predicted, image.shape[:2])
                stats[name]["shifted"] += int(offset not in (None, 0))
                stats[name]["names"] += sum(v.label is not None for v in result.vertebrae)
                stats[name]["withheld"] += sum(v.label is None for v in result.vertebrae)
                stats[name]["view_right"] += int(result.view == record.view)
        for name in LABELLINGS:
            ev = evaluate([r for _, r in truth], preds[name], config=EvalConfig(pair_by="id"))
            s = stats[name]
            report[name] = {
                "identification": ev.identification_accuracy, "detection": ev.detection_rate, "dice_mean": ev.dice_mean,
                "shifted_films": s["shifted"], "withheld_share": s["withheld"] / max(1, s["names"] + s["withheld"]),
                "view_accuracy": s["view_right"] / args.n,
            }  # fmt: skip
    finally:
        for pipe in pipelines.values():
            pipe.close()
    return report


def markdown(report: dict[str, Any]) -> str:
    lines = [f"{report['films']} {report['style']} phantoms ({report['view']}, seed {report['seed']}), bundle {report['bundle']}", "",
             "| labelling | identification | detection | mean Dice | films shifted | names withheld | view |", "|---|---|---|---|---|---|---|"]  # fmt: skip
    for name in LABELLINGS:
        r = report[name]
        lines.append(f"| {name} | {r['identification']:.3f} | {r['detection']:.3f} | {r['dice_mean']:.3f} | {r['shifted_films']} | "
                     f"{r['withheld_share']:.1%} | {r['view_accuracy']:.2f} |")  # fmt: skip
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="naming_phantoms.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--model", type=Path, default=None, help="model bundle (default: the shipped demo bundle)")
    p.add_argument("--n", type=positive_int, default=40)
    p.add_argument("--style", choices=STYLES, default="classic")
    p.add_argument("--view", choices=VIEWS, default="mixed")
    p.add_argument("--difficulty", default="normal")
    p.add_argument("--size", type=positive_int, default=512)
    p.add_argument("--seed", type=int, default=900100)
    p.add_argument("--threads", type=positive_int, default=None)
    p.add_argument("--json", type=Path, default=None)
    add_decoder_argument(p)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(build_parser(), argv)
    if isinstance(args, int):
        return args
    report = run(args)
    if args.json:
        write_json_atomic(report, args.json, indent=1)
    print(markdown(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
