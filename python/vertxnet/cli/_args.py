"""Argument types shared by the command-line tools (argparse turns their errors into exit 2)."""

from __future__ import annotations

import argparse
import math
from collections.abc import Sequence


def parse_args(parser: argparse.ArgumentParser, argv: Sequence[str] | None) -> argparse.Namespace | int:
    """Parsed arguments, or the exit status argparse chose (0 after --help, 2 for a usage error,
    which it has already explained on stderr), so that ``main`` returns it instead of exiting."""
    try:
        return parser.parse_args(argv)
    except SystemExit as exc:
        return 0 if exc.code in (0, None) else 2


def _integer_at_least(text: str, minimum: int, what: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a {what}, got {text!r}") from None
    if value < minimum:
        raise argparse.ArgumentTypeError(f"expected a {what}, got {text!r}")
    return value


def positive_int(text: str) -> int:
    return _integer_at_least(text, 1, "positive integer")


def non_negative_int(text: str) -> int:
    return _integer_at_least(text, 0, "non-negative integer")


def finite_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return value


def precision(text: str):
    """``--precision``: ``fp32``/``fp16``/``int8`` for both models, or ``unet=int8[,maskrcnn=fp32]``
    per model (vertxnet.runtime.registry.parse_precision)."""
    from ..runtime.registry import parse_precision

    try:
        return parse_precision(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def decoder_setting(text: str) -> tuple[str, float]:
    """``NAME=VALUE`` for one scalar field of :class:`vertxnet.core.DecoderParams`."""
    from ..core import DecoderParams

    name, sep, value = text.partition("=")
    name = name.strip()
    scalars = [k for k, v in DecoderParams()._asdict().items() if isinstance(v, float)]
    if not sep or name not in scalars:
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE with NAME one of {', '.join(scalars)}, got {text!r}")
    number = finite_float(value)
    try:
        DecoderParams(**{name: number})
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return name, number


def add_decoder_argument(parser: argparse.ArgumentParser) -> None:
    """``--decoder NAME=VALUE`` (repeatable), read back with :func:`decoder_params`."""
    parser.add_argument("--decoder", type=decoder_setting, action="append", metavar="NAME=VALUE",
                        help="a decoder model parameter (vertxnet.core.DecoderParams), repeatable")


def decoder_params(settings: Sequence[tuple[str, float]] | None):
    """The DecoderParams with these ``decoder_setting`` values (later ones win), or None when there
    are none."""
    if not settings:
        return None
    from ..core import DecoderParams

    return DecoderParams(**dict(settings))
