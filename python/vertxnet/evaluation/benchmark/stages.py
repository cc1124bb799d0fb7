"""Per-stage latency of ``Pipeline.predict``, and throughput with the networks concurrent or one after the other."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ...core import ensemble, zip_labels
from ...io import load_image
from ...pipeline import Pipeline
from .config import STAGES
from .statistics import Summary


def _process(pipe: Pipeline, path: Path, concurrent: bool) -> int:
    """Decode → preprocess → both networks (concurrently, or one after the other) → ensemble →
    labels. Returns the number of named vertebrae."""
    raw = pipe.outlines(load_image(path), concurrent=concurrent)
    cfg = pipe.config
    masks = ensemble(raw.unet, raw.detections, eta=cfg.eta, lam=cfg.lam, tau=cfg.tau, ref_score=cfg.ref_score, min_area=cfg.min_area)
    labelling = zip_labels(masks, gap_factor=cfg.gap_factor)
    return sum(label is not None for label in labelling.labels)


@dataclass
class PipelineFigures:
    backend: str
    precision: dict[str, str]
    threads: int | None
    stages: dict[str, Summary]
    concurrent: Summary  # per-image wall time, networks concurrent
    sequential: Summary  # per-image wall time, networks one after the other
    vertebrae_found: list[int]

    def throughput(self, summary: Summary) -> float:
        return 1e3 / summary.mean

    def shares(self) -> dict[str, float]:
        """Each stage's median as a share of the median total (the networks run concurrently, so
        the shares of a run need not add up to one)."""
        total = self.stages["total"].median
        return {name: s.median / total for name, s in self.stages.items() if name != "total"} if total > 0 else {}

    def to_dict(self) -> dict[str, Any]:
        return {
            "backend": self.backend,
            "precision": dict(self.precision),
            "threads_per_session": self.threads,
            "stages": {name: s.to_dict() for name, s in self.stages.items()},
            "share_of_total": self.shares(),
            "throughput": {
                "concurrent_images_per_s": self.throughput(self.concurrent),
                "sequential_images_per_s": self.throughput(self.sequential),
                "concurrent_over_sequential": self.sequential.mean / self.concurrent.mean,
                "concurrent": self.concurrent.to_dict(),
                "sequential": self.sequential.to_dict(),
            },
            "named_vertebrae_per_run": list(self.vertebrae_found),
        }


def time_pipeline(pipe: Pipeline, paths: Sequence[Path], warmup: int, runs: int, threads: int | None) -> PipelineFigures:
    """Per-stage timings from ``predict`` and concurrent vs sequential throughput."""
    for i in range(warmup):
        pipe.predict(paths[i % len(paths)])
    per_stage: dict[str, list[float]] = {name: [] for name in STAGES}
    found, precision = [], {}
    for i in range(runs):
        result = pipe.predict(paths[i % len(paths)])
        precision = dict(result.model.precision)
        for name in STAGES:
            per_stage[name].append(float(result.timings_ms[name]))
        found.append(sum(v.label is not None for v in result.vertebrae))

    concurrent, sequential = [], []
    for i in range(warmup):
        _process(pipe, paths[i % len(paths)], True)
        _process(pipe, paths[i % len(paths)], False)
    for i in range(runs):
        path = paths[i % len(paths)]
        # Alternate which mode goes first so a burst of outside load does not favour one.
        for mode in ((True, False) if i % 2 == 0 else (False, True)):
            t = time.perf_counter()
            _process(pipe, path, mode)
            (concurrent if mode else sequential).append((time.perf_counter() - t) * 1e3)
    return PipelineFigures(
        backend=pipe.backend,
        precision=precision,
        threads=threads,
        stages={name: Summary.of(v) for name, v in per_stage.items()},
        concurrent=Summary.of(concurrent),
        sequential=Summary.of(sequential),
        vertebrae_found=found,
    )

