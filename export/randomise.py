"""Appearance randomisation for training that transfers to real films.

The networks must not learn what our simulators look like. Each training image gets, after the
geometric augmentation, a random draw of what real lateral films show and simulators do not:
tone curves and washed-out windows, edge enhancement (unsharp masking) or blur, signal-dependent
noise, smooth shading, collimation edges, letterbox bars and bright border rows, burnt-in text,
side markers and rulers, JPEG artefacts — and, when a folder of unlabelled real films is given,
their low-frequency "style" (Fourier domain adaptation, Yang & Soatto, CVPR 2020) or their grey
level histogram. Only the pixels change; polygons and the content mask stay as they are, and the
letterbox padding stays exactly 0, as at inference.

The last step re-windows the image to the percentiles inference uses
(``vertxnet.preprocess.WINDOW_PERCENTILES``), so what the network sees after, say, a washed-out
tone curve is what ``vertxnet.preprocess`` would make of such a film.
"""

from __future__ import annotations

import math
import string
from dataclasses import dataclass, field
from pathlib import Path
import cv2
import numpy as np

from vertxnet.preprocess import WINDOW_PERCENTILES


@dataclass
class StyleBank:
    """Windowed [0, 1] grayscale real films (unlabelled), used as style targets only."""

    images: list[np.ndarray] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.images)

    @classmethod
    def from_folder(cls, folder: str | Path, *, limit: int = 200, max_side: int = 512, seed: int = 0) -> "StyleBank":
        """Up to ``limit`` films of ``folder`` (PNG/JPEG/TIFF/DICOM), windowed like inference and
        shrunk to ``max_side``. ValueError when the folder holds no readable image."""
        from vertxnet.io import load_image
        from vertxnet.preprocess import window01

        folder = Path(folder)
        files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".dcm"))
        rng = np.random.default_rng(seed)
        if len(files) > limit:
            files = [files[i] for i in sorted(rng.choice(len(files), size=limit, replace=False))]
        bank = cls()
        for path in files:
            try:
                image = window01(load_image(path).pixels)
            except Exception:  # noqa: BLE001 - an unreadable style film is simply not used
                continue
            h, w = image.shape
            scale = min(1.0, max_side / max(h, w))
            if scale < 1.0:
                image = cv2.resize(image, (max(2, round(w * scale)), max(2, round(h * scale))), interpolation=cv2.INTER_AREA)
            bank.images.append(image.astype(np.float32))
            bank.sources.append(str(path))
        if not bank.images:
            raise ValueError(f"{folder}: no readable style film (PNG, JPEG, TIFF or DICOM) found")
        return bank


@dataclass
class RandomiseConfig:
    """Probabilities and ranges of each appearance change (all drawn independently per image)."""

    enabled: bool = True
    tone_probability: float = 0.9
    washout_probability: float = 0.25
    shading_probability: float = 0.5
    collimation_probability: float = 0.3
    sharpen_probability: float = 0.5
    blur_probability: float = 0.3
    noise_probability: float = 0.7
    bars_probability: float = 0.25
    border_rows_probability: float = 0.2
    text_probability: float = 0.4
    marker_probability: float = 0.3
    ruler_probability: float = 0.15
    jpeg_probability: float = 0.4
    style_probability: float = 0.5
    fda_beta: tuple[float, float] = (0.004, 0.03)
    style_bank: StyleBank | None = None


def randomise_appearance(canvas: np.ndarray, content: np.ndarray, rng: np.random.Generator, cfg: RandomiseConfig) -> np.ndarray:
    """A new [0, 1] float32 canvas; ``content`` (uint8, 1 = film) is where the film is."""
    if not cfg.enabled:
        return canvas
    img = np.clip(canvas.astype(np.float32), 0.0, 1.0)
    inside = content.astype(bool)
    if not inside.any():
        return img
    ys, xs = np.nonzero(inside)
    box = (int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1)
    x0, y0, x1, y1 = box
    film = img[y0:y1, x0:x1].copy()
    h, w = film.shape

    if cfg.style_bank is not None and len(cfg.style_bank) and rng.random() < cfg.style_probability:
        target = cfg.style_bank.images[int(rng.integers(len(cfg.style_bank)))]
        target = cv2.resize(target, (w, h), interpolation=cv2.INTER_AREA)
        if rng.random() < 0.6:
            film = fourier_style(film, target, float(rng.uniform(*cfg.fda_beta)))
        else:
            film = match_histogram(film, target)
    if rng.random() < cfg.tone_probability:
        film = _tone_curve(film, rng)
    if rng.random() < cfg.shading_probability:
        film = film + _smooth_field(h, w, rng) * rng.uniform(0.05, 0.3)
    if rng.random() < cfg.sharpen_probability:
        radius = rng.uniform(1.5, 0.04 * max(h, w) + 2.0)
        film = film + rng.uniform(0.3, 2.0) * (film - cv2.GaussianBlur(film, (0, 0), radius))
    elif rng.random() < cfg.blur_probability:
        film = cv2.GaussianBlur(film, (0, 0), rng.uniform(0.4, 1.6))
    if rng.random() < cfg.noise_probability:
        level = rng.uniform(0.005, 0.05)
        quantum = rng.uniform(0.0, 1.0)
        std = level * (1.0 - quantum + quantum * np.sqrt(np.clip(film, 0.0, 1.0) + 0.05))
        film = film + rng.standard_normal(film.shape).astype(np.float32) * std.astype(np.float32)
    film = np.clip(film, 0.0, 1.0)
    if rng.random() < cfg.collimation_probability:
        film = _collimate(film, rng)
    if rng.random() < cfg.bars_probability:
        film = _letterbox_bars(film, rng)
    if rng.random() < cfg.border_rows_probability:
        film = _border_rows(film, rng)
    if rng.random() < cfg.text_probability:
        film = _burnt_in_text(film, rng)
    if rng.random() < cfg.marker_probability:
        film = _side_marker(film, rng)
    if rng.random() < cfg.ruler_probability:
        film = _ruler(film, rng)
    if rng.random() < cfg.washout_probability:
        # A washed-out 8-bit film: narrow grey range, quantised, then stretched by the window.
        lo = rng.uniform(0.3, 0.75)
        hi = rng.uniform(lo + 0.1, min(1.0, lo + 0.35))
        film = np.round((lo + (hi - lo) * film) * 255.0) / 255.0
    if rng.random() < cfg.jpeg_probability:
        film = _jpeg(film, int(rng.integers(15, 90)))
    film = _rewindow(film)
    out = np.zeros_like(img)
    out[y0:y1, x0:x1] = film
    return (out * content).astype(np.float32)


