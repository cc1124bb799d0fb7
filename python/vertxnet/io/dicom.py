"""DICOM radiographs (pydicom and its decoder plugins): Modality LUT, VOI LUT or window,
MONOCHROME1 inversion, pixel spacing; the header (without pixel data) kept for DICOM SEG."""

from __future__ import annotations

import io
import math
import warnings
from dataclasses import replace
from pathlib import Path

import numpy as np

from ..errors import InputError
from .headers import _OTHER_MAGICS
from .image import (
    LoadedImage,
    _check_dimensions,
    _check_not_constant,
    _check_size,
    _make,
    _make_reduced,
    _normalise_dtype,
    _sha256_pixels,
    _to_gray,
    _Unusable,
    _valid_spacing,
    reduction_factor,
)
from .jpeg2000 import JPEG2000_SYNTAXES, decode_full, decode_reduced

_DICOM_SUFFIXES = {".dcm", ".dicom", ".dic", ".ima", ""}
_SUPPORTED_PHOTOMETRIC = {"MONOCHROME1", "MONOCHROME2", "RGB", "YBR_FULL", "YBR_FULL_422", "YBR_ICT", "YBR_RCT"}


def _not_dicom_reason(path: str) -> str:
    if Path(path).suffix.lower() in _DICOM_SUFFIXES:
        return "not a DICOM file (no DICM preamble and not parseable)"
    return "unrecognised file format: not PNG, JPEG, TIFF or DICOM"


def _read_dataset(path: str, data: bytes, has_preamble: bool):
    import pydicom
    from pydicom.errors import InvalidDicomError

    if not has_preamble:
        for magic, what in _OTHER_MAGICS:
            if data.startswith(magic):
                raise InputError(path, f"{what} files are not supported: use PNG, JPEG, TIFF or DICOM")
    try:
        if has_preamble:
            return pydicom.dcmread(io.BytesIO(data), force=False)
        # No preamble: accept only what parses into a dataset with a pixel module; probing a
        # random file this way produces parser warnings that mean nothing to the user.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ds = pydicom.dcmread(io.BytesIO(data), force=True)
            if "PixelData" not in ds or "Rows" not in ds or "Columns" not in ds:
                raise InputError(path, _not_dicom_reason(path))
            int(ds.Rows), int(ds.Columns)
    except InputError:
        raise
    except InvalidDicomError:
        raise InputError(path, _not_dicom_reason(path)) from None
    except Exception as exc:  # noqa: BLE001 - pydicom raises many types on corrupt input
        if not has_preamble:
            raise InputError(path, _not_dicom_reason(path)) from None
        raise InputError(path, f"DICOM file is truncated or corrupt ({_one_line(exc)})") from None
    return ds


def _ensure_transfer_syntax(ds) -> None:
    """A dataset without file meta was read in some uncompressed encoding: record which."""
    from pydicom.uid import ExplicitVRBigEndian, ExplicitVRLittleEndian, ImplicitVRLittleEndian

    if ds.file_meta.get("TransferSyntaxUID"):
        return
    if ds["PixelData"].is_undefined_length:
        raise _Unusable("DICOM has compressed pixel data but no transfer syntax in its file meta")
    ds.file_meta.TransferSyntaxUID = {
        (True, True): ImplicitVRLittleEndian,
        (False, True): ExplicitVRLittleEndian,
        (False, False): ExplicitVRBigEndian,
    }.get(tuple(ds.original_encoding), ImplicitVRLittleEndian)


def _one_line(exc: BaseException, limit: int = 400) -> str:
    """The message on one line: pydicom's "exceptions were raised by all available plugins:"
    lists one plugin per line, and those lines are the reason."""
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    if not lines:
        return type(exc).__name__
    text = lines[0] if not lines[0].endswith(":") else f"{lines[0]} {'; '.join(lines[1:])}".strip()
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _dicom_int(ds, keyword: str, default: int | None = None) -> int | None:
    value = ds.get(keyword, default)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _nominal_range(ds, bits_stored: int, signed: bool) -> tuple[float, float]:
    if signed:
        return -(2.0 ** (bits_stored - 1)), 2.0 ** (bits_stored - 1) - 1
    return 0.0, 2.0**bits_stored - 1


