"""First-order radiomic features of the pixels inside a vertebra, with pyradiomics' definitions.

SpineTK (seed 003) reports skewness, kurtosis, entropy and the mean of positive-valued pixels per
vertebral body; this module computes those plus pyradiomics' whole first-order set (the names
are pyradiomics' own, so tables compare) on the image's own pixel values inside an outline.

Two backends, the same numbers:

- ``"pyradiomics"`` - pyradiomics' ``RadiomicsFirstOrder`` itself (the optional ``measure`` extra:
  ``pip install "vertxnet[measure]"``, which brings pyradiomics and SimpleITK);
- ``"numpy"`` - the same definitions written out below (pyradiomics 3.0.1,
  ``radiomics/firstorder.py`` and ``imageoperations.getBinEdges``), used when pyradiomics is not
  installed. pyradiomics has no wheels for current Pythons (it builds from source, needs SimpleITK
  and a compiler), which the scanner-side devices this runs on may not offer; 18 closed formulas
  are not worth that there. ``tests/measure/test_radiomics.py`` checks both against each other
  and against values worked out by hand.

Definitions (N pixels X_i inside the mask, mean m, central moments mu_k = mean((X - m)^k)):
``Skewness = mu_3 / mu_2^1.5`` and ``Kurtosis = mu_4 / mu_2^2`` (not the excess: a normal
distribution has 3), both 0 for a flat region; ``Variance = mu_2`` (population), ``Energy = sum X^2``
and ``TotalEnergy = Energy x pixel area (mm^2, 1 when unknown)``; ``Entropy = -sum p log2(p + eps)``
and ``Uniformity = sum p^2`` over the histogram of fixed-width bins (``bin_width``, default 25
grey levels, edges at multiples of the width: pyradiomics' discretisation), eps = machine epsilon;
percentiles interpolate linearly (numpy's default); ``RobustMeanAbsoluteDeviation`` is the mean
absolute deviation of the pixels between the 10th and 90th percentile (None when none lies there). ``MeanOfPositivePixels``
(seed 003's MPP; not a pyradiomics feature) is the mean of the pixels > 0, None when there are none.
"""

from __future__ import annotations

import importlib.util
import logging
from collections.abc import Mapping
from typing import Literal

import numpy as np

#: pyradiomics' first-order feature names, in its order, plus seed 003's mean of positive pixels.
FIRST_ORDER_FEATURES: tuple[str, ...] = (
    "Energy",
    "TotalEnergy",
    "Entropy",
    "Minimum",
    "10Percentile",
    "90Percentile",
    "Maximum",
    "Mean",
    "Median",
    "InterquartileRange",
    "Range",
    "MeanAbsoluteDeviation",
    "RobustMeanAbsoluteDeviation",
    "RootMeanSquared",
    "StandardDeviation",
    "Skewness",
    "Kurtosis",
    "Variance",
    "Uniformity",
)
MEAN_OF_POSITIVE_PIXELS = "MeanOfPositivePixels"
#: The four features of seed 003.
SEED_FEATURES: tuple[str, ...] = ("Skewness", "Kurtosis", "Entropy", MEAN_OF_POSITIVE_PIXELS)
DEFAULT_BIN_WIDTH = 25.0

Backend = Literal["auto", "numpy", "pyradiomics"]


def pyradiomics_available() -> bool:
    """Whether pyradiomics and SimpleITK can be imported (the ``measure`` extra)."""
    return importlib.util.find_spec("radiomics") is not None and importlib.util.find_spec("SimpleITK") is not None


