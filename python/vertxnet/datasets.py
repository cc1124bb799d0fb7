"""Annotated radiographs in the formats the field uses: COCO instances, VIA 2.x, label PNGs.

One in-memory record type serves all of them (and the phantom generator).

Coordinates are continuous pixel coordinates (see docs/DESIGN.md): the pixel at row i, column j
covers [j, j+1) x [i, i+1). COCO and VIA polygons are read and written in that convention
unchanged; contours traced from label PNGs get +0.5 (pixel index → pixel centre).
"""

from __future__ import annotations

import json
import math
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

import cv2
import numpy as np

from .errors import InputError
from .levels import LEVELS, level_index, level_name

#: COCO category of vertebrae without an anatomical name (predictions with no reference).
UNNAMED_CATEGORY = "vertebra"
UNNAMED_CATEGORY_ID = len(LEVELS) + 1


@dataclass
class Annotation:
    """One vertebral body: polygon (N, 2) float64 in continuous pixel coordinates, and its level."""

    polygon: np.ndarray
    level: str | None
    score: float | None = None  # confidence, for predictions


@dataclass
class Record:
    """One image and its vertebrae (top to bottom when they come from the phantom generator)."""

    image_path: Path | None
    width: int
    height: int
    annotations: list[Annotation] = field(default_factory=list)
    view: str | None = None  # "cervical" | "lumbar" | None
    pixel_spacing_mm: tuple[float, float] | None = None  # (row, column) spacing
    image_id: int = 0
    image: np.ndarray | None = None  # pixel data when held in memory
    extra: dict = field(default_factory=dict)  # e.g. phantom knobs (fractures, implants)

    def load_image(self) -> np.ndarray:
        """Pixel data (held or read from ``image_path`` unchanged in bit depth).

        Raises InputError naming the file when it is missing, unreadable, or not the size the
        annotations were made on.
        """
        if self.image is not None:
            return self.image
        if self.image_path is None:
            raise InputError(None, f"image {self.image_id} has neither pixel data nor an image path")
        image = read_image_unchanged(self.image_path)
        if image.shape[:2] != (self.height, self.width):
            raise InputError(
                self.image_path,
                f"image is {image.shape[1]}x{image.shape[0]} pixels but its annotations are for {self.width}x{self.height}",
            )
        return image


def read_image_unchanged(path: str | Path) -> np.ndarray:
    """An image file's pixels as stored (8/16 bit, grey or colour); InputError if missing/unreadable."""
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "image file not found")
    # np.fromfile + imdecode also copes with non-ASCII paths, which cv2.imread does not everywhere.
    try:
        data = np.fromfile(path, dtype=np.uint8)
    except OSError as exc:
        raise InputError(path, f"cannot read image: {exc.strerror or exc}") from None
    image = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None
    if image is None:
        raise InputError(path, "not a readable image (unsupported format or corrupt file)")
    return image


# ---------------------------------------------------------------------------------------------
# Polygon helpers


def polygon_area(polygon: np.ndarray) -> float:
    """Unsigned shoelace area of an (N, 2) polygon."""
    p = np.asarray(polygon, dtype=np.float64)
    if len(p) < 3:
        return 0.0
    x, y = p[:, 0], p[:, 1]
    return 0.5 * abs(float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))))


def polygon_bbox(polygon: np.ndarray) -> tuple[float, float, float, float]:
    """(x0, y0, x1, y1) of an (N, 2) polygon."""
    p = np.asarray(polygon, dtype=np.float64)
    return float(p[:, 0].min()), float(p[:, 1].min()), float(p[:, 0].max()), float(p[:, 1].max())


def _polygon_from_flat(values: Any, where: str, path: Path) -> np.ndarray:
    """(N, 2) polygon from a flat [x1, y1, x2, y2, ...] list; InputError naming ``where`` if bad."""
    if not isinstance(values, list) or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        raise InputError(path, f"{where}: polygon must be a flat list of numbers")
    if len(values) % 2:
        raise InputError(path, f"{where}: polygon has an odd number of coordinates ({len(values)})")
    polygon = np.asarray(values, dtype=np.float64).reshape(-1, 2)
    return _checked_polygon(polygon, where, path)


def _checked_polygon(polygon: np.ndarray, where: str, path: Path) -> np.ndarray:
    if not np.all(np.isfinite(polygon)):
        raise InputError(path, f"{where}: polygon has non-finite coordinates")
    if len(np.unique(polygon, axis=0)) < 3:
        raise InputError(path, f"{where}: polygon has fewer than 3 distinct points")
    return polygon


