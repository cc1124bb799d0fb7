"""Morphometric truth of a phantom body: its corners, endplate middles and heights.

The body model (:class:`.anatomy.Body`) is built from rim corners (``Body.corner``) whose outline
is then rounded. An observer marks a corner on the film where the bone is: on the rounded outline,
at its point nearest the rim corner (osteophytes left out, as morphometry does), and the middle
height at mid-depth between the deepest points of the two endplates. Those are the truth here:
``corners`` (posterior-superior, anterior-superior, anterior-inferior, posterior-inferior, the
order of the real-film annotations) and the three heights between them; the model's rim heights
(``Body.h_ant`` / ``h_post``, before rounding) are kept beside them as ``rim_height_*_mm``.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from .anatomy import Body

CORNER_KEYS = ("post_top", "ant_top", "ant_bottom", "post_bottom")
#: Vertices of the outline the corners are marked on (finer than the annotation's).
TRUTH_VERTICES = 720


def _nearest_on_ring(ring: np.ndarray, point: np.ndarray) -> np.ndarray:
    a, b = ring, np.roll(ring, -1, axis=0)
    ab = b - a
    t = np.clip(((point - a) * ab).sum(1) / np.maximum((ab * ab).sum(1), 1e-18), 0.0, 1.0)
    nearest = a + t[:, None] * ab
    return nearest[np.argmin(np.hypot(*(nearest - point).T))]


def body_corners_local(body: Body) -> np.ndarray:
    """(4, 2) corners in the body's local (u, v) mm: the points of its osteophyte-free outline
    nearest its rim corners."""
    plain = dataclasses.replace(body, osteophytes=[]) if body.osteophytes else body
    ring = np.asarray(plain.outline(n=TRUTH_VERTICES), dtype=np.float64)
    rims = []
    for key in CORNER_KEYS:
        u = body.depth / 2 if key.startswith("ant") else -body.depth / 2
        h = body.h_ant if key.startswith("ant") else body.h_post
        rims.append((u, -h / 2 if key.endswith("top") else h / 2))
    return np.array([_nearest_on_ring(ring, np.array(r)) for r in rims])


def body_middles_local(body: Body) -> np.ndarray:
    """(2, 2) superior and inferior endplate points at mid-depth, local (u, v) mm."""
    h_mid = (body.h_ant + body.h_post) / 2
    return np.array([[0.0, -h_mid / 2 + body.concavity_top], [0.0, h_mid / 2 - body.concavity_bottom]])


def body_truth(body: Body, to_px: Any, spacing_mm: float) -> dict[str, Any]:
    """JSON-ready truth of one body: ``corners`` and ``middles`` in pixels (``to_px`` maps world
    mm to pixels, e.g. ``Field.to_px``; ``spacing_mm`` per pixel) and the anterior, middle and
    posterior heights in mm and px."""
    corners = body_corners_local(body)
    middles = body_middles_local(body)
    ps, as_, ai, pi = corners
    heights_mm = {
        "anterior": float(np.hypot(*(ai - as_))),
        "middle": float(np.hypot(*(middles[1] - middles[0]))),
        "posterior": float(np.hypot(*(pi - ps))),
    }
    out: dict[str, Any] = {
        "corners": np.round(to_px(body.to_world(corners)), 4).tolist(),
        "middles": np.round(to_px(body.to_world(middles)), 4).tolist(),
    }
    for name, value in heights_mm.items():
        out[f"height_{name}_mm"] = round(value, 4)
        out[f"height_{name}_px"] = round(value / spacing_mm, 4)
    out["rim_height_anterior_mm"] = round(float(body.h_ant), 4)
    out["rim_height_posterior_mm"] = round(float(body.h_post), 4)
    return out


__all__ = ["CORNER_KEYS", "TRUTH_VERTICES", "body_corners_local", "body_middles_local", "body_truth"]