# ---- style ------------------------------------------------------------------------------------


def fourier_style(source: np.ndarray, target: np.ndarray, beta: float) -> np.ndarray:
    """Source with the low-frequency amplitude spectrum of ``target`` (same shape); phase kept.

    ``beta`` is the half-width of the swapped square as a share of the shorter side (FDA's L).
    """
    src = np.fft.fft2(source.astype(np.float64))
    tgt = np.fft.fft2(target.astype(np.float64))
    amp_src, phase = np.abs(src), np.angle(src)
    amp_tgt = np.abs(tgt)
    amp_src, amp_tgt = np.fft.fftshift(amp_src), np.fft.fftshift(amp_tgt)
    h, w = source.shape
    b = max(1, int(math.floor(min(h, w) * beta)))
    cy, cx = h // 2, w // 2
    amp_src[cy - b : cy + b + 1, cx - b : cx + b + 1] = amp_tgt[cy - b : cy + b + 1, cx - b : cx + b + 1]
    amp_src = np.fft.ifftshift(amp_src)
    out = np.real(np.fft.ifft2(amp_src * np.exp(1j * phase)))
    return np.clip(out, 0.0, 1.0).astype(np.float32)


def match_histogram(source: np.ndarray, target: np.ndarray, bins: int = 256) -> np.ndarray:
    """Grey levels of ``source`` remapped so that its histogram follows ``target``'s."""
    s = np.clip(source, 0.0, 1.0)
    s_hist, edges = np.histogram(s, bins=bins, range=(0.0, 1.0))
    t_hist, _ = np.histogram(np.clip(target, 0.0, 1.0), bins=bins, range=(0.0, 1.0))
    s_cdf = np.cumsum(s_hist) / max(1, s_hist.sum())
    t_cdf = np.cumsum(t_hist) / max(1, t_hist.sum())
    centres = 0.5 * (edges[:-1] + edges[1:])
    lut = np.interp(s_cdf, t_cdf, centres).astype(np.float32)
    idx = np.minimum((s * bins).astype(np.int32), bins - 1)
    return lut[idx]


# ---- appearance changes -----------------------------------------------------------------------


