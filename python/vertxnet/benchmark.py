"""Latency benchmark of the VertXNet pipeline and its model backends (the API behind ``vertx-bench``).

What one :func:`run_benchmark` call measures, all in the same process:

1. **Per-stage latency** of :meth:`vertxnet.Pipeline.predict` (decode, preprocess, U-Net,
   Mask R-CNN, outline tracing, ensemble, labelling, total) as median / p90 / p99 over ``runs``
   predictions after ``warmup`` ones. The films are phantoms (:mod:`vertxnet.phantom`) of the
   requested size, generated in memory and written once to temporary 16-bit PNGs so that the
   decode stage reads a real file.
2. **Throughput** in images/s with the two networks run concurrently (as the pipeline does) and
   one after the other, the two modes interleaved image by image so that load from other
   processes hits both alike.
3. **Peak resident memory** of the process after the pipeline runs, and at the end.
4. **Backends side by side**: each model alone on the same preprocessed tensors, under ONNX
   Runtime CPU with the runtime module's default session (the baseline), with other session
   options (threads, spinning, execution mode, graph optimisation level, memory arena), the
   bundle's INT8 / FP16 variants, other execution providers present here, and PyTorch eager on
   the training checkpoints when they are given and torch is installed. Variants take turns in
   blocks of consecutive runs over three rounds and are reported as medians and as speed-ups
   over the baseline.
5. Optionally the **multiply-accumulate count** of each network (:func:`count_macs`) and the
   share of this machine's measured float32 matrix-product peak that the baseline reaches.

Nothing here imports torch unless checkpoints are given.
"""

from __future__ import annotations

import json
import math
import os
import resource
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from .bundle import Bundle, load_bundle
from .core import ensemble, zip_labels
from .errors import BundleError
from .io import load_image
from .pipeline import PRECISIONS, Pipeline, PipelineConfig
from .preprocess import prepare
from .runtime import BACKEND_NAMES, available_backends, open_model

#: Stages of ``Result.timings_ms``, in pipeline order.
STAGES = ("decode", "preprocess", "unet", "maskrcnn", "trace", "ensemble", "label", "total")
MODELS = ("unet", "maskrcnn")
BASELINE = "ort-cpu default"


