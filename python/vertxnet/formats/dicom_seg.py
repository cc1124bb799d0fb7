"""DICOM SEG (highdicom) of a result, referencing the source DICOM image, for PACS.

The SEG is a conformant Segmentation IOD (``dciodvfy`` reports no error; highdicom's ``segread``
and pydicom read it back) for projection radiographs too:

- its frames map pixel for pixel onto the referenced source image (Derivation Image Sequence,
  Spatial Locations Preserved YES). A radiograph has no slice, so when the source gives no Slice
  Thickness the SEG carries no Pixel Measures functional group (the Pixel Spacing is the
  source's) rather than a Pixel Measures item without its Slice Thickness, which readers reject
  and which the standard forbids beside a Frame of Reference;
- Patient Orientation (General Image, Type 2C for images without Image Orientation (Patient)) is
  copied from the source, or present and empty when the source has none;
- a source header stripped by de-identification is repaired first
  (:mod:`vertxnet.formats.dicom_source`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import InputError
from ..levels import level_index
from ..raster import polygon_mask, polygon_window
from .dicom_source import source_header
from .labelpng import UNNAMED_VALUE

if TYPE_CHECKING:
    from ..result import Result, Vertebra


def to_dicom_seg(result: "Result", *, software_version: str | None = None) -> Any:
    """A highdicom ``Segmentation`` (BINARY) referencing the source DICOM image.

    One segment per named level, plus one "Vertebra" segment for unnamed vertebrae. Only
    DICOM inputs can be referenced: for other inputs this raises InputError.
    """
    if result.dicom is None:
        raise InputError(result.input.path, "dicom-seg needs a DICOM input (this image is not DICOM)")
    import highdicom as hd
    from pydicom.sr.codedict import codes

    from .. import __version__

    groups: dict[str | None, list[Vertebra]] = {}
    for v in result.vertebrae:
        groups.setdefault(v.label, []).append(v)
    if not groups:
        raise InputError(result.input.path, "no vertebra to write as DICOM SEG")
    order = sorted(groups, key=lambda lab: UNNAMED_VALUE if lab is None else level_index(lab))
    planes = np.zeros((result.input.height, result.input.width, len(order)), dtype=np.uint8)
    algorithm = hd.AlgorithmIdentificationSequence(
        name="vertxnet",
        family=codes.cid7162.ArtificialIntelligence,
        version=f"{__version__} ({result.model.name} {result.model.version})",
    )
    descriptions = []
    for number, label in enumerate(order, start=1):
        for v in groups[label]:
            x0, y0, x1, y1 = polygon_window(v.polygon, result.input.height, result.input.width)
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
    source = source_header(result.dicom, result.dicom_repairs)
    seg = hd.seg.Segmentation(
        source_images=[source],
        pixel_array=planes[None].astype(bool),
        segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=descriptions,
        series_instance_uid=hd.UID(),
        series_number=9901,
        sop_instance_uid=hd.UID(),
        instance_number=1,
        manufacturer="vertxnet",
        manufacturer_model_name=f"{result.model.name} {result.model.version}",
        software_versions=software_version or __version__,
        device_serial_number="none",
        series_description="vertxnet vertebrae",
    )
    _planar_geometry(seg, source)
    return seg


def _planar_geometry(seg: Any, source: Any) -> None:
    """Geometry of a SEG of a projection image (see the module docstring), in place."""
    if "ImageOrientationPatient" in source:
        return  # a cross-sectional source: highdicom wrote the plane geometry
    shared = seg.SharedFunctionalGroupsSequence[0]
    measures = shared.get("PixelMeasuresSequence")
    if measures is not None and "SliceThickness" not in measures[0]:
        del shared.PixelMeasuresSequence
    seg.PatientOrientation = source.get("PatientOrientation") or None


def _vertebra_code(label: str | None) -> Any:
    from pydicom.sr.codedict import codes
    from pydicom.sr.coding import Code

    if label is None:
        return codes.SCT.Vertebra
    if label == "S1":
        return Code("65985001", "SCT", "S1 vertebra")  # not in pydicom's CID tables
    return getattr(codes.SCT, f"{label}Vertebra")
