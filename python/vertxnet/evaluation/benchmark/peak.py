"""The machine's float32 matrix-product throughput: the practical peak the networks' MACs are set against.

Run as a script (``python peak.py N REPEATS``) it prints the timed seconds as JSON: that is how
:func:`measure_peak_flops` measures under a BLAS thread limit, which must be set before numpy loads.
"""

from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import dataclass
from typing import Any

import numpy as np


def matmul_seconds(n: int, repeats: int) -> list[float]:
    """Seconds of ``repeats`` float32 n x n matrix products, after one untimed warm-up product."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n), dtype=np.float32)
    b = rng.standard_normal((n, n), dtype=np.float32)
    a @ b  # warm-up: BLAS thread pool start, page faults
    seconds = []
    for _ in range(repeats):
        t = time.perf_counter()
        a @ b
        seconds.append(time.perf_counter() - t)
    return seconds


@dataclass(frozen=True)
class PeakFlops:
    """Best float32 FLOP/s of a large numpy matrix product (the BLAS numpy links against)."""

    flops_per_s: float
    n: int
    repeats: int
    threads: int | None  # BLAS threads; None = the library's default (every core)
    seconds: list[float]

    def to_dict(self) -> dict[str, Any]:
        return {"gflops_per_s": self.flops_per_s / 1e9, "matrix_n": self.n, "repeats": self.repeats, "threads": self.threads,
                "seconds": list(self.seconds), "method": "numpy float32 n x n @ n x n, 2 n^3 FLOP, best of repeats"}



def measure_peak_flops(n: int = 2048, repeats: int = 5, *, threads: int | None = None) -> PeakFlops:
    """The machine's float32 matrix-product throughput: the practical peak for these networks.

    With ``threads`` the product runs in a child Python whose BLAS is limited to that many
    threads (the limit must be set before numpy loads), to compare with a model session using
    the same number of threads; without it, in this process on every core.
    """
    if n < 16 or repeats < 1 or (threads is not None and threads < 1):
        raise ValueError(f"matrix size must be >= 16, repeats >= 1 and threads >= 1, got {n}, {repeats}, {threads}")
    if threads is None:
        seconds = matmul_seconds(n, repeats)
    else:
        import subprocess

        env = {**os.environ, **{k: str(threads) for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "BLIS_NUM_THREADS")}}
        # This file run as a script imports numpy only, after the thread limit is in its environment.
        done = subprocess.run([sys.executable, __file__, str(n), str(repeats)], env=env, capture_output=True, text=True, timeout=600)
        if done.returncode != 0:
            raise RuntimeError(f"the matrix-product peak measurement failed: {done.stderr.strip()[-300:]}")
        seconds = json.loads(done.stdout)
    return PeakFlops(2.0 * n**3 / min(seconds), n, repeats, threads, seconds)



if __name__ == "__main__":
    print(json.dumps(matmul_seconds(int(sys.argv[1]), int(sys.argv[2]))))
