"""The decoded radiograph (:class:`LoadedImage`) and the checks and conversions every format shares."""

from __future__ import annotations

import hashlib
import math
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from ..preprocess import REDUCED_OVERSAMPLING, Reduced, colour_to_gray, reduction_factor  # noqa: F401 - re-exported

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


class _FullResolution:
    """The full-resolution pixels and their sha256: given, or decoded at most once, on first use
    or in the background (:meth:`start`), whichever comes first. The digest may also be pending
    while the pixels are at hand (``digest_of``): it is then hashed on first use or in the
    background, so that the networks need not wait for it. Thread-safe."""

    def __init__(self, pixels: np.ndarray | None = None, digest: str | None = None,
                 decode: Callable[[], tuple[np.ndarray, str]] | None = None,
                 digest_of: Callable[[], str] | None = None):
        self._pixels, self._digest, self._decode, self._digest_of = pixels, digest, decode, digest_of
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None

    @property
    def decoded(self) -> bool:
        return self._pixels is not None

    def __getstate__(self) -> dict:  # pickled (e.g. to a batch worker) with its pixels decoded
        pixels, digest = self.get()
        return {"pixels": pixels, "digest": digest}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["pixels"], state["digest"])

    def start(self) -> None:
        """Decode (or hash) in a background thread now (no-op when done or already started)."""
        with self._lock:
            if self._digest is not None or self._thread is not None:
                return
            self._thread = threading.Thread(target=self._run, name="vertxnet-full-decode", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        try:
            self._get()
        except BaseException as exc:  # noqa: BLE001 - re-raised to whoever asks for the pixels
            self._error = exc

    def _get(self) -> tuple[np.ndarray, str]:
        with self._lock:
            if self._digest is None:
                if self._error is not None:
                    raise self._error
                if self._pixels is None:
                    pixels, digest = self._decode()
                    pixels = np.ascontiguousarray(pixels)
                    pixels.flags.writeable = False
                    self._pixels, self._digest = pixels, digest
                    self._decode = None  # lets go of the file's bytes
                else:
                    self._digest = self._digest_of()
                    self._digest_of = None  # lets go of the stored samples
            return self._pixels, self._digest

    def _join(self) -> None:
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join()
            if self._error is not None:
                raise self._error

    def get(self) -> tuple[np.ndarray, str]:
        self._join()
        return self._get()

    def pixels(self) -> np.ndarray:
        """The pixels, without waiting for a pending digest."""
        pixels = self._pixels
        return pixels if pixels is not None else self.get()[0]


@dataclass(frozen=True, eq=False)
class LoadedImage:
    """A decoded radiograph at its original size. ``pixels`` is read-only.

    ``reduced``: when the loader was told the model's input size and the film is much larger,
    the film decoded at a reduced resolution (JPEG 2000 resolution levels, JPEG DCT scaling),
    with the same value transforms (LUTs, window, MONOCHROME1) as ``pixels``; the networks read
    it, and ``pixels`` and ``sha256`` are then decoded from the file only when asked for (the
    full-resolution outputs: DICOM SEG, measurements, the overlay, the result's hash), at most
    once; :meth:`prefetch` starts that decode in the background.

    Compared by identity (an array field has no single truth value); compare ``sha256`` instead.
    """

    path: str | None
    width: int
    height: int
    bits_stored: int | None
    pixel_spacing_mm: tuple[float, float] | None  # (row, column) spacing in mm
    flags: tuple[str, ...]
    source_format: str
    dicom: pydicom.Dataset | None = None
    reduced: Reduced | None = field(default=None, repr=False)
    _full: _FullResolution = field(default=None, repr=False)  # type: ignore[assignment]

    @property
    def pixels(self) -> np.ndarray:
        return self._full.pixels()

    @property
    def sha256(self) -> str:
        return self._full.get()[1]

    @property
    def full_resolution_decoded(self) -> bool:
        """Whether ``pixels`` is in memory (False while a reduced decode has not needed it)."""
        return self._full.decoded

    def prefetch(self) -> None:
        """Start decoding the full-resolution pixels (or hashing them) in the background (no-op
        when done)."""
        self._full.start()

    def model_input(self) -> np.ndarray | Reduced:
        """What :func:`vertxnet.preprocess.prepare` should read: the reduced decode or ``pixels``."""
        return self.reduced if self.reduced is not None else self.pixels

    def __repr__(self) -> str:  # keep the DICOM header (patient data) out of logs and tracebacks
        kind = "reduced " if self.reduced is not None and not self.full_resolution_decoded else ""
        return (
            f"LoadedImage(path={self.path!r}, {kind}{self.width}x{self.height}, "
            f"format={self.source_format!r}, spacing={self.pixel_spacing_mm}, flags={self.flags})"
        )


class _Unusable(Exception):
    """Internal: the image is unusable; converted to InputError (file) or ValueError (array)."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def _make(pixels, path, bits, spacing, flags, digest, fmt, ds, digest_of: Callable[[], str] | None = None) -> LoadedImage:
    """A LoadedImage of decoded ``pixels``; ``digest`` given, or computed by ``digest_of`` when
    first asked for or in the background (:meth:`LoadedImage.prefetch`)."""
    if (digest is None) == (digest_of is None):
        raise TypeError("give the digest or a way to compute it, not both")
    pixels = np.ascontiguousarray(pixels)
    pixels.flags.writeable = False
    return LoadedImage(
        path=path,
        width=int(pixels.shape[1]),
        height=int(pixels.shape[0]),
        bits_stored=bits,
        pixel_spacing_mm=spacing,
        flags=tuple(dict.fromkeys(flags)),
        source_format=fmt,
        dicom=ds,
        _full=_FullResolution(pixels, digest, digest_of=digest_of),
    )


def _make_reduced(reduced: Reduced, decode_full: Callable[[], tuple[np.ndarray, str]], path, bits, spacing, flags, fmt, ds) -> LoadedImage:
    """A LoadedImage whose full-resolution pixels and hash come from ``decode_full`` when needed."""
    reduced.pixels.flags.writeable = False
    return LoadedImage(
        path=path,
        width=reduced.src_width,
        height=reduced.src_height,
        bits_stored=bits,
        pixel_spacing_mm=spacing,
        flags=tuple(dict.fromkeys(flags)),
        source_format=fmt,
        dicom=ds,
        reduced=reduced,
        _full=_FullResolution(decode=decode_full),
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


