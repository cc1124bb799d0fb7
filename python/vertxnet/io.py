"""Image input: PNG, JPEG, TIFF and DICOM radiographs as a 2-D grayscale array, bone bright.

Everything a user can hand us is checked before it costs memory or time: the file is stat-ed
(missing, directory, FIFO, empty, oversized), the format is recognised by its magic bytes (never
by its extension), the image dimensions are read from the PNG/JPEG/TIFF header or the DICOM
Rows/Columns *before* decoding so that a decompression bomb is refused without allocating, and
every decode failure becomes one :class:`~vertxnet.errors.InputError` naming the file and the
reason.

Pixel values
    * PNG/JPEG/TIFF: the samples as stored (uint8, uint16; float TIFFs as float32). Colour images
      are converted to gray (ITU-R BT.601 weights, flag ``rgb_converted``) unless they are colour
      photographs (see :data:`COLOUR_CHROMA_THRESHOLD`). EXIF orientation is not applied.
    * DICOM: stored values → Modality LUT (LUT sequence or Rescale Slope/Intercept, flag
      ``modality_lut_applied``) → VOI LUT sequence (flag ``voi_lut_applied``) or the first Window
      Center/Width (flag ``voi_window_applied``); with neither the values are left as they are (the
      pipeline windows by percentiles anyway). MONOCHROME1 is then inverted within its nominal
      output range so that bone is bright (flag ``inverted_monochrome1``). The result is uint8 or
      uint16 when the values are unsigned integers that need no transform, otherwise float32.
      Compressed transfer syntaxes decode through pydicom's plugins (RLE natively; JPEG, JPEG
      Lossless and JPEG-LS via pylibjpeg-libjpeg; JPEG 2000 via pylibjpeg-openjpeg). Multi-frame
      DICOM is refused rather than guessing which frame is the radiograph.

Flags
    ``no_pixel_spacing`` (no usable spacing), ``spacing_from_imager`` (ImagerPixelSpacing used:
    detector plane, not corrected for magnification), ``rgb_converted``, ``alpha_ignored``,
    ``tiff_first_page_only``, ``modality_lut_applied``, ``voi_lut_applied``,
    ``voi_window_applied``, ``invalid_voi_ignored`` (a VOI the file carries but pydicom rejects,
    e.g. Window Width 0: values are left unwindowed), ``inverted_monochrome1``.

``sha256``
    The SHA-256 of the decoded pixel array *as stored* — before colour conversion, LUTs, windowing
    or inversion — as C-ordered little-endian bytes (colour samples in R, G, B(, A) order). It
    identifies the pixel content, not the file: a DICOM re-encoded losslessly (e.g. JPEG 2000
    lossless) keeps its hash, and the hash carries no patient identifier. Reproduce it with
    ``hashlib.sha256(np.ascontiguousarray(a, a.dtype.newbyteorder("<")).tobytes()).hexdigest()``
    where ``a`` is ``ds.pixel_array`` (DICOM) or the decoded RGB(A)/gray samples.

Patient identifiers are never copied into any field; the DICOM header (without Pixel Data) is
kept only as the ``dicom`` reference for writing DICOM SEG that points back at the source image.
"""

from __future__ import annotations

import hashlib
import io
import math
import os
import stat
import struct
import threading
import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np

from .errors import InputError

if TYPE_CHECKING:
    import pydicom

#: Images whose header claims more pixels than this are refused before decoding.
DEFAULT_MAX_PIXELS = 200_000_000
#: Images smaller than this in either dimension carry no usable anatomy.
DEFAULT_MIN_SIDE = 32
#: A pixel is "coloured" when max(R, G, B) - min(R, G, B) exceeds this share of full scale
#: (2**bits - 1 for the smallest bit depth, at least 8, that holds the image's largest sample).
COLOUR_CHROMA_THRESHOLD = 0.10
#: An RGB image is refused as a colour photograph when more than this share of its pixels is
#: coloured. Gray radiographs saved as RGB (channels equal, or JPEG chroma noise of a few levels)
#: and films with small coloured annotations or markers stay well below it.
COLOUR_PIXEL_FRACTION = 0.05

