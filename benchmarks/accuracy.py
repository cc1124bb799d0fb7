"""VertXNet accuracy on fresh phantoms: the ensemble against U-Net alone and Mask R-CNN alone.

Reproduces the layout of seed 000's evaluation on synthetic films with exact truth:

- Table 1: per-level Dice of U-Net alone, Mask R-CNN alone and the VertXNet ensemble, levels as
  columns, on normal-difficulty cervical and lumbar phantoms;
- Table 2: the same on hard-difficulty phantoms, the analogue of the paper's generalisation
  datasets (more noise, blur, rotation, fractures, implants, touching discs);
- Table 3: panoptic quality at IoU 0.7 and 0.8 per level;
- identification accuracy and detection rate per method;
- an ablation over the agreement threshold ``eta`` and the area window ``lam``;
- "Dice any name": each truth vertebra's best Dice with any prediction, whatever its name, to
  separate outlining errors from naming errors; for well outlined vertebrae (IoU > 0.5) the
  share named right, one level off, further off or unnamed; and the share of films where a
  reference (C2 / S1) was found at all;
- the ensemble's gain over each single network with a 95 % paired bootstrap interval over films.

Each film is generated in memory from a test seed (>= 900000, never used in training) and the
two networks run ONCE per film; their raw outlines (U-Net components Cu, Mask R-CNN instances Cm
after the score threshold) are kept and reused by every method and ablation setting.

Naming. All three methods are named by the same zipper (``vertxnet.core.zip_labels``):
- Mask R-CNN alone: its instances with their classes (vertebra / C2 / S1) and scores.
- U-Net alone: a binary segmenter has no reference class of its own. Its components are named
  from the reference Mask R-CNN found on the same film: the best-scoring C2 and S1 instances
  with score >= ref_score (the ones the ensemble never drops) pass their class to the U-Net
  component that overlaps them most; without such a component the film has no reference and
  the U-Net outlines stay unnamed (Dice 0). Segmentation quality is thus compared on equal
  naming terms; seed 000 §3 does not say how its U-Net baseline was named (its Table 1
  baselines are described as multi-class models).
- VertXNet: ``vertxnet.core.ensemble`` on Cu and Cm, then the zipper, as the pipeline does.
Masks the zipper excludes (above C2, below S1, past the sequence end) are left out, as the
pipeline reports them apart from the vertebrae.

    PYTHONPATH=python python benchmarks/accuracy.py --n 100 --json acc.json --markdown acc.md
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if not any(Path(p, "vertxnet").is_dir() for p in sys.path if p):
    sys.path.insert(0, str(ROOT / "python"))  # a source checkout without `pip install -e .`

from vertxnet.core import Detection, ensemble, intersection_area, polygon_area, polygon_centroid, zip_labels  # noqa: E402
from vertxnet.cli._args import parse_args  # noqa: E402
from vertxnet.files import atomic_write, write_json_atomic  # noqa: E402
from vertxnet.records import Annotation, Record  # noqa: E402
from vertxnet.errors import VertxError  # noqa: E402
from vertxnet.levels import level_index  # noqa: E402
from vertxnet.evaluation.metrics import EvalConfig, EvalReport, evaluate  # noqa: E402
from vertxnet.data.phantom import PhantomConfig, generate  # noqa: E402
from vertxnet.pipeline import Pipeline, PipelineConfig  # noqa: E402

METHODS = ("U-Net", "Mask R-CNN", "VertXNet")
VIEWS = ("cervical", "lumbar")
DIFFICULTIES = ("normal", "hard")
TEST_SEED_FLOOR = 900000


@dataclass(frozen=True)
class AccuracyConfig:
    """One accuracy run. ``n`` films per view and difficulty; seeds ``seed + k`` for the k-th
    (view, difficulty) set, all >= 900000 (kept out of training)."""

    bundle: Path | None = None
    n: int = 100
    size: int = 512
    seed: int = 900000
    difficulties: tuple[str, ...] = DIFFICULTIES
    etas: tuple[float, ...] = (0.3, 0.4, 0.5, 0.6, 0.7)
    lams: tuple[float, ...] = (1.0, 1.5, 2.0, 3.0)
    backend: str = "auto"
    threads: int | None = None
    json_out: Path | None = None
    markdown_out: Path | None = None

    def __post_init__(self) -> None:
        if isinstance(self.n, bool) or not isinstance(self.n, int) or self.n < 1:
            raise ValueError(f"n must be a positive integer, got {self.n!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < TEST_SEED_FLOOR:
            raise ValueError(f"seed must be >= {TEST_SEED_FLOOR} (lower seeds are used for training), got {self.seed!r}")
        unknown = [d for d in self.difficulties if d not in DIFFICULTIES]
        if unknown or not self.difficulties:
            raise ValueError(f"difficulties must be among {', '.join(DIFFICULTIES)}, got {list(self.difficulties)}")
        for eta in self.etas:
            if not 0.0 < eta <= 1.0:
                raise ValueError(f"eta must lie in (0, 1], got {eta}")
        for lam in self.lams:
            if not lam > 0:
                raise ValueError(f"lam must be positive, got {lam}")


@dataclass
class RawOutputs:
    """What the two networks found on one film, in original pixels (Cu and Cm)."""

    unet: list[np.ndarray]
    detections: list[Detection]


@dataclass
class FilmSet:
    view: str
    difficulty: str
    seed: int
    truth: list[Record] = field(default_factory=list)
    raw: list[RawOutputs] = field(default_factory=list)

    @property
    def name(self) -> str:
        return f"{self.view} {self.difficulty}"


# ---------------------------------------------------------------------------------------------
# Naming the outlines of each method


def _named_record(truth: Record, masks: Sequence[tuple[np.ndarray, str, float]], gap_factor: float) -> Record:
    """Prediction record: ``masks`` (polygon, class, score) sorted top to bottom, zipped."""
    ordered = sorted(masks, key=lambda m: polygon_centroid(m[0])[1])
    labelling = zip_labels(ordered, gap_factor=gap_factor)
    annotations = [
        Annotation(np.asarray(poly, dtype=np.float64), labelling.labels[i], score)
        for i, (poly, _, score) in enumerate(ordered)
        if i not in labelling.excluded
    ]
    return Record(image_path=None, width=truth.width, height=truth.height, annotations=annotations, image_id=truth.image_id,
                  extra={"reference": labelling.reference, "flags": list(labelling.flags)})


def unet_alone(truth: Record, raw: RawOutputs, cfg: PipelineConfig) -> Record:
    """U-Net components named from the Mask R-CNN reference they overlap most (module docstring)."""
    masks: list[tuple[np.ndarray, str, float]] = [(p, "vertebra", 0.0) for p in raw.unet]
    for ref in ("C2", "S1"):
        candidates = [d for d in raw.detections if d.cls == ref and d.score >= cfg.ref_score]
        if not candidates or not masks:
            continue
        best = max(candidates, key=lambda d: d.score)
        overlaps = [intersection_area(p, best.polygon) if cls == "vertebra" else -1.0 for p, cls, _ in masks]
        k = int(np.argmax(overlaps))
        if overlaps[k] > 0:
            masks[k] = (masks[k][0], ref, best.score)
    return _named_record(truth, masks, cfg.gap_factor)


def mrcnn_alone(truth: Record, raw: RawOutputs, cfg: PipelineConfig) -> Record:
    return _named_record(truth, [(d.polygon, d.cls, d.score) for d in raw.detections], cfg.gap_factor)


def vertxnet(truth: Record, raw: RawOutputs, cfg: PipelineConfig, eta: float, lam: float) -> Record:
    masks = ensemble(raw.unet, raw.detections, eta=eta, lam=lam, tau=cfg.tau,
                     ref_score=cfg.ref_score, min_area=cfg.min_area)
    return _named_record(truth, [(m.polygon, m.cls, m.score) for m in masks], cfg.gap_factor)


# ---------------------------------------------------------------------------------------------
# Running the networks once per film


def collect(config: AccuracyConfig, pipe: Pipeline, progress=None) -> list[FilmSet]:
    """Generate every film, run both networks once, keep the truth and the raw outlines."""
    sets = []
    k = 0
    for difficulty in config.difficulties:
        for view in VIEWS:
            film_set = FilmSet(view, difficulty, config.seed + k)
            k += 1
            phantom = PhantomConfig(view=view, size=config.size, seed=film_set.seed, difficulty=difficulty)
            for i in range(config.n):
                image, truth = generate(phantom, i)
                truth.image = None
                truth.image_id = i + 1
                raw = pipe.outlines(image)
                film_set.truth.append(truth)
                film_set.raw.append(RawOutputs(raw.unet, raw.detections))
            if progress:
                progress(f"{film_set.name}: {config.n} films through both networks")
            sets.append(film_set)
    return sets


def outline_and_naming(truth: Sequence[Record], predictions: Sequence[Record]) -> dict[str, float]:
    """Outline quality with naming taken out, and what went wrong with the names.

    ``dice_any_name``: mean over truth vertebrae of the best Dice with any prediction, whatever
    its name (exact polygon areas from the geometry core). For truth vertebrae whose best
    prediction overlaps at IoU > 0.5, the share whose name is right, off by one level, off by
    more, or missing (unnamed prediction): tells a shifted zipper from a missed vertebra.
    """
    values, naming = [], {"name_right": 0, "name_off_by_one": 0, "name_off_more": 0, "name_missing": 0}
    for t_rec, p_rec in zip(truth, predictions):
        preds = [(a.polygon, polygon_area(a.polygon), a.level) for a in p_rec.annotations]
        for ann in t_rec.annotations:
            area = polygon_area(ann.polygon)
            best, best_level = 0.0, None
            for poly, p_area, level in preds:
                if area + p_area > 0:
                    dice = 2.0 * intersection_area(ann.polygon, poly) / (area + p_area)
                    if dice > best:
                        best, best_level = dice, level
            values.append(best)
            if best > 2.0 / 3.0 and ann.level is not None:  # Dice > 2/3  <=>  IoU > 0.5
                if best_level is None:
                    naming["name_missing"] += 1
                else:
                    offset = abs(level_index(best_level) - level_index(ann.level))
                    naming["name_right" if offset == 0 else "name_off_by_one" if offset == 1 else "name_off_more"] += 1
    matched = sum(naming.values())
    out = {"dice_any_name": float(np.mean(values)) if values else 0.0, "outlined_iou50": matched / len(values) if values else 0.0}
    out.update({k: v / matched if matched else 0.0 for k, v in naming.items()})
    return out


def evaluate_set(film_set: FilmSet, method, metrics: EvalConfig) -> tuple[EvalReport, dict[str, float]]:
    predictions = [method(t, r) for t, r in zip(film_set.truth, film_set.raw)]
    extra = {
        **outline_and_naming(film_set.truth, predictions),
        "reference_found": float(np.mean([p.extra["reference"] != "none" for p in predictions])),
    }
    return evaluate(film_set.truth, predictions, config=metrics), extra


def film_dice(film_set: FilmSet, method, metrics: EvalConfig) -> tuple[np.ndarray, np.ndarray]:
    """Mean named Dice of each film and its number of named truth vertebrae (the weights that
    make the pooled mean of :func:`vertxnet.evaluation.metrics.evaluate`)."""
    means, counts = [], []
    for t, r in zip(film_set.truth, film_set.raw):
        means.append(evaluate([t], [method(t, r)], config=metrics).dice_mean)
        counts.append(sum(a.level is not None for a in t.annotations))
    return np.asarray(means), np.asarray(counts, dtype=np.float64)


def paired_bootstrap(a: np.ndarray, b: np.ndarray, weights: np.ndarray, *, resamples: int = 2000, seed: int = 0) -> dict[str, float]:
    """Pooled mean Dice of ``a`` minus ``b`` (same films) with a 95 % bootstrap interval over films."""
    if weights.sum() <= 0:
        return {"difference": 0.0, "ci95_low": 0.0, "ci95_high": 0.0, "films_better": 0, "films_worse": 0, "films": len(a)}
    rng = np.random.default_rng(seed)
    diff = a - b
    idx = rng.integers(0, len(a), size=(resamples, len(a)))
    w = weights[idx]
    boot = np.sum(diff[idx] * w, axis=1) / np.maximum(np.sum(w, axis=1), 1e-12)
    low, high = np.percentile(boot, [2.5, 97.5])
    return {"difference": float(np.sum(diff * weights) / weights.sum()), "ci95_low": float(low), "ci95_high": float(high),
            "films_better": int(np.sum(diff > 1e-9)), "films_worse": int(np.sum(diff < -1e-9)), "films": len(a)}


def summary(report: EvalReport, extra: dict[str, float]) -> dict[str, float]:
    d = report.to_dict()
    return {
        "dice_mean": report.dice_mean,
        **extra,
        "pq_0.7": d["panoptic_quality"]["0.7"]["all"]["pq"],
        "pq_0.8": d["panoptic_quality"]["0.8"]["all"]["pq"],
        "identification_accuracy": report.identification_accuracy,
        "detection_rate": report.detection_rate,
        "n_truth": report.n_truth,
        "n_pred": report.n_pred,
    }


def run_accuracy(config: AccuracyConfig, progress=None) -> dict[str, Any]:
    """Every table of the module docstring as a JSON-ready dict (``"markdown"`` holds the text tables).

    Raises BundleError for an unusable bundle.
    """
    say = progress or (lambda message: None)
    metrics = EvalConfig(pq_thresholds=(0.7, 0.8), pair_by="id")
    t0 = time.perf_counter()
    with Pipeline(config.bundle, backend=config.backend, threads=config.threads, config=PipelineConfig(require_vertebrae=False)) as pipe:
        cfg = pipe.config
        sets = collect(config, pipe, say)
        bundle = {"name": pipe.bundle.name, "version": pipe.bundle.version, "path": str(pipe.bundle.path),
                  "manifest_sha256": pipe.bundle.manifest_sha256, "input_size": pipe.bundle.preprocess.input_size,
                  "backend": pipe.backend}
    inference_s = time.perf_counter() - t0

    methods = {
        "U-Net": lambda t, r: unet_alone(t, r, cfg),
        "Mask R-CNN": lambda t, r: mrcnn_alone(t, r, cfg),
        "VertXNet": lambda t, r: vertxnet(t, r, cfg, cfg.eta, cfg.lam),
    }
    results: dict[str, Any] = {}
    for film_set in sets:
        entry: dict[str, Any] = {"view": film_set.view, "difficulty": film_set.difficulty, "seed": film_set.seed,
                                 "films": len(film_set.truth), "methods": {}, "ablation": {"eta": {}, "lam": {}}}
        per_film: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        for name, method in methods.items():
            report, extra = evaluate_set(film_set, method, metrics)
            per_film[name] = film_dice(film_set, method, metrics)
            entry["methods"][name] = {"summary": summary(report, extra), "report": report.to_dict(),
                                      "per_film_dice": [float(v) for v in per_film[name][0]]}
        entry["ensemble_minus"] = {name: paired_bootstrap(per_film["VertXNet"][0], per_film[name][0], per_film[name][1])
                                   for name in ("U-Net", "Mask R-CNN")}
        for eta in config.etas:
            entry["ablation"]["eta"][f"{eta:g}"] = summary(*evaluate_set(film_set, lambda t, r, e=eta: vertxnet(t, r, cfg, e, cfg.lam), metrics))
        for lam in config.lams:
            entry["ablation"]["lam"][f"{lam:g}"] = summary(*evaluate_set(film_set, lambda t, r, lv=lam: vertxnet(t, r, cfg, cfg.eta, lv), metrics))
        results[film_set.name] = entry
        say(f"{film_set.name}: evaluated")
    payload = {
        "tool": "benchmarks/accuracy.py",
        "config": {**{k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(config).items()}},
        "bundle": bundle,
        "thresholds": {"unet": cfg.unet_threshold, "mrcnn_score": cfg.score_threshold, "mask": cfg.mask_threshold,
                       "eta": cfg.eta, "lam": cfg.lam, "tau": cfg.tau, "ref_score": cfg.ref_score, "gap_factor": cfg.gap_factor},
        "seconds": {"generate_and_infer": inference_s, "total": time.perf_counter() - t0},
        "sets": results,
    }
    payload["markdown"] = markdown(payload)
    if config.json_out is not None:
        write_json_atomic(payload, config.json_out, indent=2)
    if config.markdown_out is not None:
        atomic_write(config.markdown_out, payload["markdown"])
    return payload


# ---------------------------------------------------------------------------------------------
# Tables


def _row(name: str, values: Sequence[float | None], bold: int | None = None) -> str:
    cells = []
    for i, v in enumerate(values):
        text = "–" if v is None else f"{v:.3f}"
        cells.append(f"**{text}**" if bold is not None and i == bold else text)
    return "| " + " | ".join([name, *cells]) + " |"


def _header(first: str, columns: Sequence[str]) -> list[str]:
    return ["| " + " | ".join([first, *columns]) + " |", "|" + "---|" * (len(columns) + 1)]


def markdown(payload: dict[str, Any]) -> str:
    """Seed 000's tables (levels as columns) and the summaries, as markdown."""
    sets = payload["sets"]
    out: list[str] = []
    b = payload["bundle"]
    out.append(f"Bundle `{b['name']}` {b['version']} (input {b['input_size']} px, {b['backend']}), "
               f"thresholds {', '.join(f'{k} {v:g}' for k, v in payload['thresholds'].items())}.")
    for difficulty, title in (("normal", "Table 1 - Dice per level, normal-difficulty phantoms"),
                              ("hard", "Table 2 - Dice per level, hard-difficulty phantoms (generalisation)")):
        chosen = [s for s in sets.values() if s["difficulty"] == difficulty]
        if not chosen:
            continue
        out += ["", f"### {title}"]
        for s in chosen:
            levels = s["methods"]["VertXNet"]["report"]["levels"]
            out += ["", f"{s['view'].capitalize()}, {s['films']} films (seed {s['seed']}):", ""]
            out += _header("Model", [*levels, "mean"])
            for name in METHODS:
                dice = s["methods"][name]["report"]["dice"]
                out.append(_row(name, [dice.get(lv) for lv in levels] + [dice["mean"]]))
    out += ["", "### Table 3 - Panoptic quality per level (VertXNet)"]
    for s in sets.values():
        levels = s["methods"]["VertXNet"]["report"]["levels"]
        pq = s["methods"]["VertXNet"]["report"]["panoptic_quality"]
        out += ["", f"{s['view'].capitalize()} {s['difficulty']}:", ""]
        out += _header("IoU threshold", [*levels, "all"])
        for t in ("0.8", "0.7"):
            out.append(_row(t, [pq[t][lv]["pq"] for lv in [*levels, "all"]]))
    out += ["", "### Summary per method", ""]
    out += _header("Set / method", ["mean Dice", "Dice any name", "PQ@0.7", "PQ@0.8", "identification", "detection@0.7", "reference found", "truth", "predicted"])
    for s in sets.values():
        for name in METHODS:
            m = s["methods"][name]["summary"]
            out.append("| " + " | ".join([f"{s['view']} {s['difficulty']} / {name}",
                                          *(f"{m[k]:.3f}" for k in ("dice_mean", "dice_any_name", "pq_0.7", "pq_0.8", "identification_accuracy", "detection_rate", "reference_found")),
                                          str(m["n_truth"]), str(m["n_pred"])]) + " |")
    out += ["", "### VertXNet minus each single network: pooled mean Dice, 95 % paired bootstrap interval over films", ""]
    out += _header("Set", ["vs U-Net", "films better / worse", "vs Mask R-CNN", "films better / worse"])
    for s in sets.values():
        cells = []
        for name in ("U-Net", "Mask R-CNN"):
            d = s["ensemble_minus"][name]
            cells += [f"{d['difference']:+.3f} [{d['ci95_low']:+.3f}, {d['ci95_high']:+.3f}]", f"{d['films_better']} / {d['films_worse']} of {d['films']}"]
        out.append("| " + " | ".join([f"{s['view']} {s['difficulty']}", *cells]) + " |")
    out += ["", "### Outlines and names per method (truth vertebrae outlined at IoU > 0.5, and how they were named)", ""]
    out += _header("Set / method", ["outlined", "name right", "one level off", "further off", "unnamed"])
    for s in sets.values():
        for name in METHODS:
            m = s["methods"][name]["summary"]
            out.append("| " + " | ".join([f"{s['view']} {s['difficulty']} / {name}",
                                          *(f"{m[k]:.3f}" for k in ("outlined_iou50", "name_right", "name_off_by_one", "name_off_more", "name_missing"))]) + " |")
    for knob in ("eta", "lam"):
        values = list(next(iter(sets.values()))["ablation"][knob])
        out += ["", f"### Ablation over {knob} (VertXNet mean Dice / PQ@0.7 / identification)", ""]
        out += _header("Set", [f"{knob}={v}" for v in values])
        for s in sets.values():
            cells = [f"{a['dice_mean']:.3f} / {a['pq_0.7']:.3f} / {a['identification_accuracy']:.3f}" for a in s["ablation"][knob].values()]
            out.append("| " + " | ".join([f"{s['view']} {s['difficulty']}", *cells]) + " |")
    return "\n".join(out) + "\n"


