"""First-order radiomics: pyradiomics' definitions, checked on values worked out by hand and
against pyradiomics itself (the ``measure`` extra) on random regions."""

from __future__ import annotations

import importlib.util
import math

import numpy as np
import pytest

from vertxnet import radiomics

# Five pixels 1, 2, 3, 4, 100: mean 22, deviations -21, -20, -19, -18, 78.
VALUES = np.array([1.0, 2.0, 3.0, 4.0, 100.0])
MU2 = (21**2 + 20**2 + 19**2 + 18**2 + 78**2) / 5  # 1522
MU3 = (-(21**3) - 20**3 - 19**3 - 18**3 + 78**3) / 5  # 88920
MU4 = (21**4 + 20**4 + 19**4 + 18**4 + 78**4) / 5  # 7520966.8
HAND = {
    "Energy": 1 + 4 + 9 + 16 + 10000,
    "TotalEnergy": (1 + 4 + 9 + 16 + 10000) * 0.25,
    # bins of 25 from 0: four pixels in [0, 25), one in [100, 125)
    "Entropy": -(0.8 * math.log2(0.8) + 0.2 * math.log2(0.2)),
    "Uniformity": 0.8**2 + 0.2**2,
    "Minimum": 1.0,
    "Maximum": 100.0,
    "Range": 99.0,
    "Mean": 22.0,
    "Median": 3.0,
    # linear percentiles at positions 0.4, 1, 3 and 3.6 of the sorted values
    "10Percentile": 1.4,
    "90Percentile": 4 + 0.6 * 96,
    "InterquartileRange": 4.0 - 2.0,
    "MeanAbsoluteDeviation": (21 + 20 + 19 + 18 + 78) / 5,
    "RobustMeanAbsoluteDeviation": 2 / 3,  # 2, 3, 4 lie within [1.4, 61.6]
    "RootMeanSquared": math.sqrt(10030 / 5),
    "StandardDeviation": math.sqrt(MU2),
    "Variance": MU2,
    "Skewness": MU3 / MU2**1.5,
    "Kurtosis": MU4 / MU2**2,
    "MeanOfPositivePixels": 22.0,
}


def test_hand_computed_values():
    image = np.zeros((3, 4))
    mask = np.zeros((3, 4), bool)
    spots = [(0, 0), (0, 3), (1, 1), (2, 2), (2, 3)]
    for (r, c), v in zip(spots, VALUES):
        image[r, c], mask[r, c] = v, True
    image[1, 2] = 5000.0  # outside the mask: must not count
    got = radiomics.first_order(image, mask, pixel_area_mm2=0.25, backend="numpy")
    assert set(got) == set(radiomics.FIRST_ORDER_FEATURES) | {radiomics.MEAN_OF_POSITIVE_PIXELS}
    for name, expected in HAND.items():
        assert got[name] == pytest.approx(expected, rel=1e-12), name


def test_mean_of_positive_pixels_ignores_zero_and_negative_pixels():
    got = radiomics.first_order_of_values(np.array([-5.0, 0.0, 5.0, 15.0]))
    assert got["MeanOfPositivePixels"] == pytest.approx(10.0)
    two = radiomics.first_order_of_values(np.array([-1.0, 0.0]))
    assert two["MeanOfPositivePixels"] is None
    assert two["RobustMeanAbsoluteDeviation"] is None  # nothing lies between its 10th and 90th percentile


def test_flat_region():
    got = radiomics.first_order_of_values(np.full(9, 7.0))
    assert (got["Skewness"], got["Kurtosis"], got["Variance"]) == (0.0, 0.0, 0.0)
    assert got["Entropy"] == pytest.approx(0.0, abs=1e-12) and got["Uniformity"] == 1.0


def test_bin_edges_are_multiples_of_the_width():
    np.testing.assert_array_equal(radiomics.bin_edges(np.array([54.0, 166.0])), [50, 75, 100, 125, 150, 175, 200])
    np.testing.assert_array_equal(radiomics.bin_edges(np.array([30.0]), 50.0), [0.0, 50.0, 100.0])
    # the width changes the histogram: 1..4 and 100 share a bin of 200
    assert radiomics.first_order_of_values(VALUES, bin_width=200.0)["Entropy"] == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize(
    ("image", "mask", "kwargs", "message"),
    [
        (np.zeros((3, 3, 3)), np.ones((3, 3, 3)), {}, "2-D"),
        (np.zeros((3, 3)), np.ones((3, 4)), {}, "shape"),
        (np.zeros((3, 3)), np.zeros((3, 3)), {}, "no pixel"),
        (np.full((3, 3), np.nan), np.ones((3, 3)), {}, "non-finite"),
        (np.zeros((3, 3)), np.ones((3, 3)), {"bin_width": 0}, "bin_width"),
        (np.zeros((3, 3)), np.ones((3, 3)), {"pixel_area_mm2": -1.0}, "pixel_area_mm2"),
        (np.zeros((3, 3)), np.ones((3, 3)), {"backend": "matlab"}, "backend"),
    ],
)
def test_bad_input(image, mask, kwargs, message):
    with pytest.raises(ValueError, match=message):
        radiomics.first_order(image, mask, **kwargs)


def test_auto_backend_is_pyradiomics_exactly_when_installed():
    installed = importlib.util.find_spec("radiomics") is not None and importlib.util.find_spec("SimpleITK") is not None
    assert radiomics.resolve_backend("auto") == ("pyradiomics" if installed else "numpy")


@pytest.mark.parametrize("seed", range(6))
def test_numpy_backend_equals_pyradiomics(seed):
    pytest.importorskip("radiomics", reason="the measure extra (pyradiomics) is the oracle here")
    rng = np.random.default_rng(seed)
    shape = (int(rng.integers(20, 60)), int(rng.integers(20, 60)))
    kind = seed % 3
    if kind == 0:
        image = rng.normal(800, 300, shape).round()
    elif kind == 1:
        image = rng.integers(0, 65535, shape).astype(np.uint16)
    else:
        image = rng.normal(0, 40, shape)  # negative values, fractional
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    mask = (yy - shape[0] / 2) ** 2 / (shape[0] / 3) ** 2 + (xx - shape[1] / 2) ** 2 / (shape[1] / 3) ** 2 <= 1
    width = float(rng.choice([5.0, 25.0, 100.0]))
    ours = radiomics.first_order(image, mask, bin_width=width, pixel_area_mm2=0.16, backend="numpy")
    theirs = radiomics.first_order(image, mask, bin_width=width, pixel_area_mm2=0.16, backend="pyradiomics")
    for name in radiomics.FIRST_ORDER_FEATURES:
        assert ours[name] == pytest.approx(theirs[name], rel=1e-9, abs=1e-9), name
