"""Fixtures for the pipeline tests: a synthetic film of bright blocks and a bundle whose models
find exactly those blocks (see synthetic_bundle.py)."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

WIDTH, HEIGHT, SIZE = 300, 420, 128
#: Five "vertebrae" (x0, y0, x1, y1), top to bottom; the top one is detected as C2.
BLOCKS = [(100, 40 + 70 * i, 200, 90 + 70 * i) for i in range(5)]


@dataclass
class Scene:
    image: np.ndarray
    blocks: list[tuple[int, int, int, int]]
    model_boxes: np.ndarray  # the blocks in model-input coordinates
    bundle: Path


def model_boxes_for(blocks, width: int, height: int, size: int) -> np.ndarray:
    from vertxnet.preprocess import letterbox

    _, box = letterbox(np.zeros((height, width), np.float32), size)
    return np.array([box.to_model(np.array([[x0, y0], [x1, y1]], float)).reshape(-1) for x0, y0, x1, y1 in blocks])


@pytest.fixture(scope="session")
def scene(tmp_path_factory) -> Scene:
    import synthetic_bundle as sb

    boxes = model_boxes_for(BLOCKS, WIDTH, HEIGHT, SIZE)
    bundle = sb.write_bundle(tmp_path_factory.mktemp("bundle") / "synthetic", SIZE, boxes, [0.9] * 5, [2, 1, 1, 1, 1])
    return Scene(sb.blocks_image(WIDTH, HEIGHT, BLOCKS), BLOCKS, boxes, bundle)


@pytest.fixture(scope="session")
def pipeline(scene):
    from vertxnet.pipeline import Pipeline

    with Pipeline(scene.bundle, backend="onnxruntime-cpu", threads=1) as pipe:
        yield pipe