def resolve_backend(backend: Backend = "auto") -> Literal["numpy", "pyradiomics"]:
    """``auto`` -> pyradiomics when installed, else numpy; ValueError for an unknown name or
    for ``pyradiomics`` when it is not installed."""
    if backend == "auto":
        return "pyradiomics" if pyradiomics_available() else "numpy"
    if backend == "numpy":
        return "numpy"
    if backend == "pyradiomics":
        if not pyradiomics_available():
            raise ValueError('radiomics backend "pyradiomics" needs pyradiomics and SimpleITK: pip install "vertxnet[measure]"')
        return "pyradiomics"
    raise ValueError(f"radiomics backend must be 'auto', 'numpy' or 'pyradiomics', got {backend!r}")


def bin_edges(values: np.ndarray, bin_width: float = DEFAULT_BIN_WIDTH) -> np.ndarray:
    """pyradiomics' fixed-width bin edges: multiples of ``bin_width`` from the one at or below the
    minimum to past the maximum (a flat region gets one bin of width 1 around its value)."""
    low = float(np.min(values))
    high = float(np.max(values))
    lower_bound = low - (low % bin_width)
    edges = np.arange(lower_bound, high + 2 * bin_width, bin_width)
    if len(edges) == 1:
        edges = np.array([edges[0] - 0.5, edges[0] + 0.5])
    return edges


def _check(image: np.ndarray, mask: np.ndarray, bin_width: float) -> tuple[np.ndarray, np.ndarray]:
    image = np.asarray(image)
    mask = np.asarray(mask)
    if image.ndim != 2:
        raise ValueError(f"image: expected a 2-D array, got shape {image.shape}")
    if mask.shape != image.shape:
        raise ValueError(f"mask: expected the image's shape {image.shape}, got {mask.shape}")
    if image.dtype.kind not in "biuf":
        raise ValueError(f"image: expected real pixel values, got dtype {image.dtype}")
    if not (isinstance(bin_width, (int, float)) and not isinstance(bin_width, bool) and np.isfinite(bin_width) and bin_width > 0):
        raise ValueError(f"bin_width must be a finite number > 0, got {bin_width!r}")
    inside = mask.astype(bool)
    if not inside.any():
        raise ValueError("mask: no pixel inside")
    values = image[inside].astype(np.float64)
    if not np.all(np.isfinite(values)):
        raise ValueError("image: non-finite pixel values inside the mask")
    return values, inside


def first_order(
    image: np.ndarray,
    mask: np.ndarray,
    *,
    bin_width: float = DEFAULT_BIN_WIDTH,
    pixel_area_mm2: float | None = None,
    backend: Backend = "auto",
) -> dict[str, float | None]:
    """First-order features of ``image`` inside ``mask`` (same shape; nonzero = inside).

    Returns ``FIRST_ORDER_FEATURES`` and ``MeanOfPositivePixels`` as floats (the latter None
    when no pixel is > 0). ``pixel_area_mm2`` scales TotalEnergy (1 when None). ValueError for a
    bad array, an empty mask or a non-finite pixel inside it.
    """
    values, inside = _check(image, mask, bin_width)
    if pixel_area_mm2 is not None and not (np.isfinite(pixel_area_mm2) and pixel_area_mm2 > 0):
        raise ValueError(f"pixel_area_mm2 must be a finite number > 0, got {pixel_area_mm2!r}")
    if resolve_backend(backend) == "pyradiomics":
        out = _pyradiomics_first_order(np.asarray(image), inside, float(bin_width), pixel_area_mm2)
    else:
        out = first_order_of_values(values, bin_width=bin_width, pixel_area_mm2=pixel_area_mm2)
        out.pop(MEAN_OF_POSITIVE_PIXELS)
    positive = values[values > 0]
    out[MEAN_OF_POSITIVE_PIXELS] = float(positive.mean()) if positive.size else None
    return out


