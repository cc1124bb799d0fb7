"""Projection rendering: path lengths through layered anatomy, Beer-Lambert, detector and film.

Everything accumulates into one line-integral map ``A = sum(mu_k * t_k)`` (dimensionless): fine
structures at the output resolution in small patches around themselves, smooth ones (soft tissue,
lungs, bowel) on a half-resolution layer. Bone and metal add their attenuation *in excess of* the
soft tissue they displace, air subtracts it.

Bones are hollow: a cortical shell around trabecular (or fatty) marrow. Seen from the side a shell
projects as bright rims (where the beam runs tangentially through the cortex) around an interior
only a little brighter than the soft tissue around it, which is what films show.

Left and right halves of the patient are not superimposed exactly on a real lateral film: the beam
diverges from a point source and the patient is rarely in a perfect lateral position. Paired
structures (and the two halves of each vertebral body) are therefore drawn twice, offset by
:meth:`Canvas.side_offset`, which gives the double contours of endplates, ribs and the pelvis.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

# Linear attenuation coefficients (1/mm) at an effective energy of ~60-70 keV.
MU_SOFT = 0.020
MU_TRABECULAR = 0.025  # marrow + trabeculae of a healthy adult vertebra (density 1)
MU_CORTICAL = 0.052
MU_METAL = 0.35  # titanium / cobalt-chrome implants: far above bone
MU_CEMENT = 0.11  # PMMA with barium sulphate (vertebroplasty)

_SUPERSAMPLE = 4  # polygon coverage is rasterised at 4x inside each small patch only
_SHELL_SUPERSAMPLE = 1  # shells and tubes: the blur of the detector hides the steps


@dataclass(frozen=True)
class Field:
    """Maps world millimetres to continuous pixel coordinates (x right, y down).

    ``pixel = (mirror * (X - cx) / spacing + width / 2, (Y - cy) / spacing + height / 2)``.
    """

    width: int
    height: int
    spacing: float  # mm per pixel
    cx: float
    cy: float
    mirror: float  # +1: patient faces right (anterior = +x), -1: faces left

    def to_px(self, pts: np.ndarray) -> np.ndarray:
        p = np.asarray(pts, dtype=np.float64)
        scale = np.array([self.mirror / self.spacing, 1.0 / self.spacing])
        return (p - np.array([self.cx, self.cy])) * scale + np.array([self.width / 2, self.height / 2])

    def to_world(self, px: np.ndarray) -> np.ndarray:
        p = np.asarray(px, dtype=np.float64)
        scale = np.array([self.mirror * self.spacing, self.spacing])
        return (p - np.array([self.width / 2, self.height / 2])) * scale + np.array([self.cx, self.cy])


@dataclass(frozen=True)
class Projection:
    """How far apart the left and right sides of the patient project.

    A point at transverse distance z (mm, towards the detector positive) from the mid-sagittal
    plane is displaced by ``z * (sin(roll) + (x - cx) / sid)`` horizontally and
    ``z * (y - cy) / sid`` vertically (divergent beam with its central ray at the field centre,
    patient rolled by ``roll`` about the long axis).
    """

    roll: float = 0.0  # radians
    sid: float = np.inf  # source-to-image distance (mm); inf = parallel beam
    cx: float = 0.0
    cy: float = 0.0

    def offset(self, point: np.ndarray, z: float) -> np.ndarray:
        p = np.asarray(point, float)
        inv = 0.0 if not np.isfinite(self.sid) else 1.0 / self.sid
        return np.stack([z * (np.sin(self.roll) + (p[..., 0] - self.cx) * inv), z * (p[..., 1] - self.cy) * inv], -1)


class Canvas:
    """The attenuation map being built, with the field geometry and a bone-texture field."""

    def __init__(self, field: Field, texture: np.ndarray, projection: Projection | None = None):
        self.field = field
        self.att = np.zeros((field.height, field.width), np.float32)
        self.low = np.zeros(((field.height + 1) // 2, (field.width + 1) // 2), np.float32)  # half resolution
        self.metal = np.zeros((field.height, field.width), bool)  # where implants are (kept out of the window)
        self.texture = texture
        self.projection = projection or Projection()

    # -- geometry helpers ----------------------------------------------------------------------
    def near(self, point: np.ndarray, margin_mm: float) -> bool:
        """Whether a world point lies inside the field or within ``margin_mm`` of it."""
        f = self.field
        q = f.to_px(point)
        m = margin_mm / f.spacing
        return bool(-m <= q[0] <= f.width + m and -m <= q[1] <= f.height + m)

    def side_offset(self, point: np.ndarray, z: float) -> np.ndarray:
        """World-mm displacement of a point z mm off the mid-sagittal plane (see :class:`Projection`)."""
        return self.projection.offset(point, z)

    def _px_shift(self, offset_mm: np.ndarray) -> np.ndarray:
        f = self.field
        return np.array([f.mirror * offset_mm[0] / f.spacing, offset_mm[1] / f.spacing])

    def _window(self, lo: np.ndarray, hi: np.ndarray, pad: float = 2.0) -> tuple[int, int, int, int] | None:
        x0 = max(int(np.floor(lo[0] - pad)), 0)
        y0 = max(int(np.floor(lo[1] - pad)), 0)
        x1 = min(int(np.ceil(hi[0] + pad)), self.field.width)
        y1 = min(int(np.ceil(hi[1] + pad)), self.field.height)
        if x1 <= x0 or y1 <= y0:
            return None
        return x0, y0, x1, y1

    def _world_grid(self, win: tuple[int, int, int, int]) -> tuple[np.ndarray, np.ndarray]:
        x0, y0, x1, y1 = win
        f = self.field
        xs = (np.arange(x0, x1) + 0.5 - f.width / 2) * f.spacing * f.mirror + f.cx
        ys = (np.arange(y0, y1) + 0.5 - f.height / 2) * f.spacing + f.cy
        return np.meshgrid(xs, ys)

    def coverage(self, poly_px: np.ndarray, win: tuple[int, int, int, int], k: int = _SUPERSAMPLE) -> np.ndarray:
        """Fraction of each pixel of the window covered by a polygon (k x k supersampling)."""
        x0, y0, x1, y1 = win
        mask = np.zeros(((y1 - y0) * k, (x1 - x0) * k), np.uint8)
        pts = (poly_px - np.array([x0, y0])) * k - 0.5
        cv2.fillPoly(mask, [np.round(pts * 16).astype(np.int32)], 1, lineType=cv2.LINE_8, shift=4)
        return cv2.resize(mask.astype(np.float32), (x1 - x0, y1 - y0), interpolation=cv2.INTER_AREA)

    def _deposit(self, win, add: np.ndarray, shifts=((0.0, 0.0),), weights=(1.0,), metal: bool = False) -> None:
        """Add a patch at its window, once per (pixel shift, weight); sub-pixel shifts interpolate."""
        x0, y0, x1, y1 = win
        add = add.astype(np.float32, copy=False)
        for (dx, dy), wgt in zip(shifts, weights):
            ix, iy = int(np.floor(dx)), int(np.floor(dy))
            fx, fy = dx - ix, dy - iy
            if fx > 1e-3 or fy > 1e-3:
                m = np.float32([[1, 0, fx], [0, 1, fy]])
                patch = cv2.warpAffine(add, m, (add.shape[1], add.shape[0]), flags=cv2.INTER_LINEAR,
                                       borderMode=cv2.BORDER_CONSTANT, borderValue=0)
            else:
                patch = add
            # place the shifted patch, cropped to the image
            tx0, ty0 = x0 + ix, y0 + iy
            sx0, sy0 = max(0, -tx0), max(0, -ty0)
            ex = min(patch.shape[1], self.field.width - tx0)
            ey = min(patch.shape[0], self.field.height - ty0)
            if ex <= sx0 or ey <= sy0:
                continue
            region = (slice(ty0 + sy0, ty0 + ey), slice(tx0 + sx0, tx0 + ex))
            part = patch[sy0:ey, sx0:ex]
            self.att[region] += np.float32(wgt) * part
            if metal:
                self.metal[region] |= part > 0.05

    # -- primitives ----------------------------------------------------------------------------
    def add_body(self, body, extra_density: float = 0.0) -> None:
        """A vertebral body: cortical shell and endplates around textured trabecular bone.

        Path lengths along the beam come from an elliptic-cylinder cross-section of transverse
        width ``body.width``: a pixel at AP coordinate u sees a chord ``W * sqrt(1 - (2u/D)^2)``.
        The two transverse halves are drawn at their own offsets (double contours).
        """
        f = self.field
        outer = f.to_px(body.to_world(body.outline()))
        off = self._px_shift(self.side_offset(body.center, body.width / 4))
        pad = 2.0 + float(np.abs(off).max())
        win = self._window(outer.min(0), outer.max(0), pad)
        if win is None:
            return
        inner = f.to_px(body.to_world(body.outline(inset_u=body.cortex, inset_v=body.endplate)))
        cov_out = self.coverage(outer, win)
        cov_in = self.coverage(inner, win)
        gx, gy = self._world_grid(win)
        du, dv = gx - body.center[0], gy - body.center[1]
        u = du * body.e_u[0] + dv * body.e_u[1]
        v = du * body.e_v[0] + dv * body.e_v[1]
        a = body.depth / 2 + 0.5
        chord_out = body.width * np.sqrt(np.clip(1.0 - (u / a) ** 2, 0.02, None))
        a_in = a - body.cortex
        w_in = body.width - 2 * body.cortex
        chord_in = w_in * np.sqrt(np.clip(1.0 - (u / a_in) ** 2, 0.0, None))
        if body.dens_height > 0:  # the dens is narrower along the beam than the body
            above = np.clip((-(v + (body.h_ant + body.h_post) / 4)) / 2.0, 0.0, 1.0)
            narrow = 1.0 - above * (1.0 - 0.55)
            chord_out = chord_out * narrow
            chord_in = chord_in * narrow
        x0, y0, x1, y1 = win
        tex = self.texture[y0:y1, x0:x1]
        t_total = cov_out * chord_out
        t_trab = np.minimum(cov_in * chord_in, t_total)
        t_cort = t_total - t_trab
        mu_trab = MU_SOFT + (MU_TRABECULAR - MU_SOFT) * (body.density + extra_density) * (1.0 + 0.35 * tex)
        add = (MU_CORTICAL - MU_SOFT) * t_cort + (mu_trab - MU_SOFT) * t_trab
        if np.abs(off).max() < 0.15:
            self._deposit(win, add)
        else:
            self._deposit(win, add, (tuple(off), tuple(-off)), (0.5, 0.5))

    def add_shell(self, parts, cortex: float = 1.0, edge: float = 3.0, density: float = 1.0, z: float = 0.0,
                  marrow: float = 0.6, material: str = "bone") -> None:
        """A bone of arbitrary outline seen from the side: ``parts`` = [(outline (n, 2) world mm,
        beam thickness mm), ...] forming one bone (their union). The beam path rounds off over
        ``edge`` mm towards the outline; the outer ``cortex`` mm is cortical bone, the rest marrow
        (``marrow`` = its excess density relative to trabecular bone). With ``z`` > 0 the bone is a
        left/right pair at +-z mm from the mid-sagittal plane, each drawn at its own offset.
        """
        f = self.field
        pts_px = [f.to_px(np.asarray(p, float)) for p, _ in parts]
        lo = np.min([p.min(0) for p in pts_px], 0)
        hi = np.max([p.max(0) for p in pts_px], 0)
        centre = f.to_world((lo + hi) / 2)
        off = self._px_shift(self.side_offset(centre, z)) if z > 0 else np.zeros(2)
        win = self._window(lo, hi, 2.0 + float(np.abs(off).max()))
        if win is None:
            return
        x0, y0, x1, y1 = win
        k = _SHELL_SUPERSAMPLE
        shape = ((y1 - y0) * k, (x1 - x0) * k)
        thick = np.zeros(shape, np.float32)
        for p, (_, t) in zip(pts_px, parts):
            mask = np.zeros(shape, np.uint8)
            q = (p - np.array([x0, y0])) * k - 0.5
            cv2.fillPoly(mask, [np.round(q * 16).astype(np.int32)], 1, lineType=cv2.LINE_8, shift=4)
            np.maximum(thick, mask * np.float32(t), out=thick)
        inside = (thick > 0).astype(np.uint8)
        d = cv2.distanceTransform(inside, cv2.DIST_L2, 3) * np.float32(f.spacing / k)  # mm inside the outline
        if len(parts) > 1:  # soften the steps between parts of different thickness
            thick = cv2.GaussianBlur(thick, (0, 0), max(1.0, 2.0 * k / f.spacing)) * inside
        edge = max(edge, cortex + 0.3)
        r = np.minimum(d / edge, 1.0)
        total = thick * np.sqrt(np.clip(1.0 - (1.0 - r) ** 2, 0.0, 1.0))
        if material == "bone":
            ri = np.clip((d - cortex) / (edge - cortex), 0.0, 1.0)
            inner = np.maximum(thick - 2 * cortex, 0.0) * np.sqrt(np.clip(1.0 - (1.0 - ri) ** 2, 0.0, 1.0))
            inner = np.minimum(inner, total)
            tex = cv2.resize(self.texture[y0:y1, x0:x1], (shape[1], shape[0]), interpolation=cv2.INTER_LINEAR)
            mu_in = (MU_TRABECULAR - MU_SOFT) * marrow * (1.0 + 0.3 * tex)
            add = density * ((MU_CORTICAL - MU_SOFT) * (total - inner) + mu_in * inner)
        else:
            add = _excess_mu(material) * density * total
        add = cv2.resize(add, (x1 - x0, y1 - y0), interpolation=cv2.INTER_AREA)
        metal = material in ("metal", "cement")
        if z > 0:
            self._deposit(win, add, (tuple(off), tuple(-off)), (1.0, 1.0), metal=metal)
        else:
            self._deposit(win, add, metal=metal)

    def add_capsule(self, p0, p1, r0: float, r1: float, depth: float, material: str = "bone", cortex: float = 0.8,
                    density: float = 1.0) -> None:
        """A tapered rod from p0 to p1 (world mm, radii in mm) whose beam path at the axis is ``depth``.

        Path at distance d from the axis: depth * sqrt(1 - (d/r)^2) (an elliptic cross-section).
        """
        self.add_rods([(p0, p1, r0, r1, depth)], material, cortex, density)

    def add_tube(self, points: np.ndarray, radius, depth, material: str = "bone", cortex: float = 0.8,
                 density: float = 1.0) -> None:
        """A curved rod along a polyline (one bone: no double counting at the joints)."""
        pts = np.asarray(points, float)
        if np.ndim(radius) == 0 and np.ndim(depth) == 0:
            self._add_tube_dt(pts, float(radius), float(depth), material, cortex, density)
            return
        radius = np.broadcast_to(np.asarray(radius, float), (len(pts),))
        depth = np.broadcast_to(np.asarray(depth, float), (len(pts),))
        segs = [(pts[i], pts[i + 1], radius[i], radius[i + 1], (depth[i] + depth[i + 1]) / 2) for i in range(len(pts) - 1)]
        self.add_rods(segs, material, cortex, density)

    def add_tubes(self, lines, radius: float, depth: float, material: str = "bone", cortex: float = 0.8,
                  density: float = 1.0) -> None:
        """Several separate tubes of one radius (e.g. one side's ribs) in one pass: the distance to
        the nearest centre line comes from one distance transform."""
        self._add_tube_dt([np.asarray(p, float) for p in lines], float(radius), float(depth), material, cortex, density)

    def _add_tube_dt(self, lines, radius: float, depth: float, material: str, cortex: float, density: float) -> None:
        """Constant-radius tubes: the distance to their centre lines from a distance transform."""
        f = self.field
        if isinstance(lines, np.ndarray):
            lines = [lines]
        qs = [f.to_px(p) for p in lines]
        r_px = radius / f.spacing
        lo = np.min([q.min(0) for q in qs], 0)
        hi = np.max([q.max(0) for q in qs], 0)
        win = self._window(lo - r_px, hi + r_px)
        if win is None:
            return
        x0, y0, x1, y1 = win
        k = 2 if r_px < 2.0 else 1  # only tubes thinner than a few pixels need supersampling
        mask = np.full(((y1 - y0) * k, (x1 - x0) * k), 255, np.uint8)
        for q in qs:
            line = np.round(((q - np.array([x0, y0])) * k - 0.5 * (k > 1)) * 16).astype(np.int32)
            cv2.polylines(mask, [line], False, 0, 1, cv2.LINE_8, shift=4)
        d = cv2.distanceTransform(mask, cv2.DIST_L2, cv2.DIST_MASK_PRECISE) * np.float32(f.spacing / k)
        r_eff = max(radius, 0.75 * f.spacing)
        total = np.float32(depth * radius / r_eff) * np.sqrt(np.clip(1.0 - (d / np.float32(r_eff)) ** 2, 0.0, None))
        if material == "bone":
            r_in = max(radius - cortex, 1e-3)
            r_in_eff = max(r_in, 0.75 * f.spacing)
            inner = np.float32(depth * r_in / r_eff) * np.sqrt(np.clip(1.0 - (d / np.float32(r_in_eff)) ** 2, 0.0, None))
            inner = np.minimum(inner, total)
            mu_in = (MU_TRABECULAR - MU_SOFT) * 0.7
            add = density * ((MU_CORTICAL - MU_SOFT) * (total - inner) + mu_in * inner)
        else:
            add = _excess_mu(material) * density * total
        if k > 1:
            add = cv2.resize(add.astype(np.float32), (x1 - x0, y1 - y0), interpolation=cv2.INTER_AREA)
        self._deposit(win, add, metal=material in ("metal", "cement"))

    def add_rods(self, segments, material: str = "bone", cortex: float = 0.8, density: float = 1.0) -> None:
        """Union of tapered rods forming one object: path lengths combine by maximum, not sum."""
        f = self.field
        lo, hi = np.full(2, np.inf), np.full(2, -np.inf)
        for p0, p1, r0, r1, _ in segments:
            q = f.to_px(np.array([p0, p1], float))
            r = max(r0, r1) / f.spacing
            lo, hi = np.minimum(lo, q.min(0) - r), np.maximum(hi, q.max(0) + r)
        win = self._window(lo, hi)
        if win is None:
            return
        gx, gy = self._world_grid(win)
        total = np.zeros(gx.shape, np.float32)
        inner = np.zeros(gx.shape, np.float32)
        min_r = 0.75 * f.spacing
        wx0, wy0 = win[0], win[1]
        for p0, p1, r0, r1, depth in segments:
            p0, p1 = np.asarray(p0, float), np.asarray(p1, float)
            q = f.to_px(np.array([p0, p1]))
            r = max(r0, r1) / f.spacing + 1.5
            xa = max(int(np.floor(q[:, 0].min() - r)) - wx0, 0)
            xb = min(int(np.ceil(q[:, 0].max() + r)) - wx0, gx.shape[1])
            ya = max(int(np.floor(q[:, 1].min() - r)) - wy0, 0)
            yb = min(int(np.ceil(q[:, 1].max() + r)) - wy0, gx.shape[0])
            if xb <= xa or yb <= ya:
                continue
            sx, sy = gx[ya:yb, xa:xb], gy[ya:yb, xa:xb]
            seg = p1 - p0
            length2 = float(seg @ seg) or 1e-9
            t = np.clip(((sx - p0[0]) * seg[0] + (sy - p0[1]) * seg[1]) / length2, 0.0, 1.0)
            d = np.hypot(sx - (p0[0] + t * seg[0]), sy - (p0[1] + t * seg[1]))
            rr = r0 + (r1 - r0) * t
            r_eff = np.maximum(rr, min_r)  # rods thinner than a pixel keep their integral
            out = total[ya:yb, xa:xb]
            np.maximum(out, depth * (rr / r_eff) * np.sqrt(np.clip(1.0 - (d / r_eff) ** 2, 0.0, None)), out=out)
            if material == "bone":
                r_in = np.maximum(rr - cortex, 1e-3)
                r_in_eff = np.maximum(r_in, min_r)
                out = inner[ya:yb, xa:xb]
                np.maximum(out, depth * (r_in / r_eff) * np.sqrt(np.clip(1.0 - (d / r_in_eff) ** 2, 0.0, None)), out=out)
        self._add_paths(win, total, np.minimum(inner, total), material, density)

    def add_ellipsoid(self, center, a: float, b: float, angle: float, depth: float, material: str = "bone",
                      cortex: float = 0.8, density: float = 1.0) -> None:
        """An ellipsoid with in-plane semi-axes a, b (mm, rotated by ``angle``) and beam depth ``depth``."""
        c = np.asarray(center, float)
        f = self.field
        qc = f.to_px(c)
        rpx = max(a, b) / f.spacing
        win = self._window(qc - rpx, qc + rpx)
        if win is None:
            return
        gx, gy = self._world_grid(win)
        ca, sa = np.cos(angle), np.sin(angle)
        x, y = gx - c[0], gy - c[1]
        xr, yr = (x * ca + y * sa) / a, (-x * sa + y * ca) / b
        rho = np.hypot(xr, yr)
        mean_axis = (a + b) / 2
        self._add_profile(win, rho * mean_axis, np.full_like(rho, mean_axis), depth, material, cortex, density)

    def add_polygon(self, poly_world: np.ndarray, thickness: float, material: str = "metal", soften_mm: float = 0.0) -> None:
        """A plate of constant beam thickness (mm) with the given outline (implants, bone plates).

        ``soften_mm`` blurs the outline, for plates that thin out towards their edges.
        """
        f = self.field
        poly = f.to_px(poly_world)
        pad = 2.0 + 3.0 * soften_mm / f.spacing
        win = self._window(poly.min(0) - pad, poly.max(0) + pad)
        if win is None:
            return
        cov = self.coverage(poly, win)
        if soften_mm > 0:
            cov = cv2.GaussianBlur(cov, (0, 0), soften_mm / f.spacing)
        self._deposit(win, _excess_mu(material) * thickness * cov, metal=material in ("metal", "cement"))

    def _add_profile(self, win, d, r, depth, material, cortex, density) -> None:
        min_r = 0.75 * self.field.spacing
        r_eff = np.maximum(r, min_r)
        total = depth * (r / r_eff) * np.sqrt(np.clip(1.0 - (d / r_eff) ** 2, 0.0, None))
        inner = None
        if material == "bone":
            r_in = np.maximum(r - cortex, 1e-3)
            r_in_eff = np.maximum(r_in, min_r)
            inner = np.minimum(depth * (r_in / r_eff) * np.sqrt(np.clip(1.0 - (d / r_in_eff) ** 2, 0.0, None)), total)
        self._add_paths(win, total, inner, material, density)

    def _add_paths(self, win, total, inner, material, density) -> None:
        x0, y0, x1, y1 = win
        if material == "bone":
            tex = self.texture[y0:y1, x0:x1]
            mu_in = (MU_TRABECULAR - MU_SOFT) * 0.7 * (1.0 + 0.3 * tex)
            add = density * ((MU_CORTICAL - MU_SOFT) * (total - inner) + mu_in * inner)
        else:
            add = _excess_mu(material) * density * total
        self._deposit(win, add, metal=material in ("metal", "cement"))

    # -- the half-resolution layer ---------------------------------------------------------------
    def low_grid(self, step: int = 2) -> tuple[np.ndarray, np.ndarray]:
        """World coordinates (mm) of the pixel centres of a grid ``step`` times coarser than the
        image (2: the half-resolution layer; 4: for the smoothest structures, see :meth:`add_low`)."""
        f = self.field
        h, w = (self.low.shape if step == 2 else ((f.height + step - 1) // step, (f.width + step - 1) // step))
        xs = ((np.arange(w) + 0.5) * step - f.width / 2) * f.spacing * f.mirror + f.cx
        ys = ((np.arange(h) + 0.5) * step - f.height / 2) * f.spacing + f.cy
        return np.meshgrid(xs, ys)

    def add_low(self, values: np.ndarray) -> None:
        """Add a map computed on the step-4 grid of :meth:`low_grid` to the half-resolution layer."""
        h, w = self.low.shape
        up = cv2.resize(values.astype(np.float32), (2 * values.shape[1], 2 * values.shape[0]), interpolation=cv2.INTER_LINEAR)
        self.low += up[:h, :w]

    def finish(self) -> np.ndarray:
        """The complete line-integral map: the fine layer plus the upsampled smooth layer."""
        f = self.field
        up = cv2.resize(self.low, (2 * self.low.shape[1], 2 * self.low.shape[0]), interpolation=cv2.INTER_LINEAR)
        return self.att + up[: f.height, : f.width]


def _excess_mu(material: str) -> float:
    if material == "metal":
        return MU_METAL - MU_SOFT
    if material == "cement":
        return MU_CEMENT - MU_SOFT
    if material == "air":
        return -MU_SOFT
    if material == "soft":
        return MU_SOFT
    if material == "cortical":
        return MU_CORTICAL - MU_SOFT
    if material == "bone":
        return MU_TRABECULAR - MU_SOFT
    raise ValueError(f"unknown material {material!r}")


def bone_texture(rng: np.random.Generator, height: int, width: int, spacing: float) -> np.ndarray:
    """Zero-mean band-pass noise at the scale of trabeculae (~1-3 mm), elongated along the spine
    (vertebral trabeculae run mostly cranio-caudally); unit variance at <= 0.5 mm pixels."""
    noise = rng.standard_normal((height, width), dtype=np.float32)
    s = max(0.45, 0.4 / spacing)
    fine = cv2.GaussianBlur(noise, (0, 0), sigmaX=s, sigmaY=2.2 * s)
    coarse = cv2.GaussianBlur(noise, (0, 0), max(1.5, 2.0 / spacing))
    band = fine - 0.6 * coarse
    return band * (min(1.0, 0.6 / spacing) / (float(band.std()) + 1e-6))


@dataclass(frozen=True)
class Detector:
    """Acquisition and processing: scatter, quantum noise, blur, log, multi-scale processing
    (large-area equalisation and edge enhancement) and a film-like tone curve."""

    photons: float  # mean detected quanta per pixel behind the spine (before scatter)
    scatter: float  # scatter-to-primary ratio
    blur_px: float
    electronic_noise: float  # std of additive read noise, relative to the spine's signal
    gamma: float  # tone-curve steepness
    latitude: float  # where on the tone curve the middle of the patient's densities sits (0..1)
    scatter_px: float = 100.0  # width (sigma) of the scatter kernel in pixels
    equalisation: float = 0.6  # share of the large-area density variation removed
    equalise_px: float = 60.0  # scale of that variation (pixels)
    edge_gain: float = 1.0  # unsharp-mask gain (edge enhancement)
    edge_px: float = 3.0  # unsharp-mask kernel (sigma, pixels)
    contrast_gain: float = 0.0  # gain of the medium band (local contrast of structures of a centimetre or so)
    contrast_px: float = 15.0  # its kernel (sigma, pixels)
    detail_gain: float = 0.0  # extra gain of the finest band (noise and trabeculae)
    window_low: float = 1.0  # percentile of the patient's densities at the toe
    window_high: float = 99.5  # percentile at the shoulder


def _percentiles(values: np.ndarray, mask: np.ndarray, q) -> list[float]:
    """Percentiles of ``values[mask]`` from every other row and column (plenty for a window)."""
    sample = values[::2, ::2][mask[::2, ::2]]
    if sample.size < 16:
        sample = values[mask]
    return [float(v) for v in np.atleast_1d(np.percentile(sample, q))]


def _low_pass(img: np.ndarray, sigma_px: float) -> np.ndarray:
    """A Gaussian low-pass computed at 1/8 resolution (for kernels of many pixels)."""
    h, w = img.shape
    small = cv2.resize(img, (max(w // 8, 1), max(h // 8, 1)), interpolation=cv2.INTER_AREA)
    small = cv2.GaussianBlur(small, (0, 0), max(sigma_px / 8.0, 0.5))
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)


def expose(att: np.ndarray, det: Detector, rng: np.random.Generator, roi: np.ndarray, patient: np.ndarray | None = None,
           metal: np.ndarray | None = None) -> np.ndarray:
    """Beer-Lambert projection I = exp(-A), plus scatter and noise, then log and processing.

    ``roi`` marks the spine (the dose is set there), ``patient`` the pixels inside the patient
    (the window is set on them, as exposure recognition does), ``metal`` the implants (kept out
    of the window). Returns a display image in [0, 1] with bone bright (as films are read).
    """
    h, w = att.shape
    if patient is None or patient.sum() < 16:
        patient = np.ones((h, w), bool)
    sel = patient if metal is None else patient & ~metal
    if sel.sum() < 16:
        sel = patient
    primary = np.exp(-att.astype(np.float32))
    ref = _percentiles(primary, roi, 50)[0]
    scatter = _low_pass(primary, det.scatter_px)
    scatter *= float(det.scatter) * ref / max(_percentiles(scatter, roi, 50)[0], 1e-12)
    signal = primary + scatter
    # unsharpness (focal spot, scintillator) acts on the expected signal; the quanta are then
    # counted per pixel, so quantum noise stays fine-grained as on a real detector
    if det.blur_px > 0.05:
        signal = cv2.GaussianBlur(signal, (0, 0), det.blur_px)
    if det.photons > 0:
        scale = det.photons / max(ref, 1e-12)
        lam = signal * np.float32(scale)
        # Poisson counts; where the mean is large its normal limit (same mean and variance) is
        # drawn instead, which is indistinguishable there and several times faster
        counts = lam + np.sqrt(lam) * rng.standard_normal(lam.shape, dtype=np.float32)
        few = lam < 30.0
        if few.any():
            counts[few] = rng.poisson(lam[few]).astype(np.float32)
        signal = np.maximum(counts, 0.0) / np.float32(scale)
    if det.electronic_noise > 0:
        signal = signal + rng.standard_normal(signal.shape, dtype=np.float32) * np.float32(det.electronic_noise * ref)
    floor = ref * 1e-3
    density = -np.log(np.maximum(signal, floor))  # log exposure, inverted: bone high
    # exposure recognition: the patient's densities set the working range
    lo, hi = _percentiles(density, sel, (0.5, 99.5))
    x = (density - np.float32(lo)) / np.float32(max(hi - lo, 1e-6))
    # multi-scale processing as digital radiography applies it: the large-area variation is
    # compressed (thick and thin regions brought together; air outside stays dark) and edges
    # are enhanced, which leaves dark halos beside bright edges
    low = _low_pass(x, det.equalise_px)
    centre = _percentiles(low, sel, 50)[0]
    weight = np.clip(low / max(centre, 1e-6), 0.0, 1.0)
    x = x - np.float32(det.equalisation) * weight * (low - np.float32(centre))
    if det.contrast_gain > 0:
        x = x + np.float32(det.contrast_gain) * (x - _low_pass(x, det.contrast_px))
    if det.edge_gain > 0:  # the unsharp mask's low-pass at half resolution (its kernel is several pixels)
        half = cv2.resize(x, ((w + 1) // 2, (h + 1) // 2), interpolation=cv2.INTER_AREA)
        half = cv2.GaussianBlur(half, (0, 0), max(det.edge_px / 2.0, 0.5))
        x = x + np.float32(det.edge_gain) * (x - cv2.resize(half, (w, h), interpolation=cv2.INTER_LINEAR))
    if det.detail_gain > 0:
        x = x + np.float32(det.detail_gain) * (x - cv2.GaussianBlur(x, (0, 0), 1.0))
    # tone curve: an H&D-like sigmoid over the patient's range; toe and shoulder compress the extremes
    # the patient's median density sits mid-way up the curve (moved by ``latitude``)
    lo, mid, hi = _percentiles(x, sel, (det.window_low, 50.0, det.window_high))
    t = (x - np.float32(mid)) / np.float32(max(hi - lo, 1e-6))
    gamma, shift = float(det.gamma), float(det.latitude) - 0.5
    y = 1.0 / (1.0 + np.exp(-gamma * (t - shift)))
    # the output uses the full range: the darkest air black, bone below white, metal saturated
    non_metal = ~metal if metal is not None else np.ones((h, w), bool)
    a, b = _percentiles(y, non_metal, (0.05, 99.9))
    return np.clip((y - a) / max(b - a, 1e-6), 0.0, 1.0).astype(np.float32)
