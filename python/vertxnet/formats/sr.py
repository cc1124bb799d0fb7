"""DICOM Structured Report of the measurements: a TID 1500 Measurement Report (highdicom).

Content (every numeric value in mm when the image has a pixel spacing, else in pixels, ``{pixel}``):

- one Planar ROI group (TID 1410) per vertebra, tracking identifier ``vertebra <index> <label>``,
  finding site the vertebra (SNOMED CT), referencing its segment of the DICOM SEG written in the
  same run when there is one (named vertebrae), else its outline on the source image (SCOORD
  POLYLINE); measurements: anterior, middle and posterior body height, Ha/Hp, Hm/Hp, endplate
  angle; qualitative evaluations: Genant grade and deformity type; partial / unnamed /
  unmeasurable vertebrae are reported too, with a "Measurement flag" evaluation each;
- one Measurement group (TID 1501) per segment (``segment <upper>-<lower>``): anterior, middle and
  posterior disc height, disc angle, segmental angle, slip, slip percent, Meyerding grade;
- one Measurement group for the spine: lumbar and cervical lordosis (when measured).

Concept names use the coding scheme ``99VERTX`` (:data:`CODES`) where DICOM has no code of its
own; units are UCUM. Only DICOM inputs can be reported (InputError otherwise), as for the SEG.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import InputError

if TYPE_CHECKING:
    from ..measure import Measurements
    from ..result import Result

#: Private coding scheme of the concept names below.
SCHEME = "99VERTX"
_NAMES = {
    "height_anterior": "Anterior vertebral body height",
    "height_middle": "Middle vertebral body height",
    "height_posterior": "Posterior vertebral body height",
    "ratio_anterior_posterior": "Anterior to posterior height ratio",
    "ratio_middle_posterior": "Middle to posterior height ratio",
    "endplate_angle": "Vertebral endplate angle",
    "genant_grade": "Genant semi-quantitative grade",
    "deformity": "Vertebral deformity type",
    "flag": "Measurement flag",
    "disc_height_anterior": "Anterior disc height",
    "disc_height_middle": "Middle disc height",
    "disc_height_posterior": "Posterior disc height",
    "disc_angle": "Disc angle",
    "segmental_angle": "Segmental angle",
    "slip": "Vertebral slip",
    "slip_percent": "Vertebral slip percent of depth",
    "meyerding_grade": "Meyerding grade",
    "lumbar_lordosis": "Lumbar lordosis angle L1-S1",
    "cervical_lordosis": "Cervical lordosis angle C2-C7",
}


#: Code values of the names whose key is too long for one: a Code Value holds at most 16
#: characters, and a longer one goes to Long Code Value, which readers (highdicom's own
#: ``srread`` among them) do not accept in a measurement group.
_SHORT = {
    "cervical_lordosis": "lordosis-cerv", "disc_height_anterior": "disc-h-anterior",
    "disc_height_middle": "disc-h-middle", "disc_height_posterior": "disc-h-posterior",
    "ratio_anterior_posterior": "ratio-ant-post", "ratio_middle_posterior": "ratio-mid-post",
}  # fmt: skip


def _code_value(key: str) -> str:
    return _SHORT.get(key, key.replace("_", "-"))


def _code(key: str) -> Any:
    from pydicom.sr.coding import Code

    return Code(_code_value(key), SCHEME, _NAMES[key])


def _value_code(prefix: str, text: str) -> Any:
    """A coded value of the private scheme: ``prefix-text`` when it fits a Code Value, else
    ``prefix-`` and a digest of ``text`` (the text stays the code meaning)."""
    import hashlib

    from pydicom.sr.coding import Code

    value = f"{prefix}-{text}"
    if len(value) > 16:
        value = f"{prefix}-{hashlib.sha1(text.encode()).hexdigest()[: 15 - len(prefix)]}"
    return Code(value, SCHEME, text)


#: The concept names used, keyed as in :data:`_NAMES` (for readers of the report).
CODES: dict[str, tuple[str, str, str]] = {k: (_code_value(k), SCHEME, v) for k, v in _NAMES.items()}


def to_dicom_sr(
    result: "Result",
    measurements: "Measurements | None" = None,
    *,
    segmentation: Any = None,
    software_version: str | None = None,
) -> Any:
    """A highdicom ``ComprehensiveSR`` holding a TID 1500 Measurement Report of ``measurements``
    (default ``result.measurements``), referencing the source image and, when given, the
    ``segmentation`` (the highdicom SEG written for the same result)."""
    if result.dicom is None:
        raise InputError(result.input.path, "sr needs a DICOM input (this image is not DICOM)")
    measurements = measurements if measurements is not None else getattr(result, "measurements", None)
    if measurements is None:
        raise ValueError("sr needs measurements (run with measure=True / --measure)")
    if len(measurements.vertebrae) != len(result.vertebrae):
        raise ValueError("measurements do not belong to this result (vertebra counts differ)")
    import highdicom as hd
    from pydicom.sr.codedict import codes
    from pydicom.sr.coding import Code

    from .. import __version__
    from .dicom_seg import _vertebra_code
    from .dicom_source import source_header

    source = source_header(result.dicom, result.dicom_repairs)
    spacing = result.input.pixel_spacing_mm
    length_unit = codes.UCUM.Millimeter if spacing is not None else Code("{pixel}", "UCUM", "pixel")
    suffix = "_mm" if spacing is not None else "_px"
    ratio_unit = codes.UCUM.NoUnits
    degree = codes.UCUM.Degree
    segment_numbers = _segment_numbers(segmentation)

    def number(name: str, value: float | None, unit: Any) -> Any:
        return None if value is None else hd.sr.Measurement(name=_code(name), value=float(value), unit=unit)

    groups: list[Any] = []
    for i, (v, m) in enumerate(zip(result.vertebrae, measurements.vertebrae)):
        items = [
            number("height_anterior", getattr(m, "height_anterior" + suffix), length_unit),
            number("height_middle", getattr(m, "height_middle" + suffix), length_unit),
            number("height_posterior", getattr(m, "height_posterior" + suffix), length_unit),
            number("ratio_anterior_posterior", m.ratio_anterior_posterior, ratio_unit),
            number("ratio_middle_posterior", m.ratio_middle_posterior, ratio_unit),
            number("endplate_angle", m.endplate_angle_deg, degree),
        ]
        evaluations = []
        if m.genant_grade is not None:
            evaluations.append(hd.sr.QualitativeEvaluation(
                name=_code("genant_grade"), value=Code(f"genant-{m.genant_grade}", SCHEME, f"Genant grade {m.genant_grade}")))
            evaluations.append(hd.sr.QualitativeEvaluation(
                name=_code("deformity"), value=Code(f"def-{m.deformity}", SCHEME, f"{m.deformity} deformity")))
        for flag in m.flags:
            evaluations.append(hd.sr.QualitativeEvaluation(name=_code("flag"), value=_value_code("flag", flag)))
        region: dict[str, Any] = {}
        if v.label is not None and v.label in segment_numbers:
            region["referenced_segment"] = hd.sr.ReferencedSegmentationFrame(
                sop_class_uid=segmentation.SOPClassUID,
                sop_instance_uid=segmentation.SOPInstanceUID,
                frame_number=segment_numbers[v.label][1],
                segment_number=segment_numbers[v.label][0],
                source_image=hd.sr.SourceImageForSegmentation.from_source_image(source),
            )
        else:
            ring = np.vstack([v.polygon, v.polygon[:1]]).astype(np.float32)
            region["referenced_region"] = hd.sr.ImageRegion(
                graphic_type=hd.sr.GraphicTypeValues.POLYLINE,
                graphic_data=ring,
                source_image=hd.sr.SourceImageForRegion.from_source_image(source),
            )
        groups.append(
            hd.sr.PlanarROIMeasurementsAndQualitativeEvaluations(
                tracking_identifier=hd.sr.TrackingIdentifier(uid=hd.UID(), identifier=f"vertebra {i} {v.label or 'unnamed'}"),
                finding_type=codes.SCT.Vertebra,
                finding_sites=[hd.sr.FindingSite(anatomic_location=_vertebra_code(v.label))],
                measurements=[x for x in items if x is not None],
                qualitative_evaluations=evaluations or None,
                **region,
            )
        )
    image_reference = [hd.sr.SourceImageForMeasurementGroup.from_source_image(source)]
    for s in measurements.spine.segments:
        items = [
            number("disc_height_anterior", getattr(s, "disc_height_anterior" + suffix), length_unit),
            number("disc_height_middle", getattr(s, "disc_height_middle" + suffix), length_unit),
            number("disc_height_posterior", getattr(s, "disc_height_posterior" + suffix), length_unit),
            number("disc_angle", s.disc_angle_deg, degree),
            number("segmental_angle", s.segmental_angle_deg, degree),
            number("slip", getattr(s, "slip" + suffix), length_unit),
            number("slip_percent", s.slip_percent, codes.UCUM.Percent),
            number("meyerding_grade", s.meyerding_grade, ratio_unit),
        ]
        name = f"{s.upper_label or 'unnamed'}-{s.lower_label or 'unnamed'}"
        groups.append(
            hd.sr.MeasurementsAndQualitativeEvaluations(
                tracking_identifier=hd.sr.TrackingIdentifier(uid=hd.UID(), identifier=f"segment {s.upper}-{s.lower} {name}"),
                finding_sites=[hd.sr.FindingSite(anatomic_location=_vertebra_code(label)) for label in (s.upper_label, s.lower_label)],
                measurements=[x for x in items if x is not None],
                source_images=image_reference,
            )
        )
    spine = [
        number("lumbar_lordosis", measurements.spine.lumbar_lordosis_deg, degree),
        number("cervical_lordosis", measurements.spine.cervical_lordosis_deg, degree),
    ]
    if any(x is not None for x in spine):
        groups.append(
            hd.sr.MeasurementsAndQualitativeEvaluations(
                tracking_identifier=hd.sr.TrackingIdentifier(uid=hd.UID(), identifier="spine"),
                finding_sites=[hd.sr.FindingSite(anatomic_location=codes.SCT.Spine)],
                measurements=[x for x in spine if x is not None],
                source_images=image_reference,
            )
        )
    observer = hd.sr.ObserverContext(
        observer_type=codes.DCM.Device,
        observer_identifying_attributes=hd.sr.DeviceObserverIdentifyingAttributes(
            uid=hd.UID(), name="vertxnet", model_name=f"{result.model.name} {result.model.version}"
        ),
    )
    report = hd.sr.MeasurementReport(
        observation_context=hd.sr.ObservationContext(observer_device_context=observer),
        procedure_reported=codes.SCT.ImagingProcedure,
        imaging_measurements=groups,
    )
    evidence = [source] if segmentation is None else [source, segmentation]
    sr = hd.sr.ComprehensiveSR(
        evidence=evidence,
        content=report,
        series_instance_uid=hd.UID(),
        series_number=9902,
        sop_instance_uid=hd.UID(),
        instance_number=1,
        manufacturer="vertxnet",
        series_description="vertxnet measurements",
        software_versions=software_version or __version__,
    )
    _frame_references_only(sr.ContentSequence)
    return sr


def _frame_references_only(items: Any) -> None:
    """Referenced Segmentation Frame items name the SEG frame alone, in place: PS3.3's Image SOP
    Instance Reference Macro allows a Referenced Frame Number or a Referenced Segment Number,
    never both, and highdicom writes both (each frame of a vertxnet SEG belongs to one segment)."""
    for item in items:
        for reference in item.get("ReferencedSOPSequence", []):
            if "ReferencedFrameNumber" in reference and "ReferencedSegmentNumber" in reference:
                del reference.ReferencedSegmentNumber
        _frame_references_only(item.get("ContentSequence", []))


def _segment_numbers(segmentation: Any) -> dict[str, tuple[int, int]]:
    """Level name -> (segment number, frame number) in a vertxnet SEG. Unnamed vertebrae share
    one segment, so they are referenced by their own outline instead."""
    if segmentation is None:
        return {}
    frames: dict[int, int] = {}
    for number, item in enumerate(segmentation.PerFrameFunctionalGroupsSequence, start=1):
        segment = int(item.SegmentIdentificationSequence[0].ReferencedSegmentNumber)
        frames.setdefault(segment, number)
    out = {}
    for item in segmentation.SegmentSequence:
        label, segment = str(item.SegmentLabel), int(item.SegmentNumber)
        if not label.startswith("vertebra") and segment in frames:
            out[label] = (segment, frames[segment])
    return out


__all__ = ["CODES", "SCHEME", "to_dicom_sr"]
