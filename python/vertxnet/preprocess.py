"""Image preprocessing shared by training and inference (numpy + OpenCV only).

Coordinates everywhere in vertxnet are continuous pixel coordinates: the pixel at row i,
column j covers [j, j+1) x [i, i+1), so its centre is (j + 0.5, i + 0.5). With that convention
the letterbox transform below is an exact affine map that agrees with ``cv2.resize``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

#: Percentiles of the intensity window that maps an image to [0, 1].
WINDOW_PERCENTILES = (0.5, 99.5)


@dataclass(frozen=True)
class Letterbox:
    """Exact map between original-image and model-input coordinates."""

    src_width: int
    src_height: int
    size: int
    scale_x: float
    scale_y: float
    pad_x: int
    pad_y: int

    def to_model(self, points: np.ndarray) -> np.ndarray:
        p = np.asarray(points, dtype=np.float64)
        return np.stack([p[..., 0] * self.scale_x + self.pad_x, p[..., 1] * self.scale_y + self.pad_y], axis=-1)

    def to_original(self, points: np.ndarray) -> np.ndarray:
        p = np.asarray(points, dtype=np.float64)
        return np.stack([(p[..., 0] - self.pad_x) / self.scale_x, (p[..., 1] - self.pad_y) / self.scale_y], axis=-1)

    @property
    def content_box(self) -> tuple[int, int, int, int]:
        """(x0, y0, x1, y1) of the resized image inside the model input."""
        w = round(self.src_width * self.scale_x)
        h = round(self.src_height * self.scale_y)
        return self.pad_x, self.pad_y, self.pad_x + w, self.pad_y + h


def colour_to_gray(rgb: np.ndarray, order: str = "RGB") -> np.ndarray:
    """Gray (ITU-R BT.601 weights) from (H, W, 3) colour samples in ``order`` "RGB" or "BGR".

    uint8, uint16 and float32 samples keep their type (OpenCV, rounded for integers); other
    types come back as float32.
    """
    if order not in ("RGB", "BGR"):
        raise ValueError(f"order must be 'RGB' or 'BGR', got {order!r}")
    if rgb.dtype in (np.uint8, np.uint16, np.float32):
        return cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2GRAY if order == "RGB" else cv2.COLOR_BGR2GRAY)
    weights = np.array([0.299, 0.587, 0.114] if order == "RGB" else [0.114, 0.587, 0.299], dtype=np.float64)
    return (rgb.astype(np.float64) @ weights).astype(np.float32)


def to_gray(image: np.ndarray) -> np.ndarray:
    """Grayscale view of a 2-D, (H, W, 1), (H, W, 3) or (H, W, 4) RGB(A) image; ValueError otherwise."""
    img = np.asarray(image)
    if img.ndim == 3 and img.shape[2] == 1:
        img = img[..., 0]
    elif img.ndim == 3 and img.shape[2] in (3, 4):
        img = colour_to_gray(img[..., :3])
    if img.ndim != 2:
        raise ValueError(f"image must be 2-D grayscale or (H, W, 3|4) colour, got shape {np.shape(image)}")
    if img.shape[0] < 2 or img.shape[1] < 2:
        raise ValueError(f"image of {img.shape[1]}x{img.shape[0]} pixels is too small")
    return img


def percentiles(image: np.ndarray, qs: tuple[float, ...]) -> tuple[float, ...]:
    """``np.percentile(image, qs)`` (linear interpolation), exact, and for 8/16-bit images from a
    histogram: sorting a 7-megapixel film costs several times more than counting its values."""
    img = np.asarray(image)
    if img.dtype not in (np.uint8, np.uint16):
        return tuple(float(v) for v in np.percentile(img, qs))
    counts = np.bincount(img.ravel(), minlength=1 << (8 * img.itemsize))
    cumulative = np.cumsum(counts)
    n = int(cumulative[-1])
    out = []
    for q in qs:
        rank = q / 100.0 * (n - 1)
        below, frac = int(np.floor(rank)), rank - np.floor(rank)
        # The value at sorted position k is the first value whose cumulative count exceeds k.
        v0, v1 = np.searchsorted(cumulative, [below + 1, min(below + 2, n)], side="left")
        out.append(float(v0) + frac * float(v1 - v0))
    return tuple(out)


def window01(image: np.ndarray) -> np.ndarray:
    """Float32 image in [0, 1] through a robust percentile window; ValueError if constant."""
    gray = to_gray(image)
    img = gray.astype(np.float32, copy=False)
    if not np.all(np.isfinite(img)):
        raise ValueError("image has non-finite pixel values")
    lo, hi = percentiles(gray, WINDOW_PERCENTILES)
    if hi <= lo:
        lo, hi = float(img.min()), float(img.max())
    if hi <= lo:
        raise ValueError("image is constant: nothing to segment")
    return np.clip((img - lo) / (hi - lo), 0.0, 1.0).astype(np.float32)


def apply_clahe(image01: np.ndarray, clip_limit: float = 2.0, tile_grid: int = 8) -> np.ndarray:
    """Contrast-limited adaptive histogram equalisation on a [0, 1] image (seed 002)."""
    u16 = np.round(image01 * 65535.0).astype(np.uint16)
    out = cv2.createCLAHE(clipLimit=float(clip_limit), tileGridSize=(tile_grid, tile_grid)).apply(u16)
    return out.astype(np.float32) / 65535.0


def letterbox(image01: np.ndarray, size: int) -> tuple[np.ndarray, Letterbox]:
    """Resize keeping the aspect ratio into a ``size`` x ``size`` canvas, centred, padded with 0."""
    h, w = image01.shape[:2]
    s = size / max(h, w)
    new_w = max(1, min(size, round(w * s)))
    new_h = max(1, min(size, round(h * s)))
    interp = cv2.INTER_AREA if s < 1.0 else cv2.INTER_LINEAR
    resized = cv2.resize(image01, (new_w, new_h), interpolation=interp)
    pad_x = (size - new_w) // 2
    pad_y = (size - new_h) // 2
    canvas = np.zeros((size, size), dtype=np.float32)
    canvas[pad_y : pad_y + new_h, pad_x : pad_x + new_w] = resized
    return canvas, Letterbox(w, h, size, new_w / w, new_h / h, pad_x, pad_y)


@dataclass(frozen=True)
class PreprocessConfig:
    """What a bundle's manifest says about preprocessing (``manifest["preprocess"]``)."""

    input_size: int = 256
    mean: float = 0.5
    std: float = 0.25
    clahe: bool = False
    clahe_clip_limit: float = 2.0
    clahe_tile_grid: int = 8

    @classmethod
    def from_manifest(cls, d: dict) -> "PreprocessConfig":
        return cls(**{k: d[k] for k in cls.__dataclass_fields__ if k in d})

    def to_manifest(self) -> dict:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


