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
    """8-bit BGR picture of the image with coloured outlines and names, for a quick look; with
    measurements, also the corners, the three heights of each body, Genant grades, disc angles,
    listhesis and the lordosis angles.

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
    if getattr(result, "measurements", None) is not None:
        _draw_measurements(canvas, result.measurements, scale, thickness, font_scale)
    return canvas


def _draw_measurements(canvas: np.ndarray, measurements, scale: float, thickness: int, font_scale: float) -> None:
    """Heights (anterior, middle, posterior lines, labelled in mm or px beside the front of the
    body), Genant grades above 0, disc angles (behind each disc), listhesis and the lordosis
    angles."""
    small = font_scale * 0.6
    anterior_sign = 1.0 if measurements.spine.facing == "right" else -1.0
    for v in measurements.vertebrae:
        if not v.measured or v.corners is None:
            continue
        c = np.asarray(v.corners) * scale
        for a, b in ((c[1], c[2]), (c[0], c[3]), (np.asarray(v.superior_middle) * scale, np.asarray(v.inferior_middle) * scale)):
            _line(canvas, a, b, (0, 255, 255), thickness)
        for point in c:
            cv2.circle(canvas, (int(round(point[0] - 0.5)), int(round(point[1] - 0.5))), thickness + 1, (0, 255, 255), -1, cv2.LINE_AA)
        mm = v.height_anterior_mm is not None
        values = (v.height_anterior_mm, v.height_middle_mm, v.height_posterior_mm) if mm else (v.height_anterior_px, v.height_middle_px, v.height_posterior_px)
        lines = ["/".join(f"{x:.1f}" for x in values) + (" mm" if mm else " px")]
        if v.genant_grade:
            lines.append(f"G{v.genant_grade} {v.deformity}")
        front = c[1:3].mean(0) + np.array([anterior_sign * 6.0 * thickness, 0.0])
        for k, text in enumerate(lines):
            (tw, th), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, small, 1)
            x = front[0] if anterior_sign > 0 else front[0] - tw
            colour = (0, 255, 255) if k == 0 else (0, 0, 255)
            _text(canvas, text, (int(round(x)), int(round(front[1] + k * (th + 4)))), colour, small)
    for s in measurements.spine.segments:
        # the disc angle, behind the disc (between the upper body's posterior-inferior corner
        # and the lower body's posterior-superior one)
        upper, lower = measurements.vertebrae[s.upper], measurements.vertebrae[s.lower]
        if upper.corners is not None and lower.corners is not None and s.disc_angle_deg is not None:
            at = (np.asarray(upper.corners)[3] + np.asarray(lower.corners)[0]) / 2 * scale
            text = f"{s.disc_angle_deg:.0f} deg"
            (tw, _), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, small, 1)
            x = at[0] - 4 * thickness - tw if anterior_sign > 0 else at[0] + 4 * thickness
            _text(canvas, text, (int(round(x)), int(round(at[1]))), (255, 200, 0), small)
        if s.listhesis == "none":
            continue
        if upper.corners is None:
            continue
        at = np.asarray(upper.corners)[3] * scale
        kind = "antero" if s.listhesis == "anterolisthesis" else "retro"
        _text(canvas, f"{kind} {abs(s.slip_percent):.0f}% M{s.meyerding_grade}", (int(at[0]), int(at[1])), (0, 128, 255), small)
    spine = measurements.spine
    notes = [f"{name} {value:.1f} deg" for name, value in (("lumbar lordosis", spine.lumbar_lordosis_deg), ("cervical lordosis", spine.cervical_lordosis_deg)) if value is not None]
    for k, text in enumerate(notes):
        _text(canvas, text, (8, int(round(20 * font_scale * (k + 1.5)))), (0, 255, 255), font_scale * 0.8)


def _line(canvas: np.ndarray, a: np.ndarray, b: np.ndarray, colour: tuple[int, int, int], thickness: int) -> None:
    shift = 4
    p = tuple(int(v) for v in np.round((np.asarray(a) - 0.5) * (1 << shift)))
    q = tuple(int(v) for v in np.round((np.asarray(b) - 0.5) * (1 << shift)))
    cv2.line(canvas, p, q, colour, thickness, cv2.LINE_AA, shift)


def _text(canvas: np.ndarray, text: str, org: tuple[int, int], colour: tuple[int, int, int], font_scale: float) -> None:
    cv2.putText(canvas, text, org, cv2.FONT_HERSHEY_SIMPLEX, font_scale, (0, 0, 0), 3, cv2.LINE_AA)
    cv2.putText(canvas, text, org, cv2.FONT_HERSHEY_SIMPLEX, font_scale, colour, 1, cv2.LINE_AA)


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
