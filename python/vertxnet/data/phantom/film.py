"""The film renderer: one phantom from its configuration and index (style ``film``)."""

from __future__ import annotations

import cv2
import numpy as np

from ...levels import view_of_levels
from ...raster import polygon_area
from ...records import Annotation, Record

from .config import MIXED_WEIGHTS, Knobs, PhantomConfig
from .render import Canvas, Detector, Field, Projection, bone_texture, expose
from .scene import CHAIN, Spine, build_spine, streams
from .truth import body_truth
from .structures import (
    add_aortic_calcification,
    add_atlas,
    add_bowel,
    add_disc_gas,
    add_head_neck,
    add_implants,
    add_pelvis,
    add_posterior_elements,
    add_ribs,
    add_sacrum,
    add_shoulders,
    add_thorax,
    soft_tissue,
)

#: A vertebra less visible than this (share of its body area inside the field) is not annotated.
MIN_VISIBLE_FRACTION = 1.0 / 3.0
#: Vertices of a truth polygon before clipping to the field.
OUTLINE_VERTICES = 96
FORMAT_VERSION = 2
#: Field heights (mm) a lateral cassette or detector covers.
FIELD_HEIGHT_MM = (135.0, 398.0)

# Which level the top / bottom field edge may cut, per view (drawn uniformly).
_TOP = {"cervicothoracic": ("C3", "C4", "C5"), "thoracic": ("T1", "T2", "T3"), "thoracolumbar": ("T8", "T9"),
        "lumbar": ("T11", "T12", "T12")}
_BOTTOM = {"cervical": ("T1", "T1", "T2"), "cervicothoracic": ("T3", "T4", "T5"), "thoracic": ("T11", "T12", "L1"),
           "thoracolumbar": ("L4", "L5", "S1", "S1", "S1", "S1"), "lumbar": ("S1",)}
_CENTRE = {"cervical": ("C3", "C6"), "cervicothoracic": ("C6", "T2"), "thoracic": ("T4", "T10"),
           "thoracolumbar": ("T11", "L3"), "lumbar": ("L1", "L4")}
_ORDER = CHAIN


def _neighbour(level: str, step: int) -> str:
    return _ORDER[min(max(_ORDER.index(level) + step, 0), len(_ORDER) - 1)]


def _choose_field(spine: Spine, size: int, knobs: Knobs, rng: np.random.Generator) -> Field:
    """Field of view in world mm: which vertebrae the edges cut, how deep, size and position."""
    view = spine.view
    ext = {}  # vertical extent of each body (its rim corners; the outline only where it matters)
    for b in spine.named:
        if b.level == "C2" or b.osteophytes:
            ys = b.to_world(b.outline())[:, 1]
        else:
            ys = np.array([b.corner(c)[1] for c in ("ant_top", "post_top", "ant_bottom", "post_bottom")])
        ext[b.level] = (float(ys.min()), float(ys.max()))
    top_u, bot_u, ft_u, fb_u, size_u, aspect_u, pos_u, mirror_u = rng.random(8)
    frac_top = 1.0 - knobs.partial_edge * 0.95 * ft_u  # share of the end vertebra left inside
    frac_bot = 1.0 - knobs.partial_edge * 0.95 * fb_u
    scale = 1.0 + 1.5 * knobs.scale_jitter * size_u  # the field is larger than the spine needs

    def cut_below(level: str, frac: float) -> float:  # bottom edge through ``level`` or the disc below it
        y0, y1 = ext[level]
        return y0 + frac * (y1 - y0) if frac < 1.0 else y1 + 0.5 * (ext[_neighbour(level, 1)][0] - y1)

    def cut_above(level: str, frac: float) -> float:
        y0, y1 = ext[level]
        return y1 - frac * (y1 - y0) if frac < 1.0 else y0 - 0.5 * (y0 - ext[_neighbour(level, -1)][1])

    last = _BOTTOM[view][int(bot_u * len(_BOTTOM[view]))]
    tops = _TOP.get(view, ())
    if view == "thoracolumbar" and last != "S1":  # a film that stops above the pelvis starts higher
        tops = ("T5", "T6")
    lo_h, hi_h = FIELD_HEIGHT_MM
    if view == "cervical":
        y_bottom = cut_below(last, frac_bot)
        c2 = spine.body("C2")
        y_c1 = float(c2.to_world(c2.outline())[:, 1].min()) - 12.0  # top of the atlas
        height = float(np.clip((y_bottom - y_c1) * scale + 45.0, lo_h, hi_h))
        y_top = y_bottom - height
        aspect = 0.68 + 0.2 * aspect_u
    else:
        first = tops[int(top_u * len(tops))]
        y_top = cut_above(first, frac_top)
        if last == "S1":  # the field runs on into the pelvis
            height = (ext["S1"][1] - y_top) * scale + 45.0
        else:
            height = cut_below(last, frac_bot) - y_top
        height = float(np.clip(height, lo_h, hi_h))
        aspect = (0.72 if view != "cervicothoracic" else 0.8) + 0.18 * aspect_u
    height_px = size  # a view always has the longer side vertical here; `size` is that side in pixels
    width_px = max(int(round(size * aspect)), 16)
    spacing = height / height_px
    a, b = _CENTRE[view]
    targets = [spine.body(lv) for lv in _ORDER[_ORDER.index(a) : _ORDER.index(b) + 1]]
    x_body = float(np.mean([t.center[0] for t in targets]))
    depth = float(np.mean([t.depth for t in targets]))
    shift = 0.9 if view == "cervical" else 0.8
    cx = x_body - shift * depth + knobs.position_jitter * width_px * spacing * (2 * pos_u - 1)
    cy = y_top + height / 2
    mirror = 1.0 if mirror_u < 0.5 else -1.0
    return Field(width=width_px, height=height_px, spacing=spacing, cx=cx, cy=cy, mirror=mirror)


