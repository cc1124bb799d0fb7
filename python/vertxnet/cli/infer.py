"""vertx-infer: find and name the vertebrae on lateral spine radiographs.

    vertx-infer INPUT... -o OUTDIR [--model BUNDLE] [--backend auto|onnxruntime-cpu|...] [--precision fp32|fp16|int8]
                [--format json,coco,mask,overlay,dicom-seg,csv,sr] [--measure] [--faces auto|left|right]
                [--recursive] [--threads N] [--eta X] [--lam X] [--tau X] ...
                [--engine plain|ray [--address ADDR] [--workers N] [--gpus-per-worker F]]

INPUT may be files, folders (their radiographs: .png .jpg .jpeg .tif .tiff .dcm .dicom, and
extension-less DICOM files) and glob patterns. For each input ``<stem>`` it writes, as asked:

    OUTDIR/<stem>.json          result JSON (SPEC §5, schema vertxnet/schemas/result.schema.json)
    OUTDIR/<stem>.coco.json     COCO instances
    OUTDIR/<stem>.mask.png      label image, value = level index (1 = C1 … 25 = S1), 26 = unnamed
    OUTDIR/<stem>.overlay.png   outlines and names over the image, for a quick look
    OUTDIR/<stem>.seg.dcm       DICOM SEG referencing the source image (DICOM inputs only)
    OUTDIR/<stem>.csv           measurements, one row per vertebra (columns: vertxnet.formats.csv_table)
    OUTDIR/<stem>.sr.dcm        DICOM SR measurement report (TID 1500) referencing the source
                                image and, when written too, the SEG (DICOM inputs only)

``--measure`` adds the measurements (body heights, Genant grades, lordosis, discs, listhesis,
radiomics; vertxnet.measure) to the JSON and draws heights and angles on the overlay; the csv and
sr formats measure by themselves. ``--faces`` says on which side of the image the patient's
front is (default auto: the DICOM Patient Orientation, else the curve of the spine).

``--engine ray`` runs the same work as a Ray Data job (vertxnet.batch, the ``scale`` extra): films
are decoded in tasks and inferred in a pool of ``--workers`` actors, on a local Ray started for the
job or, with ``--address``, on a cluster; it also takes CSV/Parquet manifests (a ``path`` column)
as inputs, skips films whose outputs are up to date, and writes ``vertebrae.parquet`` and
``failures.csv`` beside the per-film files. The plain engine never imports Ray.

Each requested output is made and written on its own: one that cannot be made (a DICOM SEG of
a PNG, an SR without measurements, a failing encoder) is reported as ``error: <file>: <output>
not written: <reason>`` and costs none of that film's other outputs. Every file is written under
a temporary name in OUTDIR and renamed into place, so OUTDIR never holds a partial file. Inputs
whose stems repeat get ``-2``, ``-3``, … appended.

Exit status: 0 every output of every input written; 1 some inputs failed or some outputs were
refused (each reported on stderr as ``error: <file>: <reason>``; everything else is still
written) or the model bundle failed its integrity check; 2 usage error (bad arguments, unknown
format, a --model folder that does not exist, a backend not available here, a precision the
bundle lacks, an OUTDIR that cannot be created).
"""

from __future__ import annotations

import argparse
import contextlib
import glob
import sys
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from ..files import atomic_write
from ..formats import FORMATS, MEASUREMENT_FORMATS, SUFFIXES, render
from ..levels import LABELLINGS, VIEWS
from ._args import finite_float, parse_args, positive_int
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".dcm", ".dicom"}
THRESHOLD_OPTIONS = {
    "eta": "ensemble agreement threshold (SPEC §3)",
    "lam": "ensemble area window in standard deviations",
    "tau": "ensemble overlap guard",
    "ref_score": "lowest Mask R-CNN score of a C2/S1 reference that is always kept",
    "unet_threshold": "U-Net probability threshold",
    "score_threshold": "Mask R-CNN detection score threshold",
    "mask_threshold": "Mask R-CNN mask probability threshold",
    "gap_factor": "zipper gap factor (a spacing above this x the median skips a level)",
    "min_area": "smallest mask kept, in original pixels²",
    "duplicate_overlap": "Mask R-CNN twins overlapping more than this share of the smaller mask are merged (1 = off)",
    "label_confidence": "names whose decoder confidence is below this stay null (flag labels_uncertain)",
}


