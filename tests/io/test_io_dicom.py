"""DICOM loading: pixel transforms, compressed transfer syntaxes, spacing, identifiers, refusals."""

from __future__ import annotations

import dataclasses
import hashlib

import numpy as np
import pytest
from dicom_factory import (
    ACCESSION,
    PATIENT_ID,
    PATIENT_NAME,
    compressed,
    jpeg_baseline,
    make_dataset,
    make_dicom,
    make_multiframe,
    radiograph,
    write,
)
from pydicom.uid import JPEG2000Lossless, JPEGLSLossless, RLELossless

from vertxnet.errors import InputError
from vertxnet.io import load_image


def _sha(arr: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(arr, arr.dtype.newbyteorder("<")).tobytes()).hexdigest()


def _linear_window(values, center, width, lo, hi):
    """DICOM PS3.3 C.11.2.1.2.1 LINEAR window, written out independently of pydicom."""
    v = values.astype(np.float64)
    c, w = center - 0.5, width - 1.0
    out = ((v - c) / w + 0.5) * (hi - lo) + lo
    out[v <= c - w / 2] = lo
    out[v > c + w / 2] = hi
    return out


# --------------------------------------------------------------------------- bit depths and signs


@pytest.mark.parametrize(("bits", "dtype"), [(8, np.uint8), (12, np.uint16), (16, np.uint16)])
def test_unsigned_monochrome2_values_are_kept(tmp_path, bits, dtype):
    stored = radiograph(bits=bits)
    image = load_image(make_dicom(tmp_path / "a.dcm", stored, bits_stored=bits))
    assert image.pixels.dtype == dtype
    np.testing.assert_array_equal(image.pixels, stored)
    assert image.bits_stored == bits
    assert (image.width, image.height) == (stored.shape[1], stored.shape[0])
    assert image.source_format == "dicom"
    assert image.path == str(tmp_path / "a.dcm")
    assert image.flags == ()


def test_signed_pixels_keep_their_sign(tmp_path):
    stored = radiograph(bits=12, signed=True)
    assert stored.min() < 0
    image = load_image(make_dicom(tmp_path / "s.dcm", stored, bits_stored=12))
    assert image.pixels.dtype == np.float32
    np.testing.assert_array_equal(image.pixels, stored.astype(np.float32))


def test_monochrome1_is_inverted_so_bone_is_bright(tmp_path):
    bone_bright = radiograph(bits=12)
    stored = (4095 - bone_bright).astype(np.uint16)  # MONOCHROME1: high values display dark
    image = load_image(make_dicom(tmp_path / "m1.dcm", stored, photometric="MONOCHROME1", bits_stored=12))
    assert "inverted_monochrome1" in image.flags
    # Inversion happens within the 12-bit range, so the film comes back exactly.
    np.testing.assert_array_equal(image.pixels, bone_bright)
    vertebra = image.pixels[bone_bright > 3000].mean()
    soft_tissue = image.pixels[bone_bright < 1500].mean()
    assert vertebra > soft_tissue


def test_signed_monochrome1_inverts_within_signed_range(tmp_path):
    stored = radiograph(bits=12, signed=True)
    image = load_image(make_dicom(tmp_path / "m1s.dcm", stored, photometric="MONOCHROME1", bits_stored=12))
    np.testing.assert_array_equal(image.pixels, (-2048 + 2047 - stored.astype(np.float64)).astype(np.float32))


def test_32_bit_pixels_with_rescale_and_inversion(tmp_path):
    # A range too wide for one lookup table: the transforms run on the pixels directly.
    stored = radiograph(bits=16).astype(np.uint32) * 20
    ds = make_dataset(radiograph(bits=16), bits_stored=16, rescale=(0.5, 10.0), photometric="MONOCHROME1")
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 32, 32, 31
    ds.PixelData = stored.tobytes()
    image = load_image(write(ds, tmp_path / "b32.dcm"))
    lo, hi = 10.0, (2.0**32 - 1) * 0.5 + 10.0
    np.testing.assert_allclose(image.pixels, lo + hi - (stored * 0.5 + 10.0), rtol=1e-6)
    assert image.bits_stored == 32 and image.pixels.dtype == np.float32


# --------------------------------------------------------------------------- Modality and VOI LUT


def test_rescale_slope_and_intercept_are_applied(tmp_path):
    stored = radiograph(bits=12)
    image = load_image(make_dicom(tmp_path / "r.dcm", stored, bits_stored=12, rescale=(2.0, -1000.0)))
    assert "modality_lut_applied" in image.flags
    np.testing.assert_allclose(image.pixels, stored * 2.0 - 1000.0)
    assert image.pixels.dtype == np.float32


