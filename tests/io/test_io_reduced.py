"""Reduced-resolution decoding for the networks: JPEG 2000 DICOM resolution levels, JPEG DCT
scaling; full-resolution pixels and hash decoded lazily, at most once, equal to the eager load."""

from __future__ import annotations

import threading

import cv2
import numpy as np
import pytest
from dicom_factory import compressed, make_dataset, write
from pydicom.uid import JPEG2000Lossless, RLELossless

from vertxnet.io import load_image
from vertxnet.io.image import reduction_factor
from vertxnet.io.jpeg2000 import codestream_header


def _film(rows: int, cols: int, bits: int = 12, seed: int = 0) -> np.ndarray:
    """A smooth film-like image with a bright band and noise (values within ``bits``)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:rows, 0:cols].astype(np.float64)
    top = 2**bits - 1
    img = 0.25 * top + 0.4 * top * np.exp(-(((x - cols * 0.55) / (cols * 0.18)) ** 2)) + 0.1 * top * np.sin(y / 37.0)
    img += rng.normal(0, 0.01 * top, size=img.shape)
    return np.clip(img, 0, top).astype(np.uint8 if bits == 8 else np.uint16)


def test_reduction_factor_keeps_the_model_input_covered():
    assert reduction_factor(1168, 2874, 256) == 4  # 719 px: still twice the input
    assert reduction_factor(1168, 2874, 384) == 2
    assert reduction_factor(300, 600, 256) == 1
    assert reduction_factor(4000, 4000, None) == 1
    assert reduction_factor(20000, 20000, 256) == 8  # never past 8


@pytest.mark.parametrize("photometric", ["MONOCHROME2", "MONOCHROME1"])
def test_jpeg2000_dicom_reduced_then_full_equals_eager(tmp_path, photometric):
    pixels = _film(1030, 520)
    ds = make_dataset(pixels, bits_stored=12, photometric=photometric, window=(2000.0, 3000.0))
    path = write(compressed(ds, JPEG2000Lossless), tmp_path / "film.dcm")
    eager = load_image(path)
    lazy = load_image(path, model_size=64)
    assert eager.reduced is None and lazy.reduced is not None
    red = lazy.reduced
    assert red.factor == 8 and red.phase == 0.5  # 1030 / 8 is still twice the 64 px input
    assert red.pixels.shape == (-(-1030 // 8), -(-520 // 8))
    assert (lazy.width, lazy.height, lazy.pixel_spacing_mm, lazy.flags) == (eager.width, eager.height, eager.pixel_spacing_mm, eager.flags)
    assert not lazy.full_resolution_decoded
    # The same value transforms at low resolution: reduced sample j is close to full pixel f*j.
    sampled = eager.pixels[::8, ::8].astype(np.float64)
    assert np.median(np.abs(red.pixels.astype(np.float64) - sampled)) < 0.05 * float(np.ptp(eager.pixels))
    assert lazy.sha256 == eager.sha256
    assert lazy.full_resolution_decoded
    np.testing.assert_array_equal(lazy.pixels, eager.pixels)
    assert lazy.dicom is not None and "PixelData" not in lazy.dicom


def test_full_resolution_is_decoded_once_even_from_several_threads(tmp_path, monkeypatch):
    ds = make_dataset(_film(600, 400), bits_stored=12)
    path = write(compressed(ds, JPEG2000Lossless), tmp_path / "film.dcm")
    lazy = load_image(path, model_size=128)
    import vertxnet.io.dicom as dicom_module

    calls = []
    real = dicom_module._load_dicom

    def counting(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(dicom_module, "_load_dicom", counting)
    lazy.prefetch()
    seen = []
    threads = [threading.Thread(target=lambda: seen.append(lazy.sha256)) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    _ = lazy.pixels
    assert len(calls) == 1 and len(set(seen)) == 1


@pytest.mark.parametrize("bits", [8, 12, 16])
def test_full_resolution_frame_beside_the_networks_comes_from_opencv_with_pydicoms_values(tmp_path, monkeypatch, bits):
    """The deferred full-resolution decode of a JPEG 2000 DICOM goes through OpenCV (which
    releases the GIL) and gives exactly the stored values pydicom's own plugins give."""
    import vertxnet.io.dicom as dicom_module

    ds = make_dataset(_film(600, 400, bits=bits), bits_stored=bits)
    path = write(compressed(ds, JPEG2000Lossless), tmp_path / "film.dcm")
    eager = load_image(path)  # pydicom's plugins (the eager path)
    used = []
    real = dicom_module.decode_full
    monkeypatch.setattr(dicom_module, "decode_full", lambda *a: used.append(real(*a)) or used[-1])
    lazy = load_image(path, model_size=128)
    lazy.prefetch()
    assert lazy.sha256 == eager.sha256
    np.testing.assert_array_equal(lazy.pixels, eager.pixels)
    assert len(used) == 1 and used[0] is not None  # OpenCV gave the frame


