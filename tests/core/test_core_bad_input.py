"""Bad input to the C++ core: clear ValueErrors naming the argument, never a crash.

The ensemble's argument checks are the binding's (``vertxnet._core.ensemble`` takes the Mask
R-CNN outlines, classes and scores as parallel lists, which is what ``vertxnet.core.ensemble``
builds from its Detection records); they are exercised on the binding directly, so lists of
unequal length are covered too."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import vertxnet._core as binding
import vertxnet.core as core
from vertxnet.core import Detection

SQUARE = np.array([[0, 0], [10, 0], [10, 10], [0, 10]], float)


def box(x: float, y: float, w: float = 40, h: float = 30) -> np.ndarray:
    return np.array([[x, y], [x + w, y], [x + w, y + h], [x, y + h]], float)


GOOD_UNET = [box(0, 0), box(0, 40)]
GOOD_MRCNN = [box(1, 1), box(0, 41)]
GOOD_CLASSES = ["C2", "vertebra"]
GOOD_SCORES = [0.9, 0.8]


def run_ensemble(**overrides):
    args = dict(unet=GOOD_UNET, mrcnn=GOOD_MRCNN, mrcnn_classes=GOOD_CLASSES, mrcnn_scores=GOOD_SCORES)
    params = {k: overrides.pop(k) for k in list(overrides) if k in ("eta", "lam", "tau", "ref_score", "min_area")}
    args.update(overrides)
    return binding.ensemble(args["unet"], args["mrcnn"], args["mrcnn_classes"], args["mrcnn_scores"], **params)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"unet": [SQUARE, np.array([[0, 0], [1, np.nan], [1, 1]])]}, "unet[1]: polygon has NaN coordinates"),
        ({"mrcnn": [box(1, 1), np.array([[0, 0], [np.inf, 0], [1, 1]])]}, "mrcnn[1]: polygon has infinite coordinates"),
        ({"mrcnn": [box(1, 1), np.zeros((2, 2))]}, "mrcnn[1]: polygon needs at least 3 points, got 2"),
        ({"unet": [np.zeros((4, 3))]}, "unet[0]: expected an (N, 2) array"),
        ({"unet": [np.zeros(8)]}, "unet[0]: expected an (N, 2) array"),
        ({"unet": [np.zeros((2, 4, 2))]}, "unet[0]: expected an (N, 2) array"),
        ({"unet": [SQUARE.astype(complex)]}, "unet[0]: expected real-valued coordinates"),
        ({"unet": [SQUARE.astype(bool)]}, "unet[0]: expected real-valued coordinates"),
        ({"unet": [SQUARE.astype(object)]}, "unet[0]: expected real-valued coordinates"),
        ({"unet": [[["a", "b"], ["c", "d"], ["e", "f"]]]}, "unet[0]: expected real-valued coordinates"),
        ({"unet": [box(2e6, 0)]}, "unet[0]: coordinate 2e+06 is outside the supported range"),
        ({"mrcnn_classes": ["C2"]}, "mrcnn_classes: expected 2 classes for 2 mrcnn polygons, got 1"),
        ({"mrcnn_scores": [0.9]}, "mrcnn_scores: expected 2 scores for 2 mrcnn polygons, got 1"),
        ({"mrcnn_classes": ["C2", "C3"]}, "mrcnn_classes[1]: unknown class 'C3'"),
        ({"mrcnn_classes": ["C2", 3]}, "mrcnn_classes[1]: expected a class name"),
        ({"mrcnn_scores": [0.9, np.nan]}, "mrcnn_scores[1]: score is not finite"),
        ({"mrcnn_scores": [[0.9, 0.8]]}, "mrcnn_scores: expected a 1-D list of scores"),
        ({"mrcnn_scores": ["a", "b"]}, "mrcnn_scores: expected real numbers"),
        ({"eta": 0.0}, "eta: must be in (0, 1]"),
        ({"eta": 1.5}, "eta: must be in (0, 1]"),
        ({"eta": float("nan")}, "eta: must be in (0, 1]"),
        ({"lam": -1.0}, "lam: must be finite and > 0"),
        ({"lam": float("inf")}, "lam: must be finite and > 0"),
        ({"tau": 1.2}, "tau: must be in [0, 1]"),
        ({"ref_score": -0.1}, "ref_score: must be in [0, 1]"),
        ({"min_area": -1.0}, "min_area: must be finite and >= 0"),
    ],
)
def test_ensemble_rejects_bad_input_naming_the_argument(overrides, message):
    with pytest.raises(ValueError) as error:
        run_ensemble(**overrides)
    assert message in str(error.value)


def test_detection_records_reach_the_binding_checks_by_index():
    bad_score = [Detection(box(1, 1), "C2", 0.9), Detection(box(0, 41), "vertebra", float("nan"))]
    with pytest.raises(ValueError, match=r"mrcnn_scores\[1\]: score is not finite"):
        core.ensemble(GOOD_UNET, bad_score)
    bad_polygon = [Detection(box(1, 1), "C2", 0.9), Detection(np.zeros((2, 2)), "vertebra", 0.8)]
    with pytest.raises(ValueError, match=r"mrcnn\[1\]: polygon needs at least 3 points, got 2"):
        core.ensemble(GOOD_UNET, bad_polygon)
    with pytest.raises(ValueError, match=r"mrcnn_classes\[0\]: unknown class 'C3'"):
        core.ensemble(GOOD_UNET, [Detection(box(1, 1), "C3", 0.9)])


@pytest.mark.parametrize("bad", [None, 3, "unet", {"a": 1}])
def test_ensemble_rejects_non_lists(bad):
    with pytest.raises(TypeError, match="unet: expected a list"):
        run_ensemble(unet=bad)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: core.polygon_area(np.zeros((3, 2, 1))), "p: expected an (N, 2) array"),
        (lambda: core.polygon_area([[0, 0], [1, 1]]), "p: polygon needs at least 3 points"),
        (lambda: core.intersection_area(SQUARE, SQUARE * np.nan), "b: polygon has NaN coordinates"),
        (lambda: core.polygon_union(SQUARE.astype(np.complex64), SQUARE), "a: expected real-valued coordinates"),
        (lambda: core.polygon_centroid(SQUARE * 1e7), "p: coordinate"),
        (lambda: core.zip_labels([(SQUARE, "C2", 0.9), (SQUARE, "L3", 0.5)]), "masks[1].cls: unknown class 'L3'"),
        (lambda: core.zip_labels([(SQUARE, "C2", float("nan"))]), "masks[0].score: score is not finite"),
        (lambda: core.zip_labels([(SQUARE, "C2")]), "masks[0]: expected an EnsembleMask or a (polygon, cls, score)"),
        (lambda: core.zip_labels([(SQUARE[:2], "C2", 0.9)]), "masks[0].polygon: polygon needs at least 3 points"),
        (lambda: core.zip_labels([(np.zeros((3, 2)), "C2", 0.9)]), "masks[0].polygon: polygon encloses no area"),
        (lambda: core.zip_labels([(SQUARE, "C2", "high")]), "masks[0].score"),
        (lambda: core.zip_labels([], gap_factor=1.0), "gap_factor: must be finite and > 1"),
        (lambda: core.zip_labels([], gap_factor=float("nan")), "gap_factor: must be finite and > 1"),
    ],
)
def test_geometry_and_labelling_reject_bad_input(call, message):
    with pytest.raises(ValueError) as error:
        call()
    assert message in str(error.value)


def test_self_intersecting_inputs_do_not_crash():
    bow_tie = np.array([[0, 0], [40, 30], [40, 0], [0, 30]], float)
    figure_eight = np.array([[0, 0], [20, 20], [40, 0], [40, 40], [20, 20], [0, 40]], float)
    spiky = np.array([[0, 0], [40, 0], [40, 30], [80, 30], [40, 30], [0, 30], [0, 0], [20, -10]], float)
    rng = np.random.default_rng(0)
    soups = [rng.uniform(0, 50, (n, 2)) for n in (3, 5, 20, 100)]
    for p in [bow_tie, figure_eight, spiky, *soups]:
        assert core.polygon_area(p) >= 0
        masks = core.ensemble([p, box(0, 0)], [Detection(p, "vertebra", 0.9), Detection(box(1, 1), "C2", 0.8)])
        for m in masks:
            assert m.area > 0 and np.isfinite(m.polygon).all()
        core.zip_labels(masks)


def test_degenerate_polygons_are_dropped_with_one_warning():
    collinear = np.array([[0, 0], [1, 1], [2, 2]], float)
    repeated = np.array([[5, 5]] * 5, float)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        masks = core.ensemble([collinear, box(0, 0)], [Detection(box(1, 1), "C2", 0.9), Detection(repeated, "vertebra", 0.9)])
    assert [(m.source, m.unet_index, m.mrcnn_index) for m in masks] == [("agreement", 1, 0)]
    assert len(caught) == 1 and caught[0].category is RuntimeWarning
    assert "dropped 2 degenerate polygon(s)" in str(caught[0].message)
    assert "unet[0], mrcnn[1]" in str(caught[0].message)


def test_result_polygons_are_read_only():
    masks = run_ensemble()
    with pytest.raises(ValueError):
        masks[0].polygon[0, 0] = 1.0


def random_array(rng: np.random.Generator):
    """An arbitrary, mostly wrong array: any shape, dtype, layout and values."""
    ndim = int(rng.integers(0, 4))
    shape = tuple(int(rng.integers(0, 6)) for _ in range(ndim))
    if rng.random() < 0.5 and ndim >= 1:
        shape = (int(rng.integers(0, 300)), 2)
    kind = rng.choice(["f8", "f4", "f2", "i4", "u1", "i8", "c16", "b1", "O", "U3"])
    values = rng.normal(0, 10.0 ** rng.integers(0, 9), size=shape)
    special = rng.random()
    if special < 0.1 and values.size:
        values.flat[int(rng.integers(0, values.size))] = np.nan
    elif special < 0.2 and values.size:
        values.flat[int(rng.integers(0, values.size))] = -np.inf
    elif special < 0.3 and values.size:
        values[...] = np.round(values / 1e3)  # many repeated / collinear points
    with np.errstate(invalid="ignore", over="ignore"):
        array = values.astype(kind)
    if rng.random() < 0.2 and array.ndim == 2 and array.shape[0] > 1:
        array = array[::2]  # non-contiguous
    if rng.random() < 0.1:
        return array.tolist()
    return array


def test_fuzz_every_function_raises_only_value_or_type_errors():
    rng = np.random.default_rng(12345)
    classes = ["vertebra", "C2", "S1", "T4", 7, None]
    calls = 0
    for _ in range(2500):
        a, b = random_array(rng), random_array(rng)
        choice = int(rng.integers(0, 6))
        try:
            if choice == 0:
                core.polygon_area(a)
            elif choice == 1:
                core.intersection_area(a, b)
            elif choice == 2:
                core.polygon_union(a, b)
            elif choice == 3:
                core.polygon_centroid(a)
            elif choice == 4:
                k = int(rng.integers(0, 4))
                mrcnn = [random_array(rng) for _ in range(k)]
                cls = [classes[int(rng.integers(0, len(classes)))] for _ in range(k + int(rng.integers(-1, 2)))]
                scores = rng.uniform(-1, 2, k + int(rng.integers(-1, 2)))
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    binding.ensemble([a, b], mrcnn, cls, scores, eta=float(rng.uniform(-0.5, 1.5)))
            else:
                cls = classes[int(rng.integers(0, len(classes)))]
                core.zip_labels([(a, cls, float(rng.normal())), (b, "C2", 0.5)], gap_factor=float(rng.uniform(0, 3)))
        except (ValueError, TypeError):
            pass
        calls += 1
    assert calls == 2500
