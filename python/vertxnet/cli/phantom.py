"""vertx-phantom: write synthetic lateral spine radiographs with exact vertebral-body truth.

    vertx-phantom -o DIR --n 100 --view mixed --size 512 --seed 0 --difficulty normal [--preview]
                  [--knob implant_prob=1 --knob noise=0.2 ...]

Writes DIR/images/phantom_00000.png ... (16-bit PNG), DIR/annotations.json (COCO instances with
one category per level C1...S1) and, with --preview, DIR/preview.png (contact sheet).
Same arguments give byte-identical files. Exit 0 ok, 1 writing failed, 2 usage error.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ..data.phantom import DIFFICULTIES, KNOB_NAMES, VIEWS, PhantomConfig, generate_dataset
from ..data.phantom.config import STYLES
from ._args import non_negative_int, parse_args, positive_int


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line on stderr, exit status 2
        self.exit(2, f"error: {message}\n")


@dataclass(frozen=True)
class PhantomJob:
    """One vertx-phantom run."""

    out_dir: Path
    n: int
    config: PhantomConfig
    preview: bool = False
    progress: bool = False


def run_phantom(job: PhantomJob) -> Path:
    """Generate the data set; returns the path of annotations.json."""
    progress = None
    if job.progress:
        from tqdm import tqdm

        bar = tqdm(total=job.n, unit="image", file=sys.stderr, dynamic_ncols=True)
        progress = lambda i: bar.update(1)  # noqa: E731
    try:
        return generate_dataset(job.config, job.out_dir, job.n, preview=job.preview, progress=progress)
    finally:
        if job.progress:
            bar.close()


def _knob(text: str) -> tuple[str, float]:
    name, sep, value = text.partition("=")
    if not sep or name not in KNOB_NAMES:
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE with NAME one of {', '.join(KNOB_NAMES)}, got {text!r}")
    try:
        return name, float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"knob {name} needs a number, got {value!r}") from None


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="vertx-phantom", description="Synthetic lateral spine radiographs with exact vertebral-body truth.")
    p.add_argument("-o", "--out", required=True, type=Path, help="output folder (created if needed)")
    p.add_argument("--n", type=positive_int, default=16, help="number of images (default 16)")
    p.add_argument("--view", choices=VIEWS, default="mixed", help="region of the spine the film shows, or mixed (default: drawn per image)")
    p.add_argument("--size", type=positive_int, default=512, help="longer image side in pixels (default 512)")
    p.add_argument("--seed", type=non_negative_int, default=0, help="data-set seed (default 0); image i uses seed and i")
    p.add_argument("--difficulty", choices=DIFFICULTIES, default="normal", help="knob preset (default normal)")
    p.add_argument("--style", choices=STYLES, default="film",
                   help="film: the realistic renderer (default); classic: the first renderer (cervical, lumbar, mixed), "
                        "which made the shipped demo bundle's training data and the example films")
    p.add_argument("--knob", type=_knob, action="append", default=[], metavar="NAME=VALUE",
                   help="override one knob of the preset (repeatable): " + ", ".join(KNOB_NAMES))
    p.add_argument("--preview", action="store_true", help="also write DIR/preview.png, a contact sheet")
    p.add_argument("--progress", action="store_true", help="show a progress bar on stderr")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(build_parser(), argv)
    if isinstance(args, int):
        return args
    try:
        config = PhantomConfig(view=args.view, size=args.size, seed=args.seed, difficulty=args.difficulty,
                               style=args.style, overrides=tuple(args.knob))
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.out.exists() and not args.out.is_dir():
        print(f"error: {args.out}: exists and is not a folder", file=sys.stderr)
        return 2
    try:
        path = run_phantom(PhantomJob(out_dir=args.out, n=args.n, config=config, preview=args.preview,
                                      progress=args.progress))
    except OSError as exc:
        print(f"error: {exc.filename or args.out}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    print(f"wrote {args.n} images and {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
