"""X-ray physics of a DR/CR exposure: tube spectrum, attenuation, scatter, detector, processing.

Mass attenuation coefficients (cm2/g, total with coherent scattering) are NIST XCOM values
(Berger et al., XCOM: Photon Cross Sections Database, NIST Standard Reference Database 8; the
same figures as Hubbell & Seltzer, NISTIR 5632, tables 3 and 4) at 10-150 keV, interpolated
log-log. The detector's iodine-like CsI column is rounded (within ~10 %); it only shapes the
energy weighting of an energy-integrating detector.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

ENERGIES_KEV = np.array([10.0, 15.0, 20.0, 30.0, 40.0, 50.0, 60.0, 80.0, 100.0, 150.0])
#: NIST XCOM mass attenuation coefficients mu/rho (cm2/g) at ENERGIES_KEV.
MU_RHO = {
    # ICRU-44 soft tissue
    "soft": np.array([5.379, 1.695, 0.8205, 0.3783, 0.2685, 0.2262, 0.2048, 0.1823, 0.1693, 0.1492]),
    # ICRU-44 cortical bone (1.92 g/cm3)
    "bone": np.array([28.51, 9.032, 4.001, 1.331, 0.6655, 0.4242, 0.3148, 0.2229, 0.1855, 0.1480]),
    # aluminium: tube filtration
    "al": np.array([26.23, 7.955, 3.441, 1.128, 0.5685, 0.3681, 0.2778, 0.2018, 0.1704, 0.1378]),
    # copper: added filtration
    "cu": np.array([215.9, 74.05, 33.79, 10.92, 4.862, 2.613, 1.593, 0.7630, 0.4584, 0.2217]),
    # titanium: pedicle screws, rods, cages (Ti-6Al-4V at 4.43 g/cm3 taken as Ti)
    "ti": np.array([110.7, 35.87, 15.85, 4.972, 2.214, 1.213, 0.7661, 0.4052, 0.2721, 0.1649]),
    # iron: cobalt-chrome rods and steel markers (Co, Cr, Fe are neighbours in Z; Fe stands for them)
    "fe": np.array([170.6, 57.08, 25.68, 8.176, 3.629, 1.958, 1.205, 0.5952, 0.3717, 0.1964]),
}
#: Iodine-like CsI above/below the iodine K edge (33.2 keV), rounded; for detector absorption.
_CSI_BELOW = (np.array([10.0, 20.0, 30.0, 33.1]), np.array([160.0, 25.0, 8.5, 6.5]))
_CSI_ABOVE = (np.array([33.2, 40.0, 50.0, 60.0, 80.0, 100.0, 150.0]), np.array([36.0, 22.0, 12.3, 7.6, 3.5, 1.94, 0.70]))
#: Tungsten K lines (keV) and their weights relative to each other.
_W_K_LINES = ((59.3, 1.0), (57.98, 0.58), (67.2, 0.33))

#: Material channels of a projection, in order.
MATERIALS = ("soft", "bone", "ti", "fe")


def mu_rho(material: str, energies: np.ndarray) -> np.ndarray:
    """Mass attenuation coefficient (cm2/g) of a material at the given energies (keV)."""
    table = MU_RHO[material]
    return np.exp(np.interp(np.log(energies), np.log(ENERGIES_KEV), np.log(table)))


def csi_mu_rho(energies: np.ndarray) -> np.ndarray:
    e = np.asarray(energies, float)
    below = np.exp(np.interp(np.log(e), np.log(_CSI_BELOW[0]), np.log(_CSI_BELOW[1])))
    above = np.exp(np.interp(np.log(e), np.log(_CSI_ABOVE[0]), np.log(_CSI_ABOVE[1])))
    return np.where(e < 33.17, below, above)


@dataclass(frozen=True)
class Spectrum:
    energies: np.ndarray  # keV, bin centres
    weights: np.ndarray  # detector signal share per bin (photons x energy x absorption), sums to 1
    kvp: float
    mean_kev: float  # mean energy of the detected signal


def tube_spectrum(kvp: float, al_mm: float, cu_mm: float, csi_mg_cm2: float = 180.0, bin_kev: float = 6.0) -> Spectrum:
    """Kramers bremsstrahlung (photons per keV ∝ (kVp - E) / E) with tungsten K lines, filtered
    by aluminium and copper, weighted by the energy a CsI detector absorbs."""
    if not 30.0 <= kvp <= 150.0:
        raise ValueError(f"tube voltage must lie in 30-150 kVp, got {kvp}")
    edges = np.arange(10.0, kvp + 1e-6, bin_kev)
    if edges[-1] < kvp:
        edges = np.append(edges, kvp)
    e = 0.5 * (edges[1:] + edges[:-1])
    width = np.diff(edges)
    photons = np.clip(kvp - e, 0.0, None) / e * width
    if kvp > 69.5:  # K-shell ionisation of tungsten
        strength = 0.06 * ((kvp - 69.5) / 69.5) ** 1.6 * photons.sum()
        norm = sum(w for _, w in _W_K_LINES)
        for line, w in _W_K_LINES:
            photons[np.argmin(np.abs(e - line))] += strength * w / norm
    filt = mu_rho("al", e) * 2.70 * al_mm / 10.0 + mu_rho("cu", e) * 8.96 * cu_mm / 10.0
    photons *= np.exp(-filt)
    absorbed = 1.0 - np.exp(-csi_mu_rho(e) * csi_mg_cm2 / 1000.0)
    signal = photons * e * absorbed
    keep = signal > signal.max() * 1e-4
    signal = signal[keep] / signal[keep].sum()
    e = e[keep]
    return Spectrum(energies=e, weights=signal, kvp=float(kvp), mean_kev=float(np.dot(e, signal)))


def primary_transmission(paths: np.ndarray, spectrum: Spectrum) -> np.ndarray:
    """Detected primary signal relative to the unattenuated beam, per pixel.

    ``paths``: (H, W, len(MATERIALS)) mass thicknesses in g/cm2.
    """
    channels = [np.ascontiguousarray(paths[..., m]) for m in range(paths.shape[-1])]
    used = [m for m, c in enumerate(channels) if m < 2 or c.any()]  # implants are often absent
    mu = {m: mu_rho(MATERIALS[m], spectrum.energies).astype(np.float32) for m in used}
    out = np.zeros(paths.shape[:2], np.float32)
    exponent = np.empty_like(out)
    for e in range(len(spectrum.energies)):
        np.multiply(channels[used[0]], -mu[used[0]][e], out=exponent)
        for m in used[1:]:
            exponent -= channels[m] * mu[m][e]
        np.exp(exponent, out=exponent)
        out += np.float32(spectrum.weights[e]) * exponent
    return out


def gaussian(image: np.ndarray, sigma_px: float) -> np.ndarray:
    """Gaussian low-pass; large kernels run on a downsampled copy (scatter, dynamic range)."""
    if sigma_px <= 0.05:
        return image.copy()
    if sigma_px < 12.0:
        return cv2.GaussianBlur(image, (0, 0), sigma_px, borderType=cv2.BORDER_REFLECT)
    factor = int(min(8, max(2, sigma_px // 6)))
    h, w = image.shape[:2]
    small = cv2.resize(image, (max(1, w // factor), max(1, h // factor)), interpolation=cv2.INTER_AREA)
    small = cv2.GaussianBlur(small, (0, 0), sigma_px / factor, borderType=cv2.BORDER_REFLECT)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)


@dataclass(frozen=True)
class Exposure:
    """Everything drawn per image that turns mass thicknesses into a displayed film."""

    spectrum: Spectrum
    scatter_to_primary: float  # mean scatter / primary over the vertebral bodies
    scatter_sigma_px: float
    quanta_at_spine: float  # detected quanta per pixel behind the vertebral bodies
    heel: float  # relative fluence change from top to bottom of the field (anode heel effect)
    blur_px: float  # detector point spread (Gaussian sigma)
    glare: float  # share of signal in the long-range detector glare
    electronic_noise: float  # additive noise, in quanta
    drc_strength: float  # dynamic range compression (0 = none)
    drc_sigma_px: float
    usm_strength: float  # unsharp masking / edge enhancement
    usm_sigma_px: float
    contrast: float  # slope of the sigmoid tone curve
    brightness: float  # centre of the tone curve (0..1 of the window)
    gamma: float
    window_low_pct: float
    window_high_pct: float
    shutter_black: bool  # display the collimated border black (electronic shutter) or as exposed


def expose(paths: np.ndarray, exposed: np.ndarray, spine: np.ndarray, ex: Exposure, rng: np.random.Generator) -> np.ndarray:
    """Displayed image in [0, 1] (bone bright, air dark).

    ``exposed``: float (H, W) collimation mask (1 inside the field, soft penumbra);
    ``spine``: bool (H, W) pixels of the vertebral bodies (where scatter and dose are specified).
    """
    h, w = exposed.shape
    primary = primary_transmission(paths, ex.spectrum) * exposed
    rows = np.linspace(-0.5, 0.5, h, dtype=np.float32)[:, None]
    primary *= 1.0 + ex.heel * rows
    # scatter: a broad blur of the primary weighted by the optical depth that scatters it
    depth = -np.log(np.clip(primary, 1e-6, 1.0))
    depth = np.minimum(depth, 9.0) * (primary > 1e-6)
    source = gaussian((primary * depth).astype(np.float32), ex.scatter_sigma_px)
    region = spine if spine.sum() >= 16 else exposed > 0.5
    ratio = float(np.mean(source[region]) / max(np.mean(primary[region]), 1e-9))
    scatter = source * (ex.scatter_to_primary / max(ratio, 1e-9))
    signal = primary + scatter
    # dose set by automatic exposure control: the quanta behind the spine are specified
    n0 = ex.quanta_at_spine / max(float(np.mean(signal[region])), 1e-9)
    n0 = min(n0, 1e7)
    quanta = signal * n0 + 0.002 * n0 * (1.0 - exposed)  # collimator leakage
    noisy = quanta + np.sqrt(np.maximum(quanta, 0.0)) * rng.standard_normal(quanta.shape, dtype=np.float32)
    noisy = np.maximum(noisy, 0.0).astype(np.float32)
    # scintillator light spread and glare correlate the noise
    blurred = gaussian(noisy, ex.blur_px)
    if ex.glare > 0:
        blurred = (1.0 - ex.glare) * blurred + ex.glare * gaussian(blurred, 25.0)
    blurred += ex.electronic_noise * rng.standard_normal(blurred.shape, dtype=np.float32)
    log = -np.log(np.maximum(blurred, 0.5) / n0).astype(np.float32)
    field = exposed > 0.5
    tissue = field & (paths[..., 0] + paths[..., 1] > 3.0)  # at least ~3 cm of patient on the ray
    return process(log, field, tissue if tissue.sum() > 256 else field, ex)


def process(log: np.ndarray, field: np.ndarray, anatomy: np.ndarray, ex: Exposure) -> np.ndarray:
    """What a DR/CR workstation does to the log image: exposure recognition (window on the
    histogram of the anatomy inside the field; direct exposure goes black), dynamic range
    compression (the large-scale thickness variation of the anatomy flattened), unsharp masking,
    a sigmoid LUT and gamma."""
    values = log[anatomy] if anatomy.sum() > 64 else log.ravel()
    lo, hi = np.percentile(values, [0.5, 99.5])
    x = (log - lo) / max(float(hi - lo), 1e-6)
    weight = gaussian(anatomy.astype(np.float32), 2.0)
    if ex.drc_strength > 0:
        # low-pass of the anatomy alone (normalised convolution), so air does not pull it down
        low = gaussian(x * weight, ex.drc_sigma_px) / np.maximum(gaussian(weight, ex.drc_sigma_px), 1e-3)
        mean = float(np.mean(low[anatomy])) if anatomy.any() else 0.0
        x = x - ex.drc_strength * weight * (low - mean)
    if ex.usm_strength > 0:
        x = x + ex.usm_strength * (x - gaussian(x, ex.usm_sigma_px))
    values = x[anatomy] if anatomy.sum() > 64 else x.ravel()
    lo, hi = np.percentile(values, [ex.window_low_pct, ex.window_high_pct])
    x = (x - lo) / max(float(hi - lo), 1e-6)
    y = 1.0 / (1.0 + np.exp(-ex.contrast * (x - ex.brightness)))
    y0 = 1.0 / (1.0 + np.exp(ex.contrast * ex.brightness))
    y1 = 1.0 / (1.0 + np.exp(-ex.contrast * (1.0 - ex.brightness)))
    y = np.clip((y - y0) / (y1 - y0), 0.0, 1.0) ** ex.gamma
    if ex.shutter_black:
        y = y * np.clip(gaussian(field.astype(np.float32), 1.0), 0.0, 1.0)
    return y.astype(np.float32)
