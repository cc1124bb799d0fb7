"""PNG / JPEG / TIFF loading and in-memory arrays."""

from __future__ import annotations

import hashlib

import cv2
import numpy as np
import pytest
from dicom_factory import radiograph

from vertxnet.errors import InputError
from vertxnet.io import COLOUR_PIXEL_FRACTION, from_array, load_image


def _sha(arr: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(arr, arr.dtype.newbyteorder("<")).tobytes()).hexdigest()


def _write(path, array, ext=None) -> str:
    ok, buf = cv2.imencode(ext or path.suffix, array)
    assert ok
    path.write_bytes(buf.tobytes())
    return str(path)


def _photo(h: int = 96, w: int = 128) -> np.ndarray:
    """A synthetic colour photograph (RGB): sky, grass and a red object."""
    img = np.zeros((h, w, 3), np.uint8)
    img[: h // 2] = (110, 160, 235)
    img[h // 2 :] = (60, 150, 50)
    img[h // 3 : 2 * h // 3, w // 3 : w // 2] = (200, 30, 30)
    rng = np.random.default_rng(1)
    return np.clip(img + rng.normal(0, 6, img.shape), 0, 255).astype(np.uint8)


@pytest.mark.parametrize("ext", [".png", ".tif"])
@pytest.mark.parametrize("bits", [8, 16])
def test_lossless_round_trip(tmp_path, ext, bits):
    stored = radiograph(bits=bits)
    image = load_image(_write(tmp_path / f"film{ext}", stored))
    assert image.pixels.dtype == stored.dtype
    np.testing.assert_array_equal(image.pixels, stored)
    assert image.bits_stored == bits
    assert image.source_format == {".png": "png", ".tif": "tiff"}[ext]
    assert (image.width, image.height) == (stored.shape[1], stored.shape[0])
    assert image.pixel_spacing_mm is None and "no_pixel_spacing" in image.flags
    assert image.dicom is None
    assert image.sha256 == _sha(stored)


def test_raster_hash_waits_for_its_first_use_and_equals_the_eager_one(tmp_path):
    """The pixel hash of a PNG is computed when asked for, or in the background from prefetch()
    (the pipeline starts it beside the networks): either way the hash of the stored samples."""
    stored = radiograph(bits=8)
    path = _write(tmp_path / "film.png", stored)
    image = load_image(path)
    assert image._full._digest is None  # decoded, not yet hashed
    np.testing.assert_array_equal(image.pixels, stored)  # the pixels do not wait for the hash
    assert image.sha256 == _sha(stored)
    background = load_image(path)
    background.prefetch()
    assert background.sha256 == _sha(stored)
    up, down = np.clip(stored.astype(int) + 12, 0, 255), np.clip(stored.astype(int) - 12, 0, 255)
    rgb = np.stack([stored, up, down], axis=-1).astype(np.uint8)  # a gray film saved as RGB
    colour = load_image(_write(tmp_path / "colour.png", rgb[..., ::-1].copy()))  # cv2 writes BGR
    assert colour.sha256 == _sha(rgb)  # hashed in R, G, B order


def test_jpeg_round_trip(tmp_path):
    stored = radiograph(bits=8)
    image = load_image(_write(tmp_path / "film.jpg", stored, ".jpg"))
    assert image.source_format == "jpeg"
    assert image.pixels.dtype == np.uint8 and image.bits_stored == 8
    assert np.abs(image.pixels.astype(int) - stored.astype(int)).mean() < 3


def test_float_tiff_is_float32(tmp_path):
    stored = radiograph(bits=16).astype(np.float32) / 65535.0
    image = load_image(_write(tmp_path / "f.tif", stored))
    assert image.pixels.dtype == np.float32 and image.bits_stored is None
    np.testing.assert_array_equal(image.pixels, stored)


def test_format_is_recognised_by_content_not_extension(tmp_path):
    stored = radiograph(bits=16)
    for name in ("really_a_png.jpg", "really_a_png.dcm", "no_extension"):
        image = load_image(_write(tmp_path / name, stored, ".png"))
        assert image.source_format == "png"
        np.testing.assert_array_equal(image.pixels, stored)


@pytest.mark.parametrize("bits", [8, 16])
def test_gray_saved_as_rgb_is_converted_and_flagged(tmp_path, bits):
    gray = radiograph(bits=bits)
    bgr = np.stack([gray] * 3, axis=-1)
    image = load_image(_write(tmp_path / "rgb.png", bgr))
    assert "rgb_converted" in image.flags
    assert image.pixels.dtype == gray.dtype and image.pixels.ndim == 2
    np.testing.assert_array_equal(image.pixels, gray)


def test_colour_hash_uses_rgb_order(tmp_path):
    gray = radiograph(bits=8)
    rgb = np.stack([gray, gray, gray], axis=-1)
    rgb[:4, :4, 0] = 255  # a small red marker: still a radiograph
    image = load_image(_write(tmp_path / "marker.png", rgb[..., ::-1]))  # cv2 writes BGR
    assert image.sha256 == _sha(rgb)


def test_alpha_channel_is_ignored_and_flagged(tmp_path):
    gray = radiograph(bits=8)
    bgra = np.dstack([gray, gray, gray, np.full_like(gray, 200)])
    image = load_image(_write(tmp_path / "alpha.png", bgra))
    assert {"rgb_converted", "alpha_ignored"} <= set(image.flags)
    np.testing.assert_array_equal(image.pixels, gray)


def test_radiograph_with_small_coloured_annotation_is_accepted(tmp_path):
    gray = radiograph(rows=100, cols=100, bits=8)
    bgr = np.stack([gray] * 3, axis=-1)
    bgr[2:5, 2:40] = (0, 255, 255)  # yellow text-like marker, ~1 % of the pixels
    image = load_image(_write(tmp_path / "annotated.png", bgr))
    assert "rgb_converted" in image.flags


def test_colour_photograph_is_refused(tmp_path):
    path = _write(tmp_path / "holiday.jpg", _photo()[..., ::-1], ".jpg")
    with pytest.raises(InputError, match=r"colour photograph, not a radiograph \(\d+% of pixels are coloured"):
        load_image(path)


def test_colour_photograph_with_12_bit_samples_in_16_bit_png_is_refused(tmp_path):
    photo12 = (_photo().astype(np.uint16) * 16)[..., ::-1]  # 0..4080 in a 16-bit container
    with pytest.raises(InputError, match="colour photograph"):
        load_image(_write(tmp_path / "photo16.png", np.ascontiguousarray(photo12)))


def test_colour_threshold_boundary(tmp_path):
    gray = radiograph(rows=100, cols=100, bits=8)
    rgb = np.stack([gray] * 3, axis=-1)
    coloured_rows = int(100 * COLOUR_PIXEL_FRACTION) + 2  # just over the allowed share
    rgb[:coloured_rows, :, 0] = 255
    rgb[:coloured_rows, :, 1:] = 0
    with pytest.raises(InputError, match="colour photograph"):
        load_image(_write(tmp_path / "over.png", rgb))
    rgb[coloured_rows - 4 :, :] = np.stack([gray] * 3, axis=-1)[coloured_rows - 4 :]
    load_image(_write(tmp_path / "under.png", rgb))


def test_multi_page_tiff_reads_the_first_page(tmp_path):
    first, second = radiograph(bits=16, seed=1), radiograph(bits=16, seed=2)
    ok, buf = cv2.imencodemulti(".tif", [first, second])
    assert ok
    path = tmp_path / "pages.tif"
    path.write_bytes(buf.tobytes())
    image = load_image(path)
    assert "tiff_first_page_only" in image.flags
    np.testing.assert_array_equal(image.pixels, first)


def test_minimum_size_is_accepted(tmp_path):
    image = load_image(_write(tmp_path / "min.png", radiograph(rows=32, cols=32, bits=8)))
    assert (image.width, image.height) == (32, 32)


# --------------------------------------------------------------------------- from_array


def test_from_array_wraps_gray_pixels():
    stored = radiograph(bits=16)
    image = from_array(stored, pixel_spacing_mm=(0.2, 0.25))
    np.testing.assert_array_equal(image.pixels, stored)
    assert image.path is None and image.source_format == "array" and image.dicom is None
    assert image.pixel_spacing_mm == (0.2, 0.25)
    assert image.bits_stored == 16
    assert image.sha256 == _sha(stored)


def test_from_array_copies_its_input():
    stored = radiograph(bits=8)
    image = from_array(stored)
    digest = image.sha256
    stored[:] = 0
    assert image.pixels.max() > 0 and image.sha256 == digest
    assert "no_pixel_spacing" in image.flags


def test_from_array_converts_rgb():
    gray = radiograph(bits=8)
    image = from_array(np.stack([gray] * 3, axis=-1))
    np.testing.assert_array_equal(image.pixels, gray)
    assert "rgb_converted" in image.flags


@pytest.mark.parametrize(
    ("array", "message"),
    [
        (np.zeros((64, 64, 2), np.uint8), "must be 2-D grayscale"),
        (np.zeros((64,), np.uint8), "must be 2-D grayscale"),
        (np.ones((64, 64), bool), "integer or floating dtype"),
        (np.full((64, 64), np.nan, np.float32), "non-finite"),
        (np.full((64, 64), 7, np.uint16), "image is constant: nothing to segment"),
        (radiograph(rows=8, cols=8, bits=8), "8x8 pixels is too small"),
        (_photo(), "colour photograph"),
    ],
)
def test_from_array_rejects_bad_arrays_with_value_error(array, message):
    with pytest.raises(ValueError, match=message):
        from_array(array)


@pytest.mark.parametrize("spacing", [(0.0, 0.1), (-1, 1), (float("nan"), 0.1), (0.1,), "0.1"])
def test_from_array_rejects_bad_spacing(spacing):
    with pytest.raises(ValueError, match="pixel_spacing_mm must be two finite positive numbers"):
        from_array(radiograph(bits=8), pixel_spacing_mm=spacing)


def test_from_array_accepts_big_endian_samples():
    stored = radiograph(bits=16)
    image = from_array(stored.astype(">u2"))
    assert image.pixels.dtype == np.uint16
    np.testing.assert_array_equal(image.pixels, stored)
    assert image.sha256 == from_array(stored).sha256