# ---------------------------------------------------------------------------------------------
# CLI


def _floats(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from None


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="accuracy.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--model", type=Path, help="model bundle folder (default: the shipped demo bundle)")
    p.add_argument("--n", type=int, default=100, help="films per view and difficulty (default: 100)")
    p.add_argument("--size", type=int, default=512, help="longer side of the films in pixels (default: 512)")
    p.add_argument("--seed", type=int, default=900000, help="first test seed, >= 900000 (default: 900000)")
    p.add_argument("--difficulty", action="append", choices=DIFFICULTIES, help="difficulty sets to run (repeatable; default: normal and hard)")
    p.add_argument("--etas", type=_floats, default=(0.3, 0.4, 0.5, 0.6, 0.7), help="eta values of the ablation (comma-separated)")
    p.add_argument("--lams", type=_floats, default=(1.0, 1.5, 2.0, 3.0), help="lam values of the ablation (comma-separated)")
    p.add_argument("--backend", default="auto", help="inference backend (default: auto)")
    p.add_argument("--threads", type=int, help="intra-op threads per model session")
    p.add_argument("--json", dest="json_out", type=Path, help="write every figure as JSON here")
    p.add_argument("--markdown", dest="markdown_out", type=Path, help="write the tables as markdown here")
    p.add_argument("--quiet", action="store_true", help="no progress messages on stderr")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(build_parser(), argv)
    if isinstance(args, int):
        return args
    try:
        config = AccuracyConfig(
            bundle=args.model, n=args.n, size=args.size, seed=args.seed,
            difficulties=tuple(args.difficulty) if args.difficulty else DIFFICULTIES,
            etas=args.etas, lams=args.lams, backend=args.backend, threads=args.threads,
            json_out=args.json_out, markdown_out=args.markdown_out,
        )
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    progress = None if args.quiet else (lambda message: print(f"accuracy: {message}", file=sys.stderr))
    try:
        payload = run_accuracy(config, progress)
    except (VertxError, ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(payload["markdown"], end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
