"""vertx-infer --measure: measurements in the JSON, the CSV table and the DICOM SR, end to end on
hand-built models that find five rectangular "vertebrae" 100 x 50 px (C2 ... C6)."""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import cv2
import highdicom as hd
import jsonschema
import numpy as np
import pydicom
import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "pipeline"))
sys.path.insert(0, str(ROOT / "tests" / "io"))

from vertxnet.cli.infer import main  # noqa: E402
from vertxnet.formats.csv_table import CSV_COLUMNS  # noqa: E402
from vertxnet.result import result_schema  # noqa: E402

pytestmark = pytest.mark.train  # the hand-built ONNX models need the onnx package

WIDTH, HEIGHT, SIZE = 300, 420, 128
BLOCKS = [(100, 40 + 70 * i, 200, 90 + 70 * i) for i in range(5)]
LABELS = ["C2", "C3", "C4", "C5", "C6"]
SPACING = 0.15  # mm, the DICOM factory's


@pytest.fixture(scope="module")
def bundle(tmp_path_factory) -> Path:
    import synthetic_bundle as sb
    boxes = sb.model_boxes_for(BLOCKS, WIDTH, HEIGHT, SIZE)
    return sb.write_bundle(tmp_path_factory.mktemp("cli") / "bundle", SIZE, boxes, [0.9] * 5, [2, 1, 1, 1, 1])


@pytest.fixture(scope="module")
def film() -> np.ndarray:
    import synthetic_bundle as sb

    return sb.blocks_image(WIDTH, HEIGHT, BLOCKS)


def _dicom(path: Path, film: np.ndarray) -> Path:
    from dicom_factory import make_dicom

    pixels = np.round(film.astype(np.float64) / 65535 * 4095).astype(np.uint16)
    return make_dicom(path, pixels, bits_stored=12)


def _run(argv, capsys) -> tuple[int, str]:
    code = main([str(a) for a in argv])
    return code, capsys.readouterr().err


def test_measure_adds_measurements_to_the_json(bundle, film, tmp_path, capsys):
    src = _dicom(tmp_path / "lateral.dcm", film)
    code, err = _run([src, "-o", tmp_path / "out", "--model", bundle, "--measure", "--faces", "right"], capsys)
    assert code == 0, err
    doc = json.loads((tmp_path / "out" / "lateral.json").read_text())
    jsonschema.validate(doc, result_schema())
    assert doc["schema_version"] == "1.2"
    assert [v["label"] for v in doc["vertebrae"]] == LABELS
    for v in doc["vertebrae"]:
        m = v["measurements"]
        assert m["measured"] and m["genant_grade"] in (None, 0)
        # the blocks are 50 px high; their traced outlines (one model pixel = HEIGHT / SIZE px) are
        # upright rectangles, so every height is the outline's own height, at 0.15 mm a pixel
        ys = [y for _, y in v["polygon"]]
        for side in ("anterior", "middle", "posterior"):
            assert m[f"height_{side}_px"] == pytest.approx(max(ys) - min(ys), abs=0.5)
        assert m["height_anterior_px"] == pytest.approx(50, abs=HEIGHT / SIZE + 1)
        assert m["height_posterior_mm"] == pytest.approx(m["height_posterior_px"] * SPACING, rel=1e-3)
        assert set(m["radiomics"]) >= {"Skewness", "Kurtosis", "Entropy", "MeanOfPositivePixels"}
    assert doc["vertebrae"][0]["measurements"]["genant_grade"] is None  # C2 is not graded
    spine = doc["spine"]
    assert (spine["facing"], spine["facing_source"]) == ("right", "given")
    assert [s["name"] for s in spine["segments"]] == ["C2-C3", "C3-C4", "C4-C5", "C5-C6"]
    assert spine["cervical_lordosis_deg"] is None  # no C7
    assert "measure" in doc["timings_ms"]


def test_without_measure_the_json_has_no_measurements(bundle, film, tmp_path, capsys):
    src = _dicom(tmp_path / "lateral.dcm", film)
    code, err = _run([src, "-o", tmp_path / "out", "--model", bundle], capsys)
    assert code == 0, err
    doc = json.loads((tmp_path / "out" / "lateral.json").read_text())
    assert "spine" not in doc and all("measurements" not in v for v in doc["vertebrae"])


