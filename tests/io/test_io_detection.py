"""Formats are told by content, DICOM first: ``DICM`` at offset 128 wins over magic bytes in the
preamble, a dataset without preamble is tried with pydicom's ``force``, and the extension never
decides."""

from __future__ import annotations

import struct

import cv2
import numpy as np
import pydicom
import pytest
from dicom_factory import make_dataset, make_dicom, radiograph

from vertxnet.errors import InputError
from vertxnet.io import load_image
from vertxnet.io.dicom import _one_line


def _tiff_preamble() -> bytes:
    """A little-endian TIFF header and an empty first IFD, as a dual-format DICOM/TIFF file keeps
    in its 128-byte preamble."""
    head = b"II*\x00" + struct.pack("<I", 8) + struct.pack("<H", 0) + struct.pack("<I", 0)
    return head + b"\x00" * (128 - len(head))


def test_a_dicom_whose_preamble_holds_a_tiff_header_is_read_as_dicom(tmp_path):
    stored = radiograph(96, 64, bits=12)
    ds = make_dataset(4095 - stored, photometric="MONOCHROME1", bits_stored=12, pixel_spacing=(0.2, 0.25), window=(2048, 4096))
    ds.preamble = _tiff_preamble()
    path = tmp_path / "dual.tif"  # the extension says TIFF, and so do the first bytes
    ds.save_as(path, enforce_file_format=True)
    assert path.read_bytes()[:4] == b"II*\x00" and path.read_bytes()[128:132] == b"DICM"

    image = load_image(path)
    assert image.source_format == "dicom"
    assert image.pixel_spacing_mm == (0.2, 0.25)  # the DICOM metadata is kept
    assert {"voi_window_applied", "inverted_monochrome1"} <= set(image.flags)
    assert image.dicom is not None and image.dicom.SOPInstanceUID == ds.SOPInstanceUID
    assert np.corrcoef(np.asarray(image.pixels, float).ravel(), stored.astype(float).ravel())[0, 1] > 0.99  # bone bright


def test_a_dataset_without_preamble_is_read_by_force_whatever_its_name(tmp_path):
    stored = radiograph(bits=12)
    for name in ("bare", "bare.png", "bare.dcm"):
        path = make_dicom(tmp_path / name, stored, bits_stored=12, preamble=False)
        assert path.read_bytes()[128:132] != b"DICM"
        image = load_image(path)
        assert image.source_format == "dicom" and np.array_equal(image.pixels, stored)


def test_the_extension_never_decides(tmp_path):
    img = radiograph(80, 80, bits=8)
    png_as_dcm = tmp_path / "film.dcm"
    png_as_dcm.write_bytes(cv2.imencode(".png", img)[1].tobytes())
    assert load_image(png_as_dcm).source_format == "png"
    dicom_as_jpg = make_dicom(tmp_path / "film.jpg", radiograph(bits=12), bits_stored=12)
    assert load_image(dicom_as_jpg).source_format == "dicom"
    # a text file named .dcm is neither: a clear reason naming the file
    notes = tmp_path / "notes.dcm"
    notes.write_text("not an image\n" * 20)
    with pytest.raises(InputError, match=r"notes\.dcm: not a DICOM file"):
        load_image(notes)


def test_a_png_whose_bytes_128_to_132_spell_dicm_is_still_dicom_first(tmp_path):
    """What offset 128 says comes first: a file that only looks like a PNG there is tried as
    DICOM and refused as a corrupt one, never decoded as a PNG by accident."""
    data = bytearray(cv2.imencode(".png", radiograph(80, 80, bits=8))[1].tobytes())
    data[128:132] = b"DICM"
    path = tmp_path / "odd.png"
    path.write_bytes(bytes(data))
    with pytest.raises(InputError, match=r"odd\.png: DICOM"):
        load_image(path)


def test_decoder_failures_keep_every_plugins_reason_on_one_line():
    exc = RuntimeError("Unable to decode as exceptions were raised by all available plugins:\n  pylibjpeg: bad marker\n  pillow: no 12-bit")
    assert _one_line(exc) == "Unable to decode as exceptions were raised by all available plugins: pylibjpeg: bad marker; pillow: no 12-bit"
    assert _one_line(ValueError("first\nsecond")) == "first"
    assert len(_one_line(ValueError("x" * 1000))) == 400
    assert _one_line(ValueError("")) == "ValueError"


def test_pydicom_force_is_used_only_for_files_that_parse_with_pixels(tmp_path):
    ds = make_dataset(with_pixel_data=False)
    path = tmp_path / "header_only"
    bare = pydicom.Dataset()
    bare.update(ds)
    pydicom.dcmwrite(path, bare, implicit_vr=True, little_endian=True)
    with pytest.raises(InputError, match="not a DICOM file"):
        load_image(path)
