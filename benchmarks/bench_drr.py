"""DRR generation speed (vertx-drr): per stage, and 100 DRRs end to end.

    python benchmarks/bench_drr.py --manifest data/ct/manifest.csv --n 100 --workers 2 --repeats 3 --json out.json

Per case, after a warm-up: median seconds over ``repeats`` of the tissue projection of one pose
by the shear-warp projector (the one in use) and by the direct per-plane homography projector
(the baseline, same process, same pose), of the whole pose (tissue, implants, body silhouettes)
and of one image (exposure, processing, truth, no PNG). Then the wall time of ``generate_dataset``
for ``n`` DRRs at ``size`` px with ``workers`` processes (case loading included).
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
from vertxnet.data.drr import DRRConfig, generate_dataset, prepare_case, read_manifest
from vertxnet.data.drr.generator import (_STREAM_FIELD, _STREAM_IMPLANT, _STREAM_POSE, _canvas_for, _padding_planes,
                                         _plan_field, _plan_pose, _rng, project_pose, render_image)
from vertxnet.data.drr.projector import project_planes, project_slabs


@dataclass(frozen=True)
class BenchConfig:
    manifest: Path
    n: int = 100
    size: int = 512
    seed: int = 0
    workers: int = 2
    repeats: int = 3
    warmup: int = 1


def _median_time(fn, repeats: int, warmup: int) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def run_benchmark(cfg: BenchConfig) -> dict:
    cases = read_manifest(cfg.manifest)
    config = DRRConfig(size=cfg.size, seed=cfg.seed)
    per_case = {}
    for case in cases:
        t0 = time.perf_counter()
        prep = prepare_case(case)
        prepare_s = time.perf_counter() - t0
        pose, info = _plan_pose(prep, config, _rng(cfg.seed, _STREAM_POSE, 0))
        fields = [_plan_field(prep, pose, config, _rng(cfg.seed, _STREAM_FIELD, i), 330.0) for i in range(4)]
        canvas = _canvas_for(fields)
        pad, _ = _padding_planes(prep, _rng(cfg.seed, _STREAM_IMPLANT, 0))
        planes = [(s, prep.slabs[s], b) for s, b in enumerate(prep.slab_boxes) if b is not None] + pad
        shear = _median_time(lambda: project_slabs(prep.slabs, prep.slab_boxes, pose, canvas, prep.slab_affine, pad),
                             cfg.repeats, cfg.warmup)
        direct = _median_time(lambda: project_planes(planes, pose, canvas, prep.slab_affine, 2), cfg.repeats, cfg.warmup)
        proj = project_pose(prep, pose, canvas, _rng(cfg.seed, _STREAM_IMPLANT, 0), config)
        whole_pose = _median_time(lambda: project_pose(prep, pose, canvas, _rng(cfg.seed, _STREAM_IMPLANT, 0), config),
                                  cfg.repeats, cfg.warmup)
        image = _median_time(lambda: render_image(prep, proj, fields[0], config, 0, info), cfg.repeats, cfg.warmup)
        per_case[case.name] = {
            "prepare_s": round(prepare_s, 2), "slabs": list(prep.slabs.shape[:3]),
            "canvas_px": [canvas.width, canvas.height],
            "tissue_shear_warp_s": round(shear, 3), "tissue_direct_s": round(direct, 3),
            "direct_over_shear_warp": round(direct / shear, 1),
            "pose_s": round(whole_pose, 3), "image_s": round(image, 3),
        }
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        generate_dataset(cases, config, Path(tmp), cfg.n, workers=cfg.workers)
        total = time.perf_counter() - t0
    return {"config": {k: str(v) if isinstance(v, Path) else v for k, v in asdict(cfg).items()},
            "per_case": per_case, "dataset_total_s": round(total, 1), "dataset_per_image_s": round(total / cfg.n, 3)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--manifest", type=Path, required=True, help="CSV of labelled CTs (export/get_example_cts.py writes one)")
    p.add_argument("--n", type=int, default=100)
    p.add_argument("--size", type=int, default=512)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--json", type=Path, help="also write the results here")
    args = p.parse_args(argv)
    result = run_benchmark(BenchConfig(manifest=args.manifest, n=args.n, size=args.size, seed=args.seed,
                                       workers=args.workers, repeats=args.repeats))
    text = json.dumps(result, indent=2)
    print(text)
    if args.json:
        atomic_write(args.json, text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