# Room beyond the pixel payload for headers, metadata, ICC profiles, DICOM overlays and the like.
_FILE_SLACK_BYTES = 16 << 20

SOURCE_FORMATS = ("png", "jpeg", "tiff", "dicom", "array")

_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
_JPEG_MAGIC = b"\xff\xd8\xff"
_TIFF_MAGICS = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")
# Formats we recognise only to name them in the error.
_OTHER_MAGICS = (
    (b"BM", "BMP"),
    (b"GIF8", "GIF"),
    (b"\x00\x00\x00\x0cjP  \r\n\x87\n", "JPEG 2000 (JP2)"),
    (b"\xff\x4f\xff\x51", "JPEG 2000 codestream"),
    (b"RIFF", "RIFF/WebP"),
    (b"%PDF", "PDF"),
    (b"PK\x03\x04", "ZIP archive"),
    (b"\x1f\x8b", "gzip archive"),
)
_DICOM_SUFFIXES = {".dcm", ".dicom", ".dic", ".ima", ""}
_SUPPORTED_PHOTOMETRIC = {"MONOCHROME1", "MONOCHROME2", "RGB", "YBR_FULL", "YBR_FULL_422", "YBR_ICT", "YBR_RCT"}
# JPEG start-of-frame markers (SOF0-3, 5-7, 9-11, 13-15); DHT (C4), JPG (C8) and DAC (CC) are not.
_JPEG_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


@dataclass(frozen=True, eq=False)
class LoadedImage:
    """A decoded radiograph at its original size. ``pixels`` is read-only.

    Compared by identity (an array field has no single truth value); compare ``sha256`` instead.
    """

    pixels: np.ndarray
    path: str | None
    width: int
    height: int
    bits_stored: int | None
    pixel_spacing_mm: tuple[float, float] | None  # (row, column) spacing in mm
    flags: tuple[str, ...]
    sha256: str
    source_format: str
    dicom: pydicom.Dataset | None = None

    def __repr__(self) -> str:  # keep the DICOM header (patient data) out of logs and tracebacks
        return (
            f"LoadedImage(path={self.path!r}, {self.width}x{self.height} {self.pixels.dtype}, "
            f"format={self.source_format!r}, spacing={self.pixel_spacing_mm}, flags={self.flags})"
        )


# --------------------------------------------------------------------------- public API


def load_image(
    path: str | os.PathLike[str],
    *,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    min_side: int = DEFAULT_MIN_SIDE,
) -> LoadedImage:
    """Load a PNG, JPEG, TIFF or DICOM radiograph; raise InputError naming the file and reason.

    ``max_pixels`` bounds width x height (checked from the header, before decoding);
    ``min_side`` is the smallest accepted width and height.
    """
    if max_pixels < 1 or min_side < 1:
        raise ValueError(f"max_pixels and min_side must be positive, got {max_pixels} and {min_side}")
    path_str = os.fspath(path)
    data = _read_bytes(path_str, max_pixels)
    fmt = _sniff(data)
    if fmt == "dicom" or fmt is None:
        return _load_dicom(path_str, data, max_pixels, min_side, has_preamble=fmt == "dicom")
    return _load_raster(path_str, data, fmt, max_pixels, min_side)


