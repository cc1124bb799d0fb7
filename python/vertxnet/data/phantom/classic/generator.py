"""The first renderer (style ``classic``, format version 1), unchanged: ``generate(config, index)``.

Kept so that data made with it, and the demo bundle trained on it, can be reproduced exactly. Its
annotations carry the same per-body morphometric truth as the film renderer's (``corners`` and
``morphometry``, :mod:`..truth`), added beside the unchanged images and polygons."""

from __future__ import annotations

import cv2
import numpy as np

from ....raster import polygon_area
from ....records import Annotation, Record
from ..config import Knobs, PhantomConfig
from ..truth import body_truth
from .render import Canvas, Detector, Field, bone_texture, expose
from .scene import Spine, build_spine, streams
from .structures import (
    add_atlas,
    add_cervical_shadows,
    add_implants,
    add_lumbar_shadows,
    add_posterior_elements,
    soft_tissue,
)

#: A vertebra less visible than this (share of its body area inside the field) is not annotated.
MIN_VISIBLE_FRACTION = 1.0 / 3.0
#: Vertices of a truth polygon before clipping to the field.
OUTLINE_VERTICES = 96
FORMAT_VERSION = 1


def _choose_field(spine: Spine, size: int, knobs: Knobs, rng: np.random.Generator) -> Field:
    """Field of view in world mm: which vertebra the edge cuts, how deep, size and position."""
    cervical = spine.view == "cervical"
    ext = {}
    for b in spine.bodies:
        if b.level is not None:
            ys = b.to_world(b.outline())[:, 1]
            ext[b.level] = (float(ys.min()), float(ys.max()))
    pick, frac_u, size_u, aspect_u, pos_u, mirror_u = rng.random(6)
    # share of the end vertebra left inside the field: 1 = cut in the disc beyond it
    frac = 1.0 - knobs.partial_edge * 0.95 * frac_u
    scale = 1.0 + 1.5 * knobs.scale_jitter * size_u  # the field is larger than the spine needs
    if cervical:
        last = "T1" if pick < 0.7 else "T2"
        y0, y1 = ext[last]
        nxt = ext["T2" if last == "T1" else "T3"][0]
        y_bottom = y0 + frac * (y1 - y0) if frac < 1.0 else y1 + 0.5 * (nxt - y1)
        c2 = spine.body("C2")
        y_c1 = float(c2.to_world(c2.outline())[:, 1].min()) - 12.0  # top of the atlas
        height = (y_bottom - y_c1) * scale + 45.0
        y_top = y_bottom - height
        aspect = 0.8 + 0.2 * aspect_u
    else:
        first = "T12" if pick < 0.45 else ("T11" if pick < 0.85 else "T10")
        y0, y1 = ext[first]
        prv = ext[{"T12": "T11", "T11": "T10", "T10": "T9"}[first]][1]
        y_top = y1 - frac * (y1 - y0) if frac < 1.0 else y0 - 0.5 * (y0 - prv)
        height = (ext["S1"][1] - y_top) * scale + 45.0
        aspect = 0.72 + 0.18 * aspect_u
    # a view always has the longer side vertical here; `size` is that side in pixels
    height_px = size
    width_px = max(int(round(size * aspect)), 16)
    spacing = height / height_px
    targets = [spine.body(level) for level in (("C3", "C4", "C5", "C6") if cervical else ("L1", "L2", "L3", "L4"))]
    x_body = float(np.mean([b.center[0] for b in targets]))
    depth = float(np.mean([b.depth for b in targets]))
    cx = x_body - 0.9 * depth + knobs.position_jitter * width_px * spacing * (2 * pos_u - 1)
    cy = y_top + height / 2
    mirror = 1.0 if mirror_u < 0.5 else -1.0
    return Field(width=width_px, height=height_px, spacing=spacing, cx=cx, cy=cy, mirror=mirror)


def _clip_to_rect(poly: np.ndarray, width: float, height: float) -> np.ndarray:
    """Sutherland-Hodgman clipping of a polygon to [0, width] x [0, height]."""
    if poly[:, 0].min() >= 0 and poly[:, 1].min() >= 0 and poly[:, 0].max() <= width and poly[:, 1].max() <= height:
        return poly
    pts = poly
    for axis, bound, keep_low in ((0, 0.0, False), (0, width, True), (1, 0.0, False), (1, height, True)):
        if len(pts) == 0:
            break
        inside = pts[:, axis] <= bound if keep_low else pts[:, axis] >= bound
        out = []
        n = len(pts)
        for i in range(n):
            cur, prev = pts[i], pts[i - 1]
            cin, pin = inside[i], inside[i - 1]
            if cin != pin:
                t = (bound - prev[axis]) / (cur[axis] - prev[axis])
                crossing = prev + t * (cur - prev)
                crossing[axis] = bound  # exactly on the edge, not a rounding error outside it
                out.append(crossing)
            if cin:
                out.append(cur)
        pts = np.array(out) if out else np.zeros((0, 2))
    if len(pts):  # drop repeated vertices created on the field edge
        keep = np.ones(len(pts), bool)
        keep[1:] = np.any(np.abs(np.diff(pts, axis=0)) > 1e-9, axis=1)
        if len(pts) > 1 and np.all(np.abs(pts[-1] - pts[0]) <= 1e-9):
            keep[-1] = False
        pts = pts[keep]
    return pts