#: Engines of vertx-infer: this process, or a Ray Data job (vertxnet.batch).
ENGINES = ("plain", "ray")
#: Options that only the ray engine takes (their dests).
RAY_OPTIONS = ("address", "workers", "gpus_per_worker", "path_column")


class UsageError(Exception):
    """Bad arguments: exit status 2."""


@dataclass(frozen=True)
class InferConfig:
    """One vertx-infer run."""

    inputs: tuple[str, ...]
    outdir: Path
    bundle: Path | None = None
    backend: str = "auto"
    precision: str | dict[str, str] = "fp32"  # for both models, or per model (vertxnet.runtime.registry.Precision)
    formats: tuple[str, ...] = ("json",)
    recursive: bool = False
    threads: int | None = None
    thresholds: dict[str, float] = field(default_factory=dict)
    labelling: str = "decoder"  # "decoder" | "zipper" (PipelineConfig.labelling)
    view: str | None = None  # the film's region when known (vertxnet.levels.VIEWS)
    mask_bits: int = 8
    timings: bool = True
    progress: bool = True
    measure: bool = False  # also measure; on by itself when csv or sr is asked for
    faces: str = "auto"  # "auto" | "left" | "right"
    radiomics_backend: str = "numpy"  # "numpy" | "pyradiomics" | "auto"

    @property
    def measuring(self) -> bool:
        return self.measure or any(f in MEASUREMENT_FORMATS for f in self.formats)


@dataclass
class InferSummary:
    total: int = 0
    written: int = 0  # inputs with every requested output written
    partly: int = 0  # inputs with some outputs written and some refused
    inputs_failed: int = 0  # inputs with nothing written
    failures: list[str] = field(default_factory=list)  # one message per failed input or refused output

    @property
    def failed(self) -> int:
        """Inputs not written in full (exit status 1 when any)."""
        return self.inputs_failed + self.partly

    def line(self) -> str:
        noun = "image" if self.total == 1 else "images"
        text = f"{self.total} {noun}: {self.written} written"
        if self.partly:
            text += f", {self.partly} written in part"
        if self.inputs_failed:
            text += f", {self.inputs_failed} failed"
        if self.failed:
            text += " (see above)"
        return text


def expand_inputs(patterns: Sequence[str], *, recursive: bool = False) -> tuple[list[Path], list[str]]:
    """Files named by ``patterns`` (files, folders, globs), in order without repeats, and one
    error message per pattern that names nothing."""
    files: list[Path] = []
    errors: list[str] = []
    for pattern in patterns:
        path = Path(pattern)
        if path.is_dir():
            found = _images_in(path, recursive)
            if not found:
                errors.append(f"{pattern}: folder holds no radiographs" + ("" if recursive else " (use --recursive for subfolders)"))
            files.extend(found)
        elif path.exists():
            files.append(path)
        elif glob.has_magic(pattern):
            matches = sorted(Path(m) for m in glob.glob(pattern, recursive=recursive))
            matches = [m for m in matches if m.is_file()]
            if not matches:
                errors.append(f"{pattern}: no file matches this pattern")
            files.extend(matches)
        else:
            errors.append(f"{pattern}: file not found")
    return list(dict.fromkeys(files)), errors


def _images_in(folder: Path, recursive: bool) -> list[Path]:
    candidates = folder.rglob("*") if recursive else folder.iterdir()
    return sorted(p for p in candidates if p.is_file() and (p.suffix.lower() in IMAGE_SUFFIXES or (p.suffix == "" and _is_dicom(p))))


def _is_dicom(path: Path) -> bool:
    try:
        with open(path, "rb") as f:
            return f.read(132)[128:132] == b"DICM"
    except OSError:
        return False


def output_stems(files: Sequence[Path]) -> list[str]:
    """Output stem per input: the file name without its image suffix, ``-2``, ``-3``… on repeats."""
    stems, used = [], set()
    for f in files:
        base = f.stem if f.suffix.lower() in IMAGE_SUFFIXES else f.name
        stem, n = base, 1
        while stem in used:
            n += 1
            stem = f"{base}-{n}"
        used.add(stem)
        stems.append(stem)
    return stems


