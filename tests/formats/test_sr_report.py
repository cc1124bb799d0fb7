"""DICOM SR (TID 1500) of the measurements, read back with highdicom and pydicom."""

from __future__ import annotations

import io

import highdicom as hd
import pydicom
import pytest
from measure_film import LEVELS, measured_result

from vertxnet.errors import InputError
from vertxnet.formats.dicom_seg import to_dicom_seg
from vertxnet.formats.sr import SCHEME, to_dicom_sr


def roundtrip(sr) -> bytes:
    buffer = io.BytesIO()
    sr.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def test_values_equal_the_json_and_references_source_and_seg():
    result, m = measured_result()
    seg = to_dicom_seg(result)
    data = roundtrip(to_dicom_sr(result, m, segmentation=seg))
    report = hd.sr.srread(io.BytesIO(data))
    assert report.SOPClassUID == "1.2.840.10008.5.1.4.1.1.88.33"  # Comprehensive SR
    groups = report.content.get_planar_roi_measurement_groups()
    assert len(groups) == len(LEVELS)
    names = {
        "Anterior vertebral body height": "height_anterior_mm",
        "Middle vertebral body height": "height_middle_mm",
        "Posterior vertebral body height": "height_posterior_mm",
        "Anterior to posterior height ratio": "ratio_anterior_posterior",
        "Vertebral endplate angle": "endplate_angle_deg",
    }
    for i, (group, v) in enumerate(zip(groups, m.vertebrae)):
        d = v.to_dict()
        assert str(group.tracking_identifier) == f"vertebra {i} {v.label or 'unnamed'}"
        got = {x.name.meaning: (x.value, x.unit.value) for x in group.get_measurements()}
        for meaning, key in names.items():
            value, unit = got[meaning]
            assert value == pytest.approx(d[key], abs=1e-4)
            assert unit == {"height": "mm", "ratio": "1", "endplate": "deg"}[key.split("_")[0]]
        grades = {q.name.meaning: q.value.meaning for q in group.get_qualitative_evaluations()}
        if d["genant_grade"] is not None:
            assert grades["Genant semi-quantitative grade"] == f"Genant grade {d['genant_grade']}"
        # named vertebrae point at their SEG segment, the unnamed one at its outline on the image
        expected = "121214" if v.label is not None else "111030"
        assert group.reference_type.value == expected
    # segments and the spine
    image_groups = report.content.get_image_measurement_groups()
    spine = [g for g in image_groups if str(g.tracking_identifier) == "spine"][0]
    lordosis = {x.name.meaning: x.value for x in spine.get_measurements()}
    assert lordosis["Lumbar lordosis angle L1-S1"] == pytest.approx(m.spine.lumbar_lordosis_deg, abs=1e-6)
    segment_groups = [g for g in image_groups if str(g.tracking_identifier).startswith("segment")]
    assert len(segment_groups) == len(m.spine.segments)
    for group, s in zip(segment_groups, m.spine.segments):
        got = {x.name.meaning: x.value for x in group.get_measurements()}
        assert got["Posterior disc height"] == pytest.approx(s.disc_height_posterior_mm)
        assert got["Vertebral slip percent of depth"] == pytest.approx(s.slip_percent)
        assert got["Meyerding grade"] == s.meyerding_grade

    # pydicom: the evidence lists the source image and the SEG; codes use the private scheme
    ds = pydicom.dcmread(io.BytesIO(data))
    evidence = {item.ReferencedSOPInstanceUID for study in ds.CurrentRequestedProcedureEvidenceSequence
                for series in study.ReferencedSeriesSequence for item in series.ReferencedSOPSequence}
    assert evidence == {result.dicom.SOPInstanceUID, seg.SOPInstanceUID}
    assert ds.ContentTemplateSequence[0].TemplateIdentifier == "1500"
    schemes = set()
    def walk(items):
        for item in items:
            if "ConceptNameCodeSequence" in item:
                schemes.add(item.ConceptNameCodeSequence[0].CodingSchemeDesignator)
            if "ContentSequence" in item:
                walk(item.ContentSequence)
    walk(ds.ContentSequence)
    assert SCHEME in schemes and "DCM" in schemes


def test_without_seg_every_vertebra_references_its_outline():
    result, m = measured_result()
    report = hd.sr.srread(io.BytesIO(roundtrip(to_dicom_sr(result, m))))
    assert {g.reference_type.value for g in report.content.get_planar_roi_measurement_groups()} == {"111030"}


def test_non_dicom_inputs_and_missing_measurements_are_refused():
    result, m = measured_result(dicom=False)
    with pytest.raises(InputError, match="DICOM"):
        to_dicom_sr(result, m)
    result, _ = measured_result()
    with pytest.raises(ValueError, match="measurements"):
        to_dicom_sr(result, None)


def test_every_code_value_fits_the_code_value_attribute():
    """A Code Value holds 16 characters; a longer one becomes a Long Code Value, which highdicom's
    reader refuses inside a measurement group."""
    from vertxnet.formats.sr import CODES, _value_code

    assert all(len(value) <= 16 for value, _, _ in CODES.values())
    assert len({value for value, _, _ in CODES.values()}) == len(CODES)
    long_flag = _value_code("flag", "endplate_fit_failed_on_both_sides")
    assert len(long_flag.value) <= 16 and long_flag.meaning == "endplate_fit_failed_on_both_sides"
    assert _value_code("flag", "unnamed").value == "flag-unnamed"


def test_a_report_with_every_kind_of_item_reads_back_with_highdicom():
    result, m = measured_result()
    report = hd.sr.srread(io.BytesIO(roundtrip(to_dicom_sr(result, m, segmentation=to_dicom_seg(result)))))
    groups = report.content.get_planar_roi_measurement_groups()
    assert groups
    for group in report.content.get_planar_roi_measurement_groups():
        assert group.get_measurements()
        group.get_qualitative_evaluations()