def test_csv_and_sr_with_the_seg_match_the_json(bundle, film, tmp_path, capsys):
    src = _dicom(tmp_path / "lateral.dcm", film)
    out = tmp_path / "out"
    code, err = _run([src, "-o", out, "--model", bundle, "--format", "sr,json,csv,dicom-seg,overlay"], capsys)
    assert code == 0, err  # csv and sr measure without --measure
    assert sorted(p.name for p in out.iterdir()) == [
        "lateral.csv", "lateral.json", "lateral.overlay.png", "lateral.seg.dcm", "lateral.sr.dcm"]  # fmt: skip
    doc = json.loads((out / "lateral.json").read_text())
    rows = list(csv.DictReader((out / "lateral.csv").open()))
    assert list(rows[0]) == list(CSV_COLUMNS) and [r["label"] for r in rows] == LABELS
    for row, v in zip(rows, doc["vertebrae"]):
        assert float(row["height_anterior_mm"]) == pytest.approx(v["measurements"]["height_anterior_mm"], abs=1e-4)

    seg = pydicom.dcmread(out / "lateral.seg.dcm")
    sr_file = pydicom.dcmread(out / "lateral.sr.dcm")
    evidence = {item.ReferencedSOPInstanceUID for study in sr_file.CurrentRequestedProcedureEvidenceSequence
                for series in study.ReferencedSeriesSequence for item in series.ReferencedSOPSequence}
    source = pydicom.dcmread(src, stop_before_pixels=True)
    assert evidence == {source.SOPInstanceUID, seg.SOPInstanceUID}  # the SEG written beside it
    report = hd.sr.srread(out / "lateral.sr.dcm")
    groups = report.content.get_planar_roi_measurement_groups()
    assert len(groups) == len(doc["vertebrae"])
    for group, v in zip(groups, doc["vertebrae"]):
        got = {m.name.meaning: m.value for m in group.get_measurements()}
        assert got["Anterior vertebral body height"] == pytest.approx(v["measurements"]["height_anterior_mm"], abs=1e-4)
        assert got["Posterior vertebral body height"] == pytest.approx(v["measurements"]["height_posterior_mm"], abs=1e-4)
        assert group.referenced_segmentation_frame.referenced_sop_instance_uid == seg.SOPInstanceUID
    overlay = cv2.imread(str(out / "lateral.overlay.png"))
    assert overlay.shape == (HEIGHT, WIDTH, 3)


def test_sr_of_a_non_dicom_input_is_refused_on_its_own(bundle, film, tmp_path, capsys):
    png = tmp_path / "film.png"
    assert cv2.imwrite(str(png), film)
    dcm = _dicom(tmp_path / "other.dcm", film)
    out = tmp_path / "out"
    code, err = _run([png, dcm, "-o", out, "--model", bundle, "--format", "json,sr"], capsys)
    assert code == 1
    assert f"error: {png}: film.sr.dcm not written: sr needs a DICOM input" in err
    # the PNG's JSON is written all the same; the SR alone is refused
    assert sorted(p.name for p in out.iterdir()) == ["film.json", "other.json", "other.sr.dcm"]


def test_overlay_draws_the_measurements(bundle, film, tmp_path, capsys):
    src = _dicom(tmp_path / "lateral.dcm", film)
    plain, measured = tmp_path / "plain", tmp_path / "measured"
    assert _run([src, "-o", plain, "--model", bundle, "--format", "overlay"], capsys)[0] == 0
    assert _run([src, "-o", measured, "--model", bundle, "--format", "overlay", "--measure"], capsys)[0] == 0
    a = cv2.imread(str(plain / "lateral.overlay.png")).astype(int)
    b = cv2.imread(str(measured / "lateral.overlay.png")).astype(int)
    # the height lines run down the bodies' walls: yellow pixels appear there
    yellow = (b[..., 2] > 200) & (b[..., 1] > 200) & (b[..., 0] < 80)
    assert yellow.sum() > yellow.size * 0.002 and np.abs(a - b).sum() > 0


def test_bad_faces_is_a_usage_error(bundle, film, tmp_path, capsys):
    src = _dicom(tmp_path / "lateral.dcm", film)
    code, err = _run([src, "-o", tmp_path / "out", "--model", bundle, "--measure", "--faces", "up"], capsys)
    assert code == 2 and "faces" in err