def render_each(result, formats: Sequence[str], *, mask_bits: int = 8, timings: bool = True) -> dict[str, bytes | Exception]:
    """Each requested output of one result, made on its own: its bytes, or the exception that
    refused it (InputError / ValueError, or whatever an encoder raised). An SR written beside a
    SEG refers to that SEG (the SEG is made first, whatever the order); when the SEG is refused,
    the SR refers to the outlines on the source image instead."""
    made: dict[str, bytes | Exception] = {}
    for fmt in sorted(formats, key=lambda f: f == "sr"):
        with_seg = isinstance(made.get("dicom-seg"), bytes)
        try:
            made[fmt] = render(result, fmt, mask_bits=mask_bits, timings=timings, sr_with_segmentation=with_seg)
        except Exception as exc:  # noqa: BLE001 - one format must never cost the others
            made[fmt] = exc
    return {fmt: made[fmt] for fmt in formats}


def render_outputs(result, formats: Sequence[str], *, mask_bits: int = 8, timings: bool = True) -> dict[str, bytes]:
    """Bytes of every requested output of one result, all or nothing: the first refusal of
    :func:`render_each` is raised."""
    payloads = render_each(result, formats, mask_bits=mask_bits, timings=timings)
    for data in payloads.values():
        if isinstance(data, Exception):
            raise data
    return payloads  # type: ignore[return-value]


def refusal_reason(exc: BaseException) -> str:
    """One line saying why an output was refused (an InputError's reason without its path)."""
    from ..errors import InputError

    if isinstance(exc, InputError):
        text = exc.reason
    elif isinstance(exc, (ValueError, OSError)):
        text = str(exc)
    else:
        text = f"{type(exc).__name__}: {exc}"
    return " ".join(text.split()) or type(exc).__name__


def run_inference(config: InferConfig, *, stderr: TextIO | None = None) -> InferSummary:
    """Run the pipeline over every input of ``config``, writing outputs into ``config.outdir``.

    Raises UsageError for unusable arguments and BundleError for a bundle that fails its check;
    failures of single inputs are reported on ``stderr`` and counted in the summary.
    """
    from tqdm import tqdm

    from ..bundle import load_bundle
    from ..errors import BundleError, InputError
    from ..pipeline import Pipeline, PipelineConfig
    from ..runtime import BackendUnavailable

    stderr = stderr or sys.stderr
    unknown = [f for f in config.formats if f not in FORMATS]
    if unknown or not config.formats:
        raise UsageError(f"unknown output format(s) {', '.join(unknown) or '(none given)'}; choose from {', '.join(FORMATS)}")
    if config.mask_bits not in (8, 16):
        raise UsageError(f"--mask-bits must be 8 or 16, got {config.mask_bits}")
    if config.bundle is not None and not config.bundle.is_dir():
        raise UsageError(f"{config.bundle}: model bundle folder not found")
    try:
        pipeline_config = PipelineConfig(**config.thresholds, labelling=config.labelling, view=config.view)
        pipeline_config.validate()
    except (TypeError, ValueError) as exc:
        raise UsageError(str(exc)) from None
    measure_config = None
    if config.measuring:
        from ..measure import MeasureConfig

        try:
            measure_config = MeasureConfig(faces=config.faces, radiomics_backend=config.radiomics_backend)
            measure_config.validate()
        except ValueError as exc:
            raise UsageError(str(exc)) from None
    try:
        config.outdir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"{config.outdir}: cannot create the output folder ({exc.strerror or exc})") from None

    files, pattern_errors = expand_inputs(config.inputs, recursive=config.recursive)
    summary = InferSummary(total=len(files) + len(pattern_errors))
    for message in pattern_errors:
        print(f"error: {message}", file=stderr)
        summary.failures.append(message)
        summary.inputs_failed += 1
    if not files:
        return summary

    bundle = load_bundle(config.bundle)  # BundleError propagates: exit 1
    try:
        pipeline = Pipeline(
            bundle, backend=config.backend, threads=config.threads, config=pipeline_config, precision=config.precision,
            measure=measure_config or False,
        )  # fmt: skip
    except BackendUnavailable as exc:
        raise UsageError(str(exc)) from None
    except ValueError as exc:
        raise UsageError(str(exc)) from None

    stems = dict(zip(files, output_stems(files)))
    bar = tqdm(total=len(files), unit="image", file=stderr, disable=not config.progress or len(files) <= 1, dynamic_ncols=True)
    with pipeline, bar, _one_line_warnings(bar, stderr):
        for source, outcome in pipeline.predict_many([str(f) for f in files]):
            path = Path(source)
            try:
                if isinstance(outcome, BaseException):
                    raise outcome
                written = _write_outputs(outcome, path, stems[path], config, bar, stderr, summary)
            except BundleError:
                raise
            except (InputError, ValueError) as exc:
                message = str(exc) if isinstance(exc, InputError) and exc.path else f"{path}: {exc}"
                _report(bar, stderr, message)
                summary.failures.append(message)
                summary.inputs_failed += 1
            except Exception as exc:  # noqa: BLE001 - one input must never stop the others
                message = f"{path}: {type(exc).__name__}: {' '.join(str(exc).split())}"
                _report(bar, stderr, message)
                summary.failures.append(message)
                summary.inputs_failed += 1
            else:
                if written == len(config.formats):
                    summary.written += 1
                elif written:
                    summary.partly += 1
                else:
                    summary.inputs_failed += 1
            bar.update(1)
    return summary


