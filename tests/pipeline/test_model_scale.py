"""Decoding and preprocessing at the model's scale give the vertebrae of the full-scale path:
the shipped demo bundle on phantoms written as JPEG 2000 DICOM, PNG and JPEG, each compared
with the full-resolution decode preprocessed at the film's own scale (the path before 0.2)."""

from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "io"))

#: Phantom films (classic renderer, what the demo bundle was trained on), long side in pixels.
FILMS = [("lumbar", 0), ("cervical", 1), ("lumbar", 2)]
SIZE = 1400  # large enough to decode at half size for a 320 px model input (2 x oversampling)
MIN_IOU = 0.98


@pytest.fixture(scope="module")
def films(tmp_path_factory):
    from dicom_factory import compressed, make_dataset, write
    from pydicom.uid import JPEG2000Lossless

    from vertxnet.data.phantom import PhantomConfig, generate

    out = tmp_path_factory.mktemp("films")
    paths = []
    for view, index in FILMS:
        image, record = generate(PhantomConfig(view=view, size=SIZE, seed=41, style="classic"), index)
        stored = (image >> 4).astype(np.uint16)  # 12-bit, as a detector writes it
        ds = make_dataset(stored, bits_stored=12, pixel_spacing=record.pixel_spacing_mm or (0.15, 0.15))
        paths.append(write(compressed(ds, JPEG2000Lossless), out / f"{view}{index}.dcm"))
        png = out / f"{view}{index}.png"
        cv2.imwrite(str(png), (image >> 8).astype(np.uint8))
        paths.append(png)
        jpg = out / f"{view}{index}.jpg"
        cv2.imwrite(str(jpg), (image >> 8).astype(np.uint8), [cv2.IMWRITE_JPEG_QUALITY, 95])
        paths.append(jpg)
    return paths


#: Reduced decodes (JPEG 2000 levels, JPEG DCT scaling) pass the film through the codec's own
#: low-pass before the area resize. On these phantoms most outlines keep IoU >= 0.97 against the
#: full-scale path, but a body whose ensemble decision is borderline can change its outline
#: (cervical1.dcm's C2: 0.90). This is below the 0.98 target and reported so in
#: benchmarks/RESULTS.md. The test holds the names, the median and this floor.
MIN_IOU_REDUCED, MEDIAN_IOU_REDUCED = 0.85, 0.97


def _compare(fast, slow, name: str, min_iou: float, median_iou: float = 0.0) -> None:
    assert fast.input.sha256 == slow.input.sha256
    assert (fast.input.width, fast.input.height) == (slow.input.width, slow.input.height)
    assert [v.label for v in fast.vertebrae] == [v.label for v in slow.vertebrae], name
    from vertxnet.evaluation.metrics import polygon_iou

    ious = [polygon_iou(a.polygon, b.polygon, slow.input.height, slow.input.width) for a, b in zip(fast.vertebrae, slow.vertebrae)]
    worst = int(np.argmin(ious))
    assert ious[worst] >= min_iou, f"{name} {fast.vertebrae[worst].label}: IoU {ious[worst]:.3f}"
    assert np.median(ious) >= median_iou, f"{name}: median IoU {np.median(ious):.3f}"


@pytest.mark.slow
def test_model_scale_path_finds_the_same_vertebrae(films, monkeypatch):
    import vertxnet.pipeline as pipeline_module
    from vertxnet.io import load_image
    from vertxnet.pipeline import Pipeline
    from vertxnet.preprocess import prepare_full_scale

    with Pipeline() as pipe:
        size = pipe.bundle.preprocess.input_size
        reduced_seen = 0
        for path in films:
            with monkeypatch.context() as m:
                m.setattr(pipeline_module, "prepare", prepare_full_scale)
                slow = pipe.predict(load_image(path))  # full decode, full-scale preprocessing
            # Full decode, preprocessing at the model's scale.
            _compare(pipe.predict(load_image(path)), slow, path.name, MIN_IOU)
            # What predict(path) does: the reduced decode where the format has one.
            fast = pipe.predict(path)
            reduced = load_image(path, model_size=size).reduced is not None
            reduced_seen += reduced
            _compare(fast, slow, path.name, *((MIN_IOU_REDUCED, MEDIAN_IOU_REDUCED) if reduced else (MIN_IOU,)))
        assert reduced_seen == 2 * len(FILMS)  # the DICOMs and JPEGs took the reduced decode
