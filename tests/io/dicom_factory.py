"""Builders of synthetic DICOM radiographs (and raster files) for the io, pipeline and CLI tests.

Everything is generated here with pydicom, so no real patient file is ever needed. Tests in
tests/io import it as ``dicom_factory`` (pytest puts a test file's folder on ``sys.path``); tests
elsewhere add that folder first::

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "io"))
    from dicom_factory import make_dicom, radiograph
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence as DicomSequence
from pydicom.uid import (
    DigitalXRayImageStorageForPresentation,
    ExplicitVRLittleEndian,
    generate_uid,
)

#: Identifiers planted in every factory file so tests can prove they never leak.
PATIENT_NAME = "Leakcheck^Patricia^Q"
PATIENT_ID = "PID-LEAK-90817"
ACCESSION = "ACC-LEAK-55123"


def radiograph(rows: int = 96, cols: int = 64, *, bits: int = 12, signed: bool = False, seed: int = 0) -> np.ndarray:
    """A small lateral-film-like image: dark soft tissue, a bright column of 'vertebrae', noise.

    Values span most of the ``bits``-bit range; the dtype is uint8/uint16 (int16 when signed).
    Bone (the bright blocks) is at high values, so MONOCHROME2 shows bone bright.
    """
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:rows, 0:cols]
    img = 0.15 + 0.1 * (x / cols)
    block_h = max(4, rows // 8)
    for k in range(1, 7):
        y0 = k * block_h + block_h // 4
        img = np.where((y >= y0) & (y < y0 + block_h * 3 // 4) & (x >= cols // 3) & (x < 2 * cols // 3), 0.85, img)
    img = np.clip(img + rng.normal(0, 0.02, img.shape), 0.0, 1.0)
    full = 2**bits - 1
    if signed:
        values = np.round(img * full - 2 ** (bits - 1)).astype(np.int16)
    else:
        values = np.round(img * full).astype(np.uint8 if bits <= 8 else np.uint16)
    return values


def make_dataset(
    pixels: np.ndarray | None = None,
    *,
    photometric: str = "MONOCHROME2",
    bits_stored: int | None = None,
    pixel_spacing: Sequence[float] | None = (0.15, 0.15),
    imager_pixel_spacing: Sequence[float] | None = None,
    rescale: tuple[float, float] | None = None,
    window: tuple[float, float] | tuple[Sequence[float], Sequence[float]] | None = None,
    voi_lut: np.ndarray | None = None,
    voi_lut_first: int = 0,
    number_of_frames: int | None = None,
    with_pixel_data: bool = True,
) -> Dataset:
    """A DX (for presentation) dataset, uncompressed, with planted patient identifiers.

    ``pixels`` defaults to :func:`radiograph` (12 bit). ``rescale`` is (slope, intercept);
    ``window`` is (center, width), either scalars or sequences for several windows; ``voi_lut``
    is a uint16 VOI LUT table whose first entry maps stored value ``voi_lut_first``.
    """
    if pixels is None:
        bits_stored = bits_stored or 12
        pixels = radiograph(bits=bits_stored)
    pixels = np.asarray(pixels)
    if bits_stored is None:
        bits_stored = 8 if pixels.dtype.itemsize == 1 else 16

    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID = DigitalXRayImageStorageForPresentation
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.PatientName = PATIENT_NAME
    ds.PatientID = PATIENT_ID
    ds.PatientBirthDate = "19570412"
    ds.PatientSex = "F"
    ds.AccessionNumber = ACCESSION
    ds.StudyInstanceUID = generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    ds.StudyDate = datetime.date(2024, 3, 5).strftime("%Y%m%d")
    ds.Modality = "DX"
    ds.BodyPartExamined = "SPINE"
    ds.ViewPosition = "LL"
    ds.InstanceNumber = 1
    if pixel_spacing is not None:
        ds.PixelSpacing = [float(v) for v in pixel_spacing]
    if imager_pixel_spacing is not None:
        ds.ImagerPixelSpacing = [float(v) for v in imager_pixel_spacing]
    if with_pixel_data:
        ds.set_pixel_data(pixels, photometric, bits_stored)
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    else:
        ds.SOPInstanceUID = generate_uid()
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.Rows, ds.Columns = pixels.shape[:2]
        ds.PhotometricInterpretation = photometric
    if number_of_frames is not None:
        ds.NumberOfFrames = number_of_frames
    if rescale is not None:
        ds.RescaleSlope, ds.RescaleIntercept = (float(v) for v in rescale)
        ds.RescaleType = "US"
    if window is not None:
        center, width = window
        ds.WindowCenter = list(center) if isinstance(center, Sequence) else center
        ds.WindowWidth = list(width) if isinstance(width, Sequence) else width
    if voi_lut is not None:
        table = np.asarray(voi_lut, dtype=np.uint16)
        item = Dataset()
        item.LUTDescriptor = [len(table), voi_lut_first, 16]
        item.LUTData = table.tolist()
        item["LUTDescriptor"].VR = "US"
        item["LUTData"].VR = "US"
        ds.VOILUTSequence = DicomSequence([item])
    return ds


def write(ds: Dataset, path: str | Path, *, preamble: bool = True) -> Path:
    """Write ``ds`` as a DICOM Part 10 file, or (``preamble=False``) as a bare implicit-VR dataset."""
    path = Path(path)
    if preamble:
        ds.save_as(path, enforce_file_format=True)
    else:
        bare = Dataset()
        bare.update(ds)
        pydicom.dcmwrite(path, bare, implicit_vr=True, little_endian=True)
    return path


def make_dicom(path: str | Path, pixels: np.ndarray | None = None, *, preamble: bool = True, **kwargs) -> Path:
    """Build with :func:`make_dataset` and write to ``path`` in one step."""
    return write(make_dataset(pixels, **kwargs), path, preamble=preamble)


def compressed(ds: Dataset, transfer_syntax: str) -> Dataset:
    """``ds`` re-encoded losslessly with pydicom's own encoders (RLE natively, JPEG 2000 via
    pylibjpeg-openjpeg, JPEG-LS via pyjpegls)."""
    ds.compress(transfer_syntax)
    return ds


def jpeg_baseline(pixels: np.ndarray | None = None, *, quality: int = 95) -> Dataset:
    """An 8-bit MONOCHROME2 dataset whose pixel data is a baseline JPEG (encoded by OpenCV's
    libjpeg and encapsulated by pydicom; pydicom has no JPEG encoder of its own)."""
    import cv2
    from pydicom.encaps import encapsulate
    from pydicom.uid import JPEGBaseline8Bit

    pixels = radiograph(bits=8) if pixels is None else np.asarray(pixels, dtype=np.uint8)
    ok, buf = cv2.imencode(".jpg", pixels, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise RuntimeError("OpenCV could not encode the JPEG test frame")
    ds = make_dataset(pixels, bits_stored=8)
    ds.PixelData = encapsulate([buf.tobytes()])
    ds["PixelData"].VR = "OB"
    ds.file_meta.TransferSyntaxUID = JPEGBaseline8Bit
    ds.LossyImageCompression = "01"
    return ds


def make_multiframe(path: str | Path, frames: int = 3) -> Path:
    """An uncompressed multi-frame DX-like file."""
    frame = radiograph()
    stack = np.stack([frame] * frames)
    ds = make_dataset(frame)
    ds.set_pixel_data(stack, "MONOCHROME2", 12)
    ds.NumberOfFrames = frames
    return write(ds, path)


__all__ = [
    "ACCESSION",
    "PATIENT_ID",
    "PATIENT_NAME",
    "compressed",
    "jpeg_baseline",
    "make_dataset",
    "make_dicom",
    "make_multiframe",
    "radiograph",
    "write",
]
