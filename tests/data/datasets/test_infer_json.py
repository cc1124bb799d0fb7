"""vertx-infer per-image result files read as prediction records."""

from __future__ import annotations

import json

import pytest

from vertxnet.data.datasets import read_infer_json
from vertxnet.errors import InputError


def _result(**overrides) -> dict:
    result = {
        "schema_version": "1.0",
        "input": {"path": "/data/films/phantom_00003.png", "width": 256, "height": 320, "pixel_spacing_mm": [0.2, 0.2], "sha256": "ab"},
        "view": "lumbar",
        "reference": "S1",
        "vertebrae": [
            {"label": "L5", "polygon": [[10, 10], [40, 12], [38, 30]], "area_px": 1.0, "centroid": [1, 1], "bbox": [0, 0, 1, 1], "score": 0.91, "source": "agreement"},
            {"label": None, "polygon": [[10, 50], [40, 52], [38, 70], [12, 69]], "score": 0.0, "source": "rescued"},
        ],
        "excluded": [],
        "flags": ["gap_inferred"],
        "timings_ms": {},
        "model": {},
    }
    result.update(overrides)
    return result


def test_reads_vertebrae_size_and_image_name(tmp_path):
    path = tmp_path / "phantom_00003.json"
    path.write_text(json.dumps(_result()))
    rec = read_infer_json(path)
    assert rec.image_path.name == "phantom_00003.png"
    assert (rec.width, rec.height, rec.view, rec.pixel_spacing_mm) == (256, 320, "lumbar", (0.2, 0.2))
    assert [a.level for a in rec.annotations] == ["L5", None]
    assert [a.score for a in rec.annotations] == [0.91, 0.0]
    assert rec.annotations[1].polygon.shape == (4, 2)
    assert rec.extra == {"reference": "S1", "flags": ["gap_inferred"]}


@pytest.mark.parametrize(
    ("result", "message"),
    [
        (_result(vertebrae=[{"label": "L9", "polygon": [[0, 0], [1, 0], [1, 1]]}]), "vertebra 0: unknown level 'L9'"),
        (_result(vertebrae=[{"label": "L1", "polygon": [[0, 0], [1, 0]]}]), "vertebra 0: polygon has fewer than 3 distinct points"),
        (_result(vertebrae=[{"label": "L1", "polygon": [[0, 0, 1], [1, 0], [1, 1]]}]), "vertebra 0: 'polygon' must be a list of [x, y] points"),
        (_result(input={"path": "a.png", "width": 10}), "input: 'height' must be a positive integer"),
        ({"images": []}, "not a vertx-infer result"),
    ],
)
def test_malformed_results(tmp_path, result, message):
    path = tmp_path / "r.json"
    path.write_text(json.dumps(result))
    with pytest.raises(InputError) as err:
        read_infer_json(path)
    assert str(err.value).startswith(f"{path}: {message}")
