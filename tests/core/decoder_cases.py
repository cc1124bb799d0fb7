"""Reader of the plain-text decoder cases in tests/data/decoding (and of tests/data/labelling,
whose format it extends).

Format (one item per line; blank lines and lines starting with '#' are ignored; polygons are flat
lists "x0 y0 x1 y1 ..."):

    param <name> <value>                 a DecoderParams field (e.g. confidence_threshold)
    class_names <name> ...               the class-probability columns (default vertebra C2 S1)
    view_prior <p> <p> <p> <p> <p>       cervical, cervicothoracic, thoracic, thoracolumbar, lumbar
    mask <class> <score> <polygon>       a mask (input order)
    probs <p> ...                        class probabilities of the mask above (else derived)
    excluded                             the mask above was excluded by the ensemble
    expect_labels <name|-> ...           decode_labels result per mask ('-' = None)
    expect_view <view|whole|none>
    expect_reference <C2|S1|C2+S1|none>
    expect_flags [flag ...]              the exact list of flags (in order)
    expect_excluded [index:reason ...]   the exact excluded mapping
    expect_method <reference|chain>
    expect_min_confidence <x>            every named mask has at least this confidence
    expect_zip_labels <name|-> ...       what SPEC section 4's zip_labels gives, for contrast
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

DECODER_PARAMS = ("confidence_threshold", "ref_score", "gap_factor", "gap_sharpness", "off_gap_weight",
                  "outside_weight", "outside_start", "end_hazard", "out_of_view_weight", "size_sigma",
                  "outside_size_sigma")


@dataclass
class DecoderCase:
    path: Path
    params: dict[str, float] = field(default_factory=dict)
    class_names: list[str] | None = None
    view_prior: list[float] | None = None
    masks: list[tuple[np.ndarray, str, float]] = field(default_factory=list)
    probs: list[list[float] | None] = field(default_factory=list)
    excluded: list[bool] = field(default_factory=list)
    expect_labels: list[str | None] | None = None
    expect_view: str | None = None
    has_view: bool = False
    expect_reference: str | None = None
    expect_flags: list[str] | None = None
    expect_excluded: dict[int, str] | None = None
    expect_method: str | None = None
    expect_min_confidence: float | None = None
    expect_zip_labels: list[str | None] | None = None

    def decoder_kwargs(self) -> dict:
        """Keyword arguments of decode_labels (C++ core and oracle alike)."""
        kwargs: dict = {k: v for k, v in self.params.items() if k in ("confidence_threshold", "ref_score", "gap_factor")}
        if self.class_names is not None:
            kwargs["class_names"] = self.class_names
        if self.view_prior is not None:
            kwargs["view_prior"] = self.view_prior
        if any(p is not None for p in self.probs):
            kwargs["class_probs"] = self.probs
        if any(self.excluded):
            kwargs["excluded"] = self.excluded
        return kwargs

    def model_params(self) -> dict[str, float]:
        """The other DecoderParams fields the case sets."""
        return {k: v for k, v in self.params.items() if k not in ("confidence_threshold", "ref_score", "gap_factor")}


def _polygon(values: list[str], where: str) -> np.ndarray:
    numbers = [float(v) for v in values]
    if len(numbers) % 2:
        raise ValueError(f"{where}: odd number of coordinates")
    return np.array(numbers, dtype=np.float64).reshape(-1, 2)


def _labels(values: list[str]) -> list[str | None]:
    return [None if v == "-" else v for v in values]


def read_decoder_case(path: Path) -> DecoderCase:
    case = DecoderCase(path=path)
    for number, raw in enumerate(path.read_text().splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, *rest = line.split()
        where = f"{path.name}:{number}"
        if key == "param":
            if rest[0] not in DECODER_PARAMS:
                raise ValueError(f"{where}: unknown decoder parameter {rest[0]!r}")
            case.params[rest[0]] = float(rest[1])
        elif key == "class_names":
            case.class_names = rest
        elif key == "view_prior":
            case.view_prior = [float(v) for v in rest]
        elif key == "mask":
            case.masks.append((_polygon(rest[2:], where), rest[0], float(rest[1])))
            case.probs.append(None)
            case.excluded.append(False)
        elif key == "probs":
            case.probs[-1] = [float(v) for v in rest]
        elif key == "excluded":
            case.excluded[-1] = True
        elif key == "expect_labels":
            case.expect_labels = _labels(rest)
        elif key == "expect_view":
            case.has_view = True
            case.expect_view = None if rest[0] == "none" else rest[0]
        elif key == "expect_reference":
            case.expect_reference = rest[0]
        elif key == "expect_flags":
            case.expect_flags = rest
        elif key == "expect_excluded":
            case.expect_excluded = {int(k): v for k, v in (item.split(":") for item in rest)}
        elif key == "expect_method":
            case.expect_method = rest[0]
        elif key == "expect_min_confidence":
            case.expect_min_confidence = float(rest[0])
        elif key == "expect_zip_labels":
            case.expect_zip_labels = _labels(rest)
        else:
            raise ValueError(f"{where}: unknown key {key!r}")
    return case
