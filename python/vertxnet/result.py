"""What the pipeline returns for one image. Each output format lives in :mod:`vertxnet.formats`;
the methods here are the public entry points to them.

All geometry is in ORIGINAL image pixels, continuous coordinates (the pixel at row i, column j
covers [j, j+1) x [i, i+1)). Vertebrae are listed top to bottom.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .formats import result_json
from .formats.labelpng import UNNAMED_VALUE
from .levels import VIEWS
from .formats.result_json import JSON_DECIMALS, RESULT_SCHEMA_PATH, SCHEMA_VERSION, TIMING_STAGES, result_schema
from .records import Annotation, Record

__all__ = [
    "JSON_DECIMALS",
    "RESULT_SCHEMA_PATH",
    "SCHEMA_VERSION",
    "TIMING_STAGES",
    "UNNAMED_VALUE",
    "InputInfo",
    "ModelInfo",
    "Result",
    "Vertebra",
    "result_schema",
]


@dataclass(frozen=True)
class InputInfo:
    """The image a result belongs to. Never carries patient identifiers."""

    path: str | None
    width: int
    height: int
    pixel_spacing_mm: tuple[float, float] | None  # (row, column) spacing
    sha256: str  # of the decoded pixel data


@dataclass(frozen=True)
class ModelInfo:
    name: str
    version: str
    sha256: str  # of the bundle's manifest.json (which pins every model file's sha256)
    backend: str
    precision: dict[str, str] = field(default_factory=lambda: {"unet": "fp32", "maskrcnn": "fp32"})  # per model; "engine" for TensorRT
    #: Whether ``backend`` is verified (vertxnet.runtime.BackendInfo.verified); None: look it up.
    backend_verified: bool | None = None
    #: The backend that was chosen but failed to load, and why (then ``backend`` is the fallback).
    fallback_from: str | None = None
    fallback_reason: str | None = None

    def __post_init__(self) -> None:
        if self.backend_verified is None:
            from .runtime import BACKENDS

            verified = {info.name: info.verified for info in BACKENDS}
            object.__setattr__(self, "backend_verified", verified.get(self.backend, False))


@dataclass(frozen=True)
class Vertebra:
    """One vertebral body."""

    label: str | None
    polygon: np.ndarray  # (N, 2) float64, original pixels
    area_px: float
    area_mm2: float | None
    centroid: tuple[float, float]
    bbox: tuple[float, float, float, float]  # x0, y0, x1, y1
    score: float  # Mask R-CNN score; 0.0 for U-Net-only masks
    source: str  # "agreement" | "split" | "rescued"
    reason: str | None = None  # why it was excluded (only in Result.excluded)
    label_confidence: float | None = None  # probability of ``label`` (the decoder's marginal); None when unnamed

    def to_dict(self) -> dict[str, Any]:
        return result_json.vertebra_dict(self)


@dataclass
class Result:
    """Vertebrae found on one image (see the module docstring for conventions)."""

    input: InputInfo
    view: str | None  # one of vertxnet.levels.VIEWS, "whole" (named from C2 and S1), or None
    reference: str | None  # "C2" | "S1" | "C2+S1" | None
    vertebrae: list[Vertebra]
    excluded: list[Vertebra]
    flags: list[str]
    timings_ms: dict[str, float]
    model: ModelInfo
    #: Probability of ``view`` (decoder posterior or view model); None when unknown or user-stated.
    view_probability: float | None = None
    #: Decoded pixels (for the overlay) and, for DICOM inputs, the source dataset (for DICOM SEG).
    pixels: np.ndarray | None = field(default=None, repr=False)
    dicom: Any = field(default=None, repr=False)
    #: :class:`vertxnet.measure.Measurements` of ``vertebrae`` (same order), when measured
    #: (``Pipeline(..., measure=True)``); None otherwise.
    measurements: Any = field(default=None, repr=False)
    #: What the DICOM outputs need and the source header lacks (stripped or invalid UIDs and the
    #: like), with the values they use instead: :class:`vertxnet.formats.dicom_source.HeaderRepair`,
    #: derived from ``dicom`` (flag ``dicom_header_repaired``, JSON ``dicom_header_repairs``).
    dicom_repairs: list[Any] = field(default_factory=list, repr=False, compare=False)
    #: The DICOM SEG made by :meth:`to_dicom_seg`, kept so that an SR of the same result refers to it.
    _segmentation: Any = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.dicom is not None and not self.dicom_repairs:
            from .formats.dicom_source import REPAIRED_FLAG, header_repairs

            self.dicom_repairs = header_repairs(self.dicom, self.input.sha256)
            if self.dicom_repairs and REPAIRED_FLAG not in self.flags:
                self.flags.append(REPAIRED_FLAG)

    def to_dict(self, *, timings: bool = True) -> dict[str, Any]:
        """The SPEC §5 JSON object. ``timings=False`` drops ``timings_ms`` for byte-stable output."""
        return result_json.result_dict(self, timings=timings)

    def to_json(self, *, indent: int | None = 2, timings: bool = True) -> str:
        import json

        return json.dumps(self.to_dict(timings=timings), indent=indent, allow_nan=False)

    def to_record(self) -> Record:
        """The vertebrae as a :class:`vertxnet.records.Record` (for metrics and COCO writing)."""
        return Record(
            image_path=None if self.input.path is None else Path(self.input.path),
            width=self.input.width,
            height=self.input.height,
            annotations=[Annotation(polygon=v.polygon.copy(), level=v.label, score=v.score) for v in self.vertebrae],
            view=self.view if self.view in VIEWS else None,
            pixel_spacing_mm=self.input.pixel_spacing_mm,
        )

    def to_coco(self) -> dict[str, Any]:
        """COCO instances JSON object (:func:`vertxnet.formats.coco.result_coco`)."""
        from .formats.coco import result_coco

        return result_coco(self)

    def label_mask(self, dtype: Any = np.uint8) -> np.ndarray:
        """(H, W) label image: level index per vertebra, :data:`UNNAMED_VALUE` for unnamed, 0 background
        (:func:`vertxnet.formats.labelpng.label_mask`)."""
        from .formats.labelpng import label_mask

        return label_mask(self, dtype)

    def overlay(self, *, max_size: int | None = 2048) -> np.ndarray:
        """8-bit BGR picture with coloured outlines and names (:func:`vertxnet.formats.overlay.overlay`)."""
        from .formats.overlay import overlay

        return overlay(self, max_size=max_size)

    def to_dicom_seg(self, *, software_version: str | None = None) -> Any:
        """A highdicom ``Segmentation`` referencing the source DICOM image; InputError for other
        inputs (:func:`vertxnet.formats.dicom_seg.to_dicom_seg`)."""
        from .formats.dicom_seg import to_dicom_seg

        if software_version is not None:
            return to_dicom_seg(self, software_version=software_version)
        if self._segmentation is None:
            self._segmentation = to_dicom_seg(self)
        return self._segmentation

    def to_csv(self) -> str:
        """The measurements as CSV, one row per vertebra (:mod:`vertxnet.formats.csv_table`);
        ValueError when the result was not measured."""
        from .formats.csv_table import to_csv

        if self.measurements is None:
            raise ValueError("csv needs measurements (Pipeline(..., measure=True) / vertx-infer --measure)")
        return to_csv(self.measurements, image=self.input.path)

    def to_dicom_sr(self, *, with_segmentation: bool = False, software_version: str | None = None) -> Any:
        """A highdicom Comprehensive SR holding a TID 1500 Measurement Report of the
        measurements, referencing the source image and, with ``with_segmentation``, this result's
        DICOM SEG (:meth:`to_dicom_seg`, the same object each time); InputError for non-DICOM
        inputs, ValueError when the result was not measured (:mod:`vertxnet.formats.sr`)."""
        from .formats.sr import to_dicom_sr

        segmentation = self.to_dicom_seg() if with_segmentation else None
        return to_dicom_sr(self, self.measurements, segmentation=segmentation, software_version=software_version)
