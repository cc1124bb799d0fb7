"""Phantom generation speed: median seconds per image, single process.

    python benchmarks/bench_phantom.py --n 100 --size 512 --repeats 3 --json out.json

Times ``generate`` (rendering only) and ``generate_dataset`` (rendering + 16-bit PNG + COCO JSON)
after a warm-up; reports the median over repeats of the per-image time and the total for n.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from vertxnet.files import atomic_write
from vertxnet.data.phantom import PhantomConfig, generate, generate_dataset


@dataclass(frozen=True)
class BenchConfig:
    n: int = 100
    size: int = 512
    view: str = "mixed"
    difficulty: str = "normal"
    seed: int = 0
    repeats: int = 3
    warmup: int = 3


def run_benchmark(cfg: BenchConfig) -> dict:
    phantom = PhantomConfig(view=cfg.view, size=cfg.size, seed=cfg.seed, difficulty=cfg.difficulty)
    for i in range(cfg.warmup):
        generate(phantom, i)
    render_per_image, dataset_total = [], []
    for _ in range(cfg.repeats):
        times = []
        for i in range(cfg.n):
            t0 = time.perf_counter()
            generate(phantom, i)
            times.append(time.perf_counter() - t0)
        render_per_image.append(statistics.median(times))
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            generate_dataset(phantom, Path(tmp), cfg.n)
            dataset_total.append(time.perf_counter() - t0)
    total = statistics.median(dataset_total)
    return {
        "config": asdict(cfg),
        "render_median_s_per_image": statistics.median(render_per_image),
        "dataset_median_total_s": total,
        "dataset_s_per_image": total / cfg.n,
        "dataset_total_s_all_repeats": dataset_total,
    }


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=100)
    p.add_argument("--size", type=int, default=512)
    p.add_argument("--view", default="mixed", choices=("cervical", "lumbar", "mixed"))
    p.add_argument("--difficulty", default="normal", choices=("easy", "normal", "hard"))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--json", type=Path, help="write the result here as well")
    a = p.parse_args(argv)
    if a.n < 1 or a.repeats < 1 or a.warmup < 0:
        print("error: --n and --repeats must be >= 1, --warmup >= 0", file=sys.stderr)
        return 2
    result = run_benchmark(BenchConfig(a.n, a.size, a.view, a.difficulty, a.seed, a.repeats, a.warmup))
    text = json.dumps(result, indent=2)
    print(text)
    if a.json:
        atomic_write(a.json, text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
