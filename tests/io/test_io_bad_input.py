"""Unusable files: each gives one InputError naming the file and a specific reason, fast."""

from __future__ import annotations

import os
import struct
import zlib

import cv2
import numpy as np
import pytest
from dicom_factory import make_dicom, radiograph
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vertxnet.errors import InputError
from vertxnet.io import load_image


def _refused(path, pattern, **kwargs) -> InputError:
    with pytest.raises(InputError, match=pattern) as err:
        load_image(path, **kwargs)
    message = str(err.value)
    assert err.value.path == str(path)
    assert message.startswith(f"{path}: ")
    assert "\n" not in message
    return err.value


def _png_bytes(array) -> bytes:
    ok, buf = cv2.imencode(".png", array)
    assert ok
    return buf.tobytes()


def _png_chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def _png_bomb(width: int, height: int) -> bytes:
    """A well-formed PNG header (valid CRCs) claiming width x height 8-bit gray pixels."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 1024)
    return b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", idat) + _png_chunk(b"IEND", b"")


@pytest.fixture
def no_decoding(monkeypatch):
    """Fail the test if anything reaches the image decoder."""

    def refuse(*args, **kwargs):
        raise AssertionError("the decoder must not run for this file")

    monkeypatch.setattr(cv2, "imdecode", refuse)


# --------------------------------------------------------------------------- file system


def test_missing_file(tmp_path):
    _refused(tmp_path / "nowhere.png", "file not found$")


def test_directory(tmp_path):
    _refused(tmp_path, "is a directory, not an image file$")


def test_empty_file(tmp_path):
    path = tmp_path / "empty.dcm"
    path.touch()
    _refused(path, "file is empty$")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes are POSIX-only")
def test_named_pipe_is_refused_without_blocking(tmp_path):
    path = tmp_path / "pipe.png"
    os.mkfifo(path)
    _refused(path, "not a regular file$")


def test_oversized_file_is_refused_before_reading(tmp_path):
    path = tmp_path / "big.png"
    path.write_bytes(_png_bytes(radiograph(bits=8)))
    os.truncate(path, 17 << 20)  # sparse: big on paper, nothing to write
    _refused(path, r"file of 17825792 bytes exceeds the \d+-byte limit for images$", max_pixels=1)


# --------------------------------------------------------------------------- formats


def test_truncated_png(tmp_path):
    data = _png_bytes(radiograph(bits=16))
    path = tmp_path / "cut.png"
    path.write_bytes(data[: len(data) // 2])
    _refused(path, "cannot decode PNG: file is truncated or corrupt$")


def test_png_with_broken_header(tmp_path):
    data = bytearray(_png_bytes(radiograph(bits=8)))
    data[12:16] = b"XXXX"
    path = tmp_path / "hdr.png"
    path.write_bytes(bytes(data))
    _refused(path, "cannot decode PNG: header is truncated or corrupt$")


def test_truncated_jpeg(tmp_path):
    ok, buf = cv2.imencode(".jpg", radiograph(bits=8))
    path = tmp_path / "cut.jpg"
    path.write_bytes(buf.tobytes()[: len(buf) * 2 // 3])
    _refused(path, r"cannot decode JPEG: file is truncated \(no end-of-image marker\)$")


def test_truncated_tiff(tmp_path):
    ok, buf = cv2.imencode(".tif", radiograph(bits=16))
    path = tmp_path / "cut.tif"
    path.write_bytes(buf.tobytes()[: len(buf) // 2])
    _refused(path, "cannot decode TIFF: .* truncated or corrupt$")


def test_text_file_with_image_extension(tmp_path):
    path = tmp_path / "readme.png"
    path.write_text("not an image at all\n")
    _refused(path, "unrecognised file format: not PNG, JPEG, TIFF or DICOM$")


def test_unsupported_format_is_named(tmp_path):
    path = tmp_path / "scan.bmp"
    assert cv2.imwrite(str(path), radiograph(bits=8))
    _refused(path, "BMP files are not supported: use PNG, JPEG, TIFF or DICOM$")


# --------------------------------------------------------------------------- content


def test_one_pixel_image(tmp_path):
    path = tmp_path / "dot.png"
    path.write_bytes(_png_bytes(np.array([[200]], np.uint8)))
    _refused(path, r"image of 1x1 pixels is too small \(minimum 32x32\)$")


def test_thin_image(tmp_path):
    path = tmp_path / "strip.png"
    path.write_bytes(_png_bytes(radiograph(rows=200, cols=31, bits=8)))
    _refused(path, r"image of 31x200 pixels is too small")


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_constant_image(tmp_path, dtype):
    path = tmp_path / "flat.png"
    path.write_bytes(_png_bytes(np.full((64, 64), 9, dtype)))
    _refused(path, "image is constant: nothing to segment$")


# --------------------------------------------------------------------------- decompression bombs


def test_png_bomb_is_refused_from_its_header(tmp_path, no_decoding):
    path = tmp_path / "bomb.png"
    path.write_bytes(_png_bomb(50000, 50000))
    _refused(path, r"image of 50000x50000 pixels exceeds the limit of 200000000 pixels \(refused before decoding\)$")


def test_jpeg_bomb_is_refused_from_its_header(tmp_path, no_decoding):
    ok, buf = cv2.imencode(".jpg", radiograph(bits=8))
    data = bytearray(buf.tobytes())
    sof = data.find(b"\xff\xc0")
    assert sof > 0
    data[sof + 5 : sof + 9] = struct.pack(">HH", 60000, 60000)
    path = tmp_path / "bomb.jpg"
    path.write_bytes(bytes(data))
    _refused(path, r"image of 60000x60000 pixels exceeds the limit")


@pytest.mark.parametrize("big", [False, True], ids=["tiff", "bigtiff"])
def test_tiff_bomb_is_refused_from_its_header(tmp_path, no_decoding, big):
    if big:  # BigTIFF: 8-byte offsets, 20-byte IFD entries, LONG8 values
        ifd = struct.pack("<Q", 2)
        ifd += struct.pack("<HHQQ", 256, 16, 1, 50000) + struct.pack("<HHQQ", 257, 16, 1, 50000)
        data = b"II+\x00" + struct.pack("<HHQ", 8, 0, 16) + ifd + struct.pack("<Q", 0)
    else:
        ifd = struct.pack("<H", 2)
        ifd += struct.pack("<HHII", 256, 4, 1, 50000) + struct.pack("<HHII", 257, 4, 1, 50000)
        data = b"II*\x00" + struct.pack("<I", 8) + ifd + struct.pack("<I", 0)
    path = tmp_path / "bomb.tif"
    path.write_bytes(data)
    _refused(path, r"image of 50000x50000 pixels exceeds the limit")


def test_pixel_limit_is_configurable(tmp_path):
    path = tmp_path / "film.png"
    path.write_bytes(_png_bytes(radiograph(rows=100, cols=100, bits=8)))
    _refused(path, r"image of 100x100 pixels exceeds the limit of 5000 pixels", max_pixels=5000)
    assert load_image(path).width == 100


def test_minimum_side_is_configurable(tmp_path):
    path = tmp_path / "film.png"
    path.write_bytes(_png_bytes(radiograph(rows=48, cols=48, bits=8)))
    _refused(path, r"too small \(minimum 64x64\)", min_side=64)


# --------------------------------------------------------------------------- fuzzing


def _valid_files() -> dict[str, bytes]:
    import tempfile
    from pathlib import Path

    film = radiograph(rows=48, cols=40, bits=16)
    files = {".png": _png_bytes(film)}
    for ext, arr in ((".jpg", (film >> 8).astype(np.uint8)), (".tif", film)):
        ok, buf = cv2.imencode(ext, arr)
        files[ext] = buf.tobytes()
    with tempfile.TemporaryDirectory() as tmp:
        files[".dcm"] = make_dicom(Path(tmp) / "f.dcm", film, bits_stored=16).read_bytes()
    return files


VALID_FILES = _valid_files()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    ext=st.sampled_from(sorted(VALID_FILES)),
    cut=st.floats(0.0, 1.0),
    flips=st.lists(st.tuples(st.floats(0.0, 1.0), st.integers(0, 255)), max_size=6),
)
def test_damaged_files_load_or_raise_input_error_only(tmp_path, ext, cut, flips):
    data = bytearray(VALID_FILES[ext])
    for where, value in flips:
        data[min(int(where * len(data)), len(data) - 1)] = value
    data = data[: max(1, int(cut * len(data)))] if cut < 1.0 else data
    path = tmp_path / f"damaged{ext}"
    path.write_bytes(bytes(data))
    try:
        image = load_image(path)
    except InputError as err:
        assert err.path == str(path) and "\n" not in str(err)
    else:
        assert image.pixels.ndim == 2 and image.width >= 32 and image.height >= 32


def test_truncated_jpeg_with_exif_thumbnail(tmp_path):
    """The thumbnail's own end-of-image marker must not hide the truncation of the main image."""
    ok, thumb = cv2.imencode(".jpg", radiograph(rows=32, cols=32, bits=8))
    payload = b"Exif\x00\x00" + thumb.tobytes()
    app1 = b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload
    ok, main = cv2.imencode(".jpg", radiograph(rows=200, cols=160, bits=8))
    full = main.tobytes()[:2] + app1 + main.tobytes()[2:]
    path = tmp_path / "exif.jpg"
    path.write_bytes(full)
    assert load_image(path).width == 160
    path.write_bytes(full[: len(full) * 3 // 4])
    _refused(path, r"cannot decode JPEG: file is truncated")


@pytest.mark.parametrize("kwargs", [{"max_pixels": 0}, {"min_side": 0}])
def test_bad_limits_are_argument_errors(tmp_path, kwargs):
    with pytest.raises(ValueError, match="must be positive"):
        load_image(tmp_path / "any.png", **kwargs)
