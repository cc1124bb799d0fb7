"""One batch job: list the films, skip what is done, stream the rest through Ray Data, publish.

The data's path::

    films (folder, glob, manifest) ──plan──▶ Ray Data: read+decode tasks ──▶ FilmInference actors
                                   (journal: skip up-to-date films)        (one Pipeline each; stage outputs)
                                                                                      │
    OUTDIR/<stem>.* , journal record  ◀── driver publishes each film once ◀───────────┘
    OUTDIR/vertebrae.parquet, failures.csv  (at the end)

Only the driver (this process) publishes: it renames a film's staged files into place and
appends its journal record, and it does so at most once per film, whatever Ray Data retried.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import pickle
import shutil
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from .. import __version__
from ..cli.infer import FORMATS, InferConfig, UsageError
from .inputs import list_films
from .journal import Journal, file_key, settings_fingerprint
from .tables import FAILURES_NAME, VERTEBRAE_NAME, Failure, vertebra_rows, write_failures, write_vertebrae
from .work import FilmInference, WorkerSettings, film_row, read_film

#: Logical CPUs each read+decode task asks for: decoding is a few per cent of a film's time.
DECODE_CPUS = 0.25
#: Upper bound on Ray Data blocks (one film per block below it: fine-grained balance and retries).
MAX_BLOCKS = 5000
SCALE_EXTRA_HINT = "pip install 'vertxnet[scale]'"
#: Tries at starting a local Ray: on a loaded machine its node can miss Ray's 30 s start window.
LOCAL_START_ATTEMPTS = 3


@dataclass(frozen=True)
class BatchConfig:
    """One batch job: the vertx-infer settings of every film, and where and how wide to run.

    address          Ray cluster to join ("auto", "ray://head:10001", "head:6379"); None starts
                     a local Ray on this machine (or uses the one this process already runs).
    workers          inference actors (default: the cluster's CPUs less an eighth, at least one
                     CPU, left to read and decode; with GPUs, the GPUs / gpus_per_worker).
    gpus_per_worker  GPUs each actor reserves (fractions share a GPU); 0 runs on CPUs.
    path_column      the column of manifests that holds the film paths.
    progress_interval_s  seconds between progress lines on stderr.

    Each actor runs ``infer.threads`` ONNX Runtime threads (default 1) and its two models one
    after the other, so one worker is one core's work.
    """

    infer: InferConfig
    address: str | None = None
    workers: int | None = None
    gpus_per_worker: float = 0.0
    path_column: str = "path"
    progress_interval_s: float = 5.0


@dataclass
class BatchSummary:
    total: int = 0
    written: int = 0
    skipped: int = 0  # up to date: left as they were
    failures: list[Failure] = field(default_factory=list)
    workers: int = 0
    elapsed_s: float = 0.0
    discarded_attempts: int = 0  # staged outputs of worker attempts that were never published
    outdir: Path | None = None

    @property
    def failed(self) -> int:
        return len(self.failures)

    @property
    def done(self) -> int:
        return self.written + self.skipped + self.failed

    def line(self) -> str:
        noun = "film" if self.total == 1 else "films"
        text = f"{self.total} {noun}: {self.written} written, {self.skipped} up to date"
        if self.failed:
            where = self.outdir / FAILURES_NAME if self.outdir else FAILURES_NAME
            text += f", {self.failed} failed (listed in {where})"
        if self.workers:
            worked = self.written + self.failed
            text += f"; {worked / max(self.elapsed_s, 1e-9):.2f} films/s over {self.elapsed_s:.1f} s on {self.workers} workers"
        return text


@dataclass(frozen=True)
class FilmOutcome:
    """What happened to one film, as the driver learns it (for :func:`run_batch`'s ``on_film``)."""

    stem: str
    path: str
    status: str  # "written" | "unchanged" | "failed" | "discarded" (a repeat of a film already published)
    worker: int  # process id of the inference actor (0 if none ran)
    reason: str = ""


class Progress:
    """Lines like ``12/40 films (10 written, 1 up to date, 1 failed), 2.41 films/s, about 12 s left``."""

    def __init__(self, stream: TextIO, interval_s: float, enabled: bool):
        self.stream, self.interval_s, self.enabled = stream, interval_s, enabled
        self.t0 = self.last = time.monotonic()
        self.done_at_start = 0

    def start(self, summary: BatchSummary) -> None:
        self.t0 = self.last = time.monotonic()
        self.done_at_start = summary.done

    def update(self, summary: BatchSummary, *, force: bool = False) -> None:
        now = time.monotonic()
        if not self.enabled or (not force and now - self.last < self.interval_s):
            return
        self.last = now
        worked = summary.done - self.done_at_start
        rate = worked / max(now - self.t0, 1e-9)
        left = summary.total - summary.done
        eta = f", about {left / rate:.0f} s left" if rate > 0 and left else ""
        print(
            f"vertx-infer: {summary.done}/{summary.total} films ({summary.written} written, {summary.skipped} up to date, "
            f"{summary.failed} failed), {rate:.2f} films/s{eta}",
            file=self.stream, flush=True,
        )  # fmt: skip


def run_batch(config: BatchConfig, *, stderr: TextIO | None = None, on_film: Callable[[FilmOutcome], None] | None = None) -> BatchSummary:
    """Run ``config`` on Ray Data; outputs land in ``config.infer.outdir`` as vertx-infer writes them.

    Raises UsageError for unusable arguments (exit 2) and BundleError for a bundle that fails its
    check (exit 1). A film that fails is listed in the summary and in ``failures.csv``; the job
    goes on. ``on_film`` is called in this process after each film is published or has failed.
    """
    from ..bundle import load_bundle
    from ..result import SCHEMA_VERSION

    stderr = stderr or sys.stderr
    infer = config.infer
    measure = _check(config)
    try:
        import pyarrow  # noqa: F401
        import ray  # noqa: F401
        import ray.data  # noqa: F401
    except ImportError as exc:
        raise UsageError(f"--engine ray needs Ray Data and pyarrow ({exc.name} is missing): {SCALE_EXTRA_HINT}") from None
    try:
        infer.outdir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"{infer.outdir}: cannot create the output folder ({exc.strerror or exc})") from None
    outdir = infer.outdir.resolve()

    started = time.monotonic()
    films, problems = list_films(infer.inputs, recursive=infer.recursive, path_column=config.path_column)
    summary = BatchSummary(total=len(films) + len(problems), outdir=infer.outdir)
    progress = Progress(stderr, config.progress_interval_s, infer.progress)
    for problem in problems:
        _fail(summary, Failure(problem.source, "input", problem.reason), stderr)

    bundle = load_bundle(infer.bundle)  # BundleError: exit 1
    _check_bundle(config, bundle)
    fingerprint = settings_fingerprint({
        "vertxnet": __version__, "schema": SCHEMA_VERSION, "model": bundle.manifest_sha256,
        "precision": infer.precision, "thresholds": infer.thresholds, "formats": sorted(infer.formats),
        "mask_bits": infer.mask_bits, "timings": infer.timings, "labelling": infer.labelling, "view": infer.view,
        "measure": None if measure is None else dataclasses.asdict(measure),
    })  # fmt: skip
    settings = WorkerSettings(
        outdir=str(outdir), bundle=None if infer.bundle is None else str(Path(infer.bundle).resolve()),
        backend=infer.backend, precision=infer.precision, threads=infer.threads or 1,
        thresholds=dict(infer.thresholds), formats=tuple(infer.formats), mask_bits=infer.mask_bits, timings=infer.timings,
        labelling=infer.labelling, view=infer.view, measure=measure,
    )  # fmt: skip

    with Journal(outdir) as journal:
        summary.discarded_attempts += journal.clear_staging()
        pending, keys, done = [], {}, set()
        for film in films:
            file = os.path.abspath(film.path)
            try:
                keys[film.stem] = file_key(file)
            except OSError as exc:
                reason = "file not found" if isinstance(exc, FileNotFoundError) else f"cannot access file: {exc.strerror or exc}"
                _fail(summary, Failure(film.path, "read", reason), stderr)
                continue
            plan = journal.plan(film.stem, film.path, keys[film.stem], fingerprint)
            if plan.skip:
                summary.skipped += 1
                done.add(film.stem)
            else:
                pending.append(film_row(film.path, file, film.stem, plan.known_sha256))

        if pending:
            with _ray_session(config, len(pending)) as workers:
                summary.workers = workers
                progress.start(summary)
                published: set[str] = set()
                for row in _stream(pending, settings, config, workers):
                    outcome = _publish(row, journal, keys, fingerprint, published, summary, stderr)
                    if outcome.status in ("written", "unchanged"):
                        done.add(outcome.stem)
                    progress.update(summary)
                    if on_film is not None:
                        on_film(outcome)
        summary.discarded_attempts += journal.clear_staging()
        records = [journal.latest[f.stem] for f in films if f.stem in done]
        write_vertebrae(outdir / VERTEBRAE_NAME, vertebra_rows(records))
        write_failures(outdir / FAILURES_NAME, summary.failures)
    summary.elapsed_s = time.monotonic() - started
    progress.update(summary, force=summary.workers > 0)
    return summary