def _tone_curve(film: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    kind = rng.integers(3)
    if kind == 0:
        return np.power(np.clip(film, 0.0, 1.0), rng.uniform(0.5, 2.0)).astype(np.float32)
    if kind == 1:  # sigmoid LUT, the shape of film and of most DR look-up tables
        centre, slope = rng.uniform(0.3, 0.7), rng.uniform(4.0, 14.0)
        lo, hi = 1.0 / (1.0 + math.exp(slope * centre)), 1.0 / (1.0 + math.exp(-slope * (1.0 - centre)))
        y = 1.0 / (1.0 + np.exp(-slope * (film - centre)))
        return ((y - lo) / (hi - lo)).astype(np.float32)
    knots = np.sort(rng.uniform(0.0, 1.0, size=3))
    xs = np.concatenate([[0.0], knots, [1.0]])
    ys = np.concatenate([[0.0], np.sort(rng.uniform(0.0, 1.0, size=3)), [1.0]])
    return np.interp(film, xs, ys).astype(np.float32)


def _smooth_field(h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    coarse = rng.standard_normal((int(rng.integers(2, 5)), int(rng.integers(2, 5)))).astype(np.float32)
    field_ = cv2.resize(coarse, (w, h), interpolation=cv2.INTER_CUBIC)
    return field_ / max(1e-6, float(np.abs(field_).max()))


def _collimate(film: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    h, w = film.shape
    mask = np.zeros((h, w), np.float32)
    cx, cy = w * rng.uniform(0.4, 0.6), h * rng.uniform(0.4, 0.6)
    half_w, half_h = w * rng.uniform(0.3, 0.55), h * rng.uniform(0.35, 0.6)
    angle = rng.uniform(-8.0, 8.0)
    corners = cv2.boxPoints(((cx, cy), (2 * half_w, 2 * half_h), angle))
    cv2.fillPoly(mask, [np.round(corners).astype(np.int32)], 1.0)
    mask = cv2.GaussianBlur(mask, (0, 0), rng.uniform(0.5, 3.0))
    outside = rng.uniform(0.0, 0.15) if rng.random() < 0.7 else rng.uniform(0.8, 1.0)
    return (film * mask + outside * (1.0 - mask)).astype(np.float32)


def _letterbox_bars(film: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    h, w = film.shape
    out = film.copy()
    left, right = int(w * rng.uniform(0.0, 0.2)), int(w * rng.uniform(0.0, 0.2))
    value = 0.0 if rng.random() < 0.8 else 1.0
    if left:
        out[:, :left] = value
    if right:
        out[:, w - right :] = value
    return out


def _border_rows(film: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    h, w = film.shape
    out = film.copy()
    thickness = int(rng.integers(1, max(2, h // 40)))
    value = rng.uniform(0.85, 1.0)
    if rng.random() < 0.6:
        out[:thickness] = value
    if rng.random() < 0.6:
        out[h - thickness :] = value
    return out


def _burnt_in_text(film: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    h, w = film.shape
    ink = np.zeros((h, w), np.uint8)  # OpenCV draws text on 8-bit images only
    alphabet = list(string.ascii_uppercase + string.digits + ":/.- ")
    for _ in range(int(rng.integers(1, 5))):
        text = "".join(rng.choice(alphabet, size=int(rng.integers(3, 16))))
        scale = rng.uniform(0.25, 0.8) * max(h, w) / 512.0
        org = (int(rng.uniform(0, 0.7) * w), int(rng.uniform(0.03, 1.0) * h))
        cv2.putText(ink, text, org, cv2.FONT_HERSHEY_SIMPLEX, scale, 255, max(1, int(round(scale * 1.5))), cv2.LINE_AA)
    value = float(rng.uniform(0.85, 1.0)) if rng.random() < 0.8 else 0.0
    return _blend(film, ink, value)


def _side_marker(film: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    h, w = film.shape
    out = film.copy()
    size = int(rng.uniform(0.03, 0.08) * max(h, w))
    x, y = int(rng.uniform(0.02, 0.9) * w), int(rng.uniform(0.02, 0.9) * h)
    if rng.random() < 0.5:
        cv2.rectangle(out, (x, y), (x + size, y + size), float(rng.uniform(0.8, 1.0)), -1)
        colour = 0.05
    else:
        colour = float(rng.uniform(0.85, 1.0))
    ink = np.zeros((h, w), np.uint8)
    cv2.putText(ink, "L" if rng.random() < 0.5 else "R", (x + size // 6, y + size - size // 6),
                cv2.FONT_HERSHEY_SIMPLEX, size / 30.0, 255, max(1, size // 10), cv2.LINE_AA)  # fmt: skip
    return _blend(out, ink, colour)


def _blend(film: np.ndarray, ink: np.ndarray, value: float) -> np.ndarray:
    alpha = ink.astype(np.float32) / 255.0
    return (film * (1.0 - alpha) + value * alpha).astype(np.float32)


def _ruler(film: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    h, w = film.shape
    out = film.copy()
    vertical = rng.random() < 0.7
    value = float(rng.uniform(0.8, 1.0))
    step = int(rng.integers(6, 16)) * max(1, max(h, w) // 384)
    if vertical:
        x = int(rng.uniform(0.02, 0.98) * w)
        cv2.line(out, (x, 0), (x, h - 1), value, 1)
        for y in range(0, h, step):
            cv2.line(out, (x, y), (x + (8 if (y // step) % 5 == 0 else 4), y), value, 1)
    else:
        y = int(rng.uniform(0.02, 0.98) * h)
        cv2.line(out, (0, y), (w - 1, y), value, 1)
        for x in range(0, w, step):
            cv2.line(out, (x, y), (x, y + (8 if (x // step) % 5 == 0 else 4)), value, 1)
    return out


def _jpeg(film: np.ndarray, quality: int) -> np.ndarray:
    ok, buf = cv2.imencode(".jpg", np.round(np.clip(film, 0.0, 1.0) * 255.0).astype(np.uint8), [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        return film
    return cv2.imdecode(buf, cv2.IMREAD_GRAYSCALE).astype(np.float32) / 255.0


def _rewindow(film: np.ndarray) -> np.ndarray:
    lo, hi = np.percentile(film, WINDOW_PERCENTILES)
    if hi - lo < 1e-6:
        return np.clip(film, 0.0, 1.0).astype(np.float32)
    return np.clip((film - lo) / (hi - lo), 0.0, 1.0).astype(np.float32)

