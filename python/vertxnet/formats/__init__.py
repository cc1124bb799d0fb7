"""The outputs a :class:`vertxnet.result.Result` can be written as, one module per format.

=========== =============== =====================================================================
name        file suffix     module
=========== =============== =====================================================================
json        ``.json``       :mod:`.result_json` (SPEC §5, ``schemas/result.schema.json``)
coco        ``.coco.json``  :mod:`.coco` (COCO instances; categories = levels + unnamed)
mask        ``.mask.png``   :mod:`.labelpng` (label image, value = level index)
overlay     ``.overlay.png`` :mod:`.overlay` (outlines and names for a quick look)
dicom-seg   ``.seg.dcm``    :mod:`.dicom_seg` (highdicom Segmentation referencing the source)
csv         ``.csv``        :mod:`.csv_table` (measurements, one row per vertebra; needs them)
sr          ``.sr.dcm``     :mod:`.sr` (DICOM SR TID 1500 Measurement Report; DICOM inputs, measured)
=========== =============== =====================================================================

:func:`render` turns a result into the bytes of one format; each format is made (or refused
with InputError / ValueError) on its own.
"""

from __future__ import annotations

import io
import json
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..result import Result

FORMATS: tuple[str, ...] = ("json", "coco", "mask", "overlay", "dicom-seg", "csv", "sr")
SUFFIXES: dict[str, str] = {"json": ".json", "coco": ".coco.json", "mask": ".mask.png", "overlay": ".overlay.png", "dicom-seg": ".seg.dcm",
                            "csv": ".csv", "sr": ".sr.dcm"}
#: Formats made from the measurements (``Pipeline(..., measure=True)``, ``vertx-infer --measure``).
MEASUREMENT_FORMATS: tuple[str, ...] = ("csv", "sr")


def render(result: "Result", fmt: str, *, mask_bits: int = 8, timings: bool = True, sr_with_segmentation: bool = False) -> bytes:
    """Bytes of ``result`` in format ``fmt`` (a name of :data:`FORMATS`); InputError/ValueError if it cannot be made.

    ``sr_with_segmentation``: the SR refers to the result's DICOM SEG (the same object that
    ``dicom-seg`` writes), for when both are written."""
    import cv2
    import numpy as np

    if fmt == "json":
        return (result.to_json(indent=2, timings=timings) + "\n").encode()
    if fmt == "coco":
        return (json.dumps(result.to_coco(), allow_nan=False) + "\n").encode()
    if fmt in ("mask", "overlay"):
        image = result.label_mask(np.uint8 if mask_bits == 8 else np.uint16) if fmt == "mask" else result.overlay()
        ok, png = cv2.imencode(".png", image)
        if not ok:
            raise ValueError(f"OpenCV could not encode the {fmt} PNG")
        return png.tobytes()
    if fmt == "dicom-seg":
        buffer = io.BytesIO()
        result.to_dicom_seg().save_as(buffer, enforce_file_format=True)
        return buffer.getvalue()
    if fmt == "csv":
        return result.to_csv().encode()
    if fmt == "sr":
        buffer = io.BytesIO()
        result.to_dicom_sr(with_segmentation=sr_with_segmentation).save_as(buffer, enforce_file_format=True)
        return buffer.getvalue()
    raise ValueError(f"unknown output format {fmt!r}")