def _lut_range(item) -> tuple[float, float]:
    depth = int(item.LUTDescriptor[2])
    return 0.0, 2.0**depth - 1


def _load_dicom(path: str, data: bytes, max_pixels: int, min_side: int, has_preamble: bool, model_size: int | None = None,
                background: bool = False) -> LoadedImage:
    ds = _read_dataset(path, data, has_preamble)
    flags: list[str] = []
    reduced = None
    try:
        if "PixelData" not in ds:
            if "FloatPixelData" in ds or "DoubleFloatPixelData" in ds:
                raise _Unusable("DICOM float pixel data is not supported")
            raise _Unusable("DICOM has no pixel data")
        _ensure_transfer_syntax(ds)
        rows, cols = _dicom_int(ds, "Rows"), _dicom_int(ds, "Columns")
        if rows is None or cols is None:
            raise _Unusable("DICOM Rows/Columns are missing or invalid")
        frames = _dicom_int(ds, "NumberOfFrames", 1)
        if frames is None or frames < 1:
            raise _Unusable("DICOM NumberOfFrames is invalid")
        if frames > 1:
            raise _Unusable(
                f"multi-frame DICOM ({frames} frames) not supported: export the frame to segment as a single-frame image"
            )
        _check_dimensions(cols, rows, max_pixels)
        photometric = str(ds.get("PhotometricInterpretation", "")).strip().upper()
        if photometric not in _SUPPORTED_PHOTOMETRIC:
            shown = photometric or "missing"
            raise _Unusable(
                f"DICOM photometric interpretation {shown} is not supported (radiographs are MONOCHROME1/2)"
            )
        bits_stored = _dicom_int(ds, "BitsStored")
        if bits_stored is None or not 1 <= bits_stored <= 32:
            raise _Unusable("DICOM BitsStored is missing or invalid")
        signed = _dicom_int(ds, "PixelRepresentation", 0) == 1
        factor = reduction_factor(cols, rows, model_size)
        if factor > 1 and photometric in ("MONOCHROME1", "MONOCHROME2") and not signed:
            reduced = _reduced_frame(ds, factor)
        if reduced is not None:
            stored = reduced.pixels
            _check_size(cols, rows, min_side)
            _check_not_constant(stored)
            pixels = _grayscale_transforms(ds, stored, bits_stored, signed, photometric, flags)
            reduced = replace(reduced, pixels=np.ascontiguousarray(pixels))
            spacing = _spacing(ds, flags)
            del ds.PixelData
            # The full-resolution pixels and their hash: the whole eager path, when first needed.
            def decode_full() -> tuple[np.ndarray, str]:
                full = _load_dicom(path, data, max_pixels, min_side, has_preamble, background=True)
                return full.pixels, full.sha256

            return _make_reduced(reduced, decode_full, path, bits_stored, spacing, flags, "dicom", ds)
        try:
            stored = _stored_pixels(ds, background)
        except Exception as exc:  # noqa: BLE001 - decoder plugins raise many types
            ts = ds.file_meta.get("TransferSyntaxUID")
            ts_name = getattr(ts, "name", str(ts))
            raise _Unusable(f"cannot decode DICOM pixel data ({ts_name}): {_one_line(exc)}") from None
        if stored.shape[:2] != (rows, cols):
            raise _Unusable(f"DICOM pixel data has shape {stored.shape}, expected {rows}x{cols}")
        if stored.ndim == 3:
            pixels = _normalise_dtype(_to_gray(stored, "RGB", flags))
            _check_size(cols, rows, min_side)
            _check_not_constant(pixels)
        else:
            _check_size(cols, rows, min_side)
            _check_not_constant(stored)
            pixels = _grayscale_transforms(ds, stored, bits_stored, signed, photometric, flags)
        spacing = _spacing(ds, flags)
    except _Unusable as exc:
        raise InputError(path, exc.reason) from None
    except MemoryError:
        raise
    except Exception as exc:  # noqa: BLE001 - pydicom parses elements lazily; damage surfaces here
        raise InputError(path, f"DICOM file is corrupt ({_one_line(exc)})") from None
    del ds.PixelData  # keep only the header as the reference for DICOM SEG
    # The hash of the stored values waits for whoever needs it (the pipeline starts it beside the networks).
    return _make(pixels, path, bits_stored, spacing, flags, None, "dicom", ds, digest_of=lambda: _sha256_pixels(stored))