def test_openjpeg_threads_follow_the_cores_unless_the_user_chose(monkeypatch):
    from vertxnet.io import jpeg2000

    monkeypatch.delenv("OPJ_NUM_THREADS", raising=False)
    jpeg2000._openjpeg_threads()
    import os

    assert int(os.environ["OPJ_NUM_THREADS"]) >= 1
    monkeypatch.setenv("OPJ_NUM_THREADS", "1")
    jpeg2000._openjpeg_threads()
    assert os.environ["OPJ_NUM_THREADS"] == "1"


@pytest.mark.parametrize("rows, cols", [(1030, 520), (1033, 521), (1025, 1031)])
def test_any_film_size_is_decoded_at_the_reduce_asked(rows, cols):
    # Sides of 8k + 1..3 pixels: Pillow rounds the reduced size where OpenJPEG takes the
    # ceiling and refuses them; the decode must still come out 8 times smaller, right-sized.
    from openjpeg import encode

    from vertxnet.io.jpeg2000 import decode_reduced

    film = _film(rows, cols)
    stream = encode(film, bits_stored=12, photometric_interpretation=2, use_mct=False)
    red = decode_reduced(stream, 8, cols, rows, np.uint16)
    assert red is not None and red.factor == 8
    assert red.pixels.shape == (-(-rows // 8), -(-cols // 8))
    assert np.median(np.abs(red.pixels.astype(float) - film[::8, ::8])) < 0.05 * float(np.ptp(film))


@pytest.mark.parametrize("rows, cols", [(1030, 520), (1033, 521), (1029, 1032), (1026, 1024)])
def test_without_libopenjp2_pillow_decodes_at_the_largest_reduce_it_sizes_right(rows, cols, monkeypatch):
    from openjpeg import encode

    from vertxnet.io import jpeg2000

    stream = encode(_film(rows, cols), bits_stored=12, photometric_interpretation=2, use_mct=False)
    wanted = {r: jpeg2000.decode_reduced(stream, 1 << r, cols, rows, np.uint16) for r in (1, 2, 3)}
    monkeypatch.setattr(jpeg2000, "_glymur_reduced", lambda frame, reduce: None)
    red = jpeg2000.decode_reduced(stream, 8, cols, rows, np.uint16)
    level = jpeg2000.pillow_sized_reduce(cols, rows, 3)
    assert red is not None and red.factor == 1 << level
    np.testing.assert_array_equal(red.pixels, wanted[level].pixels)  # the same OpenJPEG levels


def test_pillow_sized_reduce_keeps_levels_whose_rounding_is_the_ceiling():
    from vertxnet.io.jpeg2000 import pillow_sized_reduce

    assert pillow_sized_reduce(1168, 2874, 2) == 2  # 292 x 718.5 -> 719 both ways
    assert pillow_sized_reduce(1470, 2949, 2) == 1  # 2949 / 4 = 737.25: Pillow 737, OpenJPEG 738
    assert pillow_sized_reduce(1032, 1029, 3) == 3  # 1029 = 8k + 5: 128.6 -> 129 both ways
    assert pillow_sized_reduce(1026, 1024, 3) == 2  # 1026 = 8k + 2 fails at 8, 4k + 2 passes at 4
    assert pillow_sized_reduce(2481, 2874, 3) == 1
    assert pillow_sized_reduce(1024, 1024, 3) == 3
    assert pillow_sized_reduce(1025, 1025, 1) == 1


def test_signed_or_colour_frames_are_left_to_pydicom():
    from openjpeg import encode

    from vertxnet.io.jpeg2000 import decode_full

    film = _film(300, 200)
    stream = encode(film, bits_stored=12, photometric_interpretation=2, use_mct=False)
    np.testing.assert_array_equal(decode_full(stream, 200, 300, np.uint16), film)
    assert decode_full(stream, 201, 300, np.uint16) is None  # not the DICOM's Rows/Columns
    signed = encode(film.astype(np.int16) - 2048, bits_stored=12, photometric_interpretation=2, use_mct=False)
    assert decode_full(signed, 200, 300, np.uint16) is None
    assert decode_full(b"\x00\x01 not a codestream", 200, 300, np.uint16) is None  # pydicom reports it


def test_other_dicom_syntaxes_and_small_films_decode_at_full_resolution(tmp_path):
    rle = write(compressed(make_dataset(_film(600, 400), bits_stored=12), RLELossless), tmp_path / "rle.dcm")
    assert load_image(rle, model_size=128).reduced is None
    small = write(compressed(make_dataset(_film(200, 150), bits_stored=12), JPEG2000Lossless), tmp_path / "small.dcm")
    assert load_image(small, model_size=128).reduced is None


def test_codestream_header_reads_levels_and_precision():
    from openjpeg import encode

    stream = encode(_film(300, 200), bits_stored=12, photometric_interpretation=2, use_mct=False)
    head = codestream_header(stream)
    assert (head["width"], head["height"], head["precision"], head["components"], head["signed"]) == (200, 300, 12, 1, 0)
    assert head["levels"] >= 1
    with pytest.raises(ValueError, match="SOC"):
        codestream_header(b"\x00\x01\x02\x03")


def test_jpeg_reduced_by_dct_scaling_then_full_equals_eager(tmp_path):
    pixels = _film(1200, 700, bits=8)
    ok, buf = cv2.imencode(".jpg", pixels, [cv2.IMWRITE_JPEG_QUALITY, 92])
    assert ok
    path = tmp_path / "film.jpg"
    path.write_bytes(buf.tobytes())
    eager = load_image(path)
    lazy = load_image(path, model_size=128)
    assert lazy.reduced is not None and lazy.reduced.factor == 4 and lazy.reduced.phase == 2.0
    assert lazy.flags == eager.flags
    # A scaled IDCT pixel is the mean of its 4 x 4 block.
    blocks = eager.pixels[:1200, :700].reshape(300, 4, 175, 4).mean(axis=(1, 3))
    assert np.mean(np.abs(lazy.reduced.pixels.astype(np.float64) - blocks)) < 1.5
    assert lazy.sha256 == eager.sha256
    np.testing.assert_array_equal(lazy.pixels, eager.pixels)


def test_a_colour_photo_jpeg_is_still_refused(tmp_path):
    from vertxnet.errors import InputError

    rng = np.random.default_rng(3)
    photo = rng.integers(0, 255, size=(1000, 800, 3), dtype=np.uint8)
    ok, buf = cv2.imencode(".jpg", photo)
    path = tmp_path / "photo.jpg"
    path.write_bytes(buf.tobytes())
    with pytest.raises(InputError, match="colour photograph"):
        load_image(path, model_size=128)


def test_jpeg_reduced_decode_ignores_exif_orientation_like_the_full_one(tmp_path):
    from PIL import Image

    pixels = _film(1200, 700, bits=8)
    pixels[:300] = 250  # a bright top band: rotated by 180 degrees it would be at the bottom
    exif = Image.Exif()
    exif[0x0112] = 3  # Orientation: rotate 180
    path = tmp_path / "rotated.jpg"
    Image.fromarray(pixels).save(path, quality=92, exif=exif)
    eager = load_image(path)
    lazy = load_image(path, model_size=128)
    assert lazy.reduced is not None
    assert eager.pixels[:300].mean() > 200 and lazy.reduced.pixels[:75].mean() > 200
