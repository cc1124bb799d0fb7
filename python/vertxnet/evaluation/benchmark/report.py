"""The report of a benchmark run: JSON, a short table, and the compute share of each model."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .config import BASELINE, MODELS, BenchConfig
from .macs import ModelMacs
from .peak import PeakFlops
from .stages import PipelineFigures
from .variants import VariantResult


@dataclass
class BenchReport:
    config: BenchConfig
    bundle: dict[str, Any]
    machine: dict[str, Any]
    pipeline: PipelineFigures
    peak_rss_after_pipeline: int
    variants: list[VariantResult]
    notes: list[str]
    macs: dict[str, ModelMacs] | None
    peaks: dict[str, PeakFlops] | None  # "all": every core; "baseline_threads": the baseline session's threads
    peak_rss_end: int = 0

    @property
    def baseline(self) -> VariantResult | None:
        return next((v for v in self.variants if v.name == BASELINE), None)

    def compute_share(self) -> dict[str, dict[str, Any]]:
        """Achieved FLOP/s of each model (2 x MACs / median latency) against the measured peaks.

        The baseline is compared with the peak at its own thread count and with the all-core
        peak; the fastest float32 ONNX Runtime CPU variant with the all-core peak (the machine's bound).
        """
        if not self.macs or not self.peaks:
            return {}
        all_cores = self.peaks.get("all")
        same = self.peaks.get("baseline_threads")
        shares: dict[str, dict[str, Any]] = {}
        for model, m in self.macs.items():
            # float32 ONNX Runtime sessions only: other precisions do other arithmetic than the peak's.
            timed = [(v.name, v.times[model].median) for v in self.variants
                     if model in v.times and v.name.startswith("ort-cpu") and not v.name.endswith(("int8", "fp16"))]
            entry: dict[str, Any] = {}
            base = next((ms for name, ms in timed if name == BASELINE), None)
            if base:
                achieved = 2.0 * m.macs / (base / 1e3)
                entry["baseline_gflops_per_s"] = achieved / 1e9
                if same:
                    entry["baseline_share_of_peak_same_threads"] = achieved / same.flops_per_s
                    entry["floor_ms_same_threads"] = 2.0 * m.macs / same.flops_per_s * 1e3
                if all_cores:
                    entry["baseline_share_of_peak_all_cores"] = achieved / all_cores.flops_per_s
            if timed and all_cores:
                best_name, best_ms = min(timed, key=lambda t: t[1])
                achieved = 2.0 * m.macs / (best_ms / 1e3)
                entry.update(fastest_variant=best_name, fastest_gflops_per_s=achieved / 1e9,
                             fastest_share_of_peak_all_cores=achieved / all_cores.flops_per_s,
                             floor_ms_all_cores=2.0 * m.macs / all_cores.flops_per_s * 1e3)
            shares[model] = entry
        return shares

    def to_dict(self) -> dict[str, Any]:
        baseline = self.baseline
        cfg = self.config
        return {
            "tool": "vertx-bench",
            "config": {"bundle": str(cfg.bundle) if cfg.bundle else None, "backend": cfg.backend, "precision": cfg.precision,
                       "size": cfg.size, "images": cfg.images, "warmup": cfg.warmup, "runs": cfg.runs,
                       "threads": cfg.threads, "seed": cfg.seed, "compare": cfg.compare, "flops": cfg.flops,
                       "torch_checkpoints": str(cfg.torch_checkpoints) if cfg.torch_checkpoints else None,
                       "inputs": [str(path) for path in cfg.inputs]},
            "bundle": self.bundle,
            "machine": self.machine,
            "pipeline": self.pipeline.to_dict(),
            "peak_rss_bytes": {"after_pipeline": self.peak_rss_after_pipeline, "end": self.peak_rss_end},
            "baseline": BASELINE,
            "variants": [v.to_dict(baseline) for v in self.variants],
            "notes": list(self.notes),
            "macs": {k: m.to_dict() for k, m in self.macs.items()} if self.macs else None,
            "peaks": {k: p.to_dict() for k, p in self.peaks.items()} if self.peaks else None,
            "compute_share": self.compute_share(),
        }

    def table(self) -> str:
        """A short text summary in the manner of trtexec."""
        p, cfg = self.pipeline, self.config
        if cfg.inputs:
            films = f"{len(cfg.inputs)} given film(s) ({', '.join(path.name for path in cfg.inputs[:3])}{', ...' if len(cfg.inputs) > 3 else ''})"
        else:
            films = f"phantom films {cfg.size} px"
        lines = [
            f"=== vertx-bench: bundle {self.bundle['name']} {self.bundle['version']}, backend {p.backend} "
            f"({', '.join(f'{k} {v}' for k, v in p.precision.items())}), {films}, model input "
            f"{self.bundle['input_size']} px, {cfg.runs} runs after {cfg.warmup} warm-up ===",
            f"machine: {self.machine['cpu']}, {self.machine['cores']} cores, onnxruntime {self.machine['onnxruntime']}",
            f"{'stage':<11}{'median':>9}{'p90':>9}{'p99':>9}  ms  {'share':>6}",
        ]
        shares = p.shares()
        for name, s in p.stages.items():
            share = f"{100 * shares[name]:5.1f} %" if name in shares else ""
            lines.append(f"{name:<11}{s.median:>9.2f}{s.p90:>9.2f}{s.p99:>9.2f}      {share}")
        lines.append(
            f"throughput: {p.throughput(p.concurrent):.2f} images/s with the networks concurrent, "
            f"{p.throughput(p.sequential):.2f} sequential (x{p.sequential.mean / p.concurrent.mean:.2f})"
        )
        lines.append(f"peak RSS: {self.peak_rss_after_pipeline / 2**20:.0f} MiB after the pipeline runs, {self.peak_rss_end / 2**20:.0f} MiB at the end")
        if self.variants:
            baseline = self.baseline
            lines.append(f"models alone, median ms (speed-up vs {BASELINE}):")
            lines.append(f"  {'variant':<36}{'unet':>18}{'maskrcnn':>18}")
            for v in self.variants:
                cells = []
                for model in MODELS:
                    if model in v.times:
                        ms = v.times[model].median
                        ratio = baseline.times[model].median / ms if baseline and model in baseline.times else float("nan")
                        cells.append(f"{ms:8.2f} (x{ratio:4.2f})")
                    else:
                        cells.append("n/a")
                lines.append(f"  {v.name:<36}{cells[0]:>18}{cells[1]:>18}")
            differing = [f"{v.name} {model} {diff:.2g}" for v in self.variants for model, diff in v.max_abs_diff.items() if diff > 1e-4]
            if differing:
                lines.append(f"  outputs differing from the baseline (max |diff| over the first film's outputs): {'; '.join(differing)}")
        if self.macs:
            share = self.compute_share()
            peaks = ", ".join(f"{p.flops_per_s / 1e9:.1f} GFLOP/s on {p.threads or self.machine['cores']} thread(s)" for p in (self.peaks or {}).values())
            lines.append(f"compute: float32 matrix-product peak {peaks or 'not measured'}")
            for model, m in self.macs.items():
                extra = f", {m.detections} detections" if m.detections is not None else ""
                s = share.get(model, {})
                part = ""
                if "baseline_share_of_peak_same_threads" in s:
                    part += (f"; baseline {s['baseline_gflops_per_s']:.1f} GFLOP/s = {100 * s['baseline_share_of_peak_same_threads']:.0f} % of "
                             f"the same-thread peak (floor {s['floor_ms_same_threads']:.1f} ms)")
                if "fastest_share_of_peak_all_cores" in s:
                    part += (f"; fastest ({s['fastest_variant']}) {100 * s['fastest_share_of_peak_all_cores']:.0f} % of the "
                             f"all-core peak (floor {s['floor_ms_all_cores']:.1f} ms)")
                lines.append(f"  {model}: {m.macs / 1e9:.3f} GMAC{extra}{part}")
        for note in self.notes:
            lines.append(f"note: {note}")
        return "\n".join(lines)


def machine_info() -> dict[str, Any]:
    import platform

    import onnxruntime

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    return {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(), "numpy": np.__version__,
            "onnxruntime": onnxruntime.__version__, "load_average": list(load) if load else None,
            "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}

