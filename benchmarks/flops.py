"""Multiply-accumulates of the bundle's two networks and the share of this machine's peak they reach.

MACs are counted for Conv, ConvTranspose, Gemm and MatMul nodes of each ONNX file from the tensor
shapes ONNX Runtime's profiler records when the model runs on a real preprocessed phantom at the
bundle's input size (graph optimisations off, so the nodes are the file's own). The data-dependent
part of Mask R-CNN (box and mask heads on this film's proposals and detections) is therefore
counted for what actually ran; the number of detections is reported with it. RoiAlign, resizing,
NMS and element-wise operators are not counted.

The peak is the best float32 FLOP/s of a large numpy matrix product (numpy's BLAS, every core),
measured in the same run; the achieved rate of each model is 2 x MACs over its median latency in
the ONNX Runtime CPU session the pipeline opens.

    PYTHONPATH=python python benchmarks/flops.py --json flops.json
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

ROOT = Path(__file__).resolve().parents[1]
if not any(Path(p, "vertxnet").is_dir() for p in sys.path if p):
    sys.path.insert(0, str(ROOT / "python"))  # a source checkout without `pip install -e .`

from vertxnet.evaluation.benchmark import MODELS, Summary, count_macs, machine_info, measure_peak_flops, phantom_films  # noqa: E402
from vertxnet.cli._args import parse_args  # noqa: E402
from vertxnet.bundle import load_bundle  # noqa: E402
from vertxnet.files import write_json_atomic  # noqa: E402
from vertxnet.errors import VertxError  # noqa: E402
from vertxnet.preprocess import prepare  # noqa: E402
from vertxnet.runtime import open_model  # noqa: E402
from vertxnet.runtime.onnxrt import default_threads  # noqa: E402


@dataclass(frozen=True)
class FlopsConfig:
    bundle: Path | None = None
    size: int = 1024  # longer side of the phantom film that is preprocessed to the model input
    seed: int = 900500
    runs: int = 10  # timed runs per model for the achieved rate (after 2 warm-ups)
    matrix_n: int = 2048
    peak_repeats: int = 5
    threads: int | None = None
    json_out: Path | None = None

    def __post_init__(self) -> None:
        if self.runs < 1 or self.peak_repeats < 1 or self.matrix_n < 16:
            raise ValueError("runs and peak repeats must be >= 1 and the matrix size >= 16")


def run_flops(config: FlopsConfig) -> dict[str, Any]:
    """MACs per model, the measured peak and the achieved share of it, as a JSON-ready dict."""
    bundle = load_bundle(config.bundle)
    film = phantom_films(config.size, 1, config.seed)[0]
    tensor = prepare(film, bundle.preprocess)[0]
    threads = config.threads or default_threads()
    peak_all = measure_peak_flops(config.matrix_n, config.peak_repeats)
    peak_same = measure_peak_flops(config.matrix_n, config.peak_repeats, threads=threads)
    models: dict[str, Any] = {}
    for model in MODELS:
        macs = count_macs(bundle.model_path(model), tensor, model=model)
        session = open_model("onnxruntime-cpu", bundle, model, threads=threads)
        for _ in range(2):
            session.run(tensor)
        times = []
        for _ in range(config.runs):
            t = time.perf_counter()
            session.run(tensor)
            times.append((time.perf_counter() - t) * 1e3)
        session.close()
        latency = Summary.of(times)
        achieved = 2.0 * macs.macs / (latency.median / 1e3)
        models[model] = {
            **macs.to_dict(),
            "latency": latency.to_dict(),
            "achieved_gflops_per_s": achieved / 1e9,
            "share_of_peak_same_threads": achieved / peak_same.flops_per_s,
            "share_of_peak_all_cores": achieved / peak_all.flops_per_s,
            "floor_ms_same_threads": 2.0 * macs.macs / peak_same.flops_per_s * 1e3,
            "floor_ms_all_cores": 2.0 * macs.macs / peak_all.flops_per_s * 1e3,
        }
    return {
        "tool": "benchmarks/flops.py",
        "method": "MACs of Conv/ConvTranspose/Gemm/MatMul from ONNX Runtime profiler run-time shapes (graph optimisations off)",
        "bundle": {"name": bundle.name, "version": bundle.version, "input_size": bundle.preprocess.input_size,
                   "manifest_sha256": bundle.manifest_sha256},
        "config": {"size": config.size, "seed": config.seed, "runs": config.runs, "threads": threads},
        "machine": machine_info(),
        "peaks": {"all_cores": peak_all.to_dict(), "same_threads": peak_same.to_dict()},
        "models": models,
    }


def table(result: dict[str, Any]) -> str:
    peaks = result["peaks"]
    threads = result["config"]["threads"]
    lines = [f"peak (numpy float32 {peaks['all_cores']['matrix_n']}^2 matmul): {peaks['all_cores']['gflops_per_s']:.1f} GFLOP/s on "
             f"{result['machine']['cores']} cores, {peaks['same_threads']['gflops_per_s']:.1f} GFLOP/s on {threads} thread(s) "
             f"(the models' sessions)",
             f"{'model':<10}{'GMAC':>9}{'dets':>6}{'median ms':>11}{'GFLOP/s':>9}{'% peak':>8}{'floor ms':>10}"]
    for name, m in result["models"].items():
        dets = "" if m["detections"] is None else str(m["detections"])
        lines.append(f"{name:<10}{m['gmacs']:>9.3f}{dets:>6}{m['latency']['median_ms']:>11.2f}"
                     f"{m['achieved_gflops_per_s']:>9.1f}{100 * m['share_of_peak_same_threads']:>8.1f}{m['floor_ms_same_threads']:>10.2f}")
    lines.append("(% peak and floor against the peak at the sessions' thread count)")
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="flops.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--model", type=Path, help="model bundle folder (default: the shipped demo bundle)")
    p.add_argument("--size", type=int, default=1024, help="phantom film size before preprocessing (default: 1024)")
    p.add_argument("--seed", type=int, default=900500)
    p.add_argument("--runs", type=int, default=10, help="timed runs per model (default: 10)")
    p.add_argument("--matrix-n", type=int, default=2048, help="matrix size of the peak measurement (default: 2048)")
    p.add_argument("--threads", type=int, help="intra-op threads of the timed sessions (default: the runtime's)")
    p.add_argument("--json", dest="json_out", type=Path, help="write the result as JSON here")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(build_parser(), argv)
    if isinstance(args, int):
        return args
    try:
        config = FlopsConfig(bundle=args.model, size=args.size, seed=args.seed, runs=args.runs,
                             matrix_n=args.matrix_n, threads=args.threads, json_out=args.json_out)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        result = run_flops(config)
        if config.json_out is not None:
            write_json_atomic(result, config.json_out, indent=2)
    except (VertxError, ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(table(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
