"""Latency benchmark of the VertXNet pipeline and its model backends (the API behind ``vertx-bench``).

What one :func:`run_benchmark` call measures, all in the same process:

1. **Per-stage latency** of :meth:`vertxnet.Pipeline.predict` (decode, preprocess, U-Net,
   Mask R-CNN, outline tracing, ensemble, labelling, total) as median / p90 / p99 over ``runs``
   predictions after ``warmup`` ones, and each stage's share of the total. The films are the
   user's (``BenchConfig.inputs``: real films, as stored, so that decode and preprocessing are
   those of that format and size), or else phantoms (:mod:`vertxnet.data.phantom`) of the
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

Nothing here imports torch unless checkpoints are given. One module per concern: ``config``,
``statistics``, ``films``, ``stages`` (pipeline latency and throughput), ``variants`` (backends
side by side), ``torch_eager``, ``macs``, ``peak`` (matrix-product peak), ``report``.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from ...bundle import load_bundle
from ...io import load_image
from ...pipeline import Pipeline, PipelineConfig
from ...preprocess import prepare
from .config import BASELINE, MODELS, STAGES, BenchConfig
from .films import _write_pngs, phantom_films
from .macs import ModelMacs, count_macs, node_macs
from .peak import PeakFlops, measure_peak_flops
from .report import BenchReport, machine_info
from .statistics import Summary, peak_rss_bytes
from .stages import time_pipeline
from .torch_eager import checkpoint_names, torch_variant
from .variants import VariantResult, _default_threads, _threads_all, compare_variants, ort_variants


def run_benchmark(config: BenchConfig, *, progress: Callable[[str], None] | None = None) -> BenchReport:
    """Run every measurement of ``config`` (see the module docstring) and return the report.

    Raises BundleError for an unusable bundle, BackendUnavailable for a backend that cannot run
    here, ValueError for a precision the bundle lacks.
    """
    say = progress or (lambda message: None)
    bundle = load_bundle(config.bundle)
    notes: list[str] = []
    workdir = Path(tempfile.mkdtemp(prefix="vertx-bench-"))
    try:
        if config.inputs:
            # The user's films, each read once first: a file that cannot be read stops the run
            # here with its reason (InputError), before anything is timed.
            paths = list(config.inputs)
            films = [load_image(path, model_size=bundle.preprocess.input_size).model_input() for path in paths]
        else:
            say(f"generating {config.images} phantom film(s) of {config.size} px")
            films = phantom_films(config.size, config.images, config.seed)
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
    "checkpoint_names",
    "compare_variants",
    "count_macs",
    "measure_peak_flops",
    "node_macs",
    "ort_variants",
    "peak_rss_bytes",
    "phantom_films",
    "run_benchmark",
]