def _write_outputs(result, path: Path, stem: str, config: InferConfig, bar, stderr: TextIO, summary: InferSummary) -> int:
    """Make and write each requested output of one result on its own; report each refusal.
    Returns how many were written."""
    written = 0
    for fmt, data in render_each(result, config.formats, mask_bits=config.mask_bits, timings=config.timings).items():
        target = config.outdir / f"{stem}{SUFFIXES[fmt]}"
        if not isinstance(data, Exception):
            try:
                atomic_write(target, data)
                written += 1
                continue
            except OSError as exc:
                data = OSError(f"cannot write it ({exc.strerror or exc})")
        message = f"{path}: {target.name} not written: {refusal_reason(data)}"
        _report(bar, stderr, message)
        summary.failures.append(message)
    return written


@contextlib.contextmanager
def _one_line_warnings(bar, stderr: TextIO):
    """Library warnings while the inputs are processed (pydicom on a malformed header, say) as
    ``warning: <message>`` lines on ``stderr``; the previous handler is restored afterwards."""
    with warnings.catch_warnings():
        warnings.showwarning = lambda message, *args, **kwargs: bar.write(f"warning: {' '.join(str(message).split())}", file=stderr)
        yield


def _report(bar, stderr: TextIO, message: str) -> None:
    bar.write(f"error: {message}", file=stderr)


def _formats(text: str) -> tuple[str, ...]:
    items = tuple(dict.fromkeys(s.strip().lower() for s in text.split(",") if s.strip()))
    unknown = [f for f in items if f not in FORMATS]
    if unknown or not items:
        raise argparse.ArgumentTypeError(f"unknown format(s) {', '.join(unknown) or '(none)'}; choose from {', '.join(FORMATS)}")
    return items


