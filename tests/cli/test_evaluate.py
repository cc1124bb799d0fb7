"""vertx-eval through main(argv): output, exit codes and error lines."""

from __future__ import annotations

import json
import re
from pathlib import Path

import cv2
import numpy as np
import pytest

from vertxnet.cli.evaluate import main
from vertxnet.data.datasets import write_coco
from vertxnet.records import Annotation, Record


def _rect(x0, y0, x1, y1):
    return np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], dtype=np.float64)


@pytest.fixture
def truth_json(tmp_path: Path) -> Path:
    records = []
    for n, levels in enumerate((["C2", "C3", "C4"], ["L4", "L5", "S1"])):
        image = tmp_path / "images" / f"phantom_{n:05d}.png"
        image.parent.mkdir(exist_ok=True)
        cv2.imwrite(str(image), np.zeros((80, 50), np.uint16))
        anns = [Annotation(_rect(10, 5 + 20 * i, 35, 20 + 20 * i), lv) for i, lv in enumerate(levels)]
        records.append(Record(image_path=image, width=50, height=80, annotations=anns, view="cervical" if n == 0 else "lumbar"))
    return write_coco(records, tmp_path / "truth.json")


def _infer_result(image: str, vertebrae) -> dict:
    return {
        "schema_version": "1.0",
        "input": {"path": f"/somewhere/else/{image}", "width": 50, "height": 80, "pixel_spacing_mm": None, "sha256": "0"},
        "view": None,
        "reference": None,
        "vertebrae": [{"label": lv, "polygon": poly.tolist(), "score": 0.9, "source": "agreement"} for lv, poly in vertebrae],
        "excluded": [],
        "flags": [],
        "timings_ms": {},
        "model": {},
    }


def _numbers(table: str) -> list[float]:
    """Every score in the table (row names such as "PQ@0.7" left out)."""
    lines = table.splitlines()[2:]
    return [float(v) for line in lines for v in re.findall(r"(?<![@\w.])\d+\.\d+", line)]


def test_truth_against_itself_prints_one_everywhere(truth_json, capsys):
    assert main(["--truth", str(truth_json), "--pred", str(truth_json)]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[1].split() == ["C2", "C3", "C4", "L4", "L5", "S1", "all"]
    numbers = _numbers(out)
    assert len(numbers) == 5 * 7 + 4 and set(numbers) == {1.0}


def test_json_report_is_written(truth_json, tmp_path, capsys):
    out = tmp_path / "report.json"
    assert main(["--truth", str(truth_json), "--pred", str(truth_json), "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["dice"]["mean"] == 1.0 and report["panoptic_quality"]["0.7"]["all"]["tp"] == 6
    assert report["failed_inputs"] == []
    assert [p.name for p in tmp_path.iterdir() if ".tmp-" in p.name] == []


def test_folder_of_infer_results_with_one_broken_file(truth_json, tmp_path, capsys):
    results = tmp_path / "results"
    results.mkdir()
    good = [(lv, _rect(10, 5 + 20 * i, 35, 20 + 20 * i)) for i, lv in enumerate(["C2", "C3", "C4"])]
    (results / "phantom_00000.json").write_text(json.dumps(_infer_result("phantom_00000.png", good)))
    (results / "phantom_00001.json").write_text("{not json")
    assert main(["--truth", str(truth_json), "--pred", str(results)]) == 1
    captured = capsys.readouterr()
    assert captured.err.strip().splitlines() == [f"error: {results / 'phantom_00001.json'}: invalid JSON at line 1 column 2: Expecting property name enclosed in double quotes"]
    assert "2 images, 6 truth vertebrae, 3 predicted" in captured.out
    assert "truth images without prediction (counted as missed): 1" in captured.out
    dice_row = next(line for line in captured.out.splitlines() if line.startswith("Dice"))
    assert dice_row.split()[1:] == ["1.000", "1.000", "1.000", "0.000", "0.000", "0.000", "0.500"]


def test_missing_truth_is_one_error_line_and_exit_1(tmp_path, capsys):
    assert main(["--truth", str(tmp_path / "none.json"), "--pred", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert err == f"error: {tmp_path / 'none.json'}: file not found\n"


def test_malformed_truth_names_the_entry(truth_json, capsys):
    data = json.loads(truth_json.read_text())
    data["annotations"][2]["segmentation"] = [[1, 2, 3]]
    truth_json.write_text(json.dumps(data))
    assert main(["--truth", str(truth_json), "--pred", str(truth_json)]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"error: {truth_json}: annotation 3 (image 1): polygon has an odd number") and err.count("\n") == 1


def test_bad_arguments_exit_2(truth_json, capsys):
    assert main(["--truth", str(truth_json)]) == 2
    assert main(["--truth", str(truth_json), "--pred", str(truth_json), "--pair-by", "colour"]) == 2
    assert "usage: vertx-eval" in capsys.readouterr().err


def test_a_results_folder_ignores_the_coco_files_vertx_infer_writes_beside_the_json(tmp_path, capsys):
    import json

    from vertxnet.cli.evaluate import read_predictions

    result = {
        "schema_version": "1.0",
        "input": {"path": "film.png", "width": 64, "height": 64, "pixel_spacing_mm": None, "sha256": "0" * 64},
        "view": None, "reference": None,
        "vertebrae": [{"label": "L3", "polygon": [[1, 1], [20, 1], [20, 20], [1, 20]], "area_px": 361.0,
                       "centroid": [10.5, 10.5], "bbox": [1, 1, 20, 20], "score": 0.9, "source": "agreement"}],
        "excluded": [], "flags": [], "timings_ms": {}, "model": {},
    }
    (tmp_path / "film.json").write_text(json.dumps(result))
    (tmp_path / "film.coco.json").write_text(json.dumps({"images": [], "annotations": [], "categories": []}))
    records, failed = read_predictions(tmp_path)
    assert failed == []
    assert [r.annotations[0].level for r in records] == ["L3"]
