"""Batch engine throughput: Ray Data with 1 and 2 workers against the plain CLI, same films.

    nice -n 10 python benchmarks/bench_batch.py --n 200 --size 256 --repeats 2 --json bench_batch.json

Four ways over the same N phantom films, each in the same process, in rotated order per round
so that a drifting machine load does not favour one of them, after a warm-up of each:

    plain          vertx-infer's ``run_inference`` as it ships: ORT threads = half the cores per
                   model, the two models at the same time
    inprocess      a batch worker's exact work (read+decode, one Pipeline with one ORT thread and
                   its models one after the other, render, stage, publish) in this process, no Ray
    ray-1, ray-2   ``run_batch`` on a local Ray with 1 and 2 workers (one ORT thread each)

Reported per way: the median over repeats of the whole job's films/s (Ray jobs include starting
their actors; the local Ray itself is started once, before timing), and the steady rate (films
published after the first ``workers`` films, over the time that took). The per-film overhead
Ray adds is ray-1's steady seconds per film less inprocess's. The load average is recorded
before and after each run: on a shared machine the ratios mean little when it exceeds the cores.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from vertxnet.files import atomic_write
from vertxnet.batch import BatchConfig, run_batch
from vertxnet.batch.job import _publish
from vertxnet.batch.journal import Journal, file_key
from vertxnet.batch.work import FilmInference, WorkerSettings, film_row, read_film
from vertxnet.cli.infer import InferConfig, expand_inputs, output_stems, run_inference

WAYS = ("plain", "inprocess", "ray-1", "ray-2")


@dataclass(frozen=True)
class BenchConfig:
    n: int = 200
    size: int = 256
    seed: int = 11
    repeats: int = 2
    warmup: int = 8
    formats: tuple[str, ...] = ("json",)


def _films(cfg: BenchConfig, root: Path) -> Path:
    from vertxnet.cli.phantom import main as phantom

    if phantom(["-o", str(root / "films"), "--n", str(cfg.n), "--size", str(cfg.size), "--seed", str(cfg.seed)]) != 0:
        raise SystemExit("vertx-phantom failed")
    return root / "films" / "images"


def _infer_config(films: Path, outdir: Path, cfg: BenchConfig, **kw) -> InferConfig:
    return InferConfig(inputs=(str(films),), outdir=outdir, formats=cfg.formats, timings=False, progress=False, **kw)


def _plain(films: Path, outdir: Path, cfg: BenchConfig) -> dict:
    t0 = time.perf_counter()
    summary = run_inference(_infer_config(films, outdir, cfg))
    total = time.perf_counter() - t0
    assert summary.written == len(list(films.iterdir())), summary.failures
    return {"job_s": total, "steady_s_per_film": total / summary.written, "films": summary.written}


def _inprocess(films: Path, outdir: Path, cfg: BenchConfig) -> dict:
    """One batch worker's work, with the batch code's own functions, without Ray."""
    import io

    from vertxnet.batch.job import BatchSummary

    t0 = time.perf_counter()
    files, _ = expand_inputs([str(films)])
    outdir.mkdir(parents=True, exist_ok=True)
    settings = WorkerSettings(outdir=str(outdir.resolve()), bundle=None, backend="auto", precision="fp32", threads=1,
                              formats=cfg.formats, timings=False)  # fmt: skip
    worker = FilmInference(settings)
    summary, published, stamps = BatchSummary(), set(), []
    with Journal(outdir.resolve()) as journal:
        keys = {}
        for path, stem in zip(files, output_stems(files)):
            keys[stem] = file_key(path)
            row = read_film(film_row(str(path), os.path.abspath(path), stem))
            done = worker({k: [v] for k, v in row.items()})
            row = {k: v[0] for k, v in done.items()}
            _publish(row, journal, keys, "bench", published, summary, io.StringIO())
            stamps.append(time.perf_counter())
    worker.pipeline.close()
    assert summary.written == len(files), summary.failures
    total = time.perf_counter() - t0
    return {"job_s": total, "steady_s_per_film": (stamps[-1] - stamps[0]) / (len(stamps) - 1), "films": summary.written}


def _ray(films: Path, outdir: Path, cfg: BenchConfig, workers: int) -> dict:
    stamps: list[float] = []
    t0 = time.perf_counter()
    summary = run_batch(
        BatchConfig(_infer_config(films, outdir, cfg), workers=workers),
        on_film=lambda outcome: stamps.append(time.perf_counter()) if outcome.status == "written" else None,
    )  # fmt: skip
    total = time.perf_counter() - t0
    assert summary.written == len(list(films.iterdir())) and not summary.failures, summary.failures
    steady = stamps[workers - 1 :]
    return {"job_s": total, "steady_s_per_film": (steady[-1] - steady[0]) / (len(steady) - 1), "films": summary.written}


def _run(way: str, films: Path, outdir: Path, cfg: BenchConfig) -> dict:
    if way == "plain":
        return _plain(films, outdir, cfg)
    if way == "inprocess":
        return _inprocess(films, outdir, cfg)
    return _ray(films, outdir, cfg, int(way.split("-")[1]))


def run_benchmark(cfg: BenchConfig, work: Path) -> dict:
    import logging

    import ray

    films = _films(cfg, work)
    warm = work / "warm"
    warm.mkdir()
    for f in sorted(films.iterdir())[: cfg.warmup]:
        shutil.copy(f, warm / f.name)
    cores = os.cpu_count() or 1
    for attempt in range(3):  # a loaded machine can miss Ray's 30 s node start window
        try:
            ray.init(num_cpus=cores + 1, include_dashboard=False, log_to_driver=False, logging_level=logging.WARNING)
            break
        except Exception:  # noqa: BLE001
            ray.shutdown()
            if attempt == 2:
                raise
    try:
        for way in WAYS:  # warm-up: imports, model files in the page cache, Ray worker processes
            _run(way, warm, work / f"warm-{way}", cfg)
        runs: dict[str, list[dict]] = {way: [] for way in WAYS}
        for r in range(cfg.repeats):
            order = WAYS if r % 2 == 0 else tuple(reversed(WAYS))
            for way in order:
                outdir = work / f"out-{way}-{r}"
                load_before = os.getloadavg()[0]
                result = _run(way, films, outdir, cfg)
                result.update(round=r, load_before=load_before, load_after=os.getloadavg()[0])
                runs[way].append(result)
                print(f"{way:10s} round {r}: {result['films'] / result['job_s']:.3f} films/s job, "
                      f"{1 / result['steady_s_per_film']:.3f} films/s steady, load {load_before:.1f}->{result['load_after']:.1f}",
                      file=sys.stderr, flush=True)  # fmt: skip
                shutil.rmtree(outdir, ignore_errors=True)
    finally:
        ray.shutdown()

    def med(way: str, key: str) -> float:
        return statistics.median(x[key] for x in runs[way])

    report = {
        way: {"job_films_per_s": cfg.n / med(way, "job_s"), "steady_films_per_s": 1 / med(way, "steady_s_per_film"),
              "steady_ms_per_film": 1e3 * med(way, "steady_s_per_film")}  # fmt: skip
        for way in WAYS
    }
    report["ratios"] = {
        "ray2_over_ray1_steady": report["ray-2"]["steady_films_per_s"] / report["ray-1"]["steady_films_per_s"],
        "ray2_over_ray1_job": report["ray-2"]["job_films_per_s"] / report["ray-1"]["job_films_per_s"],
        "ray2_over_plain_job": report["ray-2"]["job_films_per_s"] / report["plain"]["job_films_per_s"],
        "ray_overhead_ms_per_film": report["ray-1"]["steady_ms_per_film"] - report["inprocess"]["steady_ms_per_film"],
    }
    loads = [x[k] for way in WAYS for x in runs[way] for k in ("load_before", "load_after")]
    report["machine"] = {"cores": cores, "load_min": min(loads), "load_median": statistics.median(loads), "load_max": max(loads),
                         "niceness": os.nice(0)}  # fmt: skip
    return {"config": asdict(cfg), "summary": report, "runs": runs}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200, help="phantom films (default 200)")
    parser.add_argument("--size", type=int, default=256, help="longer film side in pixels (default 256)")
    parser.add_argument("--repeats", type=int, default=2, help="rounds over the four ways (default 2)")
    parser.add_argument("--json", type=Path, default=None, help="also write the full results here")
    args = parser.parse_args(argv)
    cfg = BenchConfig(n=args.n, size=args.size, repeats=args.repeats)
    with tempfile.TemporaryDirectory(prefix="bench-batch-") as tmp:
        result = run_benchmark(cfg, Path(tmp))
    text = json.dumps(result, indent=2)
    if args.json:
        atomic_write(args.json, text + "\n")
    print(json.dumps(result["summary"], indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