def _detector(knobs: Knobs, rng: np.random.Generator, spacing: float) -> Detector:
    dose, sc, bl, g, lat, elec = rng.random(6)
    photons = 0.0 if knobs.noise <= 0 else 160.0 / knobs.noise**2 * (0.6 + 0.8 * dose)
    return Detector(
        photons=float(photons),
        scatter=float(knobs.scatter * (0.6 + 0.8 * sc)),
        blur_px=float(knobs.blur_mm * (0.7 + 0.6 * bl) / spacing),
        electronic_noise=float(0.004 * knobs.noise * elec),
        gamma=float(4.5 + knobs.contrast_jitter * 2.0 * (2 * g - 1)),
        latitude=float(0.5 + knobs.contrast_jitter * 0.12 * (2 * lat - 1)),
        equalise_px=40.0 / spacing,
        scatter_px=50.0 / spacing,
    )


def generate(config: PhantomConfig, index: int) -> tuple[np.ndarray, Record]:
    """Render phantom ``index`` of a data set: (uint16 image (H, W), Record with the truth).

    A pure function of ``config`` and ``index``. The record's polygons are vertebral bodies in
    continuous pixel coordinates, top to bottom; ``record.extra["phantom"]`` lists the knobs that
    were drawn (fractures with their heights, implants, touching discs, ...).
    """
    if isinstance(index, bool) or not isinstance(index, (int, np.integer)) or index < 0:
        raise ValueError(f"index must be a non-negative integer, got {index!r}")
    index = int(index)
    knobs = config.knobs()
    rngs = streams(config.seed, index)
    view = config.view
    if view == "mixed":
        view = "cervical" if rngs["view"].random() < 0.5 else "lumbar"
    spine = build_spine(view, knobs, rngs)
    field = _choose_field(spine, config.size, knobs, rngs["field"])
    canvas = Canvas(field, bone_texture(rngs["texture"], field.height, field.width, field.spacing))
    soft_rng = rngs["soft"]
    inside = soft_tissue(canvas, spine, soft_rng, knobs.soft_tissue)
    named = [b for b in spine.bodies if b.level is not None]
    for b in spine.bodies:
        canvas.add_body(b)
    for b in named:
        add_posterior_elements(canvas, b)
    if view == "cervical":
        add_atlas(canvas, spine.body("C2"))
        add_cervical_shadows(canvas, spine, soft_rng, knobs.soft_tissue)
    else:
        add_lumbar_shadows(canvas, spine, soft_rng, knobs.soft_tissue)
    implants = add_implants(canvas, spine, rngs["implant"], knobs.implant_prob)

    annotations, visible, cut = [], {}, {}
    for b in named:
        if b.level not in spine.annotated_levels:
            continue
        outline = field.to_px(b.to_world(b.outline(n=OUTLINE_VERTICES)))
        clipped = _clip_to_rect(outline, field.width, field.height)
        fraction = polygon_area(clipped) / polygon_area(outline) if len(clipped) >= 3 else 0.0
        if fraction <= 0.0:
            continue
        if fraction < MIN_VISIBLE_FRACTION:  # as an annotator would: too little of it to outline
            cut[b.level] = round(fraction, 4)
            continue
        # the same morphometric truth as the film renderer's (the pixels are unchanged)
        truth = body_truth(b, field.to_px, float(field.spacing))
        annotations.append(Annotation(polygon=clipped, level=b.level, extra={"corners": truth["corners"], "morphometry": truth}))
        visible[b.level] = round(fraction, 4)
    # the display window is set on the vertebral bodies, as a technologist would
    roi = np.zeros((field.height, field.width), np.uint8)
    for ann in annotations:
        cv2.fillPoly(roi, [np.round((ann.polygon - 0.5) * 16).astype(np.int32)], 1, shift=4)
    roi = roi.astype(bool) & ~canvas.metal
    if roi.sum() < 16:
        roi = inside & ~canvas.metal if inside.any() else np.ones_like(roi)
    display = expose(canvas.att, _detector(knobs, rngs["detector"], field.spacing), rngs["noise"], roi)
    image = np.round(display * 65535.0).astype(np.uint16)

    extra = {
        "phantom": {
            "format_version": FORMAT_VERSION,
            "seed": config.seed,
            "index": index,
            "difficulty": config.difficulty,
            "facing": "right" if field.mirror > 0 else "left",
            "rotation_deg": spine.extra["rotation_deg"],
            "fractures": _with_pixel_heights(spine.extra["fractures"], field.spacing),
            "implants": implants,
            "osteophytes": spine.extra["osteophytes"],
            "narrowed_discs": spine.extra["narrowed_discs"],
            "touching_discs": spine.extra["touching_discs"],
            "visible_fraction": visible,
            "unannotated_partial": cut,
        }
    }
    record = Record(
        image_path=None,
        width=field.width,
        height=field.height,
        annotations=annotations,
        view=view,
        pixel_spacing_mm=(round(field.spacing, 6), round(field.spacing, 6)),
        image_id=index + 1,
        image=image,
        extra=extra,
    )
    return image, record


def _with_pixel_heights(fractures: list[dict], spacing: float) -> list[dict]:
    out = []
    for f in fractures:
        g = dict(f)
        for key in ("nominal_height", "anterior_height", "middle_height", "posterior_height"):
            g[f"{key}_px"] = round(f[f"{key}_mm"] / spacing, 3)
        out.append(g)
    return out