@dataclass(frozen=True)
class BenchConfig:
    """One benchmark run.

    bundle        model bundle folder (None: the shipped demo bundle)
    backend       pipeline backend for the stage table ("auto" or a name in runtime.BACKENDS)
    precision     pipeline precision ("fp32", "fp16", "int8"; a variant the bundle must have)
    size          longer side of the phantom films in pixels (the model input size is the bundle's)
    images        distinct phantom films, cycled through the runs
    warmup, runs  untimed and timed predictions per measurement
    threads       intra-op threads per model session of the pipeline (None: the runtime default)
    seed          phantom seed (seeds from 900000 up are never used in training)
    compare       also time each model under the other backends and session options
    flops         also count multiply-accumulates and measure the machine's matrix-product peak
    torch_checkpoints  folder with the U-Net and Mask R-CNN training run folders (unet/, maskrcnn/
                  holding the checkpoint files the manifest names), for PyTorch eager in the
                  comparison; needs torch and the export/ scripts
    """

    bundle: Path | None = None
    backend: str = "auto"
    precision: str = "fp32"
    size: int = 1024
    images: int = 4
    warmup: int = 3
    runs: int = 20
    threads: int | None = None
    seed: int = 900500
    compare: bool = True
    flops: bool = True
    torch_checkpoints: Path | None = None

    def __post_init__(self) -> None:
        if self.backend != "auto" and self.backend not in BACKEND_NAMES:
            raise ValueError(f"backend must be 'auto' or one of {', '.join(BACKEND_NAMES)}, got {self.backend!r}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}")
        if isinstance(self.size, bool) or not isinstance(self.size, int) or not 64 <= self.size <= 8192:
            raise ValueError(f"size must be an integer from 64 to 8192 pixels, got {self.size!r}")
        for name, low in (("images", 1), ("warmup", 0), ("runs", 1), ("seed", 0)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
        if self.threads is not None and (isinstance(self.threads, bool) or not isinstance(self.threads, int) or self.threads < 1):
            raise ValueError(f"threads must be a positive integer, got {self.threads!r}")


# ---------------------------------------------------------------------------------------------
# Statistics


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


# ---------------------------------------------------------------------------------------------
# Phantom films


def phantom_films(size: int, count: int, seed: int) -> list[np.ndarray]:
    """``count`` normal-difficulty phantoms (cervical and lumbar alternating) of longer side ``size``."""
    from .phantom import PhantomConfig, generate

    films = []
    for i in range(count):
        view = "cervical" if i % 2 == 0 else "lumbar"
        image, _ = generate(PhantomConfig(view=view, size=size, seed=seed, difficulty="normal"), i)
        films.append(image)
    return films


def _write_pngs(films: Sequence[np.ndarray], folder: Path) -> list[Path]:
    paths = []
    for i, film in enumerate(films):
        path = folder / f"film_{i:03d}.png"
        if not cv2.imwrite(str(path), film):
            raise OSError(f"{path}: OpenCV could not write the PNG")
        paths.append(path)
    return paths


# ---------------------------------------------------------------------------------------------
# Pipeline: per-stage latency and throughput


def _process(pipe: Pipeline, path: Path, concurrent: bool) -> int:
    """Decode → preprocess → both networks (concurrently, or one after the other) → ensemble →
    labels. Returns the number of named vertebrae."""
    raw = pipe.outlines(load_image(path), concurrent=concurrent)
    cfg = pipe.config
    masks = ensemble(raw.unet, raw.mrcnn, raw.mrcnn_classes, raw.mrcnn_scores, eta=cfg.eta, lam=cfg.lam, tau=cfg.tau, ref_score=cfg.ref_score, min_area=cfg.min_area)
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

    def to_dict(self) -> dict[str, Any]:
        return {
            "backend": self.backend,
            "precision": dict(self.precision),
            "threads_per_session": self.threads,
            "stages": {name: s.to_dict() for name, s in self.stages.items()},
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


# ---------------------------------------------------------------------------------------------
# Backends side by side (each model alone)


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
    from .runtime.onnxrt import default_threads

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


def checkpoint_names(bundle: Bundle) -> dict[str, str]:
    """File name of each model's training checkpoint the bundle was exported from
    (manifest ``training.<model>.checkpoint``; ``best.pt`` when the manifest does not say)."""
    training = bundle.manifest.get("training") if isinstance(bundle.manifest.get("training"), dict) else {}
    names = {}
    for model in MODELS:
        entry = training.get(model) if isinstance(training.get(model), dict) else {}
        name = entry.get("checkpoint")
        names[model] = name if isinstance(name, str) and name and Path(name).name == name else "best.pt"
    return names


def _find_checkpoints(folder: Path, names: dict[str, str]) -> dict[str, Path]:
    """Checkpoint of each model in ``folder``: ``<model>/<name>``, else any ``*/<name>`` or
    ``<name>`` whose checkpoint ``kind`` says which model it holds."""
    import torch

    found: dict[str, Path] = {}
    for model in MODELS:
        candidate = folder / model / names[model]
        if candidate.is_file():
            found[model] = candidate
    for model in MODELS:
        if model in found:
            continue
        for candidate in sorted([*folder.glob(names[model]), *folder.glob(f"*/{names[model]}")]):
            if torch.load(candidate, map_location="cpu", weights_only=False).get("kind") == model:
                found[model] = candidate
                break
    return found


def torch_variant(folder: Path, bundle: Bundle, threads: int) -> tuple[Variant | None, str]:
    """PyTorch eager on the training checkpoints in ``folder``, or (None, why not).

    The checkpoint file names come from the bundle's manifest; the comparison reports how far
    the PyTorch outputs are from ONNX Runtime's, which shows whether they are the same weights.
    """
    try:
        import torch
    except ImportError:
        return None, "torch is not installed (pip install 'vertxnet[train]')"
    export_dir = Path(__file__).resolve().parents[2] / "export"
    if not (export_dir / "train_unet.py").is_file():
        return None, f"the model definitions in export/ are not present (expected {export_dir}; run from a source checkout)"
    if not folder.is_dir():
        return None, f"{folder}: no such checkpoint folder"
    names = checkpoint_names(bundle)
    found = _find_checkpoints(folder, names)
    missing = [f"{m} ({names[m]})" for m in MODELS if m not in found]
    if missing:
        return None, f"{folder}: no checkpoint for {', '.join(missing)}"
    if str(export_dir) not in sys.path:
        sys.path.insert(0, str(export_dir))
    from export_bundle import MaskRCNNForExport  # noqa: PLC0415 - optional, needs torch
    from train_maskrcnn import load_maskrcnn
    from train_unet import load_unet

    torch.set_num_threads(threads)
    input_size = bundle.preprocess.input_size

    def opener(model: str):
        if model == "unet":
            net = load_unet(found["unet"])[0].eval()
        else:
            net = MaskRCNNForExport(load_maskrcnn(found["maskrcnn"])[0], input_size).eval()

        def run(x: np.ndarray):
            with torch.inference_mode():
                out = net(torch.from_numpy(x))
            return [t.numpy() for t in out] if isinstance(out, (tuple, list)) else [out.numpy()]

        return run

    description = f"PyTorch {torch.__version__} eager, CPU, {threads} thread(s), checkpoints {found['unet']} and {found['maskrcnn']}"
    return Variant("torch eager", description, opener), ""


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


# ---------------------------------------------------------------------------------------------
# Multiply-accumulates and the machine's peak


#: Operators whose multiply-accumulates are counted; everything else (RoiAlign, resize, NMS,
#: element-wise ops) is cheap in comparison and left out.
MAC_OPS = ("Conv", "ConvTranspose", "Gemm", "MatMul")


@dataclass
class ModelMacs:
    """Multiply-accumulates of one model run on one input, from run-time tensor shapes."""

    model: str
    macs: int
    by_op: dict[str, int]
    nodes: int  # MAC nodes counted
    uncounted: list[str]  # MAC nodes whose shapes the profiler did not report
    detections: int | None = None  # Mask R-CNN: K of this run

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model, "macs": self.macs, "gmacs": self.macs / 1e9, "by_op": dict(self.by_op),
                "nodes_counted": self.nodes, "nodes_uncounted": list(self.uncounted), "detections": self.detections}


def _shapes(entries: Any) -> list[list[int]]:
    shapes = []
    for entry in entries or []:
        (dims,) = entry.values()
        shapes.append([int(d) for d in dims])
    return shapes


def node_macs(op: str, inputs: Sequence[Sequence[int]], outputs: Sequence[Sequence[int]]) -> int | None:
    """Multiply-accumulates of one node from its run-time input and output shapes, or None.

    Conv: every output element costs (C_in / group) x kh x kw = prod(W.shape[1:]).
    ConvTranspose: every input element is spread over (C_out / group) x kh x kw outputs.
    Gemm: M x K x N = prod(A) x N (independent of transA). MatMul: prod(Y) x K.
    """
    if not outputs:
        return None
    y = outputs[0]
    if op == "Conv" and len(inputs) >= 2 and len(inputs[1]) >= 3:
        return math.prod(y) * math.prod(inputs[1][1:])
    if op == "ConvTranspose" and len(inputs) >= 2 and len(inputs[1]) >= 3:
        return math.prod(inputs[0]) * math.prod(inputs[1][1:])
    if op == "Gemm" and inputs and len(inputs[0]) == 2 and len(y) == 2:
        return math.prod(inputs[0]) * y[1]
    if op == "MatMul" and inputs and inputs[0]:
        return math.prod(y) * inputs[0][-1]
    return None


def count_macs(model_path: str | Path, tensor: np.ndarray, *, model: str = "") -> ModelMacs:
    """Multiply-accumulates of Conv / ConvTranspose / Gemm / MatMul nodes for one run on ``tensor``.

    The model runs once in ONNX Runtime with graph optimisations off (so the nodes are those of
    the file, not fused or channel-blocked ones) and its profiler on; each node's MACs follow
    from the tensor shapes it actually saw, so the data-dependent parts of Mask R-CNN (RoI heads
    on the proposals and detections of this image, nodes inside If branches) count what ran.
    """
    import onnxruntime as ort

    workdir = Path(tempfile.mkdtemp(prefix="vertx-macs-"))
    try:
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        options.enable_profiling = True
        # Prepacked weights vanish from the profiler's input shapes; the counts need them.
        options.add_session_config_entry("session.disable_prepacking", "1")
        options.profile_file_prefix = str(workdir / "profile")
        options.log_severity_level = 3
        try:
            session = ort.InferenceSession(str(model_path), sess_options=options, providers=["CPUExecutionProvider"])
        except Exception as exc:
            raise BundleError(model_path, f"ONNX Runtime cannot load the model ({' '.join(str(exc).split())[:200]})") from None
        outputs = session.run(None, {session.get_inputs()[0].name: tensor})
        profile = Path(session.end_profiling())
        events = json.loads(profile.read_text())
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    by_op = {op: 0 for op in MAC_OPS}
    nodes, uncounted = 0, []
    for event in events:
        args = event.get("args") or {}
        op = args.get("op_name")
        if event.get("cat") != "Node" or op not in MAC_OPS or not str(event.get("name", "")).endswith("_kernel_time"):
            continue
        macs = node_macs(op, _shapes(args.get("input_type_shape")), _shapes(args.get("output_type_shape")))
        if macs is None:
            uncounted.append(str(event["name"]).removesuffix("_kernel_time"))
            continue
        by_op[op] += macs
        nodes += 1
    names = [o.name for o in session.get_outputs()]
    detections = int(np.asarray(outputs[names.index("boxes")]).shape[0]) if "boxes" in names else None
    return ModelMacs(model or Path(model_path).stem, sum(by_op.values()), by_op, nodes, uncounted, detections)


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


_PEAK_SCRIPT = """
import json, sys, time
import numpy as np
n, repeats = int(sys.argv[1]), int(sys.argv[2])
rng = np.random.default_rng(0)
a = rng.standard_normal((n, n), dtype=np.float32)
b = rng.standard_normal((n, n), dtype=np.float32)
a @ b
seconds = []
for _ in range(repeats):
    t = time.perf_counter()
    a @ b
    seconds.append(time.perf_counter() - t)
print(json.dumps(seconds))
"""


def measure_peak_flops(n: int = 2048, repeats: int = 5, *, threads: int | None = None) -> PeakFlops:
    """The machine's float32 matrix-product throughput: the practical peak for these networks.

    With ``threads`` the product runs in a child Python whose BLAS is limited to that many
    threads (the limit must be set before numpy loads), to compare with a model session using
    the same number of threads; without it, in this process on every core.
    """
    if n < 16 or repeats < 1 or (threads is not None and threads < 1):
        raise ValueError(f"matrix size must be >= 16, repeats >= 1 and threads >= 1, got {n}, {repeats}, {threads}")
    if threads is None:
        seconds = json.loads(_run_peak_inline(n, repeats))
    else:
        import subprocess

        env = {**os.environ, **{k: str(threads) for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "BLIS_NUM_THREADS")}}
        done = subprocess.run([sys.executable, "-c", _PEAK_SCRIPT, str(n), str(repeats)], env=env, capture_output=True, text=True, timeout=600)
        if done.returncode != 0:
            raise RuntimeError(f"the matrix-product peak measurement failed: {done.stderr.strip()[-300:]}")
        seconds = json.loads(done.stdout)
    return PeakFlops(2.0 * n**3 / min(seconds), n, repeats, threads, seconds)


