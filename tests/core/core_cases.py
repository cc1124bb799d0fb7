"""Reader of the plain-text reference cases in tests/data/ensemble and tests/data/labelling.

Format (one item per line; blank lines and lines starting with '#' are ignored; numbers are
plain decimals; polygons are flat lists "x0 y0 x1 y1 ..."):

    param <name> <value>                 eta, lam, tau, ref_score, min_area or gap_factor
    unet <polygon>                       a U-Net outline (input order)
    mrcnn <class> <score> <polygon>      a Mask R-CNN outline with class and score (input order)
    mask <class> <score> <polygon>       labelling input: a (polygon, cls, score) mask
    expect_mask <source> <class> <unet index|-> <mrcnn index|->
                                         one per ensemble mask, top to bottom
    expect_count <n>                     number of ensemble masks (implied by expect_mask lines)
    expect_warnings <n>                  number of degenerate polygons dropped (default 0)
    expect_area <position> <px2> <tol>   area of the ensemble mask at that position (top to
                                         bottom, from 0) within tol px^2
    expect_labels <name|-> ...           zip_labels result per mask ('-' = None); in an ensemble
                                         case it applies to zip_labels(ensemble output)
    expect_view <cervical|lumbar|whole|none>
    expect_reference <C2|S1|C2+S1|none>
    expect_flags [flag ...]              the exact list of flags (in order)
    expect_excluded [index:reason ...]   the exact excluded mapping
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np


@dataclass
class Case:
    path: Path
    params: dict[str, float] = field(default_factory=dict)
    unet: list[np.ndarray] = field(default_factory=list)
    mrcnn: list[np.ndarray] = field(default_factory=list)
    mrcnn_classes: list[str] = field(default_factory=list)
    mrcnn_scores: list[float] = field(default_factory=list)

    @property
    def detections(self) -> list:
        """The Mask R-CNN outlines as :class:`vertxnet.core.Detection` records."""
        from vertxnet.core import Detection

        return [Detection(p, c, s) for p, c, s in zip(self.mrcnn, self.mrcnn_classes, self.mrcnn_scores, strict=True)]
    masks: list[tuple[np.ndarray, str, float]] = field(default_factory=list)
    expect_masks: list[tuple[str, str, int | None, int | None]] | None = None
    expect_warnings: int = 0
    expect_areas: dict[int, tuple[float, float]] = field(default_factory=dict)
    expect_labels: list[str | None] | None = None
    expect_view: str | None = None
    expect_reference: str | None = None
    expect_flags: list[str] | None = None
    expect_excluded: dict[int, str] | None = None
    has_view: bool = False


def _polygon(values: list[str], where: str) -> np.ndarray:
    numbers = [float(v) for v in values]
    if len(numbers) % 2:
        raise ValueError(f"{where}: odd number of coordinates")
    return np.array(numbers, dtype=np.float64).reshape(-1, 2)


def _index(text: str) -> int | None:
    return None if text == "-" else int(text)


def read_case(path: Path) -> Case:
    case = Case(path=path)
    for number, raw in enumerate(path.read_text().splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, *rest = line.split()
        where = f"{path.name}:{number}"
        if key == "param":
            case.params[rest[0]] = float(rest[1])
        elif key == "unet":
            case.unet.append(_polygon(rest, where))
        elif key == "mrcnn":
            case.mrcnn_classes.append(rest[0])
            case.mrcnn_scores.append(float(rest[1]))
            case.mrcnn.append(_polygon(rest[2:], where))
        elif key == "mask":
            case.masks.append((_polygon(rest[2:], where), rest[0], float(rest[1])))
        elif key == "expect_mask":
            case.expect_masks = (case.expect_masks or []) + [(rest[0], rest[1], _index(rest[2]), _index(rest[3]))]
        elif key == "expect_count":
            if int(rest[0]) == 0:
                case.expect_masks = case.expect_masks or []
        elif key == "expect_warnings":
            case.expect_warnings = int(rest[0])
        elif key == "expect_area":
            case.expect_areas[int(rest[0])] = (float(rest[1]), float(rest[2]))
        elif key == "expect_labels":
            case.expect_labels = [None if v == "-" else v for v in rest]
        elif key == "expect_view":
            case.has_view = True
            case.expect_view = None if rest[0] == "none" else rest[0]
        elif key == "expect_reference":
            case.expect_reference = rest[0]
        elif key == "expect_flags":
            case.expect_flags = rest
        elif key == "expect_excluded":
            case.expect_excluded = {int(k): v for k, v in (item.split(":") for item in rest)}
        else:
            raise ValueError(f"{where}: unknown key {key!r}")
    return case


def format_polygon(polygon: np.ndarray) -> str:
    return " ".join(f"{v:.3f}".rstrip("0").rstrip(".") for v in np.asarray(polygon, dtype=float).reshape(-1))