#: The percentile window is read from a strided subsample of about this many pixels: the
#: 0.5 % / 99.5 % points of a film's histogram are set by millions of pixels, a regular quarter
#: million of them gives the same window to within a grey level or two at a fraction of the cost.
WINDOW_SAMPLE_PIXELS = 1 << 18


@dataclass(frozen=True)
class Reduced:
    """A film decoded at a reduced resolution (JPEG 2000 resolution levels, JPEG DCT scaling).

    ``pixels[i, j]`` stands for the original pixels around ``(factor * j + phase, factor * i + phase)``
    in continuous coordinates' pixel units: OpenJPEG's discarded levels keep the low-pass sample
    at the even position (``phase`` = 0.5, the centre of original pixel ``factor * j``), libjpeg's
    scaled IDCT averages the block (``phase`` = factor / 2, the block centre).
    ``src_width`` x ``src_height`` is the original size, which the letterbox maps to.
    """

    pixels: np.ndarray
    factor: int
    phase: float
    src_width: int
    src_height: int


#: A reduced decode (or block average) keeps at least this many pixels per model-input pixel along the longer side,
#: so that the last resize still averages (the networks then see what a full-resolution area
#: resize gives them: polygon IoU >= 0.98 against it on phantoms, tests/pipeline/test_model_scale.py).
REDUCED_OVERSAMPLING = 2