def _run_peak_inline(n: int, repeats: int) -> str:
    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n), dtype=np.float32)
    b = rng.standard_normal((n, n), dtype=np.float32)
    a @ b  # warm-up: BLAS thread pool start, page faults
    seconds = []
    for _ in range(repeats):
        t = time.perf_counter()
        a @ b
        seconds.append(time.perf_counter() - t)
    return json.dumps(seconds)


# ---------------------------------------------------------------------------------------------
# The whole run


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
                       "torch_checkpoints": str(cfg.torch_checkpoints) if cfg.torch_checkpoints else None},
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
        lines = [
            f"=== vertx-bench: bundle {self.bundle['name']} {self.bundle['version']}, backend {p.backend} "
            f"({', '.join(f'{k} {v}' for k, v in p.precision.items())}), films {cfg.size} px, model input "
            f"{self.bundle['input_size']} px, {cfg.runs} runs after {cfg.warmup} warm-up ===",
            f"machine: {self.machine['cpu']}, {self.machine['cores']} cores, onnxruntime {self.machine['onnxruntime']}",
            f"{'stage':<11}{'median':>9}{'p90':>9}{'p99':>9}  ms",
        ]
        for name, s in p.stages.items():
            lines.append(f"{name:<11}{s.median:>9.2f}{s.p90:>9.2f}{s.p99:>9.2f}")
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


