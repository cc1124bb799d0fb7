import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vertxnet.preprocess import PreprocessConfig, letterbox, percentiles, prepare, window01


@settings(max_examples=60, deadline=None)
@given(
    dtype=st.sampled_from([np.uint8, np.uint16]),
    size=st.integers(1, 400),
    seed=st.integers(0, 2**31),
    qs=st.lists(st.floats(0, 100), min_size=1, max_size=4),
)
def test_histogram_percentiles_equal_numpy(dtype, size, seed, qs):
    rng = np.random.default_rng(seed)
    top = np.iinfo(dtype).max
    img = rng.integers(0, rng.integers(1, top, endpoint=True), size=size, endpoint=True).astype(dtype)
    np.testing.assert_allclose(percentiles(img, tuple(qs)), np.percentile(img, qs), rtol=0, atol=1e-9 * top)


def test_window_maps_the_robust_range_to_unit_interval():
    rng = np.random.default_rng(0)
    img = rng.integers(1000, 3000, size=(64, 48)).astype(np.uint16)
    img[0, 0] = 65535  # one hot pixel must not set the window
    out = window01(img)
    assert out.dtype == np.float32 and out.min() == 0.0 and out.max() == 1.0
    assert np.mean(out) == pytest.approx(0.5, abs=0.05)


def test_constant_and_non_finite_images_are_refused():
    with pytest.raises(ValueError, match="constant"):
        window01(np.full((32, 32), 7, np.uint16))
    bad = np.ones((32, 32), np.float32)
    bad[3, 3] = np.nan
    with pytest.raises(ValueError, match="non-finite"):
        window01(bad)


@pytest.mark.parametrize("shape", [(300, 200), (200, 300), (257, 257), (40, 1000)])
def test_letterbox_maps_points_back_exactly(shape):
    img = np.random.default_rng(1).random(shape, dtype=np.float32)
    canvas, box = letterbox(img, 128)
    assert canvas.shape == (128, 128)
    x0, y0, x1, y1 = box.content_box
    assert 0 <= x0 <= x1 <= 128 and 0 <= y0 <= y1 <= 128
    pts = np.array([[0.0, 0.0], [shape[1], shape[0]], [12.25, 33.5]])
    np.testing.assert_allclose(box.to_original(box.to_model(pts)), pts, atol=1e-9)
    # The image's far corner lands on the far corner of the content box.
    np.testing.assert_allclose(box.to_model(pts[1:2])[0], [x1, y1], atol=1e-9)


def test_prepare_gives_one_normalised_tensor():
    img = np.random.default_rng(2).integers(0, 4096, size=(300, 180)).astype(np.uint16)
    tensor, box = prepare(img, PreprocessConfig(input_size=96, mean=0.5, std=0.25))
    assert tensor.shape == (1, 1, 96, 96) and tensor.dtype == np.float32
    assert box.src_width == 180 and box.src_height == 300