def _projection(field: Field, knobs: Knobs, rng: np.random.Generator) -> tuple[Projection, dict]:
    roll_u, sid_u = rng.normal(), rng.random()
    roll = np.deg2rad(float(np.clip(roll_u * 2.5, -7.0, 7.0))) * knobs.obliquity
    sid = 1000.0 + 800.0 * sid_u  # source-to-image distance of a lateral spine exposure
    k = knobs.obliquity
    proj = Projection(roll=float(roll), sid=sid / k if k > 0 else np.inf, cx=field.cx, cy=field.cy)
    info = {"axial_rotation_deg": round(float(np.rad2deg(roll)), 4), "source_image_distance_mm": round(sid, 1)}
    return proj, info


def _clip_to_rect(poly: np.ndarray, width: float, height: float) -> np.ndarray:
    """Sutherland-Hodgman clipping of a polygon to [0, width] x [0, height]."""
    if poly[:, 0].max() <= 0 or poly[:, 1].max() <= 0 or poly[:, 0].min() >= width or poly[:, 1].min() >= height:
        return np.zeros((0, 2))
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


def _detector(knobs: Knobs, rng: np.random.Generator, film_rng: np.random.Generator, spacing: float) -> Detector:
    dose, sc, bl, g, lat, elec = rng.random(6)
    eq, eg, ek, dg, wl, wh, cg, ck = film_rng.random(8)
    photons = 0.0 if knobs.noise <= 0 else 160.0 / knobs.noise**2 * (0.6 + 0.8 * dose)
    return Detector(
        photons=float(photons),
        scatter=float(knobs.scatter * (0.6 + 0.8 * sc)),
        blur_px=float(knobs.blur_mm * (0.7 + 0.6 * bl) / spacing),
        electronic_noise=float(0.004 * knobs.noise * elec),
        gamma=float(4.0 + knobs.contrast_jitter * 1.8 * (2 * g - 1)),
        latitude=float(0.5 + knobs.contrast_jitter * 0.12 * (2 * lat - 1)),
        equalise_px=50.0 / spacing,
        scatter_px=50.0 / spacing,
        equalisation=float(0.4 + 0.45 * eq),
        edge_gain=float(0.4 + 1.2 * eg),
        edge_px=float((1.2 + 2.0 * ek) / spacing),
        contrast_gain=float(0.5 + 1.5 * cg),
        contrast_px=float((6.0 + 10.0 * ck) / spacing),
        detail_gain=float(0.4 * dg),
        window_low=float(0.5 + 3.0 * wl),
        window_high=float(99.0 + 0.9 * wh),
    )


def _near(spine: Spine, field: Field, levels, margin: float) -> bool:
    """Whether any of ``levels`` lies within ``margin`` mm of the field (vertically)."""
    ys = spine.patient_frame(field.to_world(np.array([[0.0, 0.0], [0.0, field.height], [field.width, 0.0],
                                                      [field.width, field.height]])))[:, 1]
    lo, hi = float(ys.min()) - margin, float(ys.max()) + margin
    return any(lo <= float(spine.patient_frame(spine.body(lv).center)[1]) <= hi for lv in levels)


