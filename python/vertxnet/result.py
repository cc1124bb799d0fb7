"""What the pipeline returns for one image, and its export formats (JSON, COCO, label PNG, overlay, DICOM SEG).

All geometry is in ORIGINAL image pixels, continuous coordinates (the pixel at row i, column j
covers [j, j+1) x [i, i+1)). Vertebrae are listed top to bottom.

Label images: value = ``vertxnet.levels.level_index`` of the vertebra's name (C1 = 1 … S1 = 26),
0 = background, and :data:`UNNAMED_VALUE` (27, the COCO category id of unnamed vertebrae in
:mod:`vertxnet.datasets`) for a vertebra without a name, in both the 8-bit and the 16-bit form.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from .datasets import UNNAMED_CATEGORY, UNNAMED_CATEGORY_ID, Annotation, Record, polygon_mask, polygon_window, rasterize
from .errors import InputError
from .levels import LEVELS, level_index

#: Version of the JSON layout written by :meth:`Result.to_dict` (``schemas/result.schema.json``).
SCHEMA_VERSION = "1.0"
#: Label-image value of a vertebra that has no anatomical name.
UNNAMED_VALUE = UNNAMED_CATEGORY_ID
#: Decimal places of coordinates and areas in JSON (1e-4 px is far below any pixel's size).
JSON_DECIMALS = 4
TIMING_STAGES = ("decode", "preprocess", "unet", "maskrcnn", "trace", "ensemble", "label", "total")
#: JSON Schema (draft 2020-12) of :meth:`Result.to_dict`, shipped inside the package.
RESULT_SCHEMA_PATH = Path(__file__).resolve().parent / "schemas" / "result.schema.json"


def result_schema() -> dict[str, Any]:
    """The result JSON Schema, e.g. ``jsonschema.validate(doc, result_schema())``."""
    return json.loads(RESULT_SCHEMA_PATH.read_text(encoding="utf-8"))


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

    def to_dict(self) -> dict[str, Any]:
        d = JSON_DECIMALS
        out: dict[str, Any] = {
            "label": self.label,
            "polygon": np.round(self.polygon, d).tolist(),
            "area_px": round(self.area_px, d),
        }
        if self.area_mm2 is not None:
            out["area_mm2"] = round(self.area_mm2, d)
        out.update(
            centroid=[round(v, d) for v in self.centroid],
            bbox=[round(v, d) for v in self.bbox],
            score=round(self.score, 6),
            source=self.source,
        )
        if self.reason is not None:
            out["reason"] = self.reason
        return out


@dataclass
class Result:
    """Vertebrae found on one image (see the module docstring for conventions)."""

    input: InputInfo
    view: str | None  # "cervical" | "lumbar" | "whole" | None
    reference: str | None  # "C2" | "S1" | "C2+S1" | None
    vertebrae: list[Vertebra]
    excluded: list[Vertebra]
    flags: list[str]
    timings_ms: dict[str, float]
    model: ModelInfo
    #: Decoded pixels (for the overlay) and, for DICOM inputs, the source dataset (for DICOM SEG).
    pixels: np.ndarray | None = field(default=None, repr=False)
    dicom: Any = field(default=None, repr=False)

    # ---- JSON ------------------------------------------------------------------------------

    def to_dict(self, *, timings: bool = True) -> dict[str, Any]:
        """The SPEC §5 JSON object. ``timings=False`` drops ``timings_ms`` for byte-stable output."""
        spacing = None if self.input.pixel_spacing_mm is None else [float(v) for v in self.input.pixel_spacing_mm]
        out: dict[str, Any] = {
            "schema_version": SCHEMA_VERSION,
            "input": {
                "path": self.input.path,
                "width": self.input.width,
                "height": self.input.height,
                "pixel_spacing_mm": spacing,
                "sha256": self.input.sha256,
            },
            "view": self.view,
            "reference": self.reference,
            "vertebrae": [v.to_dict() for v in self.vertebrae],
            "excluded": [v.to_dict() for v in self.excluded],
            "flags": list(self.flags),
        }
        if timings:
            out["timings_ms"] = {k: round(float(self.timings_ms.get(k, 0.0)), 3) for k in TIMING_STAGES}
        out["model"] = {
            "name": self.model.name,
            "version": self.model.version,
            "sha256": self.model.sha256,
            "backend": self.model.backend,
            "precision": dict(self.model.precision),
        }
        return out

    def to_json(self, *, indent: int | None = 2, timings: bool = True) -> str:
        return json.dumps(self.to_dict(timings=timings), indent=indent, allow_nan=False)

    # ---- COCO ------------------------------------------------------------------------------

    def to_record(self) -> Record:
        """The vertebrae as a :class:`vertxnet.datasets.Record` (for metrics and COCO writing)."""
        return Record(
            image_path=None if self.input.path is None else Path(self.input.path),
            width=self.input.width,
            height=self.input.height,
            annotations=[Annotation(polygon=v.polygon.copy(), level=v.label, score=v.score) for v in self.vertebrae],
            view=self.view if self.view in ("cervical", "lumbar") else None,
            pixel_spacing_mm=self.input.pixel_spacing_mm,
        )

    def to_coco(self) -> dict[str, Any]:
        """COCO instances JSON object: categories = levels (id = level index) + unnamed "vertebra"."""
        annotations = []
        for i, v in enumerate(self.vertebrae, start=1):
            x0, y0, x1, y1 = v.bbox
            annotations.append(
                {
                    "id": i,
                    "image_id": 1,
                    "category_id": UNNAMED_CATEGORY_ID if v.label is None else level_index(v.label),
                    "segmentation": [np.round(v.polygon, JSON_DECIMALS).reshape(-1).tolist()],
                    "area": round(v.area_px, JSON_DECIMALS),
                    "bbox": [round(x0, JSON_DECIMALS), round(y0, JSON_DECIMALS), round(x1 - x0, JSON_DECIMALS), round(y1 - y0, JSON_DECIMALS)],
                    "iscrowd": 0,
                    "score": round(v.score, 6),
                }
            )
        categories = [{"id": level_index(n), "name": n, "supercategory": "vertebra"} for n in LEVELS]
        categories.append({"id": UNNAMED_CATEGORY_ID, "name": UNNAMED_CATEGORY, "supercategory": "vertebra"})
        file_name = Path(self.input.path).name if self.input.path else "image"
        return {
            "info": {"description": "vertxnet predictions", "version": SCHEMA_VERSION},
            "licenses": [],
            "images": [{"id": 1, "file_name": file_name, "width": self.input.width, "height": self.input.height}],
            "annotations": annotations,
            "categories": categories,
        }

    # ---- Rasters ---------------------------------------------------------------------------

    def label_mask(self, dtype: Any = np.uint8) -> np.ndarray:
        """(H, W) label image: level index per vertebra, :data:`UNNAMED_VALUE` for unnamed, 0 background.

        A pixel belongs to a polygon when its centre lies inside it (the rule of
        :func:`vertxnet.datasets.rasterize`, which the metrics use too); where polygons overlap
        the lower vertebra wins (they are drawn top to bottom).
        """
        dtype = np.dtype(dtype)
        if dtype not in (np.dtype(np.uint8), np.dtype(np.uint16)):
            raise ValueError(f"label_mask dtype must be uint8 or uint16, got {dtype}")
        return rasterize(self.to_record(), unnamed_value=UNNAMED_VALUE).astype(dtype)

    def overlay(self, *, max_size: int | None = 2048) -> np.ndarray:
        """8-bit BGR picture of the image with coloured outlines and names, for a quick look.

        Images larger than ``max_size`` pixels on their long side are shrunk first.
        """
        if self.pixels is None:
            raise ValueError("this result holds no pixel data to draw on")
        from .preprocess import to_gray, window01

        gray = to_gray(self.pixels).astype(np.float32)
        scale = 1.0
        if max_size is not None and max(gray.shape) > max_size:
            # Shrink first: the display window of the small picture is all a quick look needs.
            scale = max_size / max(gray.shape)
            gray = cv2.resize(gray, (round(gray.shape[1] * scale), round(gray.shape[0] * scale)), interpolation=cv2.INTER_AREA)
        gray = window01(gray)
        canvas = cv2.cvtColor(np.round(gray * 255).astype(np.uint8), cv2.COLOR_GRAY2BGR)
        thickness = max(1, round(max(canvas.shape[:2]) / 400))
        font_scale = max(0.4, max(canvas.shape[:2]) / 1200)
        for v in self.excluded:
            _draw_outline(canvas, v.polygon * scale, (128, 128, 128), thickness)
        for v in self.vertebrae:
            colour = _level_colour(v.label)
            _draw_outline(canvas, v.polygon * scale, colour, thickness)
            text = v.label or "?"
            cx, cy = v.centroid[0] * scale, v.centroid[1] * scale
            (tw, th), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, font_scale, thickness)
            org = (int(round(cx - tw / 2)), int(round(cy + th / 2)))
            cv2.putText(canvas, text, org, cv2.FONT_HERSHEY_SIMPLEX, font_scale, (0, 0, 0), thickness + 2, cv2.LINE_AA)
            cv2.putText(canvas, text, org, cv2.FONT_HERSHEY_SIMPLEX, font_scale, colour, thickness, cv2.LINE_AA)
        return canvas

    # ---- DICOM SEG -------------------------------------------------------------------------

    def to_dicom_seg(self, *, software_version: str | None = None) -> Any:
        """A highdicom ``Segmentation`` (BINARY) referencing the source DICOM image.

        One segment per named level, plus one "Vertebra" segment for unnamed vertebrae. Only
        DICOM inputs can be referenced: for other inputs this raises InputError.
        """
        if self.dicom is None:
            raise InputError(self.input.path, "dicom-seg needs a DICOM input (this image is not DICOM)")
        import highdicom as hd
        from pydicom.sr.codedict import codes

        from . import __version__

        groups: dict[str | None, list[Vertebra]] = {}
        for v in self.vertebrae:
            groups.setdefault(v.label, []).append(v)
        if not groups:
            raise InputError(self.input.path, "no vertebra to write as DICOM SEG")
        order = sorted(groups, key=lambda lab: UNNAMED_VALUE if lab is None else level_index(lab))
        planes = np.zeros((self.input.height, self.input.width, len(order)), dtype=np.uint8)
        algorithm = hd.AlgorithmIdentificationSequence(
            name="vertxnet",
            family=codes.cid7162.ArtificialIntelligence,
            version=f"{__version__} ({self.model.name} {self.model.version})",
        )
        descriptions = []
        for number, label in enumerate(order, start=1):
            for v in groups[label]:
                x0, y0, x1, y1 = polygon_window(v.polygon, self.input.height, self.input.width)
                planes[y0:y1, x0:x1, number - 1] |= polygon_mask(v.polygon, x0, y0, x1 - x0, y1 - y0)
            descriptions.append(
                hd.seg.SegmentDescription(
                    segment_number=number,
                    segment_label=label or "vertebra (unnamed)",
                    segmented_property_category=codes.SCT.AnatomicalStructure,
                    segmented_property_type=_vertebra_code(label),
                    algorithm_type=hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC,
                    algorithm_identification=algorithm,
                )
            )
        return hd.seg.Segmentation(
            source_images=[_with_type2_attributes(self.dicom)],
            pixel_array=planes[None].astype(bool),
            segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
            segment_descriptions=descriptions,
            series_instance_uid=hd.UID(),
            series_number=9901,
            sop_instance_uid=hd.UID(),
            instance_number=1,
            manufacturer="vertxnet",
            manufacturer_model_name=f"{self.model.name} {self.model.version}",
            software_versions=software_version or __version__,
            device_serial_number="none",
            series_description="vertxnet vertebrae",
        )


#: Type 2 patient/study attributes (required, may be empty) that highdicom copies from the source.
_TYPE2_SOURCE_ATTRIBUTES = ("PatientName", "PatientID", "PatientBirthDate", "PatientSex", "AccessionNumber", "StudyID", "StudyDate", "StudyTime", "ReferringPhysicianName")


def _with_type2_attributes(source: Any) -> Any:
    """A copy of the source header with absent Type 2 attributes present and empty, as the
    standard allows; many exported films leave them out."""
    import copy

    header = copy.copy(source)
    for keyword in _TYPE2_SOURCE_ATTRIBUTES:
        if keyword not in header:
            setattr(header, keyword, None)
    return header


def _vertebra_code(label: str | None) -> Any:
    from pydicom.sr.codedict import codes
    from pydicom.sr.coding import Code

    if label is None:
        return codes.SCT.Vertebra
    if label == "S1":
        return Code("65985001", "SCT", "S1 vertebra")  # not in pydicom's CID tables
    return getattr(codes.SCT, f"{label}Vertebra")


def _draw_outline(canvas: np.ndarray, polygon: np.ndarray, colour: tuple[int, int, int], thickness: int) -> None:
    shift = 4  # OpenCV draws fixed-point vertices with this many fraction bits (sub-pixel outlines)
    pts = np.round((np.asarray(polygon, dtype=np.float64) - 0.5) * (1 << shift)).astype(np.int32)
    cv2.polylines(canvas, [pts.reshape(-1, 1, 2)], isClosed=True, color=colour, thickness=thickness, lineType=cv2.LINE_AA, shift=shift)


def _level_colour(label: str | None) -> tuple[int, int, int]:
    """Distinct BGR colour per level, cycling through hues; white for unnamed."""
    if label is None:
        return (255, 255, 255)
    hue = (level_index(label) * 47) % 180  # OpenCV hue range is 0…179; 47 spreads neighbours apart
    bgr = cv2.cvtColor(np.uint8([[[hue, 220, 255]]]), cv2.COLOR_HSV2BGR)[0, 0]
    return int(bgr[0]), int(bgr[1]), int(bgr[2])
