"""DICOM SEG and SR are conformant: dciodvfy (dicom3tools) finds no error, and highdicom and pydicom
read them back, for a conformant DX film, a de-identified film stripped the way VinDr-SpineXR's are
(no SOP Class, no Modality, no Frame of Reference, hex strings for UIDs, a JPEG 2000 frame) and a
MONOCHROME1 CR film. The films go through vertxnet.io.load_image as vertx-infer reads them.

dciodvfy comes from scripts/install-system-packages.sh; these tests fail without it."""

from __future__ import annotations

import io
import shutil
import subprocess
import warnings
from pathlib import Path

import highdicom as hd
import numpy as np
import pydicom
import pytest
from measure_film import LEVELS, lumbar_polygons
from pydicom.uid import ComputedRadiographyImageStorage, JPEG2000Lossless, generate_uid

from dicom_factory import make_dataset, radiograph, write
from vertxnet.formats.dicom_seg import to_dicom_seg
from vertxnet.formats.dicom_source import REPAIRED_FLAG, header_repairs, valid_uid
from vertxnet.formats.sr import to_dicom_sr
from vertxnet.io import load_image
from vertxnet.measure import measure
from vertxnet.raster import polygon_area, polygon_bbox
from vertxnet.result import InputInfo, ModelInfo, Result, Vertebra

SIZE = 400
HEX_UIDS = {"StudyInstanceUID": "a3f9c0de1b2244e98c7d61f0", "SeriesInstanceUID": "9b8c7d6e5f4a3b2c1d0e",
            "SOPInstanceUID": "e4d3c2b1a0f9e8d7c6b5a4f3"}  # fmt: skip


def _pixels() -> np.ndarray:
    return radiograph(SIZE, SIZE, bits=12)


def conformant_dx(path: Path) -> Path:
    """A DX film with a Frame of Reference and Patient Orientation (what SliceThickness 1C and
    PatientOrientation 2C hinge on)."""
    ds = make_dataset(_pixels(), bits_stored=12)
    ds.FrameOfReferenceUID = generate_uid()
    ds.PositionReferenceIndicator = ""
    ds.PatientOrientation = ["P", "F"]
    return write(ds, path)


def stripped_vindr(path: Path) -> Path:
    """De-identified as VinDr-SpineXR films are: no SOP Class UID (file meta included), no
    Modality, no Frame of Reference, hex strings for the instance UIDs, Patient Identity Removed
    without a method; JPEG 2000 lossless."""
    ds = make_dataset(_pixels(), bits_stored=12)
    ds.compress(JPEG2000Lossless)  # pydicom's encoder through pylibjpeg-openjpeg
    del ds.SOPClassUID, ds.Modality
    del ds.file_meta.MediaStorageSOPClassUID
    ds.PatientIdentityRemoved = "YES"  # without saying how (De-identification Method is Type 1C)
    ds.preamble = b"\0" * 128
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pydicom warns about each invalid UID it is given
        for keyword, value in HEX_UIDS.items():
            setattr(ds, keyword, value)
        ds.file_meta.MediaStorageSOPInstanceUID = HEX_UIDS["SOPInstanceUID"]
        pydicom.dcmwrite(path, ds, enforce_file_format=False)
    return path


def monochrome1_cr(path: Path) -> Path:
    ds = make_dataset(4095 - _pixels(), photometric="MONOCHROME1", bits_stored=12, pixel_spacing=None, imager_pixel_spacing=(0.2, 0.2))
    ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID = ComputedRadiographyImageStorage
    ds.Modality = "CR"
    return write(ds, path)


FILMS = {"dx": conformant_dx, "vindr": stripped_vindr, "cr": monochrome1_cr}