def test_identity_rescale_keeps_integer_pixels(tmp_path):
    stored = radiograph(bits=12)
    image = load_image(make_dicom(tmp_path / "r1.dcm", stored, bits_stored=12, rescale=(1.0, 0.0)))
    assert image.pixels.dtype == np.uint16
    assert "modality_lut_applied" not in image.flags


def test_window_center_width_is_applied(tmp_path):
    stored = radiograph(bits=12)
    image = load_image(make_dicom(tmp_path / "w.dcm", stored, bits_stored=12, window=(2000.0, 1500.0)))
    assert "voi_window_applied" in image.flags
    np.testing.assert_allclose(image.pixels, _linear_window(stored, 2000.0, 1500.0, 0, 4095), rtol=0, atol=1e-3)


def test_first_of_several_windows_is_used(tmp_path):
    stored = radiograph(bits=12)
    image = load_image(
        make_dicom(tmp_path / "w2.dcm", stored, bits_stored=12, window=([2000.0, 600.0], [1500.0, 200.0]))
    )
    np.testing.assert_allclose(image.pixels, _linear_window(stored, 2000.0, 1500.0, 0, 4095), atol=1e-3)


def test_window_follows_rescale(tmp_path):
    stored = radiograph(bits=12)
    path = make_dicom(tmp_path / "rw.dcm", stored, bits_stored=12, rescale=(0.5, 100.0), window=(1000.0, 800.0))
    image = load_image(path)
    assert {"modality_lut_applied", "voi_window_applied"} <= set(image.flags)
    rescaled = stored * 0.5 + 100.0
    expected = _linear_window(rescaled, 1000.0, 800.0, 100.0, 4095 * 0.5 + 100.0)
    np.testing.assert_allclose(image.pixels, expected, atol=1e-3)


def test_monochrome1_with_window_is_inverted_after_windowing(tmp_path):
    bone_bright = radiograph(bits=12)
    stored = (4095 - bone_bright).astype(np.uint16)
    path = make_dicom(tmp_path / "m1w.dcm", stored, photometric="MONOCHROME1", bits_stored=12, window=(2048.0, 4096.0))
    image = load_image(path)
    assert {"voi_window_applied", "inverted_monochrome1"} <= set(image.flags)
    expected = 4095 - _linear_window(stored, 2048.0, 4096.0, 0, 4095)
    np.testing.assert_allclose(image.pixels, expected, atol=1e-3)
    assert image.pixels[bone_bright > 3000].mean() > image.pixels[bone_bright < 1500].mean()


def test_voi_lut_sequence_is_applied(tmp_path):
    stored = radiograph(bits=12)
    table = (np.sqrt(np.arange(4096) / 4095.0) * 65535).astype(np.uint16)  # a gamma-like display LUT
    image = load_image(make_dicom(tmp_path / "lut.dcm", stored, bits_stored=12, voi_lut=table))
    assert "voi_lut_applied" in image.flags
    np.testing.assert_array_equal(image.pixels, table[stored])


def test_window_that_blanks_the_image_is_refused(tmp_path):
    stored = radiograph(bits=12)  # all values are below 4000
    path = make_dicom(tmp_path / "blank.dcm", stored, bits_stored=12, window=(4090.0, 4.0))
    with pytest.raises(InputError, match=r"constant after the DICOM window \(center 4090, width 4\)") as err:
        load_image(path)
    assert err.value.path == str(path)


def test_invalid_window_is_ignored_and_flagged(tmp_path):
    stored = radiograph(bits=12)
    image = load_image(make_dicom(tmp_path / "w0.dcm", stored, bits_stored=12, window=(2000.0, 0.0)))
    assert "invalid_voi_ignored" in image.flags
    np.testing.assert_array_equal(image.pixels, stored)


# --------------------------------------------------------------------------- compressed transfer syntaxes


@pytest.mark.parametrize(
    "transfer_syntax",
    [
        pytest.param(RLELossless, id="rle"),
        pytest.param(JPEG2000Lossless, id="jpeg2000"),
        pytest.param(JPEGLSLossless, id="jpegls"),
    ],
)
@pytest.mark.parametrize("bits", [8, 12, 16])
def test_lossless_compressed_dicom_decodes_to_the_same_pixels(tmp_path, transfer_syntax, bits):
    if transfer_syntax == JPEGLSLossless:
        pytest.importorskip("jpeg_ls", reason="writing JPEG-LS test files needs the pyjpegls encoder")
    stored = radiograph(bits=bits, seed=bits)
    plain = load_image(make_dicom(tmp_path / "plain.dcm", stored, bits_stored=bits))
    ds = compressed(make_dataset(stored, bits_stored=bits), transfer_syntax)
    assert ds.file_meta.TransferSyntaxUID == transfer_syntax
    image = load_image(write(ds, tmp_path / "c.dcm"))
    np.testing.assert_array_equal(image.pixels, stored)
    assert image.sha256 == plain.sha256  # the hash identifies pixel content, not the encoding


