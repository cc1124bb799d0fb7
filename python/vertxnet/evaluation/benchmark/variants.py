"""Each model alone under other backends, session options and precisions, against the baseline session."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ...bundle import Bundle
from ...runtime import available_backends, open_model
from .config import BASELINE, MODELS
from .statistics import Summary


@dataclass
class Variant:
    """One way of running a model: ``open(model)`` returns a function tensor → outputs."""

    name: str
    description: str
    open: Callable[[str], Callable[[np.ndarray], Any]]


@dataclass
class VariantResult:
    name: str
    description: str
    times: dict[str, Summary] = field(default_factory=dict)
    unavailable: dict[str, str] = field(default_factory=dict)  # model → why it could not run
    max_abs_diff: dict[str, float] = field(default_factory=dict)  # vs the baseline's outputs

    def to_dict(self, baseline: "VariantResult | None") -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "description": self.description, "models": {}}
        for model in MODELS:
            if model in self.times:
                entry = self.times[model].to_dict()
                if baseline is not None and model in baseline.times:
                    entry["speedup_vs_baseline"] = baseline.times[model].median / self.times[model].median
                if model in self.max_abs_diff:
                    entry["max_abs_output_diff_vs_baseline"] = self.max_abs_diff[model]
                out["models"][model] = entry
            else:
                out["models"][model] = {"unavailable": self.unavailable.get(model, "not run")}
        return out


def _ort_options_session(bundle: Bundle, model: str, configure: Callable[[Any], None], variant: str | None = None):
    """An ONNX Runtime CPU session of ``model`` with session options set by ``configure``."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3
    configure(options)
    path = bundle.model_path(model, variant)
    session = ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])
    return lambda x: session.run(None, {"image": x})


def _threads_all() -> int:
    return max(1, os.cpu_count() or 1)


def _default_threads() -> int:
    from ...runtime.onnxrt import default_threads

    return default_threads()


def ort_variants(bundle: Bundle) -> list[Variant]:
    """The baseline, ONNX Runtime CPU session-option variants, bundle precision variants and
    other execution providers available here."""
    import onnxruntime as ort

    cores, half = _threads_all(), _default_threads()

    def via_runtime(backend: str, threads: int | None = None, variant: str | None = None):
        def opener(model: str):
            session = open_model(backend, bundle, model, threads=threads, variant=variant)
            return session.run

        return opener

    def options(intra: int, *, spin: bool = True, parallel: bool = False, level=None, arena: bool = True):
        def configure(o):
            o.intra_op_num_threads = intra
            o.inter_op_num_threads = 2 if parallel else 1
            o.execution_mode = ort.ExecutionMode.ORT_PARALLEL if parallel else ort.ExecutionMode.ORT_SEQUENTIAL
            if level is not None:
                o.graph_optimization_level = level
            o.enable_cpu_mem_arena = arena
            o.enable_mem_pattern = arena
            o.add_session_config_entry("session.intra_op.allow_spinning", "1" if spin else "0")

        return lambda model: _ort_options_session(bundle, model, configure)

    variants = [
        Variant(BASELINE, f"vertxnet.runtime ONNX Runtime CPU session as the pipeline opens it ({half} intra-op thread(s), graph optimisation ALL, sequential)", via_runtime("onnxruntime-cpu")),
        Variant(f"ort-cpu {cores} threads", f"vertxnet.runtime session with threads={cores} (every core to one model)", via_runtime("onnxruntime-cpu", threads=cores)),
        Variant(f"ort-cpu {half} thread(s), no spinning", "session.intra_op.allow_spinning=0 (worker threads sleep instead of spinning between ops)", options(half, spin=False)),
        Variant(f"ort-cpu {cores} threads, no spinning", f"threads={cores} and allow_spinning=0", options(cores, spin=False)),
        Variant("ort-cpu parallel execution", f"ORT_PARALLEL execution mode, 2 inter-op x {half} intra-op threads", options(half, parallel=True)),
        Variant("ort-cpu graph opt basic", "graph optimisation level BASIC instead of ALL (no layout transforms / fusions)", options(half, level=ort.GraphOptimizationLevel.ORT_ENABLE_BASIC)),
        Variant("ort-cpu no arena", "CPU memory arena and memory pattern off", options(half, arena=False)),
    ]
    for precision in ("int8", "fp16"):
        if any(precision in bundle.variants(m) for m in MODELS):
            variants.append(Variant(f"ort-cpu {precision}", f"the bundle's {precision} ONNX variant (models without one are not timed)", _variant_opener(bundle, precision)))
    for backend in available_backends(bundle):
        if backend != "onnxruntime-cpu":
            variants.append(Variant(backend, f"vertxnet.runtime backend {backend}", via_runtime(backend)))
    return variants


