"""The decoded radiograph (:class:`LoadedImage`) and the checks and conversions every format shares."""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ..preprocess import colour_to_gray

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

SOURCE_FORMATS = ("png", "jpeg", "tiff", "dicom", "array")


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
    return colour_to_gray(arr, order)


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