def test_jpeg_baseline_dicom_decodes(tmp_path):
    stored = radiograph(bits=8)
    image = load_image(write(jpeg_baseline(stored), tmp_path / "jpeg.dcm"))
    assert image.pixels.dtype == np.uint8
    assert np.abs(image.pixels.astype(int) - stored.astype(int)).mean() < 2  # lossy, quality 95


def test_compressed_monochrome1_is_inverted(tmp_path):
    bone_bright = radiograph(bits=12)
    ds = make_dataset((4095 - bone_bright).astype(np.uint16), photometric="MONOCHROME1", bits_stored=12)
    image = load_image(write(compressed(ds, JPEG2000Lossless), tmp_path / "m1.dcm"))
    np.testing.assert_array_equal(image.pixels, bone_bright)


def test_corrupt_compressed_pixel_data_names_the_transfer_syntax(tmp_path):
    ds = compressed(make_dataset(), JPEG2000Lossless)
    data = bytearray(ds.PixelData)
    data[40:-8] = bytes(len(data) - 48)  # keep the encapsulation, zero the codestream
    ds.PixelData = bytes(data)
    path = write(ds, tmp_path / "bad.dcm")
    with pytest.raises(InputError, match=r"cannot decode DICOM pixel data \(JPEG 2000"):
        load_image(path)


# --------------------------------------------------------------------------- spacing


def test_pixel_spacing_is_row_then_column(tmp_path):
    image = load_image(make_dicom(tmp_path / "sp.dcm", pixel_spacing=(0.1, 0.2)))
    assert image.pixel_spacing_mm == (0.1, 0.2)
    assert "no_pixel_spacing" not in image.flags


@pytest.mark.parametrize(
    "spacing", [None, (0.0, 0.0), (0.1, 0.0), (-0.1, 0.1), (float("nan"), 0.1), (float("inf"), 0.1), (0.1,)]
)
def test_missing_or_invalid_spacing_gives_none_and_a_flag(tmp_path, spacing):
    image = load_image(make_dicom(tmp_path / "nosp.dcm", pixel_spacing=spacing))
    assert image.pixel_spacing_mm is None
    assert "no_pixel_spacing" in image.flags


def test_imager_pixel_spacing_is_the_fallback(tmp_path):
    image = load_image(make_dicom(tmp_path / "imager.dcm", pixel_spacing=None, imager_pixel_spacing=(0.143, 0.144)))
    assert image.pixel_spacing_mm == (0.143, 0.144)
    assert "spacing_from_imager" in image.flags
    zero_then_imager = load_image(
        make_dicom(tmp_path / "zi.dcm", pixel_spacing=(0.0, 0.0), imager_pixel_spacing=(0.2, 0.2))
    )
    assert zero_then_imager.pixel_spacing_mm == (0.2, 0.2)


def test_pixel_spacing_wins_over_imager_pixel_spacing(tmp_path):
    image = load_image(make_dicom(tmp_path / "both.dcm", pixel_spacing=(0.1, 0.1), imager_pixel_spacing=(0.2, 0.2)))
    assert image.pixel_spacing_mm == (0.1, 0.1)
    assert "spacing_from_imager" not in image.flags


# --------------------------------------------------------------------------- identity, hashing, header reference


def test_no_patient_identifier_leaks_outside_the_dicom_reference(tmp_path):
    path = make_dicom(tmp_path / "phi.dcm", photometric="MONOCHROME1", window=(2048.0, 4096.0))
    image = load_image(path)
    secrets = [PATIENT_ID, ACCESSION, "Leakcheck", "Patricia", "19570412"]
    for field in dataclasses.fields(image):
        if field.name == "dicom":
            continue
        value = getattr(image, field.name)
        text = repr(value) + str(value) + (value.tobytes().decode("latin-1") if isinstance(value, np.ndarray) else "")
        for secret in secrets:
            assert secret not in text, f"{secret!r} leaked into LoadedImage.{field.name}"
    for secret in secrets:
        assert secret not in repr(image)
    # The reference keeps what DICOM SEG needs, but not the pixel data.
    assert str(image.dicom.PatientName) == PATIENT_NAME
    assert image.dicom.StudyInstanceUID
    assert "PixelData" not in image.dicom


def test_sha256_is_of_the_stored_pixels_before_transforms(tmp_path):
    stored = (4095 - radiograph(bits=12)).astype(np.uint16)
    path = make_dicom(tmp_path / "h.dcm", stored, photometric="MONOCHROME1", bits_stored=12, rescale=(2.0, 1.0))
    image = load_image(path)
    assert image.sha256 == _sha(stored)
    other = load_image(make_dicom(tmp_path / "h2.dcm", radiograph(bits=12, seed=7), bits_stored=12))
    assert other.sha256 != image.sha256


