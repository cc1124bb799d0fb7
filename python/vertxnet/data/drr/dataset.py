"""Writing a DRR data set: images (PNG), ``annotations.json`` (COCO), an optional contact sheet.

Cases are prepared and rendered in worker processes (one case at a time per worker); the images
are written by the workers, atomically, and the annotations by the caller once every image is
there, so an interrupted run never leaves a partial ``annotations.json``.
"""

from __future__ import annotations

import math
import os
from concurrent.futures import ProcessPoolExecutor, as_completed
from multiprocessing import get_context
from pathlib import Path
from typing import Callable, Sequence

from ...errors import InputError
from ...records import Record
from ..datasets import write_coco
from ...files import atomic_write
from .generator import CTCase, DRRConfig, pose_plan, prepare_case, render_pose

#: Images shown on the contact sheet.
PREVIEW_IMAGES = 16


#: PNG compression level (fixed, so that files are byte-identical; 1: fast, DRRs are noisy anyway).
PNG_COMPRESSION = 1


def image_name(index: int) -> str:
    return f"drr_{index:05d}.png"


def write_png_atomic(image, path: Path) -> Path:
    """Encode a PNG at a fixed compression level and move it into place atomically."""
    import errno

    import cv2

    ok, buf = cv2.imencode(".png", image, [cv2.IMWRITE_PNG_COMPRESSION, PNG_COMPRESSION])
    if not ok:
        raise OSError(errno.EIO, "PNG encoding failed", str(path))
    return atomic_write(path, buf.tobytes())


def _render_case_in_worker(*args) -> list[Record] | tuple[str | None, str]:
    """_render_case for a pool: an InputError comes back as (path, reason), which pickles."""
    try:
        return _render_case(*args)
    except InputError as exc:
        return exc.path, exc.reason


def _worker_init() -> None:
    # one OpenCV thread per worker process: the pool already fills the cores
    import cv2

    cv2.setNumThreads(1)


def _render_case(case: CTCase, config: DRRConfig, poses: list[tuple[int, list[int]]], images_dir: str,
                 keep_pixels: set[int]) -> list[Record]:
    prep = prepare_case(case)
    records = []
    for pose_index, indices in poses:
        for image, record in render_pose(prep, config, pose_index, indices):
            index = record.image_id - 1
            record.image_path = write_png_atomic(image, Path(images_dir) / image_name(index))
            if index not in keep_pixels:
                record.image = None
            records.append(record)
    return records


def _units(cases: Sequence[CTCase], config: DRRConfig, n: int, workers: int):
    """Work units (case, poses): a case's poses, split so that few cases still fill the workers."""
    per_case: dict[int, list] = {}
    for pose_index, case_index, indices in pose_plan(n, len(cases), config.images_per_pose):
        per_case.setdefault(case_index, []).append((pose_index, indices))
    chunks = max(1, math.ceil(workers / max(len(per_case), 1)))
    units = []
    for case_index, poses in sorted(per_case.items()):
        size = math.ceil(len(poses) / min(chunks, len(poses)))
        for start in range(0, len(poses), size):
            units.append((cases[case_index], poses[start : start + size]))
    return units


def generate_dataset(cases: Sequence[CTCase], config: DRRConfig, out_dir: str | Path, n: int, *, workers: int = 1,
                     preview: bool = False, skip_bad_cases: bool = False,
                     progress: Callable[[int], None] | None = None) -> tuple[Path, list[InputError]]:
    """Write ``n`` DRRs from ``cases`` to ``out_dir/images`` and their truth to
    ``out_dir/annotations.json``; returns that path and the cases skipped (only with
    ``skip_bad_cases``; otherwise the first bad case raises its InputError).

    The files are a pure function of ``cases`` (in order), ``config`` and ``n``, whatever
    ``workers``. ``preview`` also writes ``out_dir/preview.png``.
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a positive integer, got {n!r}")
    if not cases:
        raise ValueError("no CT case given")
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers must be a positive integer, got {workers!r}")
    out = Path(out_dir)
    images_dir = out / "images"
    images_dir.mkdir(parents=True, exist_ok=True)
    keep = set(range(PREVIEW_IMAGES)) if preview else set()
    units = _units(cases, config, n, workers)
    records: list[Record] = []
    failed: list[InputError] = []

    def collect(result: list[Record]) -> None:
        records.extend(result)
        if progress is not None:
            for r in result:
                progress(r.image_id - 1)

    if workers == 1 or len(units) == 1:
        for case, poses in units:
            try:
                collect(_render_case(case, config, poses, str(images_dir), keep))
            except InputError as exc:
                if not skip_bad_cases:
                    raise
                failed.append(exc)
    else:
        # spawn: workers start clean (no inherited thread pools or locks)
        with ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn"), initializer=_worker_init) as pool:
            futures = {pool.submit(_render_case_in_worker, case, config, poses, str(images_dir), keep): case
                       for case, poses in units}
            for future in as_completed(futures):
                result = future.result()
                if isinstance(result, tuple):
                    exc = InputError(*result)
                    if not skip_bad_cases:
                        for f in futures:
                            f.cancel()
                        raise exc
                    failed.append(exc)
                else:
                    collect(result)
    unique = {str(e): e for e in failed}
    if not records:
        raise InputError(None, "no DRR was made: every case failed")
    records.sort(key=lambda r: r.image_id)
    path = write_coco(records, out / "annotations.json")
    if preview:
        from ..phantom.preview import contact_sheet

        sheet = contact_sheet(records[:PREVIEW_IMAGES], max_images=PREVIEW_IMAGES)
        write_png_atomic(sheet, out / "preview.png")
    return path, list(unique.values())


def default_workers() -> int:
    """One worker per available CPU, at most 8 (each holds one CT in memory)."""
    try:
        available = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        available = os.cpu_count() or 1
    return max(1, min(8, available))
