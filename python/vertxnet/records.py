"""One annotated (or predicted) radiograph in memory: its vertebrae as named polygons.

The record type every part shares: the annotation readers and writers (:mod:`vertxnet.data`),
the phantom generator, the metrics (:mod:`vertxnet.evaluation`) and the pipeline's results
(:meth:`vertxnet.result.Result.to_record`). Polygons are (N, 2) float64 arrays in continuous
pixel coordinates (docs/DESIGN.md).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .errors import InputError


@dataclass
class Annotation:
    """One vertebral body: polygon (N, 2) float64 in continuous pixel coordinates, and its level."""

    polygon: np.ndarray
    level: str | None
    score: float | None = None  # confidence, for predictions
    #: Further per-body fields kept through COCO files, e.g. the real-film annotations'
    #: ``corners`` (posterior-superior, anterior-superior, anterior-inferior, posterior-inferior)
    #: and the phantoms' ``morphometry`` truth (heights).
    extra: dict = field(default_factory=dict)


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
        """Pixel data (held or read from ``image_path`` unchanged in bit depth).

        Raises InputError naming the file when it is missing, unreadable, or not the size the
        annotations were made on.
        """
        if self.image is not None:
            return self.image
        if self.image_path is None:
            raise InputError(None, f"image {self.image_id} has neither pixel data nor an image path")
        from .io.raster import read_image_unchanged

        image = read_image_unchanged(self.image_path)
        if image.shape[:2] != (self.height, self.width):
            raise InputError(
                self.image_path,
                f"image is {image.shape[1]}x{image.shape[0]} pixels but its annotations are for {self.width}x{self.height}",
            )
        return image