def from_array(
    array: np.ndarray,
    *,
    pixel_spacing_mm: tuple[float, float] | None = None,
    min_side: int = DEFAULT_MIN_SIDE,
) -> LoadedImage:
    """Wrap an in-memory image (2-D gray, or (H, W, 3|4) in RGB(A) order); ValueError if unusable.

    The array is copied, so later changes to it do not alter the result or its hash.
    """
    arr = np.asarray(array)
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[..., 0]
    if not (arr.ndim == 2 or (arr.ndim == 3 and arr.shape[2] in (3, 4))):
        raise ValueError(f"image must be 2-D grayscale or (H, W, 3|4) RGB(A), got shape {arr.shape}")
    if arr.dtype == np.bool_ or arr.dtype.kind not in "uif":
        raise ValueError(f"image must have an integer or floating dtype, got {arr.dtype}")
    if arr.dtype.kind == "f" and not np.all(np.isfinite(arr)):
        raise ValueError("image has non-finite pixel values")
    stored = np.array(arr, dtype=arr.dtype.newbyteorder("="), order="C", copy=True)
    digest = _sha256_pixels(stored)
    flags: list[str] = []
    try:
        gray = _to_gray(stored, "RGB", flags)
        gray = _normalise_dtype(gray)
        _check_size(gray.shape[1], gray.shape[0], min_side)
        _check_not_constant(gray)
    except _Unusable as exc:
        raise ValueError(exc.reason) from None
    spacing = None
    if pixel_spacing_mm is not None:
        spacing = _valid_spacing(pixel_spacing_mm)
        if spacing is None:
            raise ValueError(f"pixel_spacing_mm must be two finite positive numbers, got {pixel_spacing_mm!r}")
    else:
        flags.append("no_pixel_spacing")
    bits = {1: 8, 2: 16}.get(stored.dtype.itemsize) if stored.dtype.kind == "u" else None
    return _make(gray, None, bits, spacing, flags, digest, "array", None)


# --------------------------------------------------------------------------- shared helpers


