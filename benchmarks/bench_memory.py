"""Long run in one process: resident memory of one Pipeline over many predictions.

    python benchmarks/bench_memory.py [--n 1000] [--warmup 50] [--size 256] [--films 8] [--model BUNDLE] [--json out.json]

Predicts ``--n`` phantom films (``--films`` distinct ones, in turn; classic renderer, both views)
after ``--warmup`` predictions, each result also serialised to JSON as the CLI does, and reads
the resident set size (Linux ``/proc/self/statm``) after a garbage collection every
``--every`` predictions. Reports the growth from the end of the warm-up to the end of the run
(target < 5 %) and the least-squares slope of RSS per 1,000 predictions over the samples, which
is less sensitive to one late allocation than the end points. Small films keep the run to a few
minutes: the models see their fixed input size whatever the film size.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "python"))

from vertxnet.data.phantom import PhantomConfig, generate  # noqa: E402
from vertxnet.errors import InputError  # noqa: E402
from vertxnet.files import atomic_write  # noqa: E402
from vertxnet.pipeline import Pipeline  # noqa: E402

TARGET_GROWTH = 0.05


def rss_bytes() -> int:
    """Resident set size of this process (Linux)."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def slope_per_1000(xs: list[int], ys: list[int]) -> float:
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    den = sum((x - mx) ** 2 for x in xs)
    return 0.0 if den == 0 else 1000.0 * sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / den


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=1000, help="predictions after the warm-up (default 1000)")
    p.add_argument("--warmup", type=int, default=50)
    p.add_argument("--every", type=int, default=50, help="read RSS every this many predictions")
    p.add_argument("--size", type=int, default=256, help="phantom film size in px (default 256)")
    p.add_argument("--films", type=int, default=8)
    p.add_argument("--threads", type=int, default=1, help="threads per model session (default 1)")
    p.add_argument("--model", type=Path, default=None, help="bundle (default: the shipped demo bundle)")
    p.add_argument("--json", type=Path, default=None)
    args = p.parse_args(argv)

    films = [generate(PhantomConfig(view="mixed", size=args.size, seed=4200, difficulty="normal", style="classic"), i) for i in range(args.films)]
    found = nothing = 0
    with Pipeline(args.model, threads=args.threads) as pipe:

        def predict(k: int) -> None:
            nonlocal found, nothing
            image, record = films[k % len(films)]
            try:
                result = pipe.predict(image, pixel_spacing_mm=record.pixel_spacing_mm)
                result.to_json()
                found += 1
            except InputError:
                nothing += 1

        for k in range(args.warmup):
            predict(k)
        found = nothing = 0
        gc.collect()
        start_rss = rss_bytes()
        xs, ys = [0], [start_rss]
        t0 = time.perf_counter()
        for k in range(1, args.n + 1):
            predict(args.warmup + k)
            if k % args.every == 0 or k == args.n:
                gc.collect()
                xs.append(k)
                ys.append(rss_bytes())
        seconds = time.perf_counter() - t0
    growth = (ys[-1] - start_rss) / start_rss
    report = {
        "bundle": str(args.model) if args.model else "demo",
        "backend": pipe.backend,
        "predictions": args.n,
        "warmup": args.warmup,
        "film_size": args.size,
        "films": args.films,
        "with_result": found,
        "nothing_found": nothing,
        "seconds": round(seconds, 1),
        "ms_per_prediction": round(1e3 * seconds / args.n, 1),
        "rss_after_warmup_mib": round(start_rss / 2**20, 1),
        "rss_end_mib": round(ys[-1] / 2**20, 1),
        "rss_peak_sample_mib": round(max(ys) / 2**20, 1),
        "growth_percent": round(100 * growth, 2),
        "slope_mib_per_1000": round(slope_per_1000(xs, ys) / 2**20, 2),
        "target_percent": 100 * TARGET_GROWTH,
        "met": growth < TARGET_GROWTH,
        "samples_mib": [[x, round(y / 2**20, 1)] for x, y in zip(xs, ys)],
    }
    text = json.dumps(report, indent=2)
    print(text)
    if args.json:
        atomic_write(args.json, text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