#: Block averaging before the model-scale resize keeps this many: each model pixel then averages
#: many blocks, so the result stays within a grey level or so of one area resize of the film.
BLOCK_OVERSAMPLING = 4


def reduction_factor(width: int, height: int, model_size: int | None, max_factor: int = 8,
                     oversampling: int = REDUCED_OVERSAMPLING) -> int:
    """The largest power of two (at most ``max_factor``) by which a ``width`` x ``height`` film
    can be decoded and keep ``oversampling`` x the model input (``model_size``) on its longer side."""
    if not model_size:
        return 1
    factor = 1
    while factor * 2 <= max_factor and max(width, height) / (factor * 2) >= oversampling * model_size:
        factor *= 2
    return factor


def _window_limits(gray: np.ndarray) -> tuple[float, float]:
    """The (lo, hi) percentile window, from a strided subsample of large images."""
    step = max(1, int(np.sqrt(gray.size / WINDOW_SAMPLE_PIXELS)))
    sample = gray[::step, ::step] if step > 1 else gray
    if sample.dtype.kind == "f" and not np.all(np.isfinite(gray)):
        raise ValueError("image has non-finite pixel values")
    lo, hi = percentiles(sample if sample.flags.c_contiguous else np.ascontiguousarray(sample), WINDOW_PERCENTILES)
    if hi <= lo:
        lo, hi = float(gray.min()), float(gray.max())
    if hi <= lo:
        raise ValueError("image is constant: nothing to segment")
    return lo, hi