class _Unusable(Exception):
    """Internal: the image is unusable; converted to InputError (file) or ValueError (array)."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def _make(pixels, path, bits, spacing, flags, digest, fmt, ds) -> LoadedImage:
    pixels = np.ascontiguousarray(pixels)
    pixels.flags.writeable = False
    return LoadedImage(
        pixels=pixels,
        path=path,
        width=int(pixels.shape[1]),
        height=int(pixels.shape[0]),
        bits_stored=bits,
        pixel_spacing_mm=spacing,
        flags=tuple(dict.fromkeys(flags)),
        sha256=digest,
        source_format=fmt,
        dicom=ds,
    )


def _read_bytes(path: str, max_pixels: int) -> bytes:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise InputError(path, "file not found") from None
    except PermissionError:
        raise InputError(path, "permission denied") from None
    except OSError as exc:
        raise InputError(path, f"cannot access file: {exc.strerror or exc}") from None
    if stat.S_ISDIR(st.st_mode):
        raise InputError(path, "is a directory, not an image file")
    if not stat.S_ISREG(st.st_mode):
        # Reading a FIFO or a device could block forever.
        raise InputError(path, "not a regular file")
    if st.st_size == 0:
        raise InputError(path, "file is empty")
    # Generous: 4 channels x 16 bit at the pixel limit, plus room for headers and metadata.
    max_bytes = 8 * max_pixels + _FILE_SLACK_BYTES
    if st.st_size > max_bytes:
        raise InputError(path, f"file of {st.st_size} bytes exceeds the {max_bytes}-byte limit for images")
    try:
        with open(path, "rb") as f:
            data = f.read()
    except PermissionError:
        raise InputError(path, "permission denied") from None
    except OSError as exc:
        raise InputError(path, f"cannot read file: {exc.strerror or exc}") from None
    if not data:
        raise InputError(path, "file is empty")
    return data


def _sniff(data: bytes) -> str | None:
    """Format from magic bytes: png | jpeg | tiff | dicom, or None (maybe preamble-less DICOM)."""
    if data.startswith(_PNG_MAGIC):
        return "png"
    if data.startswith(_JPEG_MAGIC):
        return "jpeg"
    if data[:4] in _TIFF_MAGICS:
        return "tiff"
    if len(data) >= 132 and data[128:132] == b"DICM":
        return "dicom"
    return None


def _sha256_pixels(arr: np.ndarray) -> str:
    le = np.ascontiguousarray(arr, dtype=arr.dtype.newbyteorder("<"))
    return hashlib.sha256(le).hexdigest()  # hashes the buffer in place, no copy


def _check_dimensions(width: int, height: int, max_pixels: int) -> None:
    if width <= 0 or height <= 0:
        raise _Unusable(f"header gives an invalid image size {width}x{height}")
    if width * height > max_pixels:
        raise _Unusable(
            f"image of {width}x{height} pixels exceeds the limit of {max_pixels} pixels (refused before decoding)"
        )


def _check_size(width: int, height: int, min_side: int) -> None:
    if width < min_side or height < min_side:
        raise _Unusable(f"image of {width}x{height} pixels is too small (minimum {min_side}x{min_side})")


def _check_not_constant(pixels: np.ndarray, reason: str = "image is constant: nothing to segment") -> None:
    if pixels.size == 0 or pixels.min() == pixels.max():
        raise _Unusable(reason)


def _colour_fraction(rgb: np.ndarray) -> float:
    """Share of pixels whose channels differ by more than COLOUR_CHROMA_THRESHOLD of full scale."""
    # A strided sample of about a million pixels is plenty to tell a photo from a gray film.
    step = max(1, int(math.ceil(math.sqrt(rgb.shape[0] * rgb.shape[1] / 1_000_000))))
    sample = rgb[::step, ::step, :3]
    if sample.dtype.kind == "f":
        full_scale = float(sample.max() - sample.min())
        if full_scale <= 0:
            return 0.0
    elif sample.dtype.kind == "u":
        # The effective bit depth: 12-bit content in 16-bit samples has a full scale of 4095.
        full_scale = float(2 ** max(8, int(sample.max()).bit_length()) - 1)
    else:
        info = np.iinfo(sample.dtype)
        full_scale = float(info.max) - float(info.min)
    chroma = sample.max(axis=2).astype(np.float64) - sample.min(axis=2).astype(np.float64)
    return float(np.mean(chroma > COLOUR_CHROMA_THRESHOLD * full_scale))


def _to_gray(arr: np.ndarray, order: str, flags: list[str]) -> np.ndarray:
    """2-D gray from gray or colour samples (``order`` "RGB" or "BGR"); refuses colour photos."""
    if arr.ndim == 2:
        return arr
    fraction = _colour_fraction(arr)
    if fraction > COLOUR_PIXEL_FRACTION:
        raise _Unusable(
            f"colour photograph, not a radiograph ({fraction:.0%} of pixels are coloured; "
            f"at most {COLOUR_PIXEL_FRACTION:.0%} allowed)"
        )
    if arr.shape[2] == 4:
        alpha = arr[..., 3]
        opaque = np.iinfo(alpha.dtype).max if alpha.dtype.kind in "ui" else 1.0
        if np.any(alpha != opaque):
            flags.append("alpha_ignored")
        arr = arr[..., :3]
    flags.append("rgb_converted")
    if arr.dtype in (np.uint8, np.uint16, np.float32):
        code = cv2.COLOR_RGB2GRAY if order == "RGB" else cv2.COLOR_BGR2GRAY
        return cv2.cvtColor(np.ascontiguousarray(arr), code)
    weights = np.array([0.299, 0.587, 0.114] if order == "RGB" else [0.114, 0.587, 0.299], dtype=np.float64)
    return (arr.astype(np.float64) @ weights).astype(np.float32)


def _normalise_dtype(pixels: np.ndarray) -> np.ndarray:
    """uint8/uint16 stay; every other numeric type becomes float32."""
    if pixels.dtype in (np.uint8, np.uint16):
        return pixels
    return pixels.astype(np.float32)


def _valid_spacing(value: Any) -> tuple[float, float] | None:
    try:
        row, col = (float(v) for v in value)
    except (TypeError, ValueError):
        return None
    if not (math.isfinite(row) and math.isfinite(col) and row > 0 and col > 0):
        return None
    return (row, col)


# --------------------------------------------------------------------------- PNG / JPEG / TIFF


def _png_size(data: bytes) -> tuple[int, int] | None:
    if len(data) < 24 or data[12:16] != b"IHDR":
        return None
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def _jpeg_frame(data: bytes) -> tuple[tuple[int, int] | None, int]:
    """((width, height) from the start-of-frame segment or None, offset of the first scan or -1).

    Walking the segments skips APP data, so an EXIF thumbnail (a JPEG with its own markers)
    inside APP1 is never mistaken for the main image.
    """
    size: tuple[int, int] | None = None
    i, n = 2, len(data)
    while i + 4 <= n:
        if data[i] != 0xFF:
            return size, -1
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker == 0x01 or 0xD0 <= marker <= 0xD7:  # standalone markers, no length
            i += 2
            continue
        if marker == 0xD9:  # end of image before any scan
            return size, -1
        if marker == 0xDA:
            return size, i
        (length,) = struct.unpack(">H", data[i + 2 : i + 4])
        if marker in _JPEG_SOF and size is None:
            if i + 9 > n:
                return None, -1
            height, width = struct.unpack(">HH", data[i + 5 : i + 9])
            size = (width, height)
        i += 2 + length
    return size, -1


def _tiff_size(data: bytes) -> tuple[tuple[int, int] | None, bool]:
    """((width, height) of the first IFD or None, whether more pages follow)."""
    bo = "<" if data[:2] == b"II" else ">"
    try:
        (magic,) = struct.unpack(bo + "H", data[2:4])
        if magic == 42:
            (off,) = struct.unpack(bo + "I", data[4:8])
            (count,) = struct.unpack(bo + "H", data[off : off + 2])
            first, entry, value_at, next_fmt = off + 2, 12, 8, "I"
        else:  # BigTIFF
            (off,) = struct.unpack(bo + "Q", data[8:16])
            (count,) = struct.unpack(bo + "Q", data[off : off + 8])
            first, entry, value_at, next_fmt = off + 8, 20, 12, "Q"
        dims: dict[int, int] = {}
        for k in range(min(count, 4096)):
            e = first + k * entry
            tag, typ = struct.unpack(bo + "HH", data[e : e + 4])
            if tag in (256, 257):
                fmt = {3: "H", 4: "I", 16: "Q"}.get(typ)
                if fmt is None:
                    return None, False
                (dims[tag],) = struct.unpack_from(bo + fmt, data, e + value_at)
        end = first + count * entry
        (next_ifd,) = struct.unpack(bo + next_fmt, data[end : end + struct.calcsize(next_fmt)])
    except struct.error:
        return None, False
    if 256 not in dims or 257 not in dims:
        return None, False
    return (dims[256], dims[257]), next_ifd != 0


_cv_log_lock = threading.Lock()
_cv_log_users = 0
_cv_log_saved: int | None = None


@contextmanager
def _quiet_opencv():
    """Silence OpenCV's own log while decoding: a corrupt file becomes our one-line InputError.

    The log level is process-global, so concurrent decoders share one save/restore.
    """
    global _cv_log_users, _cv_log_saved
    with _cv_log_lock:
        if _cv_log_users == 0:
            _cv_log_saved = cv2.utils.logging.getLogLevel()
            cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
        _cv_log_users += 1
    try:
        yield
    finally:
        with _cv_log_lock:
            _cv_log_users -= 1
            if _cv_log_users == 0 and _cv_log_saved is not None:
                cv2.utils.logging.setLogLevel(_cv_log_saved)


def _load_raster(path: str, data: bytes, fmt: str, max_pixels: int, min_side: int) -> LoadedImage:
    name = fmt.upper()
    flags: list[str] = []
    try:
        if fmt == "png":
            size = _png_size(data)
        elif fmt == "jpeg":
            size, scan = _jpeg_frame(data)
            # libjpeg fills a truncated scan with gray and only warns: refuse rather than segment
            # it. Entropy-coded data stuffs 0xFF with 0x00, so FFD9 after the scan is the EOI.
            if size is not None and (scan < 0 or data.rfind(b"\xff\xd9") < scan):
                raise _Unusable("cannot decode JPEG: file is truncated (no end-of-image marker)")
        else:
            size, more_pages = _tiff_size(data)
            if more_pages:
                flags.append("tiff_first_page_only")
        if size is None:
            raise _Unusable(f"cannot decode {name}: header is truncated or corrupt")
        _check_dimensions(size[0], size[1], max_pixels)
        with _quiet_opencv():
            decoded = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_UNCHANGED)
        if decoded is None or decoded.size == 0:
            raise _Unusable(f"cannot decode {name}: file is truncated or corrupt")
        if decoded.ndim == 3 and decoded.shape[2] == 1:
            decoded = decoded[..., 0]
        if decoded.ndim == 3 and decoded.shape[2] not in (3, 4):
            raise _Unusable(f"unsupported {name} with {decoded.shape[2]} channels")
        if decoded.dtype.kind == "f" and not np.all(np.isfinite(decoded)):
            raise _Unusable("image has non-finite pixel values")
        stored = decoded
        if stored.ndim == 3:  # hash colour in RGB(A) order, as any other reader would give it
            stored = stored[..., [2, 1, 0, 3][: stored.shape[2]]]
        digest = _sha256_pixels(stored)
        gray = _normalise_dtype(_to_gray(decoded, "BGR", flags))
        _check_size(gray.shape[1], gray.shape[0], min_side)
        _check_not_constant(gray)
    except _Unusable as exc:
        raise InputError(path, exc.reason) from None
    flags.append("no_pixel_spacing")
    bits = {np.dtype(np.uint8): 8, np.dtype(np.uint16): 16}.get(decoded.dtype)
    return _make(gray, path, bits, None, flags, digest, fmt, None)


# --------------------------------------------------------------------------- DICOM


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


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


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


def _load_dicom(path: str, data: bytes, max_pixels: int, min_side: int, has_preamble: bool) -> LoadedImage:
    ds = _read_dataset(path, data, has_preamble)
    flags: list[str] = []
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
        try:
            stored = ds.pixel_array
        except Exception as exc:  # noqa: BLE001 - decoder plugins raise many types
            ts = ds.file_meta.get("TransferSyntaxUID")
            ts_name = getattr(ts, "name", str(ts))
            raise _Unusable(f"cannot decode DICOM pixel data ({ts_name}): {_one_line(exc)}") from None
        if stored.shape[:2] != (rows, cols):
            raise _Unusable(f"DICOM pixel data has shape {stored.shape}, expected {rows}x{cols}")
        digest = _sha256_pixels(stored)
        if stored.ndim == 3:
            pixels = _normalise_dtype(_to_gray(stored, "RGB", flags))
            _check_size(cols, rows, min_side)
            _check_not_constant(pixels)
        else:
            _check_size(cols, rows, min_side)
            _check_not_constant(stored)
            pixels = _grayscale_transforms(ds, stored, bits_stored, signed, photometric, flags)
        spacing = _valid_spacing(ds.get("PixelSpacing"))
        if spacing is None:
            spacing = _valid_spacing(ds.get("ImagerPixelSpacing"))
            if spacing is not None:
                # Detector-plane spacing: not corrected for geometric magnification.
                flags.append("spacing_from_imager")
        if spacing is None:
            flags.append("no_pixel_spacing")
    except _Unusable as exc:
        raise InputError(path, exc.reason) from None
    except MemoryError:
        raise
    except Exception as exc:  # noqa: BLE001 - pydicom parses elements lazily; damage surfaces here
        raise InputError(path, f"DICOM file is corrupt ({_one_line(exc)})") from None
    del ds.PixelData  # keep only the header as the reference for DICOM SEG
    return _make(pixels, path, bits_stored, spacing, flags, digest, "dicom", ds)


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
