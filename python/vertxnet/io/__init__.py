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

import os

import numpy as np

from .dicom import _load_dicom
from .headers import _read_bytes, _sniff
from .image import (
    COLOUR_CHROMA_THRESHOLD,
    COLOUR_PIXEL_FRACTION,
    DEFAULT_MAX_PIXELS,
    DEFAULT_MIN_SIDE,
    SOURCE_FORMATS,
    LoadedImage,
    _check_not_constant,
    _check_size,
    _make,
    _normalise_dtype,
    _sha256_pixels,
    _to_gray,
    _Unusable,
    _valid_spacing,
)
from .raster import _load_raster, read_image_unchanged

__all__ = [
    "COLOUR_CHROMA_THRESHOLD",
    "COLOUR_PIXEL_FRACTION",
    "DEFAULT_MAX_PIXELS",
    "DEFAULT_MIN_SIDE",
    "SOURCE_FORMATS",
    "LoadedImage",
    "from_array",
    "load_image",
    "read_image_unchanged",
]


def load_image(
    path: str | os.PathLike[str],
    *,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    min_side: int = DEFAULT_MIN_SIDE,
    model_size: int | None = None,
) -> LoadedImage:
    """Load a PNG, JPEG, TIFF or DICOM radiograph; raise InputError naming the file and reason.

    ``max_pixels`` bounds width x height (checked from the header, before decoding);
    ``min_side`` is the smallest accepted width and height. ``model_size`` (the model input's
    side) lets a JPEG 2000 DICOM or a JPEG of at least four times that size be decoded 2, 4 or 8
    times smaller for the networks, keeping twice the model input (``LoadedImage.reduced``); its
    full-resolution pixels and hash are then decoded when first asked for, at most once.
    """
    if max_pixels < 1 or min_side < 1:
        raise ValueError(f"max_pixels and min_side must be positive, got {max_pixels} and {min_side}")
    path_str = os.fspath(path)
    data = _read_bytes(path_str, max_pixels)
    fmt = _sniff(data)
    if fmt == "dicom" or fmt is None:
        return _load_dicom(path_str, data, max_pixels, min_side, has_preamble=fmt == "dicom", model_size=model_size)
    return _load_raster(path_str, data, fmt, max_pixels, min_side, model_size=model_size)


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