def _spacing(ds, flags: list[str]) -> tuple[float, float] | None:
    spacing = _valid_spacing(ds.get("PixelSpacing"))
    if spacing is None:
        spacing = _valid_spacing(ds.get("ImagerPixelSpacing"))
        if spacing is not None:
            # Detector-plane spacing: not corrected for geometric magnification.
            flags.append("spacing_from_imager")
    if spacing is None:
        flags.append("no_pixel_spacing")
    return spacing


def _stored_pixels(ds, background: bool) -> np.ndarray:
    """``ds.pixel_array``. A JPEG 2000 frame decoded beside the networks (``background``) goes
    through OpenCV, which releases the GIL while it decodes (:func:`.jpeg2000.decode_full`);
    pydicom's plugins when OpenCV cannot give the same values."""
    if background and str(ds.file_meta.get("TransferSyntaxUID", "")) in JPEG2000_SYNTAXES:
        frame = _single_frame(ds)
        bits = _dicom_int(ds, "BitsAllocated")
        if frame is not None and bits in (8, 16) and _dicom_int(ds, "SamplesPerPixel", 1) == 1:
            pixels = decode_full(frame, int(ds.Columns), int(ds.Rows), np.uint8 if bits == 8 else np.uint16)
            if pixels is not None:
                return pixels
    return ds.pixel_array


def _single_frame(ds) -> bytes | None:
    """The codestream of a single-frame encapsulated Pixel Data, or None."""
    if not ds["PixelData"].is_undefined_length:
        return None
    try:
        from pydicom.encaps import get_frame

        return get_frame(ds.PixelData, 0, number_of_frames=1)
    except Exception:  # noqa: BLE001 - a damaged encapsulation: pydicom's own path reports it
        return None


def _reduced_frame(ds, factor: int):
    """The single JPEG 2000 frame decoded ``factor`` times smaller (a
    :class:`~vertxnet.preprocess.Reduced` of stored values), or None when the frame is not
    JPEG 2000 or the codec cannot reduce it (the full-resolution path then decodes it)."""
    if str(ds.file_meta.get("TransferSyntaxUID", "")) not in JPEG2000_SYNTAXES:
        return None
    frame = _single_frame(ds) if _dicom_int(ds, "SamplesPerPixel", 1) == 1 else None
    if frame is None:
        return None
    try:
        dtype = np.uint8 if _dicom_int(ds, "BitsAllocated", 16) == 8 else np.uint16
        return decode_reduced(frame, factor, int(ds.Columns), int(ds.Rows), dtype)
    except Exception:  # noqa: BLE001 - anything odd: the full-resolution path decides
        return None


# Integer images with at most this many distinct possible values go through one lookup table.
_MAX_TABLE_ENTRIES = 1 << 17