def run_benchmark(config: BenchConfig, *, progress: Callable[[str], None] | None = None) -> BenchReport:
    """Run every measurement of ``config`` (see the module docstring) and return the report.

    Raises BundleError for an unusable bundle, BackendUnavailable for a backend that cannot run
    here, ValueError for a precision the bundle lacks.
    """
    say = progress or (lambda message: None)
    bundle = load_bundle(config.bundle)
    notes: list[str] = []
    say(f"generating {config.images} phantom film(s) of {config.size} px")
    films = phantom_films(config.size, config.images, config.seed)
    workdir = Path(tempfile.mkdtemp(prefix="vertx-bench-"))
    try:
        paths = _write_pngs(films, workdir)
        pipe_config = PipelineConfig(require_vertebrae=False)
        say("timing the pipeline")
        with Pipeline(bundle, backend=config.backend, threads=config.threads, config=pipe_config, precision=config.precision) as pipe:
            figures = time_pipeline(pipe, paths, config.warmup, config.runs, config.threads)
        rss_pipeline = peak_rss_bytes()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    tensors = [prepare(film, bundle.preprocess)[0] for film in films]

    variants: list[VariantResult] = []
    if config.compare:
        candidates = ort_variants(bundle)
        if config.torch_checkpoints is not None:
            variant, why = torch_variant(Path(config.torch_checkpoints), bundle, _default_threads())
            if variant is not None:
                candidates.append(variant)
            else:
                notes.append(f"PyTorch eager not run: {why}")
        else:
            notes.append("PyTorch eager not run: the bundle holds ONNX files only; pass --torch-checkpoints DIR "
                         "(the folder of the unet/ and maskrcnn/ training runs) to time the same weights in PyTorch")
        say(f"timing {len(candidates)} backend variant(s) per model")
        variants = compare_variants(candidates, tensors, config.warmup, config.runs)

    macs = peaks = None
    if config.flops:
        say("counting multiply-accumulates and measuring the matrix-product peak")
        macs = {model: count_macs(bundle.model_path(model), tensors[0], model=model) for model in MODELS}
        peaks = {"all": measure_peak_flops()}
        if _default_threads() != _threads_all():
            peaks["baseline_threads"] = measure_peak_flops(threads=_default_threads())
        else:
            peaks["baseline_threads"] = peaks["all"]
    report = BenchReport(
        config=config,
        bundle={"name": bundle.name, "version": bundle.version, "path": str(bundle.path), "input_size": bundle.preprocess.input_size,
                "manifest_sha256": bundle.manifest_sha256, "variants": {m: bundle.variants(m) for m in MODELS}},
        machine=machine_info(),
        pipeline=figures,
        peak_rss_after_pipeline=rss_pipeline,
        variants=variants,
        notes=notes,
        macs=macs,
        peaks=peaks,
    )
    report.peak_rss_end = peak_rss_bytes()
    return report


__all__ = [
    "BASELINE",
    "BenchConfig",
    "BenchReport",
    "ModelMacs",
    "PeakFlops",
    "STAGES",
    "Summary",
    "compare_variants",
    "count_macs",
    "measure_peak_flops",
    "node_macs",
    "ort_variants",
    "peak_rss_bytes",
    "phantom_films",
    "run_benchmark",
]
