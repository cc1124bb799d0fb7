"""The result JSON (SPEC §5): schema-versioned, geometry in original pixels, no patient data."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from ..result import Result, Vertebra

#: Version of the JSON layout written by :func:`result_dict` (``schemas/result.schema.json``).
#: 1.1: optional per-vertebra "measurements" and top-level "spine"; 1.2: "view" names any region
#: of vertxnet.levels.VIEWS, "view_probability", per-vertebra "label_confidence".
SCHEMA_VERSION = "1.2"
#: Decimal places of coordinates and areas in JSON (1e-4 px is far below any pixel's size).
JSON_DECIMALS = 4
TIMING_STAGES = ("decode", "preprocess", "unet", "maskrcnn", "trace", "ensemble", "label", "total")
#: Stages timed only when they ran (a bundle with a view model; measurements asked for).
OPTIONAL_TIMING_STAGES = ("view", "measure")
#: JSON Schema (draft 2020-12) of :func:`result_dict`, shipped inside the package.
RESULT_SCHEMA_PATH = Path(__file__).resolve().parents[1] / "schemas" / "result.schema.json"


def result_schema() -> dict[str, Any]:
    """The result JSON Schema, e.g. ``jsonschema.validate(doc, result_schema())``."""
    return json.loads(RESULT_SCHEMA_PATH.read_text(encoding="utf-8"))


def vertebra_dict(v: "Vertebra") -> dict[str, Any]:
    d = JSON_DECIMALS
    out: dict[str, Any] = {
        "label": v.label,
        "label_confidence": None if v.label_confidence is None else round(float(v.label_confidence), 6),
        "polygon": np.round(v.polygon, d).tolist(),
        "area_px": round(v.area_px, d),
    }
    if v.area_mm2 is not None:
        out["area_mm2"] = round(v.area_mm2, d)
    out.update(
        centroid=[round(c, d) for c in v.centroid],
        bbox=[round(c, d) for c in v.bbox],
        score=round(v.score, 6),
        source=v.source,
    )
    if v.reason is not None:
        out["reason"] = v.reason
    return out


def result_dict(result: "Result", *, timings: bool = True) -> dict[str, Any]:
    """The SPEC §5 JSON object. ``timings=False`` drops ``timings_ms`` for byte-stable output."""
    inp = result.input
    spacing = None if inp.pixel_spacing_mm is None else [float(v) for v in inp.pixel_spacing_mm]
    out: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "input": {"path": inp.path, "width": inp.width, "height": inp.height, "pixel_spacing_mm": spacing, "sha256": inp.sha256},
        "view": result.view,
        "view_probability": None if result.view_probability is None else round(float(result.view_probability), 6),
        "reference": result.reference,
        "vertebrae": [vertebra_dict(v) for v in result.vertebrae],
        "excluded": [vertebra_dict(v) for v in result.excluded],
        "flags": list(result.flags),
    }
    repairs = getattr(result, "dicom_repairs", None)
    if repairs:  # optional: only a DICOM header that the DICOM outputs could not use as it was
        out["dicom_header_repairs"] = [r.to_dict() for r in repairs]
    measured = getattr(result, "measurements", None)
    if measured is not None:
        for entry, m in zip(out["vertebrae"], measured.vertebrae):
            entry["measurements"] = m.to_dict()
        out["spine"] = {**measured.spine.to_dict(), "radiomics_backend": measured.radiomics_backend}
    if timings:
        out["timings_ms"] = {k: round(float(result.timings_ms.get(k, 0.0)), 3) for k in TIMING_STAGES}
        for stage in OPTIONAL_TIMING_STAGES:
            if stage in result.timings_ms:
                out["timings_ms"][stage] = round(float(result.timings_ms[stage]), 3)
    model = result.model
    out["model"] = {
        "name": model.name,
        "version": model.version,
        "sha256": model.sha256,
        "backend": model.backend,
        "precision": dict(model.precision),
        "backend_verified": bool(model.backend_verified),
        "fallback": None if model.fallback_from is None else {"backend": model.fallback_from, "reason": model.fallback_reason or ""},
    }
    return out