def _check_level(level: Any, where: str, path: Path) -> str:
    if level not in LEVELS:
        raise InputError(path, f"{where}: unknown level {level!r}")
    return level


# ---------------------------------------------------------------------------------------------
# Atomic JSON writing


def write_json_atomic(payload: Any, path: str | Path, *, indent: int | None = None) -> Path:
    """Write JSON to a temporary name in the destination folder, then rename it into place."""
    path = Path(path)
    tmp = path.with_name(f"{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(payload, f, indent=indent, allow_nan=False)
            f.write("\n")
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def _load_json(path: Path) -> Any:
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except FileNotFoundError:
        raise InputError(path, "file not found") from None
    except json.JSONDecodeError as exc:
        raise InputError(path, f"invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}") from None
    except UnicodeDecodeError:
        raise InputError(path, "not a UTF-8 text file") from None
    except OSError as exc:
        raise InputError(path, f"cannot read: {exc.strerror or exc}") from None


# ---------------------------------------------------------------------------------------------
# COCO instances JSON


def _coco_categories(with_unnamed: bool) -> list[dict]:
    cats = [{"id": level_index(name), "name": name, "supercategory": "vertebra"} for name in LEVELS]
    if with_unnamed:
        cats.append({"id": UNNAMED_CATEGORY_ID, "name": UNNAMED_CATEGORY, "supercategory": "vertebra"})
    return cats


def _relative_file_name(image_path: Path, folder: Path) -> str:
    try:
        rel = os.path.relpath(Path(image_path).resolve(), folder.resolve())
    except ValueError:  # another drive on Windows: keep the absolute path
        rel = str(Path(image_path).resolve())
    return Path(rel).as_posix()


def write_coco(records: Sequence[Record], path: str | Path) -> Path:
    """Write records as a COCO instances JSON (atomically); returns the path.

    Categories are ``LEVELS`` with id = ``level_index``; annotations without a level use the extra
    category ``"vertebra"`` (id 27), listed only when needed. Image ``file_name`` is relative to
    the JSON's folder. Image-level ``view``, ``pixel_spacing_mm`` and ``extra`` are kept as extra
    fields of the image entry. Annotation scores are written as ``score`` when present.
    """
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    ids = [r.image_id for r in records]
    if any(i <= 0 for i in ids) or len(set(ids)) != len(ids):
        ids = list(range(1, len(records) + 1))
    images, annotations = [], []
    any_unnamed = False
    for rec, image_id in zip(records, ids):
        if rec.image_path is None:
            raise ValueError(f"record {image_id} has no image_path; write its image first")
        entry: dict[str, Any] = {
            "id": int(image_id),
            "file_name": _relative_file_name(rec.image_path, folder),
            "width": int(rec.width),
            "height": int(rec.height),
            "view": rec.view,
            "pixel_spacing_mm": None if rec.pixel_spacing_mm is None else [float(v) for v in rec.pixel_spacing_mm],
        }
        if rec.extra:
            entry["extra"] = rec.extra
        images.append(entry)
        for ann in rec.annotations:
            polygon = np.asarray(ann.polygon, dtype=np.float64)
            if polygon.ndim != 2 or polygon.shape[1] != 2 or len(polygon) < 3 or not np.all(np.isfinite(polygon)):
                raise ValueError(f"record {image_id}: polygon must be a finite (N>=3, 2) array, got shape {polygon.shape}")
            if ann.level is None:
                any_unnamed = True
                category_id = UNNAMED_CATEGORY_ID
            else:
                category_id = level_index(ann.level)
            x0, y0, x1, y1 = polygon_bbox(polygon)
            item: dict[str, Any] = {
                "id": len(annotations) + 1,
                "image_id": int(image_id),
                "category_id": category_id,
                "segmentation": [polygon.reshape(-1).tolist()],
                "area": polygon_area(polygon),
                "bbox": [x0, y0, x1 - x0, y1 - y0],
                "iscrowd": 0,
            }
            if ann.score is not None:
                item["score"] = float(ann.score)
            annotations.append(item)
    payload = {
        "info": {"description": "vertxnet vertebral-body annotations", "version": "1.0"},
        "licenses": [],
        "images": images,
        "annotations": annotations,
        "categories": _coco_categories(any_unnamed),
    }
    return write_json_atomic(payload, path)


def _int_field(entry: dict, key: str, where: str, path: Path, *, positive: bool = True) -> int:
    value = entry.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != int(value) or (positive and value <= 0):
        raise InputError(path, f"{where}: '{key}' must be a positive integer, got {value!r}")
    return int(value)


def _pixel_spacing(value: Any, where: str, path: Path) -> tuple[float, float] | None:
    if value is None:
        return None
    ok = isinstance(value, (list, tuple)) and len(value) == 2 and all(
        isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and v > 0 for v in value
    )
    if not ok:
        raise InputError(path, f"{where}: 'pixel_spacing_mm' must be two positive numbers, got {value!r}")
    return float(value[0]), float(value[1])


def read_coco(path: str | Path, *, image_root: str | Path | None = None) -> list[Record]:
    """Records from a COCO instances JSON, in the order of its ``images``.

    Category names must be vertebral levels (or ``"vertebra"`` for unnamed vertebrae); ids may be
    anything. Image paths are resolved against ``image_root`` (default: the JSON's folder).
    Raises InputError naming the file and the offending entry for malformed content.
    """
    path = Path(path)
    data = _load_json(path)
    if not isinstance(data, dict):
        raise InputError(path, "not a COCO instances file (top level is not an object)")
    for key in ("images", "annotations", "categories"):
        if not isinstance(data.get(key), list):
            raise InputError(path, f"not a COCO instances file (no '{key}' list)")
    root = Path(image_root) if image_root is not None else path.parent

    categories: dict[Any, str] = {}
    for i, cat in enumerate(data["categories"]):
        if not isinstance(cat, dict) or "id" not in cat or not isinstance(cat.get("name"), str):
            raise InputError(path, f"category {i}: needs 'id' and 'name'")
        categories[cat["id"]] = cat["name"]

    records: list[Record] = []
    by_id: dict[Any, Record] = {}
    for i, img in enumerate(data["images"]):
        where = f"image {img.get('id', i) if isinstance(img, dict) else i}"
        if not isinstance(img, dict) or "id" not in img:
            raise InputError(path, f"{where}: image entry needs an 'id'")
        if img["id"] in by_id:
            raise InputError(path, f"{where}: duplicate image id")
        file_name = img.get("file_name")
        if not isinstance(file_name, str) or not file_name:
            raise InputError(path, f"{where}: missing 'file_name'")
        view = img.get("view")
        if view is not None and not isinstance(view, str):
            raise InputError(path, f"{where}: 'view' must be a string or null")
        extra = img.get("extra", {})
        if not isinstance(extra, dict):
            raise InputError(path, f"{where}: 'extra' must be an object")
        image_id = img["id"]
        rec = Record(
            image_path=root / file_name,
            width=_int_field(img, "width", where, path),
            height=_int_field(img, "height", where, path),
            view=view,
            pixel_spacing_mm=_pixel_spacing(img.get("pixel_spacing_mm"), where, path),
            image_id=int(image_id) if isinstance(image_id, int) and not isinstance(image_id, bool) else i + 1,
            extra=extra,
        )
        records.append(rec)
        by_id[image_id] = rec

    for i, ann in enumerate(data["annotations"]):
        if not isinstance(ann, dict):
            raise InputError(path, f"annotation {i}: not an object")
        image_id = ann.get("image_id")
        where = f"annotation {ann.get('id', i)} (image {image_id})"
        rec = by_id.get(image_id)
        if rec is None:
            raise InputError(path, f"{where}: no image with id {image_id!r} in 'images'")
        if ann.get("category_id") not in categories:
            raise InputError(path, f"{where}: unknown category_id {ann.get('category_id')!r}")
        name = categories[ann["category_id"]]
        level = None if name == UNNAMED_CATEGORY else _check_level(name, where, path)
        seg = ann.get("segmentation")
        if isinstance(seg, dict):
            raise InputError(path, f"{where}: RLE segmentation is not supported; polygons expected")
        if not isinstance(seg, list) or not seg:
            raise InputError(path, f"{where}: missing polygon 'segmentation'")
        parts = [_polygon_from_flat(part, where, path) for part in seg]
        if len(parts) > 1:
            warnings.warn(f"{path}: {where}: {len(parts)} polygon parts; keeping the largest", stacklevel=2)
        polygon = max(parts, key=polygon_area)
        score = ann.get("score")
        if score is not None and (isinstance(score, bool) or not isinstance(score, (int, float))):
            raise InputError(path, f"{where}: 'score' must be a number")
        rec.annotations.append(Annotation(polygon=polygon, level=level, score=None if score is None else float(score)))
    return records
