"""vertx-infer --labelling and --view, end to end on hand-built models that find five
rectangular bodies, the top one detected as C2."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "pipeline"))

from vertxnet.cli.infer import main  # noqa: E402

pytestmark = pytest.mark.train  # the hand-built ONNX models need the onnx package

WIDTH, HEIGHT, SIZE = 300, 420, 128
BLOCKS = [(100, 40 + 70 * i, 200, 90 + 70 * i) for i in range(5)]
LABELS = ["C2", "C3", "C4", "C5", "C6"]


@pytest.fixture(scope="module")
def bundle(tmp_path_factory) -> Path:
    import synthetic_bundle as sb
    boxes = sb.model_boxes_for(BLOCKS, WIDTH, HEIGHT, SIZE)
    return sb.write_bundle(tmp_path_factory.mktemp("naming") / "bundle", SIZE, boxes, [0.95] * 5, [2, 1, 1, 1, 1])


@pytest.fixture(scope="module")
def film(tmp_path_factory) -> Path:
    import synthetic_bundle as sb

    path = tmp_path_factory.mktemp("film") / "neck.png"
    cv2.imwrite(str(path), sb.blocks_image(WIDTH, HEIGHT, BLOCKS))
    return path


def _infer(film: Path, bundle: Path, out: Path, *extra: str) -> tuple[int, dict | None]:
    code = main([str(film), "-o", str(out), "--model", str(bundle), "-q", *extra])
    doc = out / "neck.json"
    return code, json.loads(doc.read_text()) if doc.exists() else None


@pytest.mark.parametrize("labelling", ["decoder", "zipper"])
def test_a_confident_c2_names_the_chain_with_either_labelling(film, bundle, tmp_path, labelling):
    code, doc = _infer(film, bundle, tmp_path / labelling, "--labelling", labelling)
    assert code == 0
    assert [v["label"] for v in doc["vertebrae"]] == LABELS
    assert doc["view"] == "cervical" and doc["reference"] == "C2"
    confidences = [v["label_confidence"] for v in doc["vertebrae"]]
    if labelling == "decoder":
        assert all(0.5 <= c <= 1.0 for c in confidences)
    else:
        assert confidences == [None] * len(LABELS)  # the zipper gives no confidences


def test_a_stated_view_is_the_films_view(film, bundle, tmp_path):
    code, doc = _infer(film, bundle, tmp_path / "stated", "--view", "cervicothoracic")
    assert code == 0
    assert doc["view"] == "cervicothoracic"
    assert [v["label"] for v in doc["vertebrae"]] == LABELS  # the names still follow the evidence


def test_a_confidence_threshold_above_every_confidence_withholds_the_names(film, bundle, tmp_path):
    code, doc = _infer(film, bundle, tmp_path / "strict", "--label-confidence", "1")
    assert code == 0
    labels = [v["label"] for v in doc["vertebrae"]]
    assert len(labels) == len(LABELS) and labels.count(None) >= len(LABELS) - 1  # bodies kept, names withheld
    assert all(v["label_confidence"] is None for v in doc["vertebrae"] if v["label"] is None)
    assert "labels_uncertain" in doc["flags"]


@pytest.mark.parametrize("argv", [["--view", "axial"], ["--labelling", "guess"], ["--label-confidence", "1.5"]])
def test_bad_naming_options_are_usage_errors(film, bundle, tmp_path, argv, capsys):
    assert main([str(film), "-o", str(tmp_path / "bad"), "--model", str(bundle), *argv]) == 2
    assert capsys.readouterr().err.strip()
    assert not (tmp_path / "bad" / "neck.json").exists()
