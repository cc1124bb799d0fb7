"""Benchmark of the geometry core: C++ ``ensemble`` + ``zip_labels`` against the shapely reference.

All run on the same generated scenes in the same process. ``--cases normal``: realistic scenes
(8-12 vertebrae per image, outlines of 100-300 vertices, contour-traced U-Net outlines with one
fused two-vertebra blob, Mask R-CNN misses and false positives). ``--cases heavy``: held-out-like
sets (7 U-Net outlines, two of them fused blobs, and 9 Mask R-CNN outlines of 400-600 vertices;
see tests/core/core_scenes.py). Besides the readable reference twin, a tuned shapely baseline
(benchmarks/tuned_shapely.py: vectorised geometries, STRtree candidates, exact box/area pruning,
prepared geometries) runs the same rules; its masks must equal the core's. Also times the core's
sequence decoder (``decode_labels``) on the ensemble's masks. Reports the median time per image
over several repeats after a warm-up, and the ratios.

    PYTHONPATH=python python benchmarks/bench_core.py --images 20 --repeats 7 --json out.json
    PYTHONPATH=python python benchmarks/bench_core.py --cases heavy --images 10
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "core"))  # the scene generator shared with the core tests
sys.path.insert(0, str(ROOT / "tests" / "oracle"))  # the shapely reference twin of the core

from core_scenes import make_heavy_scene, make_scene  # noqa: E402

import vertxnet.core as core  # noqa: E402
from vertxnet.files import atomic_write  # noqa: E402
import reference  # noqa: E402
import tuned_shapely  # noqa: E402


@dataclass
class BenchConfig:
    images: int = 20  # distinct scenes; each repeat runs all of them
    repeats: int = 7  # timed passes; the median pass is reported
    reference_repeats: int = 3  # the reference is ~50x slower: fewer passes
    warmup: int = 2
    seed: int = 0
    vertices: int = 200  # vertices of smooth Mask R-CNN outlines
    mrcnn_outlines: str = "traced"  # "traced" (as the pipeline produces them) or "smooth" (no straight runs)
    threads: int = 8  # for the GIL check: the same work split over this many threads
    cases: str = "normal"  # "normal" or "heavy"


@dataclass
class Scene:
    args: tuple


def make_scenes(config: BenchConfig) -> list[Scene]:
    rng = np.random.default_rng(config.seed)
    scenes = []
    for _ in range(config.images):
        if config.cases == "heavy":
            s = make_heavy_scene(rng, traced_mrcnn=config.mrcnn_outlines == "traced")
            scenes.append(Scene((s.unet, s.detections)))
            continue
        s = make_scene(rng, fuse=True, traced=True, traced_mrcnn=config.mrcnn_outlines == "traced",
                       vertices=config.vertices,
                       misses=int(rng.integers(1, 3)), false_positives=int(rng.integers(1, 3)))
        scenes.append(Scene((s.unet, s.detections)))
    return scenes


def per_image_us(run: Callable[[tuple], object], scenes: Sequence[Scene], repeats: int,
                 warmup: int) -> tuple[list[float], list[float]]:
    """Mean microseconds per image of each timed pass over all scenes: wall-clock time, and the
    CPU time of this thread (closer to the cost on an idle core when the machine is shared)."""
    for _ in range(warmup):
        for s in scenes:
            run(s.args)
    wall, cpu = [], []
    for _ in range(repeats):
        start, start_cpu = time.perf_counter(), time.thread_time()
        for s in scenes:
            run(s.args)
        cpu.append((time.thread_time() - start_cpu) / len(scenes) * 1e6)
        wall.append((time.perf_counter() - start) / len(scenes) * 1e6)
    return wall, cpu


def run_cpp(args: tuple):
    return core.zip_labels(core.ensemble(*args))


def run_reference(args: tuple):
    return reference.zip_labels(reference.ensemble(*args))


def run_cpp_ensemble(args: tuple):
    return core.ensemble(*args)


def run_tuned(args: tuple):
    unet, detections = args
    return tuned_shapely.ensemble(unet, [d.polygon for d in detections], [d.cls for d in detections],
                                  [d.score for d in detections], union_ring=reference._outer_ring)


def threaded_speedup(scenes: Sequence[Scene], threads: int) -> dict:
    """Wall time of the same calls sequentially and spread over threads (GIL released in C++)."""
    work = [s.args for s in scenes] * 4

    def sequential():
        for args in work:
            run_cpp(args)

    def spread():
        chunks = [work[i::threads] for i in range(threads)]
        pool = [threading.Thread(target=lambda c=c: [run_cpp(a) for a in c]) for c in chunks]
        for t in pool:
            t.start()
        for t in pool:
            t.join()

    timings = {}
    for name, fn in (("sequential_s", sequential), ("threaded_s", spread)):
        fn()
        runs = []
        for _ in range(3):
            start = time.perf_counter()
            fn()
            runs.append(time.perf_counter() - start)
        timings[name] = statistics.median(runs)
    timings["speedup"] = timings["sequential_s"] / timings["threaded_s"]
    timings["threads"] = threads
    timings["cpus"] = os.cpu_count()
    return timings


def run_benchmark(config: BenchConfig) -> dict:
    scenes = make_scenes(config)
    for s in scenes:  # both implementations must agree before their speed means anything
        got = [(m.source, m.cls) for m in core.ensemble(*s.args)]
        expected = [(m.source, m.cls) for m in reference.ensemble(*s.args)]
        if got != expected:
            raise RuntimeError("C++ core and reference disagree on a benchmark scene")
    for s in scenes:  # the tuned baseline must give the same masks
        got = [(m.source, m.cls, m.unet_index, m.mrcnn_index) for m in core.ensemble(*s.args)]
        if got != [t[:4] for t in run_tuned(s.args)]:
            raise RuntimeError("C++ core and the tuned shapely baseline disagree on a benchmark scene")
    cpp, cpp_cpu = per_image_us(run_cpp, scenes, config.repeats, config.warmup)
    ens, ens_cpu = per_image_us(run_cpp_ensemble, scenes, config.repeats, config.warmup)
    tuned, tuned_cpu = per_image_us(run_tuned, scenes, config.reference_repeats, 1)
    ref, ref_cpu = per_image_us(run_reference, scenes, config.reference_repeats, 1)
    masks = {id(s): core.ensemble(*s.args) for s in scenes}
    dec, dec_cpu = per_image_us(lambda args: core.decode_labels(masks[args]), [Scene(id(s)) for s in scenes],
                                config.repeats, config.warmup)
    cpp_median, ref_median = statistics.median(cpp), statistics.median(ref)
    timing = lambda wall, cpu: {"median": statistics.median(wall), "passes": wall,  # noqa: E731
                                "cpu_median": statistics.median(cpu), "cpu_passes": cpu}
    vertices = [len(p) for s in scenes for p in (*s.args[0], *(d.polygon for d in s.args[1]))]
    return {
        "config": asdict(config),
        "scenes": {
            "images": len(scenes),
            "unet_outlines_per_image": statistics.mean(len(s.args[0]) for s in scenes),
            "mrcnn_outlines_per_image": statistics.mean(len(s.args[1]) for s in scenes),
            "vertices_min": min(vertices), "vertices_median": statistics.median(vertices),
            "vertices_max": max(vertices),
        },
        "cpp_us_per_image": {"median": cpp_median, "passes": cpp, "cpu_median": statistics.median(cpp_cpu),
                             "cpu_passes": cpp_cpu},
        "reference_us_per_image": {"median": ref_median, "passes": ref, "cpu_median": statistics.median(ref_cpu),
                                   "cpu_passes": ref_cpu},
        "cpp_ensemble_us_per_image": timing(ens, ens_cpu),
        "tuned_shapely_us_per_image": timing(tuned, tuned_cpu),
        "decode_labels_us_per_image": timing(dec, dec_cpu),
        "speedup_vs_reference": ref_median / cpp_median,
        "ensemble_speedup_vs_tuned": statistics.median(tuned) / statistics.median(ens),
        "ensemble_cpu_speedup_vs_tuned": statistics.median(tuned_cpu) / statistics.median(ens_cpu),
        "cpu_speedup_vs_reference": statistics.median(ref_cpu) / statistics.median(cpp_cpu),
        "threads": threaded_speedup(scenes, config.threads),
        "machine": {"python": platform.python_version(), "platform": platform.platform(),
                    "load_average": os.getloadavg()},
    }


def print_table(result: dict) -> None:
    s = result["scenes"]
    print(f"{s['images']} images, {s['unet_outlines_per_image']:.1f} U-Net + {s['mrcnn_outlines_per_image']:.1f} "
          f"Mask R-CNN outlines each, {s['vertices_min']}-{s['vertices_max']} vertices "
          f"(median {s['vertices_median']:.0f})")
    print(f"{'implementation':<28}{'median us/image':>18}{'CPU us/image':>15}")
    for name, key in (("C++ core (ensemble+zip)", "cpp_us_per_image"), ("C++ ensemble", "cpp_ensemble_us_per_image"),
                      ("C++ decode_labels", "decode_labels_us_per_image"),
                      ("tuned shapely ensemble", "tuned_shapely_us_per_image"),
                      ("shapely reference", "reference_us_per_image")):
        print(f"{name:<28}{result[key]['median']:>18.1f}{result[key]['cpu_median']:>15.1f}")
    print(f"speed-up vs reference (ensemble+zip): {result['speedup_vs_reference']:.1f}x wall, "
          f"{result['cpu_speedup_vs_reference']:.1f}x CPU")
    print(f"ensemble speed-up vs tuned shapely: {result['ensemble_speedup_vs_tuned']:.1f}x wall, "
          f"{result['ensemble_cpu_speedup_vs_tuned']:.1f}x CPU")
    t = result["threads"]
    print(f"{t['threads']} threads vs sequential on {t['cpus']} CPUs: {t['speedup']:.2f}x "
          f"(load average {result['machine']['load_average'][0]:.1f})")


def write_json(result: dict, path: Path) -> None:
    atomic_write(path, json.dumps(result, indent=2) + "\n")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    defaults = BenchConfig()
    parser.add_argument("--images", type=int, default=defaults.images)
    parser.add_argument("--repeats", type=int, default=defaults.repeats)
    parser.add_argument("--reference-repeats", type=int, default=defaults.reference_repeats)
    parser.add_argument("--warmup", type=int, default=defaults.warmup)
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--vertices", type=int, default=defaults.vertices)
    parser.add_argument("--threads", type=int, default=defaults.threads)
    parser.add_argument("--mrcnn-outlines", choices=["traced", "smooth"], default=defaults.mrcnn_outlines,
                        help="Mask R-CNN outlines contour-traced like the pipeline's (default) or smooth "
                             "--vertices-gons")
    parser.add_argument("--cases", choices=["normal", "heavy"], default=defaults.cases,
                        help="realistic scenes (default) or heavy held-out-like outline sets")
    parser.add_argument("--json", type=Path, help="write the full result here")
    args = parser.parse_args(argv)
    if min(args.images, args.repeats, args.reference_repeats, args.threads) < 1 or args.warmup < 0 or not (
            100 <= args.vertices <= 300):
        print("error: --images, --repeats, --reference-repeats and --threads must be >= 1, --warmup >= 0, "
              "--vertices in 100..300", file=sys.stderr)
        return 2
    config = BenchConfig(args.images, args.repeats, args.reference_repeats, args.warmup, args.seed, args.vertices,
                         args.mrcnn_outlines, args.threads, args.cases)
    result = run_benchmark(config)
    print_table(result)
    if args.json:
        write_json(result, args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
