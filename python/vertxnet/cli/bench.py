"""vertx-bench: per-stage latency, throughput and backends side by side, on phantom films or on yours.

    vertx-bench [--model BUNDLE] [--backend auto] [--size 1024] [--warmup 3] [--runs 20] [--json OUT]
    vertx-bench --input FILM [FILM ...] [--no-compare] [--no-flops]   # your films, as stored

Prints a short table (stages as median / p90 / p99, throughput with the two networks concurrent
and sequential, peak memory, each model under the backends and session options available here
as speed-ups over the ONNX Runtime CPU default, multiply-accumulates against the machine's
matrix-product peak). Exit 0 ok, 1 the benchmark failed (bad bundle, unavailable backend),
2 usage error.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..errors import VertxError
from ..evaluation.benchmark import BenchConfig, run_benchmark
from ..files import write_json_atomic
from ..runtime import BACKEND_NAMES
from ._args import parse_args


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="vertx-bench", description="Latency of the VertXNet pipeline and its backends, on phantom films or on given ones.")
    p.add_argument("--input", dest="inputs", metavar="FILM", type=Path, nargs="+", action="extend", default=[],
                   help="time these films (PNG, JPEG, TIFF, DICOM as stored) instead of phantoms: the real decode and preprocessing, and each stage's share")
    p.add_argument("--model", type=Path, help="model bundle folder (default: the shipped demo bundle)")
    p.add_argument("--backend", default="auto", choices=("auto", *BACKEND_NAMES), help="pipeline backend for the stage table (default: auto)")
    p.add_argument("--precision", default="fp32", choices=("fp32", "fp16", "int8"), help="pipeline precision (a variant the bundle has)")
    p.add_argument("--size", type=int, default=1024, help="longer side of the phantom films in pixels (default: 1024)")
    p.add_argument("--images", type=int, default=4, help="distinct phantom films, cycled through the runs (default: 4)")
    p.add_argument("--warmup", type=int, default=3, help="untimed runs before each measurement (default: 3)")
    p.add_argument("--runs", type=int, default=20, help="timed runs per measurement (default: 20)")
    p.add_argument("--threads", type=int, help="intra-op threads per model session of the pipeline (default: half the cores)")
    p.add_argument("--seed", type=int, default=900500, help="phantom seed (default: 900500)")
    p.add_argument("--torch-checkpoints", type=Path, help="folder holding the unet/ and maskrcnn/ training runs (checkpoints named in the manifest) to time PyTorch eager")
    p.add_argument("--no-compare", action="store_true", help="skip the backends side by side")
    p.add_argument("--no-flops", action="store_true", help="skip the multiply-accumulate count and the peak measurement")
    p.add_argument("--json", dest="json_out", type=Path, help="write the full report as JSON here")
    p.add_argument("--quiet", action="store_true", help="no progress messages on stderr")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parse_args(_parser(), argv)
    if isinstance(args, int):
        return args
    try:
        config = BenchConfig(
            bundle=args.model, backend=args.backend, precision=args.precision, size=args.size, images=args.images,
            warmup=args.warmup, runs=args.runs, threads=args.threads, seed=args.seed, compare=not args.no_compare,
            flops=not args.no_flops, torch_checkpoints=args.torch_checkpoints, inputs=tuple(args.inputs),
        )
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    progress = None if args.quiet else (lambda message: print(f"vertx-bench: {message}", file=sys.stderr))
    try:
        report = run_benchmark(config, progress=progress)
        print(report.table())
        if args.json_out is not None:
            write_json_atomic(report.to_dict(), args.json_out, indent=2)
    except (VertxError, ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
