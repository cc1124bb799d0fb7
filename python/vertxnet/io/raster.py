"""PNG, JPEG and TIFF radiographs (OpenCV), checked from their headers before decoding."""

from __future__ import annotations

import threading
from contextlib import contextmanager
from pathlib import Path

import cv2
import numpy as np

from ..errors import InputError
from .headers import _jpeg_frame, _png_size, _tiff_size
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
    reduction_factor,
)
from ..preprocess import Reduced

#: OpenCV's JPEG reduced modes (libjpeg's scaled IDCT) by factor, in colour so that a colour
#: photograph is still refused; EXIF orientation ignored, as by the full decode.
_JPEG_REDUCED = {2: cv2.IMREAD_REDUCED_COLOR_2, 4: cv2.IMREAD_REDUCED_COLOR_4, 8: cv2.IMREAD_REDUCED_COLOR_8}


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


def _load_raster(path: str, data: bytes, fmt: str, max_pixels: int, min_side: int, model_size: int | None = None) -> LoadedImage:
    name = fmt.upper()
    flags: list[str] = []
    if fmt == "jpeg" and model_size:
        reduced = _jpeg_reduced(path, data, max_pixels, min_side, model_size)
        if reduced is not None:
            return reduced
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
        gray = _normalise_dtype(_to_gray(decoded, "BGR", flags))
        _check_size(gray.shape[1], gray.shape[0], min_side)
        _check_not_constant(gray)
    except _Unusable as exc:
        raise InputError(path, exc.reason) from None
    flags.append("no_pixel_spacing")
    bits = {np.dtype(np.uint8): 8, np.dtype(np.uint16): 16}.get(decoded.dtype)
    # The hash waits for whoever needs it (the pipeline starts it beside the networks).
    return _make(gray, path, bits, None, flags, None, fmt, None, digest_of=lambda: _stored_digest(decoded))


def _stored_digest(decoded: np.ndarray) -> str:
    """sha256 of the samples as stored: colour in RGB(A) order, as any other reader gives it."""
    if decoded.ndim == 3:
        decoded = decoded[..., [2, 1, 0, 3][: decoded.shape[2]]]
    return _sha256_pixels(decoded)




def _jpeg_reduced(path: str, data: bytes, max_pixels: int, min_side: int, model_size: int) -> LoadedImage | None:
    """An 8-bit JPEG decoded by libjpeg's DCT scaling for the networks (None when it is not much
    larger than the model input, or not 8-bit); its full-resolution pixels when first needed."""
    size, scan = _jpeg_frame(data)
    if size is None or scan < 0 or data.rfind(b"\xff\xd9") < scan:
        return None  # the full path gives the reason
    width, height = size
    factor = reduction_factor(width, height, model_size)
    if factor == 1 or width * height > max_pixels or min(width, height) < min_side:
        return None
    with _quiet_opencv():
        decoded = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), _JPEG_REDUCED[factor] | cv2.IMREAD_IGNORE_ORIENTATION)
    if decoded is None or decoded.dtype != np.uint8 or decoded.shape[:2] != (-(-height // factor), -(-width // factor)):
        return None
    flags: list[str] = []
    try:
        gray = _to_gray(decoded, "BGR", flags) if decoded.ndim == 3 else decoded
        _check_not_constant(gray)
    except _Unusable:
        return None  # refused or constant: the full path says so for the whole film
    if decoded.ndim == 3 and np.array_equal(decoded[..., 0], decoded[..., 1]) and np.array_equal(decoded[..., 1], decoded[..., 2]):
        flags = []  # a gray JPEG comes back as 3 equal channels from the colour mode
    flags.append("no_pixel_spacing")

    def decode_full() -> tuple[np.ndarray, str]:
        full = _load_raster(path, data, "jpeg", max_pixels, min_side)
        return full.pixels, full.sha256

    reduced = Reduced(np.ascontiguousarray(gray), factor, factor / 2.0, width, height)
    return _make_reduced(reduced, decode_full, path, 8, None, flags, "jpeg", None)


def read_image_unchanged(path: str | Path) -> np.ndarray:
    """An image file's samples as stored (8/16 bit, gray or colour in OpenCV's BGR order), for
    label images and annotated training images; InputError if missing or unreadable.

    Radiographs to segment go through :func:`vertxnet.io.load_image` instead, which checks the
    file before decoding, reads DICOM and converts to gray with bone bright.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "image file not found")
    # np.fromfile + imdecode also copes with non-ASCII paths, which cv2.imread does not everywhere.
    try:
        data = np.fromfile(path, dtype=np.uint8)
    except OSError as exc:
        raise InputError(path, f"cannot read image: {exc.strerror or exc}") from None
    image = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None
    if image is None:
        raise InputError(path, "not a readable image (unsupported format or corrupt file)")
    return image