def film_result(path: Path) -> tuple[Result, object]:
    """A measured result on the loaded film: the six lumbar bodies of measure_film."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pydicom's warnings about the stripped film's UIDs
        loaded = load_image(path)
    polys = lumbar_polygons()
    vertebrae = [
        Vertebra(label=label, polygon=p, area_px=polygon_area(p), area_mm2=None, centroid=tuple(p.mean(0)),
                 bbox=polygon_bbox(p), score=0.9, source="agreement")
        for p, label in zip(polys, LEVELS)
    ]
    result = Result(
        input=InputInfo(path=str(path), width=loaded.width, height=loaded.height, pixel_spacing_mm=loaded.pixel_spacing_mm, sha256=loaded.sha256),
        view="lumbar", reference="S1", vertebrae=vertebrae, excluded=[], flags=list(loaded.flags), timings_ms={},
        model=ModelInfo(name="demo", version="0.1", sha256="0" * 64, backend="onnxruntime-cpu"), pixels=np.asarray(loaded.pixels),
        dicom=loaded.dicom,
    )
    result.measurements = measure(polys, LEVELS, pixel_spacing_mm=loaded.pixel_spacing_mm, image=np.asarray(loaded.pixels))
    return result, loaded


def dciodvfy_errors(path: Path) -> list[str]:
    """The Error lines dciodvfy reports for ``path`` (warnings, e.g. about a private coding scheme, are
    not errors)."""
    exe = shutil.which("dciodvfy")
    assert exe is not None, "dciodvfy (Debian package dicom3tools) is not installed: run scripts/install-system-packages.sh"
    run = subprocess.run([exe, str(path)], capture_output=True, text=True, timeout=120)
    lines = (run.stdout + run.stderr).splitlines()
    assert any(line.strip() in ("Segmentation", "ComprehensiveSR") for line in lines), lines  # it recognised the IOD
    return [line for line in lines if line.startswith(("Error", "Abort"))]


def _save(dataset, path: Path) -> Path:
    dataset.save_as(path, enforce_file_format=True)
    return path


@pytest.mark.parametrize("kind", sorted(FILMS))
def test_seg_and_sr_pass_dciodvfy_and_read_back(kind, tmp_path):
    source = FILMS[kind](tmp_path / f"{kind}.dcm")
    result, loaded = film_result(source)
    seg = to_dicom_seg(result)
    sr = to_dicom_sr(result, segmentation=seg)
    seg_path, sr_path = _save(seg, tmp_path / "out.seg.dcm"), _save(sr, tmp_path / "out.sr.dcm")

    assert dciodvfy_errors(seg_path) == []
    assert dciodvfy_errors(sr_path) == []

    # pydicom: the SEG's frames derive from the source; the SR's evidence is the source and the SEG
    seg_ds, sr_ds = pydicom.dcmread(seg_path), pydicom.dcmread(sr_path)
    referenced = seg_ds.PerFrameFunctionalGroupsSequence[0].DerivationImageSequence[0].SourceImageSequence[0]
    evidence = {item.ReferencedSOPInstanceUID for study in sr_ds.CurrentRequestedProcedureEvidenceSequence
                for series in study.ReferencedSeriesSequence for item in series.ReferencedSOPSequence}
    assert evidence == {referenced.ReferencedSOPInstanceUID, seg_ds.SOPInstanceUID}
    for ds in (seg_ds, sr_ds):
        assert all(valid_uid(ds[k].value) for k in ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID"))
        assert ds.StudyInstanceUID == seg_ds.StudyInstanceUID  # one study: the source's

    # highdicom reads both back: six segments (five named levels and the unnamed vertebra), the
    # first one L1's mask on the source's pixel grid; one planar ROI group per vertebra
    seg_back = hd.seg.segread(seg_path)
    assert seg_back.number_of_segments == 6
    l1 = seg_back.get_pixels_by_source_instance(source_sop_instance_uids=[referenced.ReferencedSOPInstanceUID], segment_numbers=[1])
    assert l1.shape[1:3] == (SIZE, SIZE) and 1000 < int(l1.sum()) < 1400  # a 40 x 30 px body
    report = hd.sr.srread(sr_path)
    groups = report.content.get_planar_roi_measurement_groups()
    assert len(groups) == len(LEVELS)
    assert {g.reference_type.value for g in groups} == {"121214", "111030"}  # SEG frames; the unnamed one's outline
    header = loaded.dicom
    if kind == "vindr":
        assert REPAIRED_FLAG in result.flags
        repairs = {r.attribute: r for r in result.dicom_repairs}
        assert set(repairs) == {"SOPClassUID", "Modality", "DeidentificationMethod", *HEX_UIDS}
        assert seg_ds.PatientIdentityRemoved == "YES" and seg_ds.DeidentificationMethod == repairs["DeidentificationMethod"].value
        assert repairs["SOPClassUID"].value == referenced.ReferencedSOPClassUID == "1.2.840.10008.5.1.4.1.1.1.1"  # DX for presentation
        assert {k: repairs[k].original for k in HEX_UIDS} == HEX_UIDS
        assert referenced.ReferencedSOPInstanceUID == repairs["SOPInstanceUID"].value
        assert seg_ds.StudyInstanceUID == repairs["StudyInstanceUID"].value
        assert "FrameOfReferenceUID" not in seg_ds  # a projection film needs none; none is invented
        # the same film gives the same UIDs, so a SEG and an SR written apart still agree
        assert [r.value for r in header_repairs(header, result.input.sha256)] == [r.value for r in result.dicom_repairs]
    else:
        assert REPAIRED_FLAG not in result.flags and result.dicom_repairs == []
        assert referenced.ReferencedSOPInstanceUID == header.SOPInstanceUID
        assert referenced.ReferencedSOPClassUID == header.SOPClassUID
        assert seg_ds.StudyInstanceUID == header.StudyInstanceUID
    if kind == "dx":
        assert seg_ds.FrameOfReferenceUID == header.FrameOfReferenceUID
        assert list(seg_ds.PatientOrientation) == ["P", "F"]
    else:
        assert "PatientOrientation" in seg_ds and not seg_ds.PatientOrientation  # Type 2C: present, empty


def _classless(rgb: bool = False, **changes):
    """A dataset without SOP Class UID (nor file meta class), with ``changes`` (None deletes)."""
    if rgb:
        ds = make_dataset(np.stack([(_pixels() >> 4).astype(np.uint8)] * 3, axis=-1), photometric="RGB", bits_stored=8)
    else:
        ds = make_dataset(_pixels(), bits_stored=12)
    del ds.SOPClassUID, ds.file_meta.MediaStorageSOPClassUID
    for keyword, value in changes.items():
        if value is None:
            delattr(ds, keyword)
        else:
            setattr(ds, keyword, value)
    return ds


def _derived(ds) -> dict[str, str]:
    return {r.attribute: r.value for r in header_repairs(ds, "0" * 64)}


def test_repairs_derive_the_sop_class_from_the_context():
    base = make_dataset(_pixels(), bits_stored=12)
    assert header_repairs(base, "0" * 64) == []
    assert _derived(_classless()) == {"SOPClassUID": "1.2.840.10008.5.1.4.1.1.1.1"}  # DX for presentation
    assert _derived(_classless(Modality="CR")) == {"SOPClassUID": ComputedRadiographyImageStorage}
    assert _derived(_classless(PresentationIntentType="FOR PROCESSING"))["SOPClassUID"] == "1.2.840.10008.5.1.4.1.1.1.1.1"
    assert _derived(_classless(Modality=None)) == {"SOPClassUID": "1.2.840.10008.5.1.4.1.1.1.1", "Modality": "DX"}
    assert _derived(_classless(rgb=True, Modality=None)) == {"SOPClassUID": "1.2.840.10008.5.1.4.1.1.7", "Modality": "OT"}
    # the file meta's class, when valid, is the file's own statement
    ds = _classless()
    ds.file_meta.MediaStorageSOPClassUID = ComputedRadiographyImageStorage
    assert _derived(ds) == {"SOPClassUID": ComputedRadiographyImageStorage}
    # a CT-like source, whose IOD requires a Frame of Reference, gets a new one; an invalid one is replaced
    ds = make_dataset(_pixels(), bits_stored=12)
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
    assert [r.attribute for r in header_repairs(ds, "0" * 64)] == ["FrameOfReferenceUID"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds.FrameOfReferenceUID = "not-a-uid"
    (repair,) = header_repairs(ds, "0" * 64)
    assert (repair.original, repair.reason) == ("not-a-uid", "invalid") and valid_uid(repair.value)


def test_valid_uid_follows_ps3_5():
    assert valid_uid("1.2.840.10008.5.1.4.1.1.1.1") and valid_uid("2.25.0")
    for bad in ("a3f9c0de", "1.2.03", "1..2", "", None, "1." + "1" * 70, "1.2.3 "):
        assert not valid_uid(bad), bad


def test_sr_frame_references_name_one_frame_only(tmp_path):
    """PS3.3 allows a Referenced Frame Number or a Referenced Segment Number in a SOP reference,
    never both (the error dciodvfy reports on highdicom's default)."""
    result, _ = film_result(conformant_dx(tmp_path / "dx.dcm"))
    seg = to_dicom_seg(result)
    buffer = io.BytesIO()
    to_dicom_sr(result, segmentation=seg).save_as(buffer, enforce_file_format=True)
    found = []

    def walk(items):
        for item in items:
            for ref in item.get("ReferencedSOPSequence", []):
                if ref.ReferencedSOPInstanceUID == seg.SOPInstanceUID:
                    found.append(ref)
            walk(item.get("ContentSequence", []))

    walk(pydicom.dcmread(io.BytesIO(buffer.getvalue())).ContentSequence)
    assert len(found) == sum(label is not None for label in LEVELS)
    assert all("ReferencedFrameNumber" in ref and "ReferencedSegmentNumber" not in ref for ref in found)