def test_pixels_are_read_only(tmp_path):
    image = load_image(make_dicom(tmp_path / "ro.dcm"))
    with pytest.raises(ValueError):
        image.pixels[0, 0] = 1


def test_dicom_without_preamble_is_read(tmp_path):
    stored = radiograph(bits=12)
    path = make_dicom(tmp_path / "bare", stored, bits_stored=12, preamble=False)
    assert path.read_bytes()[128:132] != b"DICM"
    image = load_image(path)
    np.testing.assert_array_equal(image.pixels, stored)
    assert image.source_format == "dicom"


def test_single_frame_with_number_of_frames_one_is_accepted(tmp_path):
    image = load_image(make_dicom(tmp_path / "nf1.dcm", number_of_frames=1))
    assert image.pixels.ndim == 2


def test_near_gray_rgb_dicom_is_converted(tmp_path):
    gray = radiograph(bits=8)
    rgb = np.stack([gray, gray, gray], axis=-1)
    image = load_image(make_dicom(tmp_path / "rgb.dcm", rgb, photometric="RGB", bits_stored=8))
    assert "rgb_converted" in image.flags
    np.testing.assert_array_equal(image.pixels, gray)


# --------------------------------------------------------------------------- refusals


def _refused(path, pattern):
    with pytest.raises(InputError, match=pattern) as err:
        load_image(path)
    assert err.value.path == str(path)
    assert str(err.value).startswith(str(path))
    assert "\n" not in str(err.value)
    return err.value


def test_multiframe_is_refused(tmp_path):
    _refused(make_multiframe(tmp_path / "mf.dcm", frames=3), r"multi-frame DICOM \(3 frames\) not supported")


def test_dicom_without_pixel_data_is_refused(tmp_path):
    _refused(make_dicom(tmp_path / "nopix.dcm", with_pixel_data=False), "DICOM has no pixel data$")


def test_palette_colour_is_refused(tmp_path):
    ds = make_dataset(radiograph(bits=8), bits_stored=8)
    ds.PhotometricInterpretation = "PALETTE COLOR"
    _refused(write(ds, tmp_path / "pal.dcm"), "photometric interpretation PALETTE COLOR is not supported")


def test_colour_photograph_in_dicom_is_refused(tmp_path):
    h, w = 64, 64
    y, x = np.mgrid[0:h, 0:w]
    rgb = np.stack([x * 4, y * 4, 255 - x * 2], axis=-1).astype(np.uint8)
    _refused(make_dicom(tmp_path / "photo.dcm", rgb, photometric="RGB", bits_stored=8), "colour photograph, not a radiograph")


def test_constant_dicom_is_refused(tmp_path):
    flat = np.full((64, 64), 1000, dtype=np.uint16)
    _refused(make_dicom(tmp_path / "flat.dcm", flat, bits_stored=12), "image is constant: nothing to segment")


def test_tiny_dicom_is_refused(tmp_path):
    tiny = radiograph(rows=16, cols=16, bits=12)
    _refused(make_dicom(tmp_path / "tiny.dcm", tiny, bits_stored=12), r"16x16 pixels is too small")


def test_truncated_dicom_is_refused(tmp_path):
    path = make_dicom(tmp_path / "cut.dcm")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 2000])
    _refused(path, r"cannot decode DICOM pixel data \(Explicit VR Little Endian\): .*less than expected")


def test_huge_dimensions_are_refused_before_decoding(tmp_path, monkeypatch):
    ds = make_dataset()
    ds.Rows, ds.Columns = 50000, 50000
    path = write(ds, tmp_path / "bomb.dcm")
    import pydicom.dataset

    def no_decode(self):
        raise AssertionError("pixel data must not be decoded")

    monkeypatch.setattr(pydicom.dataset.Dataset, "pixel_array", property(no_decode))
    _refused(path, r"50000x50000 pixels exceeds the limit of 200000000 pixels \(refused before decoding\)")


def test_text_file_named_dcm_is_not_dicom(tmp_path):
    path = tmp_path / "notes.dcm"
    path.write_text("Patient positioned lateral, please repeat exposure.\n" * 5)
    _refused(path, r"not a DICOM file \(no DICM preamble and not parseable\)$")


def test_dicm_preamble_with_garbage_is_refused(tmp_path):
    path = tmp_path / "garbage.dcm"
    path.write_bytes(b"\x00" * 128 + b"DICM" + b"\x02\x00\x10\x00UI\xff\x7fgarbage")
    _refused(path, r"DICOM has no pixel data")