def _grayscale_transforms(ds, stored: np.ndarray, bits_stored: int, signed: bool, photometric: str, flags: list[str]):
    """Modality LUT, VOI LUT or window, then MONOCHROME1 inversion within the nominal range.

    For integer pixels (every radiograph in practice) the transforms run once over the range of
    stored values and the image is mapped through the resulting table, as DICOM viewers do: the
    same pydicom semantics at a fraction of the cost of running them on millions of pixels.
    """
    vmin, vmax = int(stored.min()), int(stored.max())
    if stored.dtype.kind in "ui" and vmax - vmin < _MAX_TABLE_ENTRIES:
        domain = np.arange(vmin, vmax + 1, dtype=np.int64).astype(stored.dtype)
        table, voi_reason = _transform_values(ds, domain, bits_stored, signed, photometric, flags)
        if table is domain:
            return _normalise_dtype(stored)
        if table.dtype.kind == "f":
            table = table.astype(np.float32)
        index = stored if vmin == 0 and stored.dtype.kind == "u" else stored.astype(np.int64) - vmin
        pixels = table[index]
    else:
        pixels, voi_reason = _transform_values(ds, stored, bits_stored, signed, photometric, flags)
    if voi_reason:
        _check_not_constant(pixels, f"image is constant after {voi_reason}: nothing to segment")
    return _normalise_dtype(pixels)


def _transform_values(ds, values: np.ndarray, bits_stored: int, signed: bool, photometric: str, flags: list[str]):
    """(transformed values, description of the VOI applied or ""); ``values`` itself if unchanged."""
    from pydicom.pixels import apply_modality_lut, apply_voi, apply_windowing

    pixels: np.ndarray = values
    lo, hi = _nominal_range(ds, bits_stored, signed)
    if ds.get("ModalityLUTSequence"):
        try:
            pixels = apply_modality_lut(pixels, ds)
            lo, hi = _lut_range(ds.ModalityLUTSequence[0])
            flags.append("modality_lut_applied")
        except Exception as exc:  # noqa: BLE001
            raise _Unusable(f"DICOM Modality LUT is invalid: {_one_line(exc)}") from None
    elif "RescaleSlope" in ds and "RescaleIntercept" in ds:
        slope, intercept = float(ds.RescaleSlope), float(ds.RescaleIntercept)
        if not (math.isfinite(slope) and math.isfinite(intercept)) or slope == 0:
            raise _Unusable(f"DICOM RescaleSlope/RescaleIntercept are invalid ({slope}, {intercept})")
        if (slope, intercept) != (1.0, 0.0):
            pixels = apply_modality_lut(pixels, ds)
            lo, hi = sorted((lo * slope + intercept, hi * slope + intercept))
            flags.append("modality_lut_applied")

    voi_reason = ""
    voi_item = ds.VOILUTSequence[0] if ds.get("VOILUTSequence") else None
    if voi_item is not None and "LUTDescriptor" in voi_item and "LUTData" in voi_item:
        try:
            pixels = apply_voi(pixels, ds)
            lo, hi = _lut_range(voi_item)
            flags.append("voi_lut_applied")
            voi_reason = "the DICOM VOI LUT"
        except Exception:  # noqa: BLE001 - a broken VOI LUT only loses the display window
            flags.append("invalid_voi_ignored")
    elif ds.get("WindowCenter") is not None and ds.get("WindowWidth") is not None:
        try:
            # pydicom maps the window onto the modality output range [lo, hi].
            pixels = apply_windowing(pixels, ds)
            flags.append("voi_window_applied")
            center = ds["WindowCenter"].value
            width = ds["WindowWidth"].value
            center = center[0] if ds["WindowCenter"].VM > 1 else center
            width = width[0] if ds["WindowWidth"].VM > 1 else width
            voi_reason = f"the DICOM window (center {float(center):g}, width {float(width):g})"
        except Exception:  # noqa: BLE001
            flags.append("invalid_voi_ignored")

    if photometric == "MONOCHROME1":
        if pixels.dtype.kind == "u" and lo == 0 and hi <= np.iinfo(pixels.dtype).max:
            # Stays unsigned; clipping guards against values above BitsStored (stray high bits).
            pixels = (int(hi) - pixels.astype(np.int64)).clip(0, int(hi)).astype(pixels.dtype)
        else:
            pixels = np.subtract(lo + hi, pixels, dtype=np.float64)
        flags.append("inverted_monochrome1")
    return pixels, voi_reason
