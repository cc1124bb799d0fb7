"""Appearance randomisation for transfer to real films (export/randomise.py)."""

from __future__ import annotations

import numpy as np
import pytest

from randomise import RandomiseConfig, StyleBank, fourier_style, match_histogram, randomise_appearance


def _canvas(size: int = 96) -> tuple[np.ndarray, np.ndarray]:
    yy, xx = np.mgrid[0:size, 0:size]
    canvas = (0.3 + 0.5 * ((xx - 48) ** 2 + (yy - 48) ** 2 < 400)).astype(np.float32)
    content = np.zeros((size, size), np.uint8)
    content[:, 16:80] = 1  # letterbox padding left and right
    return canvas * content, content


def test_padding_stays_zero_and_values_stay_in_unit_range():
    canvas, content = _canvas()
    cfg = RandomiseConfig(**{f: 1.0 for f in RandomiseConfig.__dataclass_fields__ if f.endswith("_probability")})
    for seed in range(20):
        out = randomise_appearance(canvas, content, np.random.default_rng(seed), cfg)
        assert out.dtype == np.float32 and out.shape == canvas.shape
        assert np.all(out[content == 0] == 0.0)
        assert out.min() >= 0.0 and out.max() <= 1.0


def test_same_generator_state_gives_the_same_image_and_draws_differ():
    canvas, content = _canvas()
    cfg = RandomiseConfig()
    a = randomise_appearance(canvas, content, np.random.default_rng(7), cfg)
    b = randomise_appearance(canvas, content, np.random.default_rng(7), cfg)
    c = randomise_appearance(canvas, content, np.random.default_rng(8), cfg)
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)


def test_disabled_changes_nothing():
    canvas, content = _canvas()
    out = randomise_appearance(canvas, content, np.random.default_rng(0), RandomiseConfig(enabled=False))
    assert out is canvas


def test_fourier_style_takes_the_target_mean_and_keeps_the_source_edges():
    import cv2

    rng = np.random.default_rng(0)
    source = np.full((128, 128), 0.2, np.float32)
    source[40:88, 40:88] = 0.4
    target = np.clip(0.5 + 0.01 * rng.standard_normal((128, 128)), 0, 1).astype(np.float32)
    out = fourier_style(source, target, beta=0.01)
    # The lowest frequencies are swapped: the mean follows the target, the edges stay the source's.
    assert abs(float(out.mean()) - float(target.mean())) < 0.05

    def detail(img):
        return img - cv2.GaussianBlur(img, (0, 0), 3.0)

    corr = np.corrcoef(detail(out).ravel(), detail(source).ravel())[0, 1]
    assert corr > 0.9


def test_histogram_matching_follows_the_target_quantiles():
    rng = np.random.default_rng(1)
    source = rng.uniform(0.0, 0.3, (80, 80)).astype(np.float32)
    target = rng.uniform(0.6, 1.0, (80, 80)).astype(np.float32)
    out = match_histogram(source, target)
    assert np.quantile(out, 0.5) == pytest.approx(np.quantile(target, 0.5), abs=0.02)
    # Monotone: the order of grey levels is kept.
    order = np.argsort(source.ravel())
    assert np.all(np.diff(out.ravel()[order]) >= -1e-6)


def test_style_bank_reads_a_folder_and_names_an_empty_one(tmp_path):
    import cv2

    cv2.imwrite(str(tmp_path / "a.png"), (np.arange(64 * 80).reshape(64, 80) % 256).astype(np.uint8))
    bank = StyleBank.from_folder(tmp_path, max_side=32)
    assert len(bank) == 1 and max(bank.images[0].shape) == 32
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ValueError, match="empty"):
        StyleBank.from_folder(empty)
