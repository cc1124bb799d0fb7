"""The phantom films a benchmark runs on (generated in memory, written once as 16-bit PNGs)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from ...files import atomic_write


def phantom_films(size: int, count: int, seed: int) -> list[np.ndarray]:
    """``count`` normal-difficulty phantoms (cervical and lumbar alternating) of longer side ``size``."""
    from ...data.phantom import PhantomConfig, generate

    films = []
    for i in range(count):
        view = "cervical" if i % 2 == 0 else "lumbar"
        image, _ = generate(PhantomConfig(view=view, size=size, seed=seed, difficulty="normal"), i)
        films.append(image)
    return films


def _write_pngs(films: Sequence[np.ndarray], folder: Path) -> list[Path]:
    paths = []
    for i, film in enumerate(films):
        path = folder / f"film_{i:03d}.png"
        ok, data = cv2.imencode(".png", film)
        if not ok:
            raise OSError(f"{path}: OpenCV could not encode the PNG")
        atomic_write(path, data.tobytes())
        paths.append(path)
    return paths

