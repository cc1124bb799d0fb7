import cv2
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


def _blob_centroid(canvas: np.ndarray) -> np.ndarray:
    w = np.clip(canvas - 0.2, 0, None)
    ys, xs = np.mgrid[0 : canvas.shape[0], 0 : canvas.shape[1]]
    return np.array([(w * (xs + 0.5)).sum() / w.sum(), (w * (ys + 0.5)).sum() / w.sum()])


@pytest.mark.parametrize("factor", [2, 4, 8])
def test_reduced_decodes_land_where_the_full_film_does(factor):
    """A reduced decode (even samples: OpenJPEG; block means: libjpeg) letterboxes onto the same
    model pixels as the full film: the same Letterbox, and a blob's centroid within 0.03 px."""
    from vertxnet.preprocess import Reduced, letterboxed

    h, w = 1203, 811  # not multiples of the factor: the last reduced pixel is partial
    ys, xs = np.mgrid[0:h, 0:w] + 0.5
    film = (1000 + 3000 * np.exp(-(((xs - 500.3) / 60) ** 2 + ((ys - 700.8) / 90) ** 2))).astype(np.uint16)
    config = PreprocessConfig(input_size=128)
    full, box = letterboxed(film, config)
    even = Reduced(film[::factor, ::factor], factor, 0.5, w, h)
    hp, wp = -(-h // factor) * factor, -(-w // factor) * factor
    padded = np.pad(film.astype(np.float64), ((0, hp - h), (0, wp - w)), mode="edge")
    means = padded.reshape(hp // factor, factor, wp // factor, factor).mean(axis=(1, 3)).astype(np.float32)
    block = Reduced(means, factor, factor / 2.0, w, h)
    for reduced in (even, block):
        canvas, rbox = letterboxed(reduced, config)
        assert rbox == box
        np.testing.assert_allclose(_blob_centroid(canvas), _blob_centroid(full), atol=0.03)
    # The phase matters: taking the even samples for block centres misplaces the blob.
    wrong, _ = letterboxed(Reduced(even.pixels, factor, factor / 2.0, w, h), config)
    if factor >= 4:
        assert np.abs(_blob_centroid(wrong) - _blob_centroid(full)).max() > 0.05


def test_model_scale_canvas_matches_the_full_scale_one():
    from vertxnet.preprocess import letterboxed, letterboxed_full_scale

    rng = np.random.default_rng(5)
    film = cv2.GaussianBlur(rng.integers(0, 4096, size=(1500, 1000)).astype(np.float32), (0, 0), 6).astype(np.uint16)
    config = PreprocessConfig(input_size=128)
    fast, box = letterboxed(film, config)
    slow, slow_box = letterboxed_full_scale(film, config)
    assert box == slow_box
    assert np.abs(fast - slow).mean() < 2e-3 and np.abs(fast - slow).max() < 0.03


def test_large_films_are_block_averaged_first_and_land_where_one_resize_puts_them():
    """A film over BLOCK_OVERSAMPLING x the input is averaged over 2 x 2 (or larger) blocks
    before the model-scale resize: the canvas stays within the tolerance of one area resize and
    a bright square lands on the same model pixels."""
    import vertxnet.preprocess as pp

    rng = np.random.default_rng(6)
    film = cv2.GaussianBlur(rng.integers(0, 4096, size=(2001, 1333)).astype(np.float32), (0, 0), 6).astype(np.uint16)
    film[1400:1650, 300:700] = 4095  # odd sizes: the last partial block row and column are left out
    config = PreprocessConfig(input_size=160)
    assert pp.reduction_factor(1333, 2001, 160, oversampling=pp.BLOCK_OVERSAMPLING) == 2
    fast, box = pp.letterboxed(film, config)
    slow, slow_box = pp.letterboxed_full_scale(film, config)
    assert box == slow_box
    assert np.abs(fast - slow).mean() < 2e-3 and np.abs(fast - slow).max() < 0.03
    bright = lambda c: np.argwhere(c > 0.99)  # noqa: E731
    np.testing.assert_array_equal(bright(fast).min(axis=0), bright(slow).min(axis=0))
    np.testing.assert_array_equal(bright(fast).max(axis=0), bright(slow).max(axis=0))