def choose_view(config: PhantomConfig, rng: np.random.Generator) -> str:
    if config.view != "mixed":
        return config.view
    names = list(MIXED_WEIGHTS)
    cum = np.cumsum([MIXED_WEIGHTS[n] for n in names])
    return names[int(np.searchsorted(cum, rng.random() * cum[-1], side="right"))]


def render_film(config: PhantomConfig, index: int) -> tuple[np.ndarray, Record]:
    knobs = config.knobs()
    rngs = streams(config.seed, index)
    view = choose_view(config, rngs["view"])
    spine = build_spine(view, knobs, rngs)
    field = _choose_field(spine, config.size, knobs, rngs["field"])
    projection, oblique = _projection(field, knobs, rngs["oblique"])
    canvas = Canvas(field, bone_texture(rngs["texture"], field.height, field.width, field.spacing), projection)
    strength = knobs.soft_tissue
    inside = soft_tissue(canvas, spine, rngs["soft"], strength)
    thoracic = [f"T{i}" for i in range(1, 13)]
    if _near(spine, field, thoracic, 60.0):
        add_thorax(canvas, spine, rngs["thorax"], strength)
    if _near(spine, field, ("L1", "L2", "L3", "L4", "L5", "S1"), 40.0):
        add_bowel(canvas, spine, rngs["bowel"], strength)
    for b in spine.bodies:
        if b.segment == "vertebra" and canvas.near(b.center, 40.0):
            canvas.add_body(b)
    add_posterior_elements(canvas, spine, rngs["posterior"])
    add_disc_gas(canvas, spine)
    if _near(spine, field, thoracic, 160.0):
        add_ribs(canvas, spine, rngs["thorax"])
    if _near(spine, field, ("C6", "C7", "T1", "T2", "T3", "T4", "T5"), 60.0):
        add_shoulders(canvas, spine, rngs["soft"], strength)
    if _near(spine, field, ("C2", "C3"), 60.0):
        add_atlas(canvas, spine.body("C2"), rngs["head"])
        add_head_neck(canvas, spine, rngs["head"], strength)
    if _near(spine, field, ("L4", "L5", "S1"), 120.0):
        add_sacrum(canvas, spine, rngs["pelvis"])
        add_pelvis(canvas, spine, rngs["pelvis"], strength)
        add_aortic_calcification(canvas, spine, rngs["pelvis"])

    annotations, visible, cut = [], {}, {}
    for b in spine.named:
        outline = field.to_px(b.to_world(b.outline(n=OUTLINE_VERTICES)))
        clipped = _clip_to_rect(outline, field.width, field.height)
        fraction = polygon_area(clipped) / polygon_area(outline) if len(clipped) >= 3 else 0.0
        if fraction <= 0.0:
            continue
        if fraction < MIN_VISIBLE_FRACTION:  # as an annotator would: too little of it to outline
            cut[b.level] = round(fraction, 4)
            continue
        truth = body_truth(b, field.to_px, field.spacing)
        annotations.append(Annotation(polygon=clipped, level=b.level, extra={"corners": truth["corners"], "morphometry": truth}))
        visible[b.level] = round(fraction, 4)
    implants = add_implants(canvas, spine, rngs["implant"], knobs.implant_prob, [a.level for a in annotations])
    # the dose is set on the vertebral bodies; the window on the whole patient
    roi = np.zeros((field.height, field.width), np.uint8)
    for ann in annotations:
        cv2.fillPoly(roi, [np.round((ann.polygon - 0.5) * 16).astype(np.int32)], 1, shift=4)
    roi = roi.astype(bool) & ~canvas.metal
    if roi.sum() < 16:
        roi = inside & ~canvas.metal if inside.any() else np.ones_like(roi)
    det = _detector(knobs, rngs["detector"], rngs["film"], field.spacing)
    display = expose(canvas.finish(), det, rngs["noise"], roi, inside, canvas.metal)
    image = np.round(display * 65535.0).astype(np.uint16)

    shown = view_of_levels([a.level for a in annotations]) or view
    extra = {
        "phantom": {
            "format_version": FORMAT_VERSION,
            "style": "film",
            "seed": config.seed,
            "index": index,
            "difficulty": config.difficulty,
            "framed": view,
            "facing": "right" if field.mirror > 0 else "left",
            "rotation_deg": spine.extra["rotation_deg"],
            **oblique,
            "bone_density": round(spine.bone_density, 4),
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
        view=shown,
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
