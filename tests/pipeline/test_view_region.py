"""The film's region when the names come from a reference: SPEC §4 calls every film named from S1
"lumbar"; the pipeline reports which of the five regions the named run spans."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.train  # the hand-built ONNX models need the onnx package

WIDTH, HEIGHT, SIZE = 400, 1080, 256


def _chain(count: int) -> list[tuple[int, int, int, int]]:
    # Bodies 60 px tall, 30 px apart, widening caudally (areas grow down the spine); the last is S1.
    return [(150 - 5 * i, 40 + 90 * i, 250 + 5 * i, 100 + 90 * i) for i in range(count)]


@pytest.mark.parametrize(
    ("count", "first", "region"),
    [(11, "T8", "thoracolumbar"), (6, "L1", "lumbar")],
)
def test_a_film_named_from_s1_reports_the_region_its_names_span(tmp_path, count, first, region):
    import synthetic_bundle as sb

    from vertxnet.pipeline import Pipeline

    blocks = _chain(count)
    boxes = sb.model_boxes_for(blocks, WIDTH, HEIGHT, SIZE)
    bundle = sb.write_bundle(tmp_path / "bundle", SIZE, boxes, [0.95] * count, [1] * (count - 1) + [3])
    with Pipeline(bundle) as pipe:
        result = pipe.predict(sb.blocks_image(WIDTH, HEIGHT, blocks))
    labels = [v.label for v in result.vertebrae]
    assert result.reference == "S1" and labels[0] == first and labels[-1] == "S1"
    assert result.view == region
    assert 0.5 < result.view_probability <= 1.0
