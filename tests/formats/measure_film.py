"""A small measured film for the format tests: six lumbar bodies on a DICOM image."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "io"))

import dicom_factory  # noqa: E402

from vertxnet.measure import measure  # noqa: E402
from vertxnet.raster import polygon_area, polygon_bbox  # noqa: E402
from vertxnet.result import InputInfo, ModelInfo, Result, Vertebra  # noqa: E402

LEVELS = ["L1", "L2", "L3", None, "L5", "S1"]  # L4 left unnamed


def lumbar_polygons(wedge_l2: float = 0.3) -> list[np.ndarray]:
    """Six 40 x 30 px bodies facing right down a lordotic curve, 10 px discs, L2 wedged."""
    polys = []
    for k, tilt in enumerate((-20, -12, -4, 4, 12, 24)):
        t = math.radians(tilt)
        r = np.array([[math.cos(t), -math.sin(t)], [math.sin(t), math.cos(t)]])
        ha = 30.0 * (1 - wedge_l2) if k == 1 else 30.0
        body = np.array([[-20, -15], [20, -ha / 2], [20, ha / 2], [-20, 15]], float) @ r.T
        ps = np.array([150.0, 40.0]) if k == 0 else polys[-1][3] + 10.0 * (r @ [0.0, 1.0])
        polys.append(body - body[0] + ps)
    return polys


def measured_result(*, spacing: tuple[float, float] | None = (0.5, 0.5), dicom: bool = True):
    polys = lumbar_polygons()
    pixels = (np.random.default_rng(0).random((400, 400)) * 4000).astype(np.uint16)
    ds = dicom_factory.make_dataset(pixels, pixel_spacing=spacing) if dicom else None
    vertebrae = [
        Vertebra(label=label, polygon=p, area_px=polygon_area(p), area_mm2=None, centroid=tuple(p.mean(0)),
                 bbox=polygon_bbox(p), score=0.9, source="agreement")
        for p, label in zip(polys, LEVELS)
    ]
    result = Result(
        input=InputInfo(path="film.dcm", width=400, height=400, pixel_spacing_mm=spacing, sha256="0" * 64),
        view="lumbar", reference="S1", vertebrae=vertebrae, excluded=[], flags=[], timings_ms={},
        model=ModelInfo(name="demo", version="0.1", sha256="0" * 64, backend="onnxruntime"), pixels=pixels, dicom=ds,
    )
    measurements = measure(polys, LEVELS, pixel_spacing_mm=spacing, image=pixels)
    return result, measurements
