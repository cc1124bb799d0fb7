"""Annotated radiographs in the formats the field uses: COCO instances, VIA 2.x, label PNGs.

One in-memory record type serves all of them (and the phantom generator).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np


@dataclass
class Annotation:
    """One vertebral body: polygon (N, 2) float64 in continuous pixel coordinates, and its level."""

    polygon: np.ndarray
    level: str | None


@dataclass
class Record:
    """One image and its vertebrae (top to bottom when they come from the phantom generator)."""

    image_path: Path | None
    width: int
    height: int
    annotations: list[Annotation] = field(default_factory=list)
    view: str | None = None  # "cervical" | "lumbar" | None
    pixel_spacing_mm: tuple[float, float] | None = None  # (row, column) spacing
    image_id: int = 0
    image: np.ndarray | None = None  # pixel data when held in memory
    extra: dict = field(default_factory=dict)  # e.g. phantom knobs (fractures, implants)

    def load_image(self) -> np.ndarray:
        """Pixel data (held or read from ``image_path`` unchanged in bit depth)."""
        raise NotImplementedError  # filled in by the datasets implementation


# Functions provided (signatures fixed; see docs/DESIGN.md):
#   write_coco(records, path) -> Path          COCO instances JSON (categories = LEVELS, id = level_index)
#   read_coco(path, *, image_root=None) -> list[Record]
#   read_via(path, *, image_root=None, level_attribute="level") -> list[Record]
#   read_label_pngs(folder) -> list[Record]    each PNG pixel value = level index, 0 = background
#   rasterize(record | annotations, height, width) -> np.ndarray uint16 label image
