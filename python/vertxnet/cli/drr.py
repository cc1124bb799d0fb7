"""vertx-drr: lateral DRRs from labelled CT volumes, with vertebral-body truth, written as COCO.

    vertx-drr -o DIR --n 600 (--manifest CASES.csv | --cases FOLDER | --ct CT.nii.gz --labels SEG.nii.gz
              | --ct-glob 'ct/*.nii.gz' --labels-glob 'seg/*.nii.gz') [--numbering verse|totalsegmentator|
              totalsegmentator-v1|TABLE.csv] [--seed 0] [--size 512] [--workers N] [--preview] ...

Writes DIR/images/drr_00000.png ... (16-bit PNG by default), DIR/annotations.json (COCO with one
category per level C1...S1, 27 = unnamed vertebra, a ``view`` per image) and, with --preview,
DIR/preview.png. Same arguments give byte-identical files, whatever --workers.
Exit 0 ok, 1 a bad input file (named on stderr) or writing failed, 2 usage error.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ..data.drr import (CTCase, DRRConfig, default_workers, find_cases, generate_dataset, glob_cases,
                        read_manifest)
from ..errors import InputError
from ._args import finite_float, non_negative_int, parse_args, positive_int


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line on stderr, exit status 2
        self.exit(2, f"error: {message}\n")


@dataclass(frozen=True)
class DRRJob:
    """One vertx-drr run: where the CTs are, what to make, where to write it."""

    out_dir: Path
    n: int
    config: DRRConfig
    manifest: Path | None = None
    cases_dir: Path | None = None
    ct: Path | None = None
    labels: Path | None = None
    ct_glob: str | None = None
    labels_glob: str | None = None
    numbering: str = "auto"
    workers: int = 1
    preview: bool = False
    skip_bad_cases: bool = False
    progress: bool = False


def job_cases(job: DRRJob) -> list[CTCase]:
    """The cases a job names (InputError for a missing or malformed source)."""
    if job.manifest is not None:
        cases = read_manifest(job.manifest)
    elif job.cases_dir is not None:
        cases = find_cases(job.cases_dir)
    elif job.ct_glob is not None:
        cases = glob_cases(job.ct_glob, job.labels_glob or "", job.numbering)
    else:
        name = job.ct.name.split(".")[0]
        cases = [CTCase(name=name, ct=job.ct, labels=job.labels, numbering=job.numbering)]
    if job.numbering != "auto" and (job.manifest is not None or job.cases_dir is not None):
        cases = [c if c.numbering != "auto" else CTCase(c.name, c.ct, c.labels, job.numbering) for c in cases]
    return cases


def run_drr(job: DRRJob) -> tuple[Path, list[InputError]]:
    """Generate the data set; returns the path of annotations.json and the skipped cases."""
    cases = job_cases(job)
    callback = None
    if job.progress:
        from tqdm import tqdm

        bar = tqdm(total=job.n, unit="image", file=sys.stderr, dynamic_ncols=True)
        callback = lambda i: bar.update(1)  # noqa: E731
    try:
        return generate_dataset(cases, job.config, job.out_dir, job.n, workers=job.workers, preview=job.preview,
                                skip_bad_cases=job.skip_bad_cases, progress=callback)
    finally:
        if job.progress:
            bar.close()


def _range(text: str) -> tuple[float, float]:
    lo, sep, hi = text.partition(",")
    if not sep:
        raise argparse.ArgumentTypeError(f"expected LOW,HIGH, got {text!r}")
    return finite_float(lo), finite_float(hi)


def _probability(text: str) -> float:
    value = finite_float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"expected a probability in [0, 1], got {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="vertx-drr", description="Lateral DRRs from labelled CT with vertebral-body truth (COCO).")
    p.add_argument("-o", "--out", required=True, type=Path, help="output folder (created if needed)")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--manifest", type=Path, help="CSV with columns ct, labels[, numbering][, name]")
    src.add_argument("--cases", type=Path, help="folder of cases (VerSe, TotalSegmentator or ct + labels layouts)")
    src.add_argument("--ct", type=Path, help="one CT (NIfTI, HU); needs --labels")
    src.add_argument("--ct-glob", help="glob of CTs; needs --labels-glob (sorted matches pair up)")
    p.add_argument("--labels", type=Path, help="label map (NIfTI) or folder of structure masks for --ct")
    p.add_argument("--labels-glob", help="glob of label maps for --ct-glob")
    p.add_argument("--numbering", default="auto",
                   help="verse, totalsegmentator, totalsegmentator-v1, a label table .csv, or auto (default)")
    p.add_argument("--n", type=positive_int, default=16,
                   help="number of images (default 16), spread over the cases in turn, --images-per-pose at a time")
    p.add_argument("--size", type=positive_int, default=512, help="longer image side in pixels (default 512)")
    p.add_argument("--seed", type=non_negative_int, default=0, help="data-set seed (default 0)")
    p.add_argument("--images-per-pose", type=positive_int, default=4,
                   help="images drawn from one patient pose, each with its own field and exposure (default 4)")
    p.add_argument("--kvp", type=_range, default=(60.0, 120.0), metavar="LOW,HIGH", help="tube voltage range (default 60,120)")
    p.add_argument("--sdd", type=_range, default=(1000.0, 1800.0), metavar="LOW,HIGH",
                   help="source-detector distance range in mm (default 1000,1800)")
    p.add_argument("--field", type=_range, default=(200.0, 430.0), metavar="LOW,HIGH",
                   help="field height at the spine in mm (default 200,430)")
    p.add_argument("--rotation", type=finite_float, default=10.0, help="largest rotation about the long axis, degrees (default 10)")
    p.add_argument("--tilt", type=finite_float, default=5.0, help="largest beam obliquity and lean, degrees (default 5)")
    p.add_argument("--implant-prob", type=_probability, default=0.3, help="probability of posterior fixation per pose (default 0.3)")
    p.add_argument("--cement-prob", type=_probability, default=0.08, help="probability of vertebroplasty cement per pose (default 0.08)")
    p.add_argument("--collimation-prob", type=_probability, default=0.5, help="probability of visible collimation per image (default 0.5)")
    p.add_argument("--bits", type=int, choices=(8, 16), default=16, help="PNG bit depth (default 16)")
    p.add_argument("--workers", type=positive_int, default=None, help="worker processes (default: one per CPU, at most 8)")
    p.add_argument("--skip-bad-cases", action="store_true", help="leave out cases whose files are unusable instead of stopping")
    p.add_argument("--preview", action="store_true", help="also write DIR/preview.png, a contact sheet")
    p.add_argument("--progress", action="store_true", help="show a progress bar on stderr")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parse_args(parser, argv)
    if isinstance(args, int):
        return args
    if args.ct is not None and args.labels is None:
        print("error: --ct needs --labels", file=sys.stderr)
        return 2
    if args.ct_glob is not None and args.labels_glob is None:
        print("error: --ct-glob needs --labels-glob", file=sys.stderr)
        return 2
    try:
        config = DRRConfig(size=args.size, seed=args.seed, images_per_pose=args.images_per_pose, kvp=args.kvp,
                           sdd_mm=args.sdd, field_mm=args.field, rotation_deg=args.rotation, tilt_deg=args.tilt, implant_prob=args.implant_prob,
                           cement_prob=args.cement_prob, collimation_prob=args.collimation_prob, bit_depth=args.bits)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.out.exists() and not args.out.is_dir():
        print(f"error: {args.out}: exists and is not a folder", file=sys.stderr)
        return 2
    job = DRRJob(out_dir=args.out, n=args.n, config=config, manifest=args.manifest, cases_dir=args.cases, ct=args.ct,
                 labels=args.labels, ct_glob=args.ct_glob, labels_glob=args.labels_glob, numbering=args.numbering,
                 workers=args.workers or default_workers(), preview=args.preview, skip_bad_cases=args.skip_bad_cases,
                 progress=args.progress)
    try:
        path, skipped = run_drr(job)
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"error: {exc.filename or args.out}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    for exc in skipped:
        print(f"warning: skipped {exc}", file=sys.stderr)
    print(f"wrote {path} ({'some cases skipped, ' if skipped else ''}images in {path.parent / 'images'})", file=sys.stderr)
    return 1 if skipped else 0


if __name__ == "__main__":
    sys.exit(main())