def build_parser() -> argparse.ArgumentParser:
    from ..runtime import BACKEND_NAMES
    from ._args import precision as precision_arg

    parser = argparse.ArgumentParser(
        prog="vertx-infer",
        description="Segment and name every vertebra on lateral spine radiographs (VertXNet).",
        epilog="Exit status: 0 all written, 1 some inputs failed, 2 usage error.",
    )
    parser.add_argument("inputs", nargs="+", metavar="INPUT", help="image files (PNG, JPEG, TIFF, DICOM), folders or glob patterns")
    parser.add_argument("-o", "--outdir", required=True, type=Path, help="output folder (created if needed)")
    parser.add_argument("--model", type=Path, default=None, metavar="BUNDLE", help="model bundle folder (default: the shipped demo bundle)")
    parser.add_argument("--backend", default="auto", choices=("auto", *BACKEND_NAMES), help="inference backend (default: auto, the fastest verified one; VERTX_ALLOW_UNVERIFIED=1 lets it choose unverified ones, naming one opts in)")
    parser.add_argument("--precision", default="fp32", type=precision_arg, metavar="P", help="fp32 (default), fp16 or int8 for both models, or per model (unet=int8): the bundle's variant on a backend that declares it, else exit 2")
    parser.add_argument("--format", dest="formats", type=_formats, default=("json",), metavar="LIST", help=f"comma-separated outputs among {','.join(FORMATS)} (default: json)")
    parser.add_argument("--measure", action="store_true", help="also measure: body heights, Genant grades, lordosis, discs, listhesis, radiomics (JSON, overlay; csv and sr imply it)")
    parser.add_argument("--faces", default="auto", choices=("auto", "left", "right"), help="side of the image the patient's front is on (default auto: DICOM Patient Orientation, else the spine's curve)")
    parser.add_argument("--radiomics-backend", default="numpy", choices=("numpy", "pyradiomics", "auto"), help="numpy (pyradiomics' definitions, fast; default) or pyradiomics itself (the 'measure' extra)")
    parser.add_argument("--view", default=None, choices=VIEWS, help="the films' region when you know it (default: the DICOM BodyPartExamined, else the bundle's view model); weighs as the naming prior")
    parser.add_argument("--labelling", default="decoder", choices=LABELLINGS, help="decoder (default): names with a confidence from the sequence decoder; zipper: SPEC §4's zipper alone")
    parser.add_argument("--recursive", action="store_true", help="search folders and ** globs recursively")
    parser.add_argument("--threads", type=positive_int, default=None, metavar="N", help="threads per model (default: half the cores)")
    parser.add_argument("--mask-bits", type=int, choices=(8, 16), default=8, help="bit depth of the label PNG (default: 8)")
    parser.add_argument("--no-timings", action="store_true", help="leave timings_ms out of the JSON, so repeated runs give identical files")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar and no summary line")
    scale = parser.add_argument_group("batch engine (--engine ray; pip install 'vertxnet[scale]')")
    scale.add_argument("--engine", default="plain", choices=ENGINES, help="plain (default): this process; ray: a Ray Data job (resumable, one machine or a cluster)")
    scale.add_argument("--address", default=None, metavar="ADDR", help="Ray cluster to join (auto, HOST:6379, ray://HOST:10001); default: start a local Ray")
    scale.add_argument("--workers", type=positive_int, default=None, metavar="N", help="inference actors (default: the cluster's CPUs less an eighth, or its GPUs / --gpus-per-worker)")
    scale.add_argument("--gpus-per-worker", type=finite_float, default=None, metavar="F", help="GPUs each actor reserves, fractions share one (default 0: CPUs)")
    scale.add_argument("--path-column", default=None, metavar="NAME", help="column of CSV/Parquet manifests holding the film paths (default: path)")
    add_threshold_arguments(parser)
    return parser


def add_threshold_arguments(parser: argparse.ArgumentParser) -> None:
    """The --eta ... --label-confidence options (THRESHOLD_OPTIONS), each defaulting to None."""
    group = parser.add_argument_group("thresholds (default: the bundle manifest's)")
    for name, help_text in THRESHOLD_OPTIONS.items():
        group.add_argument(f"--{name.replace('_', '-')}", dest=name, type=finite_float, default=None, metavar="X", help=help_text)


def chosen_thresholds(args: argparse.Namespace) -> dict[str, float]:
    """The threshold options given on the command line, by PipelineConfig field."""
    return {k: getattr(args, k) for k in THRESHOLD_OPTIONS if getattr(args, k) is not None}


def main(argv: Sequence[str] | None = None) -> int:
    from ..errors import BundleError

    args = parse_args(build_parser(), argv)
    if isinstance(args, int):
        return args
    config = InferConfig(
        inputs=tuple(args.inputs),
        outdir=args.outdir,
        bundle=args.model,
        backend=args.backend,
        precision=args.precision,
        formats=args.formats,
        recursive=args.recursive,
        threads=args.threads,
        thresholds=chosen_thresholds(args),
        labelling=args.labelling,
        view=args.view,
        mask_bits=args.mask_bits,
        timings=not args.no_timings,
        progress=not args.quiet,
        measure=args.measure,
        faces=args.faces,
        radiomics_backend=args.radiomics_backend,
    )
    try:
        if args.engine == "ray":
            summary = _run_batch(config, args)
        else:
            ray_only = [f"--{name.replace('_', '-')}" for name in RAY_OPTIONS if getattr(args, name) is not None]
            if ray_only:
                raise UsageError(f"{', '.join(ray_only)} only apply to --engine ray")
            summary = run_inference(config)
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except BundleError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if not args.quiet:
        print(summary.line(), file=sys.stderr)
    return 1 if summary.failed else 0


def _run_batch(config: InferConfig, args: argparse.Namespace):
    """The Ray Data engine (imported only here: the plain CLI never loads Ray)."""
    from ..batch import BatchConfig, run_batch

    batch = BatchConfig(
        config, address=args.address, workers=args.workers, gpus_per_worker=args.gpus_per_worker or 0.0,
        path_column=args.path_column or "path",
    )  # fmt: skip
    return run_batch(batch)


if __name__ == "__main__":
    sys.exit(main())
