"""Overlay picture of a result: the image with coloured outlines and names, for a quick look."""

from __future__ import annotations

from typing import TYPE_CHECKING

import cv2
import numpy as np

from ..levels import level_index
from ..preprocess import to_gray, window01

if TYPE_CHECKING:
    from ..result import Result


def overlay(result: "Result", *, max_size: int | None = 2048) -> np.ndarray:
    """8-bit BGR picture of the image with coloured outlines and names, for a quick look.

    Images larger than ``max_size`` pixels on their long side are shrunk first.
    """
    if result.pixels is None:
        raise ValueError("this result holds no pixel data to draw on")

    gray = to_gray(result.pixels).astype(np.float32)
    scale = 1.0
    if max_size is not None and max(gray.shape) > max_size:
        # Shrink first: the display window of the small picture is all a quick look needs.
        scale = max_size / max(gray.shape)
        gray = cv2.resize(gray, (round(gray.shape[1] * scale), round(gray.shape[0] * scale)), interpolation=cv2.INTER_AREA)
    gray = window01(gray)
    canvas = cv2.cvtColor(np.round(gray * 255).astype(np.uint8), cv2.COLOR_GRAY2BGR)
    thickness = max(1, round(max(canvas.shape[:2]) / 400))
    font_scale = max(0.4, max(canvas.shape[:2]) / 1200)
    for v in result.excluded:
        _draw_outline(canvas, v.polygon * scale, (128, 128, 128), thickness)
    for v in result.vertebrae:
        colour = _level_colour(v.label)
        _draw_outline(canvas, v.polygon * scale, colour, thickness)
        text = v.label or "?"
        cx, cy = v.centroid[0] * scale, v.centroid[1] * scale
        (tw, th), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, font_scale, thickness)
        org = (int(round(cx - tw / 2)), int(round(cy + th / 2)))
        cv2.putText(canvas, text, org, cv2.FONT_HERSHEY_SIMPLEX, font_scale, (0, 0, 0), thickness + 2, cv2.LINE_AA)
        cv2.putText(canvas, text, org, cv2.FONT_HERSHEY_SIMPLEX, font_scale, colour, thickness, cv2.LINE_AA)
    return canvas


def _draw_outline(canvas: np.ndarray, polygon: np.ndarray, colour: tuple[int, int, int], thickness: int) -> None:
    shift = 4  # OpenCV draws fixed-point vertices with this many fraction bits (sub-pixel outlines)
    pts = np.round((np.asarray(polygon, dtype=np.float64) - 0.5) * (1 << shift)).astype(np.int32)
    cv2.polylines(canvas, [pts.reshape(-1, 1, 2)], isClosed=True, color=colour, thickness=thickness, lineType=cv2.LINE_AA, shift=shift)


def _level_colour(label: str | None) -> tuple[int, int, int]:
    """Distinct BGR colour per level, cycling through hues; white for unnamed."""
    if label is None:
        return (255, 255, 255)
    hue = (level_index(label) * 47) % 180  # OpenCV hue range is 0…179; 47 spreads neighbours apart
    bgr = cv2.cvtColor(np.uint8([[[hue, 220, 255]]]), cv2.COLOR_HSV2BGR)[0, 0]
    return int(bgr[0]), int(bgr[1]), int(bgr[2])
