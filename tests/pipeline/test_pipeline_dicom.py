"""DICOM radiographs through the whole pipeline: every encoding gives the same vertebrae as the
plain image, spacing turns into mm² figures, and DICOM SEG references the source image."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pydicom
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "io"))
from dicom_factory import PATIENT_ID, PATIENT_NAME, compressed, make_dataset, write  # noqa: E402

pytestmark = pytest.mark.train  # the hand-built ONNX models need the onnx package


def _pixels(scene, bits: int) -> np.ndarray:
    full = 2**bits - 1
    scaled = scene.image.astype(np.float64) / np.iinfo(scene.image.dtype).max * full
    return np.round(scaled).astype(np.uint16)


def _boxes(result):
    return [(v.label, np.round(v.bbox, 3).tolist()) for v in result.vertebrae]


@pytest.fixture(scope="module")
def reference(pipeline, scene):
    return pipeline.predict(scene.image)


VARIANTS = {
    "mono2-12bit": dict(bits=12),
    "mono2-16bit": dict(bits=16),
    "mono1-12bit": dict(bits=12, photometric="MONOCHROME1"),
    "rescaled": dict(bits=12, rescale=(0.5, -1024.0)),
    "jpeg2000": dict(bits=12, transfer_syntax=pydicom.uid.JPEG2000Lossless),
    "jpeg-ls": dict(bits=16, transfer_syntax=pydicom.uid.JPEGLSLossless),
}


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_dicom_encodings_give_the_same_vertebrae(name, pipeline, scene, reference, tmp_path):
    v = VARIANTS[name]
    pixels = _pixels(scene, v["bits"])
    if v.get("photometric") == "MONOCHROME1":
        pixels = (2 ** v["bits"] - 1 - pixels).astype(np.uint16)  # bone dark in storage
    ds = make_dataset(pixels, bits_stored=v["bits"], photometric=v.get("photometric", "MONOCHROME2"), pixel_spacing=(0.2, 0.25), rescale=v.get("rescale"))
    if "transfer_syntax" in v:
        ds = compressed(ds, v["transfer_syntax"])
    path = write(ds, tmp_path / f"{name}.dcm")
    result = pipeline.predict(path)
    assert _boxes(result) == _boxes(reference)
    assert result.input.pixel_spacing_mm == (0.2, 0.25)
    assert all(vb.area_mm2 == pytest.approx(vb.area_px * 0.05) for vb in result.vertebrae)
    text = result.to_json()
    assert PATIENT_NAME.split("^")[0] not in text and PATIENT_ID not in text


@pytest.mark.parametrize("spacing", [None, (0.0, 0.0)], ids=["missing", "zero"])
def test_missing_or_zero_spacing_gives_no_mm_figures_and_a_flag(spacing, pipeline, scene, tmp_path):
    ds = make_dataset(_pixels(scene, 12), bits_stored=12, pixel_spacing=spacing)
    result = pipeline.predict(write(ds, tmp_path / "nospacing.dcm"))
    assert result.input.pixel_spacing_mm is None and "no_pixel_spacing" in result.flags
    assert result.vertebrae and all(v.area_mm2 is None for v in result.vertebrae)
    assert all("area_mm2" not in v for v in result.to_dict()["vertebrae"])


def test_dicom_seg_references_the_source_image(pipeline, scene, tmp_path):
    ds = make_dataset(_pixels(scene, 12), bits_stored=12)
    source = write(ds, tmp_path / "film.dcm")
    result = pipeline.predict(source)
    seg = result.to_dicom_seg()
    seg.save_as(tmp_path / "film.seg.dcm", enforce_file_format=True)
    back = pydicom.dcmread(tmp_path / "film.seg.dcm")
    assert back.Modality == "SEG" and back.SegmentationType == "BINARY"
    assert [s.SegmentLabel for s in back.SegmentSequence] == ["C2", "C3", "C4", "C5", "C6"]
    referenced = back.ReferencedSeriesSequence[0].ReferencedInstanceSequence[0].ReferencedSOPInstanceUID
    assert referenced == ds.SOPInstanceUID
    assert back.StudyInstanceUID == ds.StudyInstanceUID
    # Each segment's pixels are those of the label mask for that level.
    mask = result.label_mask()
    from vertxnet.levels import level_index

    arr = back.pixel_array  # (frames, rows, cols), one frame per segment here
    assert arr.shape[0] == 5
    for frame, label in zip(arr, ["C2", "C3", "C4", "C5", "C6"]):
        np.testing.assert_array_equal(frame.astype(bool), mask == level_index(label))


def test_dicom_seg_needs_a_dicom_input(pipeline, scene):
    from vertxnet.errors import InputError

    result = pipeline.predict(scene.image)
    with pytest.raises(InputError, match="dicom-seg needs a DICOM input"):
        result.to_dicom_seg()


def test_total_time_includes_the_full_resolution_decode_beside_the_networks(pipeline, scene, tmp_path, monkeypatch):
    """A JPEG 2000 film decoded at a reduced level for the networks still needs its full
    resolution for the pixel hash: timings_ms.total is the whole predict, waiting included."""
    import time

    import vertxnet.io.dicom as dicom_module
    from vertxnet.io import load_image

    big = np.repeat(np.repeat(_pixels(scene, 12), 2, axis=0), 2, axis=1)  # same letterbox, 2x the pixels
    path = write(compressed(make_dataset(big, bits_stored=12), pydicom.uid.JPEG2000Lossless), tmp_path / "big.dcm")
    assert load_image(path, model_size=pipeline.bundle.preprocess.input_size).reduced is not None
    real = dicom_module.decode_full

    def slow(*args):
        time.sleep(0.3)
        return real(*args)

    monkeypatch.setattr(dicom_module, "decode_full", slow)
    result = pipeline.predict(path)
    assert result.timings_ms["total"] >= 300.0
    assert result.input.sha256 == load_image(path).sha256
    assert [v.label for v in result.vertebrae] == ["C2", "C3", "C4", "C5", "C6"]
