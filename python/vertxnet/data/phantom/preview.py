"""Contact sheet of phantoms with their truth outlines, for a person to look at."""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from ...levels import level_index
from ...records import Record


def _colour(level: str) -> tuple[int, int, int]:
    # neighbouring levels get well-separated, stable hues (BGR)
    hue = (level_index(level) * 37) % 180
    hsv = np.uint8([[[hue, 220, 255]]])
    b, g, r = cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)[0, 0]
    return int(b), int(g), int(r)


def contact_sheet(records: Sequence[Record], *, columns: int = 4, tile: int = 384, max_images: int = 16) -> np.ndarray:
    """An 8-bit BGR grid of the first ``max_images`` records with outlines and level names.

    Each record must hold its pixel data (``record.image``) or point to it (``image_path``).
    """
    shown = list(records)[:max_images]
    if not shown:
        raise ValueError("no records to show")
    columns = min(columns, len(shown))
    rows = (len(shown) + columns - 1) // columns
    sheet = np.zeros((rows * tile, columns * tile, 3), np.uint8)
    for k, rec in enumerate(shown):
        image = rec.image if rec.image is not None else rec.load_image()
        img = image.astype(np.float32)
        img = (img - img.min()) / max(float(img.max() - img.min()), 1e-6)
        scale = tile / max(img.shape)
        w, h = max(int(round(img.shape[1] * scale)), 1), max(int(round(img.shape[0] * scale)), 1)
        small = cv2.resize(img, (w, h), interpolation=cv2.INTER_AREA)
        tile_img = cv2.cvtColor(np.round(small * 255).astype(np.uint8), cv2.COLOR_GRAY2BGR)
        for ann in rec.annotations:
            pts = ann.polygon * scale - 0.5
            colour = _colour(ann.level) if ann.level else (0, 255, 255)
            cv2.polylines(tile_img, [np.round(pts * 16).astype(np.int32)], True, colour, 1, cv2.LINE_AA, shift=4)
            if ann.level:
                cx, cy = pts.mean(0)
                cv2.putText(tile_img, ann.level, (int(cx) - 8, int(cy) + 4), cv2.FONT_HERSHEY_SIMPLEX, 0.35, colour, 1,
                            cv2.LINE_AA)
        label = f"{rec.view or '?'} #{rec.image_id}"
        cv2.putText(tile_img, label, (4, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (255, 255, 255), 1, cv2.LINE_AA)
        r, c = divmod(k, columns)
        y0, x0 = r * tile + (tile - h) // 2, c * tile + (tile - w) // 2
        sheet[y0 : y0 + h, x0 : x0 + w] = tile_img
    return sheet
