"""Projection rendering: path lengths through layered anatomy, Beer-Lambert, detector and film.

Everything accumulates into one line-integral map ``A = sum(mu_k * t_k)`` (dimensionless) at the
output resolution; structures are rendered in small patches around themselves. Bone and metal
add their attenuation *in excess of* the soft tissue they displace, air subtracts it.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

# Linear attenuation coefficients (1/mm) at an effective energy of ~60-70 keV.
MU_SOFT = 0.020
MU_TRABECULAR = 0.030  # marrow + trabeculae
MU_CORTICAL = 0.050
MU_METAL = 0.35  # titanium / cobalt-chrome implants: far above bone

_SUPERSAMPLE = 4  # polygon coverage is rasterised at 4x inside each small patch only


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
        x = self.mirror * (p[..., 0] - self.cx) / self.spacing + self.width / 2
        y = (p[..., 1] - self.cy) / self.spacing + self.height / 2
        return np.stack([x, y], axis=-1)

    def to_world(self, px: np.ndarray) -> np.ndarray:
        p = np.asarray(px, dtype=np.float64)
        x = self.mirror * (p[..., 0] - self.width / 2) * self.spacing + self.cx
        y = (p[..., 1] - self.height / 2) * self.spacing + self.cy
        return np.stack([x, y], axis=-1)


class Canvas:
    """The attenuation map being built, with the field geometry and a bone-texture field."""

    def __init__(self, field: Field, texture: np.ndarray):
        self.field = field
        self.att = np.zeros((field.height, field.width), np.float32)
        self.metal = np.zeros((field.height, field.width), bool)  # where implants are (kept out of the window)
        self.texture = texture

    # -- patch helpers -------------------------------------------------------------------------
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

    def coverage(self, poly_px: np.ndarray, win: tuple[int, int, int, int]) -> np.ndarray:
        """Fraction of each pixel of the window covered by a polygon (4x4 supersampling)."""
        x0, y0, x1, y1 = win
        k = _SUPERSAMPLE
        mask = np.zeros(((y1 - y0) * k, (x1 - x0) * k), np.uint8)
        # sub-pixel centres of the 4x grid sit at integer + 0.5 in the supersampled frame
        pts = (poly_px - np.array([x0, y0])) * k - 0.5
        cv2.fillPoly(mask, [np.round(pts * 16).astype(np.int32)], 1, lineType=cv2.LINE_8, shift=4)
        return cv2.resize(mask.astype(np.float32), (x1 - x0, y1 - y0), interpolation=cv2.INTER_AREA)

    # -- primitives ----------------------------------------------------------------------------
    def add_body(self, body, extra_density: float = 0.0) -> None:
        """A vertebral body: cortical shell and endplates around textured trabecular bone.

        Path lengths along the beam come from an elliptic-cylinder cross-section of transverse
        width ``body.width``: a pixel at AP coordinate u sees a chord ``W * sqrt(1 - (2u/D)^2)``.
        """
        f = self.field
        outer = f.to_px(body.to_world(body.outline()))
        win = self._window(outer.min(0), outer.max(0))
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
        mu_trab = MU_TRABECULAR * (body.density + extra_density) * (1.0 + 0.12 * tex)
        self.att[y0:y1, x0:x1] += ((MU_CORTICAL - MU_SOFT) * t_cort + (mu_trab - MU_SOFT) * t_trab).astype(np.float32)

    def add_capsule(
        self,
        p0: np.ndarray,
        p1: np.ndarray,
        r0: float,
        r1: float,
        depth: float,
        material: str = "bone",
        cortex: float = 0.8,
        density: float = 1.0,
    ) -> None:
        """A tapered rod from p0 to p1 (world mm, radii in mm) whose beam path at the axis is ``depth``.

        Path at distance d from the axis: depth * sqrt(1 - (d/r)^2) (an elliptic cross-section).
        """
        self.add_rods([(p0, p1, r0, r1, depth)], material, cortex, density)

    def add_tube(self, points: np.ndarray, radius, depth, material: str = "bone", cortex: float = 0.8,
                 density: float = 1.0) -> None:
        """A curved rod along a polyline (one bone: no double counting at the joints)."""
        pts = np.asarray(points, float)
        radius = np.broadcast_to(np.asarray(radius, float), (len(pts),))
        depth = np.broadcast_to(np.asarray(depth, float), (len(pts),))
        segs = [(pts[i], pts[i + 1], radius[i], radius[i + 1], (depth[i] + depth[i + 1]) / 2) for i in range(len(pts) - 1)]
        self.add_rods(segs, material, cortex, density)

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
        total = np.zeros(gx.shape, np.float64)
        inner = np.zeros(gx.shape, np.float64)
        min_r = 0.75 * f.spacing
        wx0, wy0 = win[0], win[1]
        for p0, p1, r0, r1, depth in segments:
            p0, p1 = np.asarray(p0, float), np.asarray(p1, float)
            # evaluate each rod only inside its own bounding box
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
            # rods thinner than a pixel are widened (keeping their integral) so they do not alias
            r_eff = np.maximum(rr, min_r)
            out = total[ya:yb, xa:xb]
            np.maximum(out, depth * (rr / r_eff) * np.sqrt(np.clip(1.0 - (d / r_eff) ** 2, 0.0, None)), out=out)
            if material == "bone":
                r_in = np.maximum(rr - cortex, 1e-3)
                r_in_eff = np.maximum(r_in, min_r)
                out = inner[ya:yb, xa:xb]
                np.maximum(out, depth * (r_in / r_eff) * np.sqrt(np.clip(1.0 - (d / r_in_eff) ** 2, 0.0, None)), out=out)
        self._add_paths(win, total, np.minimum(inner, total), material, density)

    def add_ellipsoid(
        self,
        center: np.ndarray,
        a: float,
        b: float,
        angle: float,
        depth: float,
        material: str = "bone",
        cortex: float = 0.8,
        density: float = 1.0,
    ) -> None:
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
        rho = np.hypot(xr, yr)  # normalised radius; the surface is rho = 1
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
        x0, y0, x1, y1 = win
        add = _excess_mu(material) * thickness * cov
        self.att[y0:y1, x0:x1] += add.astype(np.float32)
        if material == "metal":
            self.metal[y0:y1, x0:x1] |= add > 0.05

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
            mu_trab = MU_TRABECULAR * density * (1.0 + 0.12 * tex)
            add = (MU_CORTICAL - MU_SOFT) * (total - inner) + (mu_trab - MU_SOFT) * inner
        else:
            add = _excess_mu(material) * density * total
            if material == "metal":
                self.metal[y0:y1, x0:x1] |= add > 0.05
        self.att[y0:y1, x0:x1] += add.astype(np.float32)


def _excess_mu(material: str) -> float:
    if material == "metal":
        return MU_METAL - MU_SOFT
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
    """Zero-mean band-pass noise at the scale of trabeculae (~1-3 mm); unit variance at <= 0.5 mm pixels."""
    noise = rng.standard_normal((height, width), dtype=np.float32)
    fine = cv2.GaussianBlur(noise, (0, 0), max(0.5, 0.35 / spacing))
    coarse = cv2.GaussianBlur(noise, (0, 0), max(1.5, 1.5 / spacing))
    band = fine - coarse
    # pixels much larger than a trabecula average the pattern out
    return band * (min(1.0, 0.5 / spacing) / (float(band.std()) + 1e-6))


@dataclass(frozen=True)
class Detector:
    """Acquisition and display: scatter, quantum noise, blur, log and a film-like curve."""

    photons: float  # mean detected quanta per pixel behind the spine (before scatter)
    scatter: float  # scatter-to-primary ratio
    blur_px: float
    electronic_noise: float  # std of additive read noise, relative to the spine's signal
    gamma: float  # film curve steepness
    latitude: float  # where on the film curve the spine sits (0..1)
    scatter_px: float = 100.0  # width (sigma) of the scatter kernel in pixels
    equalisation: float = 0.6  # share of the large-area density variation removed
    equalise_px: float = 60.0  # scale of that variation (pixels)
    soft_margin: float = 0.6  # window extends below the spine by this share of its range


def expose(att: np.ndarray, det: Detector, rng: np.random.Generator, roi: np.ndarray) -> np.ndarray:
    """Beer-Lambert projection I = exp(-A), plus scatter and noise, then log and film curve.

    ``roi`` marks the spine region the display window is set on. Returns a display image in
    [0, 1] with bone bright (as films are read).
    """
    h, w = att.shape
    primary = np.exp(-att.astype(np.float32))
    # scatter: a broad (~5 cm) low-pass copy of the primary field, computed at 1/8 resolution
    small = cv2.resize(primary, (max(w // 8, 1), max(h // 8, 1)), interpolation=cv2.INTER_AREA)
    small = cv2.GaussianBlur(small, (0, 0), det.scatter_px / 8.0)
    scatter = cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
    ref = float(np.median(primary[roi]))
    scatter *= float(det.scatter) * ref / max(float(np.median(scatter[roi])), 1e-12)
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
    # large-area equalisation (as digital radiography processing does): thick regions
    # (pelvis, shoulders) are pulled down, thin ones (neck, skin line) up; air stays dark
    small = cv2.resize(density, (max(w // 8, 1), max(h // 8, 1)), interpolation=cv2.INTER_AREA)
    low = cv2.resize(cv2.GaussianBlur(small, (0, 0), det.equalise_px / 8.0), (w, h), interpolation=cv2.INTER_LINEAR)
    centre = float(np.median(low[roi]))
    weight = np.clip(low / max(centre, 1e-6), 0.0, 1.0)
    density = density - float(det.equalisation) * weight * (low - centre)
    lo, hi = (float(v) for v in np.percentile(density[roi], (1.0, 99.8)))
    spread = max(hi - lo, 1e-6)
    lo, hi = lo - det.soft_margin * spread, hi + 0.05 * spread
    x = (density - lo) / (hi - lo)
    # H&D-like sigmoid: toe and shoulder compress the extremes
    gamma, latitude = float(det.gamma), float(det.latitude)  # python floats keep the maps float32
    y = 1.0 / (1.0 + np.exp(-gamma * (x - latitude)))
    y0 = 1.0 / (1.0 + np.exp(gamma * latitude))
    y1 = 1.0 / (1.0 + np.exp(-gamma * (1.0 - latitude)))
    return np.clip((y - y0) / (y1 - y0), 0.0, 1.0).astype(np.float32)
