"""Summaries of repeated timings, and the process's peak memory."""

from __future__ import annotations

import resource
import sys
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Summary:
    """Median / p90 / p99 / mean of repeated timings in milliseconds."""

    n: int
    median: float
    p90: float
    p99: float
    mean: float
    min: float

    @classmethod
    def of(cls, values_ms: Sequence[float]) -> "Summary":
        if not values_ms:
            raise ValueError("no timings to summarise")
        v = np.asarray(values_ms, dtype=np.float64)
        return cls(len(v), float(np.median(v)), float(np.percentile(v, 90)), float(np.percentile(v, 99)), float(v.mean()), float(v.min()))

    def to_dict(self) -> dict[str, float]:
        return {"n": self.n, "median_ms": self.median, "p90_ms": self.p90, "p99_ms": self.p99, "mean_ms": self.mean, "min_ms": self.min}


def peak_rss_bytes() -> int:
    """Peak resident set size of this process so far (``getrusage``; kB on Linux, bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if sys.platform == "darwin" else peak * 1024)