def _geometry(width: int, height: int, size: int) -> Letterbox:
    s = size / max(height, width)
    new_w = max(1, min(size, round(width * s)))
    new_h = max(1, min(size, round(height * s)))
    return Letterbox(width, height, size, new_w / width, new_h / height, (size - new_w) // 2, (size - new_h) // 2)


def _resampled(gray: np.ndarray, box: Letterbox, factor: int, phase: float) -> np.ndarray:
    """``gray`` (full or reduced) resampled onto the model canvas: the content box filled, the
    rest 0. One cv2.resize at the model's scale, plus a sub-pixel shift for a reduced image whose
    samples are not block centres."""
    size = box.size
    x0, y0, x1, y1 = box.content_box
    src = gray if gray.dtype in (np.uint8, np.uint16, np.float32) else gray.astype(np.float32)
    fx, fy = box.scale_x * factor, box.scale_y * factor
    interp = cv2.INTER_AREA if max(fx, fy) < 1.0 else cv2.INTER_LINEAR
    if factor == 1:
        small = cv2.resize(src, (x1 - x0, y1 - y0), interpolation=interp)
        canvas = np.zeros((size, size), dtype=np.float32)
        canvas[y0:y1, x0:x1] = small
        return canvas
    # dsize left to OpenCV so that the map is exactly model = f * reduced (continuous coordinates).
    small = cv2.resize(src, None, fx=fx, fy=fy, interpolation=interp).astype(np.float32, copy=False)
    # Reduced sample centre (j + 0.5) is original factor * j + phase: model = small + shift.
    shift_x = box.pad_x + box.scale_x * (phase - factor / 2.0)
    shift_y = box.pad_y + box.scale_y * (phase - factor / 2.0)
    m = np.array([[1.0, 0.0, shift_x], [0.0, 1.0, shift_y]])
    canvas = cv2.warpAffine(small, m, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    out = np.zeros((size, size), dtype=np.float32)
    out[y0:y1, x0:x1] = canvas[y0:y1, x0:x1]
    return out


def block_mean(gray: np.ndarray, factor: int) -> np.ndarray:
    """Means of ``factor`` x ``factor`` blocks from the top-left corner (a last partial block is
    left out: it lies within one model pixel of the edge, which the resampling replicates).
    Pixel j stands for the original pixels around factor * j + factor / 2, as a Reduced decode."""
    h, w = gray.shape[0] // factor * factor, gray.shape[1] // factor * factor
    if gray.dtype not in (np.uint8, np.uint16, np.float32):
        gray = gray.astype(np.float32)
    return cv2.resize(gray[:h, :w], (w // factor, h // factor), interpolation=cv2.INTER_AREA)


def letterboxed(image: "np.ndarray | Reduced", config: PreprocessConfig) -> tuple[np.ndarray, Letterbox]:
    """The [0, 1] model-input canvas (S, S) before normalisation, and its letterbox transform.

    Percentile window → optional CLAHE → letterbox, computed at the model's scale: the window is
    read from a subsample, the film is resized once (area averaging) to the model input, and the
    window and CLAHE act on the small image. ``image`` may be a :class:`Reduced` decode; the
    letterbox still maps the model input to the original pixels exactly. Training augments this canvas.
    """
    if isinstance(image, Reduced):
        gray = to_gray(image.pixels)
        box = _geometry(image.src_width, image.src_height, config.input_size)
        factor, phase = image.factor, image.phase
        blocks = 1
    else:
        gray = to_gray(image)
        box = _geometry(gray.shape[1], gray.shape[0], config.input_size)
        # A film many times the model input is first averaged over factor x factor blocks
        # (OpenCV's integer area path, several times faster than one area resize by a fractional
        # scale), then resampled from those block means like a reduced decode.
        blocks = reduction_factor(gray.shape[1], gray.shape[0], config.input_size, oversampling=BLOCK_OVERSAMPLING)
        factor, phase = (blocks, blocks / 2.0) if blocks > 1 else (1, 0.5)
    lo, hi = _window_limits(gray)
    # Clip before resizing (as the window did before the resize at full scale): area averages of
    # clipped values, then the linear map to [0, 1], which commutes with averaging.
    if gray.dtype == np.uint8:  # one table lookup, the fastest pass OpenCV has
        clipped = cv2.LUT(gray, np.clip(np.arange(256), math.floor(lo), math.ceil(hi)).astype(np.uint8))
    elif gray.dtype.kind in "ui":
        clipped = np.clip(gray, math.floor(lo), math.ceil(hi))
    else:
        clipped = np.clip(gray, lo, hi).astype(np.float32, copy=False)
    if blocks > 1:
        clipped = block_mean(clipped, blocks)
    canvas = _resampled(clipped, box, factor, phase)
    x0, y0, x1, y1 = box.content_box
    content = canvas[y0:y1, x0:x1]
    np.clip((content - lo) / (hi - lo), 0.0, 1.0, out=content)
    if config.clahe:
        canvas[y0:y1, x0:x1] = apply_clahe(content, config.clahe_clip_limit, config.clahe_tile_grid)
    return canvas, box


def letterboxed_full_scale(image: np.ndarray, config: PreprocessConfig) -> tuple[np.ndarray, Letterbox]:
    """The same canvas computed at the film's own scale (window, CLAHE, then resize): the
    reference :func:`letterboxed` is compared against, and the path of releases before 0.2."""
    img = window01(image)
    if config.clahe:
        img = apply_clahe(img, config.clahe_clip_limit, config.clahe_tile_grid)
    return letterbox(img, config.input_size)


def normalise(canvas: np.ndarray, config: PreprocessConfig) -> np.ndarray:
    """The last step: (x - mean) / std, float32."""
    return ((canvas - config.mean) / config.std).astype(np.float32)


def prepare(image: "np.ndarray | Reduced", config: PreprocessConfig) -> tuple[np.ndarray, Letterbox]:
    """Raw image (or a :class:`Reduced` decode) → normalised float32 tensor of shape (1, 1, S, S)
    and its letterbox transform."""
    canvas, box = letterboxed(image, config)
    return normalise(canvas, config)[None, None], box


def prepare_full_scale(image: np.ndarray, config: PreprocessConfig) -> tuple[np.ndarray, Letterbox]:
    """:func:`prepare` through :func:`letterboxed_full_scale`: the reference path that the
    model-scale one is compared and timed against (tests, ``benchmarks/bench_decode.py``)."""
    canvas, box = letterboxed_full_scale(image, config)
    return normalise(canvas, config)[None, None], box
