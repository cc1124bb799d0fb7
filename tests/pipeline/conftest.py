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


@pytest.fixture(scope="session")
def scene(tmp_path_factory) -> Scene:
    import synthetic_bundle as sb

    boxes = sb.model_boxes_for(BLOCKS, WIDTH, HEIGHT, SIZE)
    bundle = sb.write_bundle(tmp_path_factory.mktemp("bundle") / "synthetic", SIZE, boxes, [0.9] * 5, [2, 1, 1, 1, 1])
    return Scene(sb.blocks_image(WIDTH, HEIGHT, BLOCKS), BLOCKS, boxes, bundle)


@pytest.fixture(scope="session")
def pipeline(scene):
    from vertxnet.pipeline import Pipeline

    with Pipeline(scene.bundle, backend="onnxruntime-cpu", threads=1) as pipe:
        yield pipe
