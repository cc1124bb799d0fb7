"""The source image's DICOM header as the DICOM outputs (SEG, SR) reference it, repaired where
de-identification left it unusable.

Anonymisation pipelines often strip or mangle what a referencing object needs: no SOP Class UID,
no Modality, UIDs replaced by hex strings. :func:`header_repairs` lists what the outputs need and
the header lacks, each with the value derived for it, and :func:`source_header` returns a copy of
the header with those values in place (the stored result keeps the header as read):

- **SOP Class UID** missing or invalid: the file meta's Media Storage SOP Class UID when valid,
  else from the Modality (CR, DX, MG, IO; DX and IO for processing when Presentation Intent Type
  says so), else Secondary Capture for colour images and Digital X-Ray for presentation for
  grayscale ones (a lateral spine film);
- **Modality** missing: the SOP Class's modality (DX, CR, MG, IO; OT for Secondary Capture);
- **Study, Series and SOP Instance UID** missing or not a valid UID (PS3.5 §9.1): a UID derived
  from the original value (or, when missing, from the pixel data's SHA-256), so the same original
  always maps to the same UID and the SEG and SR of one film agree;
- **Frame of Reference UID** invalid: replaced as above; missing: a new one derived from the
  pixels, only where the source's IOD requires one. Projection radiographs (CR, DX, MG, IO, XA,
  RF, Secondary Capture) need none; their SEG maps pixel for pixel onto the referenced image;
- **De-identification Method** missing where Patient Identity Removed is YES (Type 1C, and the
  outputs copy the flag): :data:`DEIDENTIFICATION_UNRECORDED`.

A result whose header needed any of these carries the flag ``dicom_header_repaired`` and lists
the repairs, original values included, in its JSON (``dicom_header_repairs``).

Absent Type 2 patient/study attributes (required, may be empty) are added empty; that is not a
repair, the standard allows it.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

#: Flag of a result whose DICOM header needed repairs (:func:`header_repairs`).
REPAIRED_FLAG = "dicom_header_repaired"

_CR = "1.2.840.10008.5.1.4.1.1.1"
_DX_PRESENTATION = "1.2.840.10008.5.1.4.1.1.1.1"
_DX_PROCESSING = "1.2.840.10008.5.1.4.1.1.1.1.1"
_MG_PRESENTATION = "1.2.840.10008.5.1.4.1.1.1.2"
_MG_PROCESSING = "1.2.840.10008.5.1.4.1.1.1.2.1"
_IO_PRESENTATION = "1.2.840.10008.5.1.4.1.1.1.3"
_IO_PROCESSING = "1.2.840.10008.5.1.4.1.1.1.3.1"
_SECONDARY_CAPTURE = "1.2.840.10008.5.1.4.1.1.7"
_XA = "1.2.840.10008.5.1.4.1.1.12.1"
_RF = "1.2.840.10008.5.1.4.1.1.12.2"

#: Modality -> SOP Class UID (for presentation, for processing).
_MODALITY_CLASSES = {
    "CR": (_CR, _CR),
    "DX": (_DX_PRESENTATION, _DX_PROCESSING),
    "MG": (_MG_PRESENTATION, _MG_PROCESSING),
    "IO": (_IO_PRESENTATION, _IO_PROCESSING),
}
#: SOP Class UID -> Modality, for a header that lacks one.
_CLASS_MODALITY = {
    _CR: "CR", _DX_PRESENTATION: "DX", _DX_PROCESSING: "DX", _MG_PRESENTATION: "MG", _MG_PROCESSING: "MG",
    _IO_PRESENTATION: "IO", _IO_PROCESSING: "IO", _SECONDARY_CAPTURE: "OT", _XA: "XA", _RF: "RF",
}  # fmt: skip
#: Image SOP classes whose IOD has no mandatory Frame of Reference (projection images).
_NO_FRAME_OF_REFERENCE_NEEDED = frozenset(_CLASS_MODALITY)
_INSTANCE_UIDS = ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID")
#: De-identification Method of outputs whose source says Patient Identity Removed without saying how.
DEIDENTIFICATION_UNRECORDED = "source image de-identified; method not recorded"
#: Type 2 patient/study attributes (required, may be empty) that highdicom copies from the source.
TYPE2_SOURCE_ATTRIBUTES = ("PatientName", "PatientID", "PatientBirthDate", "PatientSex", "AccessionNumber", "StudyID", "StudyDate",
                           "StudyTime", "ReferringPhysicianName")  # fmt: skip


@dataclass(frozen=True)
class HeaderRepair:
    """One attribute of the source header that the DICOM outputs could not use as it was."""

    attribute: str  # DICOM keyword
    original: str | None  # the value as read; None when absent
    value: str  # the value the outputs use instead
    reason: str  # "missing" | "invalid"

    def to_dict(self) -> dict[str, Any]:
        return {"attribute": self.attribute, "original": self.original, "value": self.value, "reason": self.reason}


def valid_uid(value: Any) -> bool:
    """Whether ``value`` is a valid DICOM UID (PS3.5 §9.1: dot-separated numbers without leading
    zeros, at most 64 characters)."""
    from pydicom.uid import RE_VALID_UID

    text = "" if value is None else str(value)
    return 0 < len(text) <= 64 and RE_VALID_UID.match(text) is not None


def _text(ds: Any, keyword: str) -> str | None:
    value = ds.get(keyword) if ds is not None else None
    if value is None:
        return None
    text = str(value).strip().rstrip("\x00")
    return text or None


def _derived_uid(*sources: str) -> str:
    from pydicom.uid import generate_uid

    return str(generate_uid(entropy_srcs=["vertxnet-source-header", *sources]))


def _sop_class(ds: Any) -> str:
    meta_class = _text(getattr(ds, "file_meta", None), "MediaStorageSOPClassUID")
    if meta_class is not None and valid_uid(meta_class):
        return meta_class
    modality = (_text(ds, "Modality") or "").upper()
    processing = (_text(ds, "PresentationIntentType") or "").upper() == "FOR PROCESSING"
    if modality in _MODALITY_CLASSES:
        return _MODALITY_CLASSES[modality][processing]
    photometric = (_text(ds, "PhotometricInterpretation") or "").upper()
    if photometric.startswith(("RGB", "YBR")):
        return _SECONDARY_CAPTURE
    return _DX_PROCESSING if processing else _DX_PRESENTATION


def header_repairs(ds: Any, pixel_sha256: str) -> list[HeaderRepair]:
    """What the DICOM outputs need and ``ds`` lacks, with the values used instead (see the module
    docstring); empty for a conformant header. ``pixel_sha256`` (the result's ``input.sha256``)
    seeds the UIDs of attributes that are missing altogether."""
    if ds is None:
        return []
    from pydicom.config import disable_value_validation

    with disable_value_validation():  # what is invalid is reported here, as a repair
        return _repairs(ds, pixel_sha256)


def _repairs(ds: Any, pixel_sha256: str) -> list[HeaderRepair]:
    repairs: list[HeaderRepair] = []
    sop_class = _text(ds, "SOPClassUID")
    if sop_class is None or not valid_uid(sop_class):
        derived = _sop_class(ds)
        repairs.append(HeaderRepair("SOPClassUID", sop_class, derived, "missing" if sop_class is None else "invalid"))
        sop_class = derived
    if _text(ds, "Modality") is None:
        repairs.append(HeaderRepair("Modality", None, _CLASS_MODALITY.get(sop_class, "OT"), "missing"))
    for keyword in _INSTANCE_UIDS:
        original = _text(ds, keyword)
        if original is None:
            repairs.append(HeaderRepair(keyword, None, _derived_uid(keyword, pixel_sha256), "missing"))
        elif not valid_uid(original):
            repairs.append(HeaderRepair(keyword, original, _derived_uid(keyword, original), "invalid"))
    frame = _text(ds, "FrameOfReferenceUID")
    if frame is not None and not valid_uid(frame):
        repairs.append(HeaderRepair("FrameOfReferenceUID", frame, _derived_uid("FrameOfReferenceUID", frame), "invalid"))
    elif frame is None and sop_class not in _NO_FRAME_OF_REFERENCE_NEEDED:
        repairs.append(HeaderRepair("FrameOfReferenceUID", None, _derived_uid("FrameOfReferenceUID", pixel_sha256), "missing"))
    removed = (_text(ds, "PatientIdentityRemoved") or "").upper() == "YES"
    if removed and _text(ds, "DeidentificationMethod") is None and not ds.get("DeidentificationMethodCodeSequence"):
        repairs.append(HeaderRepair("DeidentificationMethod", None, DEIDENTIFICATION_UNRECORDED, "missing"))
    return repairs


def source_header(ds: Any, repairs: list[HeaderRepair]) -> Any:
    """A copy of the header ``ds`` with ``repairs`` applied and absent Type 2 attributes present
    and empty: what highdicom is given as the source image of a SEG or SR."""
    from pydicom.config import disable_value_validation

    with disable_value_validation():  # the invalid values being replaced need no warning
        header = copy.deepcopy(ds)
    for repair in repairs:
        setattr(header, repair.attribute, repair.value)
        meta = getattr(header, "file_meta", None)
        if meta is not None and repair.attribute in ("SOPClassUID", "SOPInstanceUID"):
            setattr(meta, "MediaStorage" + repair.attribute, repair.value)
        if repair.attribute == "FrameOfReferenceUID" and "PositionReferenceIndicator" not in header:
            header.PositionReferenceIndicator = None
    for keyword in TYPE2_SOURCE_ATTRIBUTES:
        if keyword not in header:
            setattr(header, keyword, None)
    return header


__all__ = ["DEIDENTIFICATION_UNRECORDED", "REPAIRED_FLAG", "TYPE2_SOURCE_ATTRIBUTES", "HeaderRepair", "header_repairs", "source_header", "valid_uid"]