def _variant_opener(bundle: Bundle, precision: str):
    def opener(model: str):
        if precision not in bundle.variants(model):
            raise LookupError(f"the bundle has no {precision} variant of {model}")
        return open_model("onnxruntime-cpu", bundle, model, variant=precision).run

    return opener



def _outputs_diff(reference: Sequence[np.ndarray], outputs: Sequence[np.ndarray]) -> float | None:
    """Largest absolute difference between two output lists of equal shapes, else None."""
    if len(reference) != len(outputs):
        return None
    worst = 0.0
    for a, b in zip(reference, outputs):
        a, b = np.asarray(a), np.asarray(b)
        if a.shape != b.shape:
            return None
        if a.size:
            worst = max(worst, float(np.max(np.abs(a.astype(np.float64) - b.astype(np.float64)))))
    return worst


#: Rounds of the backend comparison (each variant runs one block of consecutive runs per round).
ROUNDS = 3


def compare_variants(variants: Sequence[Variant], tensors: Sequence[np.ndarray], warmup: int, runs: int) -> list[VariantResult]:
    """Time each model under each variant: ``warmup`` untimed runs, then ``runs`` timed runs
    split into :data:`ROUNDS` blocks, the variants taking turns block by block."""
    results = [VariantResult(v.name, v.description) for v in variants]
    for model in MODELS:
        runners: list[tuple[VariantResult, Callable]] = []
        for variant, result in zip(variants, results):
            try:
                runners.append((result, variant.open(model)))
            except Exception as exc:  # a variant that cannot open is reported, not fatal
                result.unavailable[model] = " ".join(str(exc).split())[:300] or type(exc).__name__
        reference = None
        for result, run in runners:
            try:
                outputs = run(tensors[0])
            except Exception as exc:
                result.unavailable[model] = " ".join(str(exc).split())[:300] or type(exc).__name__
                continue
            if reference is None:
                reference = outputs
            else:
                diff = _outputs_diff([np.asarray(o) for o in (reference.values() if isinstance(reference, dict) else reference)],
                                     [np.asarray(o) for o in (outputs.values() if isinstance(outputs, dict) else outputs)])
                if diff is not None:
                    result.max_abs_diff[model] = diff
        runners = [(r, run) for r, run in runners if model not in r.unavailable]
        timings: dict[str, list[float]] = {r.name: [] for r, _ in runners}
        # Blocks of consecutive runs per variant, in ROUNDS rounds with the order rotated: load
        # from other processes drifts over all variants alike, while a variant's spinning
        # thread pool (ORT, OpenMP) only disturbs the untimed warm-up of the block after it.
        blocks = min(ROUNDS, runs)
        sizes = [runs // blocks + (1 if b < runs % blocks else 0) for b in range(blocks)]
        for b, size in enumerate(sizes):
            order = runners[b % len(runners):] + runners[: b % len(runners)] if runners else []
            for result, run in order:
                for i in range(max(1, warmup) if b == 0 else 1):
                    run(tensors[i % len(tensors)])
                for i in range(size):
                    x = tensors[i % len(tensors)]
                    t = time.perf_counter()
                    run(x)
                    timings[result.name].append((time.perf_counter() - t) * 1e3)
        for result, _ in runners:
            result.times[model] = Summary.of(timings[result.name])
        del runners
    return results