def _check(config: BatchConfig) -> Any:
    """UsageError for the first unusable setting (the CLI's parser catches most of them first);
    the job's MeasureConfig, or None when it does not measure."""
    from ..pipeline import PipelineConfig

    infer = config.infer
    unknown = [f for f in infer.formats if f not in FORMATS]
    if unknown or not infer.formats:
        raise UsageError(f"unknown output format(s) {', '.join(unknown) or '(none given)'}; choose from {', '.join(FORMATS)}")
    if infer.mask_bits not in (8, 16):
        raise UsageError(f"--mask-bits must be 8 or 16, got {infer.mask_bits}")
    if infer.bundle is not None and not Path(infer.bundle).is_dir():
        raise UsageError(f"{infer.bundle}: model bundle folder not found")
    if config.workers is not None and config.workers < 1:
        raise UsageError(f"--workers must be at least 1, got {config.workers}")
    if not (config.gpus_per_worker >= 0 and config.gpus_per_worker == config.gpus_per_worker):
        raise UsageError(f"--gpus-per-worker must be 0 or more, got {config.gpus_per_worker}")
    if infer.threads is not None and infer.threads < 1:
        raise UsageError(f"--threads must be at least 1, got {infer.threads}")
    try:
        PipelineConfig(**infer.thresholds, labelling=infer.labelling, view=infer.view).validate()
    except (TypeError, ValueError) as exc:
        raise UsageError(str(exc)) from None
    if not infer.measuring:
        return None
    from ..measure import MeasureConfig

    try:
        measure = MeasureConfig(faces=infer.faces, radiomics_backend=infer.radiomics_backend)
        measure.validate()
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    return measure


