"""vertx-eval: score predicted vertebrae against ground truth (SPEC §9).

    vertx-eval --truth truth.json --pred results/ [--json report.json]

``--pred`` is a COCO instances JSON or a folder of vertx-infer result JSONs; images are paired
with the truth by file base name. Exit 0 ok, 1 some input failed, 2 usage error.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, field
from pathlib import Path

from ..data.datasets import read_coco, read_infer_json
from ..errors import InputError
from ..evaluation.metrics import EvalConfig, EvalReport, evaluate
from ..files import write_json_atomic
from ..records import Record
from ._args import parse_args


@dataclass(frozen=True)
class EvaluateJob:
    """One vertx-eval run."""

    truth: Path
    pred: Path
    json_out: Path | None = None
    metrics: EvalConfig = field(default_factory=EvalConfig)


@dataclass
class EvaluateOutcome:
    report: EvalReport
    failed: list[InputError]  # prediction files that could not be read (skipped)


def read_predictions(path: Path) -> tuple[list[Record], list[InputError]]:
    """Prediction records from a COCO JSON or a folder of vertx-infer JSONs (unreadable files
    in a folder are returned as errors and skipped)."""
    if path.is_dir():
        records, failed = [], []
        # vertx-infer writes <stem>.json per image; <stem>.coco.json beside it is another view of the same result.
        files = sorted(
            p for p in path.iterdir() if p.is_file() and p.suffix.lower() == ".json" and not p.name.lower().endswith(".coco.json")
        )
        if not files:
            raise InputError(path, "no .json result files in folder")
        for file in files:
            try:
                records.append(read_infer_json(file))
            except InputError as exc:
                failed.append(exc)
        return records, failed
    if not path.exists():
        raise InputError(path, "file not found")
    return read_coco(path), []


def run_evaluation(job: EvaluateJob) -> EvaluateOutcome:
    """Read truth and predictions, evaluate, and write the JSON report when asked.

    Raises InputError for an unusable truth or prediction source, ValueError for records that
    cannot be compared (duplicate names, size mismatch).
    """
    truth = read_coco(job.truth)
    pred, failed = read_predictions(job.pred)
    report = evaluate(truth, pred, config=job.metrics)
    if job.json_out is not None:
        payload = report.to_dict()
        payload["failed_inputs"] = [str(e) for e in failed]
        write_json_atomic(payload, job.json_out, indent=2)
    return EvaluateOutcome(report=report, failed=failed)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vertx-eval", description="Score predicted vertebra polygons and names against ground truth."
    )
    parser.add_argument("--truth", required=True, type=Path, help="ground-truth COCO instances JSON")
    parser.add_argument(
        "--pred", required=True, type=Path, help="predictions: COCO instances JSON or a folder of vertx-infer JSONs"
    )
    parser.add_argument("--json", dest="json_out", type=Path, help="also write the full report as JSON here")
    parser.add_argument(
        "--pair-by", choices=("name", "id"), default="name", help="pair images by file base name (default) or image id"
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = parse_args(_parser(), argv)
    if isinstance(args, int):
        return args
    job = EvaluateJob(truth=args.truth, pred=args.pred, json_out=args.json_out, metrics=EvalConfig(pair_by=args.pair_by))
    try:
        outcome = run_evaluation(job)
    except (InputError, ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    for exc in outcome.failed:
        print(f"error: {exc}", file=sys.stderr)
    print(outcome.report.table())
    return 1 if outcome.failed else 0


if __name__ == "__main__":
    sys.exit(main())
