"""Public entry points: ``generate(config, index)`` and ``generate_dataset(config, out_dir, n)``."""

from __future__ import annotations

import errno
from pathlib import Path

import cv2
import numpy as np

from ...files import atomic_write
from ...records import Record
from ..datasets import write_coco
from .config import PhantomConfig
from .film import MIN_VISIBLE_FRACTION, render_film  # noqa: F401 (part of this module's interface)

#: PNG compression level used for every image (fixed so that output is byte-identical).
PNG_COMPRESSION = 3
#: Images shown on the --preview contact sheet.
PREVIEW_IMAGES = 16


def generate(config: PhantomConfig, index: int) -> tuple[np.ndarray, Record]:
    """Render phantom ``index`` of a data set: (uint16 image (H, W), Record with the truth).

    A pure function of ``config`` and ``index``. The record's polygons are vertebral bodies in
    continuous pixel coordinates, top to bottom; ``record.view`` is the region the annotated levels
    span (:func:`vertxnet.levels.view_of_levels`); ``record.extra["phantom"]`` lists what was drawn
    (fractures with their heights, implants, touching discs, ...).
    """
    if isinstance(index, bool) or not isinstance(index, (int, np.integer)) or index < 0:
        raise ValueError(f"index must be a non-negative integer, got {index!r}")
    if config.style == "classic":
        from .classic.generator import generate as render_classic

        return render_classic(config, int(index))
    return render_film(config, int(index))


def image_name(index: int) -> str:
    return f"phantom_{index:05d}.png"


def write_png_atomic(image: np.ndarray, path: Path) -> Path:
    """Encode a PNG with a fixed compression level and move it into place atomically."""
    ok, buf = cv2.imencode(".png", image, [cv2.IMWRITE_PNG_COMPRESSION, PNG_COMPRESSION])
    if not ok:
        raise OSError(errno.EIO, "PNG encoding failed", str(path))
    return atomic_write(path, buf.tobytes())


def generate_dataset(config: PhantomConfig, out_dir: str | Path, n: int, *, preview: bool = False, progress=None) -> Path:
    """Write ``n`` phantoms to ``out_dir/images`` and their truth to ``out_dir/annotations.json``.

    Returns the path of the annotations file. ``preview`` also writes ``out_dir/preview.png``.
    ``progress`` (optional) is called with each finished index.
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a positive integer, got {n!r}")
    out = Path(out_dir)
    images_dir = out / "images"
    images_dir.mkdir(parents=True, exist_ok=True)
    records = []
    for i in range(n):
        image, record = generate(config, i)
        record.image_path = write_png_atomic(image, images_dir / image_name(i))
        if not preview or i >= PREVIEW_IMAGES:
            record.image = None  # keep memory flat for large data sets
        records.append(record)
        if progress is not None:
            progress(i)
    path = write_coco(records, out / "annotations.json")
    if preview:
        from .preview import contact_sheet

        sheet = contact_sheet(records, max_images=PREVIEW_IMAGES)
        write_png_atomic(sheet, out / "preview.png")
    return path