def _check_bundle(config: BatchConfig, bundle: Any) -> None:
    """The backend and precision asked for exist here, by the same rules as the plain CLI
    (vertxnet.runtime.registry.select_backend); on a cluster, or with GPUs per worker, the
    workers decide the backend, and only the precision against the bundle's variants is checked."""
    from ..runtime import BackendUnavailable
    from ..runtime.registry import model_precisions, select_backend

    infer = config.infer
    if config.address is None and config.gpus_per_worker == 0:
        try:
            select_backend(infer.backend, bundle, infer.precision)
        except (BackendUnavailable, ValueError) as exc:
            raise UsageError(str(exc)) from None
        return
    try:
        wanted = model_precisions(infer.precision)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    for model, precision in wanted.items():
        if precision != "fp32" and infer.backend != "tensorrt" and precision not in bundle.variants(model):
            raise UsageError(f"bundle {bundle.path} has no {precision} variant of the {model}")


@contextmanager
def _ray_session(config: BatchConfig, films: int) -> Iterator[int]:
    """Ray for this job (joined, started locally, or the one already running); yields the
    number of inference workers."""
    import ray

    threads = config.infer.threads or 1
    started = False
    if not ray.is_initialized():
        options: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False, "logging_level": logging.WARNING}
        for attempt in range(1 if config.address else LOCAL_START_ATTEMPTS):
            try:
                if config.address:
                    ray.init(address=config.address, **options)
                else:
                    # One logical CPU beyond the cores is for the light read+decode tasks, so that
                    # every core can run an inference worker.
                    cores = os.cpu_count() or 1
                    ray.init(num_cpus=max(cores, (config.workers or 0) * threads) + 1, **options)
                break
            except Exception as exc:  # noqa: BLE001 - ray.init raises a bare Exception when its node is slow to start
                ray.shutdown()
                if attempt + 1 < (1 if config.address else LOCAL_START_ATTEMPTS):
                    continue
                where = f"join the Ray cluster at {config.address}" if config.address else "start a local Ray"
                raise UsageError(f"cannot {where}: {' '.join(str(exc).split())}") from None
        started = True
    try:
        yield min(_worker_count(config, ray.cluster_resources(), threads), films)
    finally:
        if started:
            ray.shutdown()