def first_order_of_values(
    values: np.ndarray, *, bin_width: float = DEFAULT_BIN_WIDTH, pixel_area_mm2: float | None = None
) -> dict[str, float | None]:
    """The numpy backend on a 1-D array of pixel values (the pixels inside an outline)."""
    x = np.asarray(values, dtype=np.float64).ravel()
    if x.size == 0:
        raise ValueError("values: no pixel")
    if not np.all(np.isfinite(x)):
        raise ValueError("values: non-finite pixel values")
    edges = bin_edges(x, bin_width)
    _, counts = np.unique(np.digitize(x, edges), return_counts=True)
    p = counts / counts.sum()
    mean = x.mean()
    d = x - mean
    mu2, mu3, mu4 = (d**2).mean(), (d**3).mean(), (d**4).mean()
    p10, p25, p75, p90 = np.percentile(x, [10, 25, 75, 90])
    robust = x[(x >= p10) & (x <= p90)]
    energy = float(np.sum(x**2))
    positive = x[x > 0]
    return {
        "Energy": energy,
        "TotalEnergy": energy * (1.0 if pixel_area_mm2 is None else float(pixel_area_mm2)),
        "Entropy": float(-np.sum(p * np.log2(p + np.spacing(1)))),
        "Minimum": float(x.min()),
        "10Percentile": float(p10),
        "90Percentile": float(p90),
        "Maximum": float(x.max()),
        "Mean": float(mean),
        "Median": float(np.median(x)),
        "InterquartileRange": float(p75 - p25),
        "Range": float(x.max() - x.min()),
        "MeanAbsoluteDeviation": float(np.abs(d).mean()),
        # no pixel between the 10th and 90th percentile (two values only): undefined, as in pyradiomics
        "RobustMeanAbsoluteDeviation": float(np.abs(robust - robust.mean()).mean()) if robust.size else None,
        "RootMeanSquared": float(np.sqrt(energy / x.size)),
        "StandardDeviation": float(np.sqrt(mu2)),
        "Skewness": float(mu3 / mu2**1.5) if mu2 > 0 else 0.0,
        "Kurtosis": float(mu4 / mu2**2) if mu2 > 0 else 0.0,
        "Variance": float(mu2),
        "Uniformity": float(np.sum(p**2)),
        MEAN_OF_POSITIVE_PIXELS: float(positive.mean()) if positive.size else None,
    }


def _pyradiomics_first_order(
    image: np.ndarray, inside: np.ndarray, bin_width: float, pixel_area_mm2: float | None
) -> dict[str, float | None]:
    import SimpleITK as sitk
    from radiomics import firstorder

    logging.getLogger("radiomics").setLevel(logging.ERROR)  # it logs every call at INFO
    # Crop to the mask's box (pyradiomics does the same) so a large film is not copied whole.
    rows, cols = np.nonzero(inside)
    r0, r1, c0, c1 = rows.min(), rows.max() + 1, cols.min(), cols.max() + 1
    crop = image[r0:r1, c0:c1].astype(np.float64)[None]
    label = inside[r0:r1, c0:c1].astype(np.uint8)[None]
    sitk_image = sitk.GetImageFromArray(crop)
    sitk_mask = sitk.GetImageFromArray(label)
    side = float(np.sqrt(pixel_area_mm2)) if pixel_area_mm2 is not None else 1.0
    for item in (sitk_image, sitk_mask):
        item.SetSpacing((side, side, 1.0))
    features = firstorder.RadiomicsFirstOrder(sitk_image, sitk_mask, binWidth=bin_width, force2D=True, label=1)
    features.enableAllFeatures()
    features.enableFeatureByName("StandardDeviation", True)  # deprecated there, so not among "all"
    result: Mapping[str, object] = features.execute()
    values = {name: float(result[name]) for name in FIRST_ORDER_FEATURES}
    return {name: (v if np.isfinite(v) else None) for name, v in values.items()}


__all__ = [
    "DEFAULT_BIN_WIDTH",
    "FIRST_ORDER_FEATURES",
    "MEAN_OF_POSITIVE_PIXELS",
    "SEED_FEATURES",
    "bin_edges",
    "first_order",
    "first_order_of_values",
    "pyradiomics_available",
    "resolve_backend",
]