def _worker_count(config: BatchConfig, resources: dict[str, float], threads: int) -> int:
    if config.workers is not None:
        return config.workers
    if config.gpus_per_worker > 0:
        gpus = resources.get("GPU", 0.0)
        if gpus < config.gpus_per_worker:
            raise UsageError(f"--gpus-per-worker {config.gpus_per_worker:g}: the Ray cluster has {gpus:g} GPUs")
        return max(1, int(gpus // config.gpus_per_worker))
    cpus = int(resources.get("CPU", 1))
    return max(1, (cpus - max(1, cpus // 8)) // threads)


def _stream(pending: list[dict[str, Any]], settings: WorkerSettings, config: BatchConfig, workers: int) -> Iterator[dict[str, Any]]:
    import ray.data

    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False
    context.print_on_execution_start = False
    context.enable_auto_log_stats = False
    logging.getLogger("ray.data").setLevel(logging.WARNING)

    gpus = config.gpus_per_worker or None
    dataset = (
        ray.data.from_items(pending, override_num_blocks=min(len(pending), MAX_BLOCKS))
        .map(read_film, num_cpus=DECODE_CPUS)
        .map_batches(
            FilmInference, fn_constructor_args=(settings,), batch_size=1, batch_format="numpy",
            compute=ray.data.ActorPoolStrategy(size=workers), num_cpus=settings.threads, num_gpus=gpus,
        )
    )  # fmt: skip
    yield from dataset.iter_rows()


def _publish(
    row: dict[str, Any], journal: Journal, keys: dict[str, tuple[int, int]], fingerprint: str,
    published: set[str], summary: BatchSummary, stderr: TextIO,
) -> FilmOutcome:  # fmt: skip
    """Make one film's outcome final: rename its staged outputs into place and journal it, list
    it as failed, or keep its intact outputs. A film already published this run (a retried
    attempt delivered again) only has its staged copy discarded."""
    stem, path, worker = str(row["stem"]), str(row["path"]), int(row["worker"])
    status = row["status"]
    if stem in published:
        if status == "staged":
            shutil.rmtree(pickle.loads(row["payload"])["staged"], ignore_errors=True)
            summary.discarded_attempts += 1
        return FilmOutcome(stem, path, "discarded", worker)
    if status == "failed":
        _fail(summary, Failure(path, str(row["stage"]), str(row["reason"])), stderr)
        return FilmOutcome(stem, path, "failed", worker, str(row["reason"]))
    size, mtime_ns = keys[stem]
    if status == "unchanged":
        # Same pixels under a new size/mtime: the outputs stand; remember the new cheap key.
        journal.append({**journal.latest[stem], "size": size, "mtime_ns": mtime_ns})
        published.add(stem)
        summary.skipped += 1
        return FilmOutcome(stem, path, "unchanged", worker)
    staged = pickle.loads(row["payload"])
    attempt = Path(staged["staged"])
    try:
        for name in staged["files"]:
            os.replace(attempt / name, journal.outdir / name)
        outputs = journal.output_keys(staged["files"])
    except OSError as exc:
        reason = f"cannot publish outputs into {journal.outdir}: {exc.strerror or exc}"
        _fail(summary, Failure(path, "write", reason), stderr)
        return FilmOutcome(stem, path, "failed", worker, reason)
    shutil.rmtree(attempt, ignore_errors=True)
    journal.append({
        "stem": stem, "path": path, "size": size, "mtime_ns": mtime_ns, "sha256": str(row["sha256"]),
        "settings": fingerprint, "outputs": outputs, "view": staged["view"], "reference": staged["reference"],
        "flags": staged["flags"], "vertebrae": staged["vertebrae"], "worker": worker,
    })  # fmt: skip
    published.add(stem)
    summary.written += 1
    for name, reason in staged.get("refused", ()):
        _fail(summary, Failure(path, "write", f"{name} not written: {reason}"), stderr)
    return FilmOutcome(stem, path, "written", worker)


def _fail(summary: BatchSummary, failure: Failure, stderr: TextIO) -> None:
    summary.failures.append(failure)
    print(f"error: {failure.message()}", file=stderr, flush=True)
