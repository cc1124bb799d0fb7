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
from pathlib import Path
from typing import Any, Sequence

import cv2
import numpy as np

from ..errors import InputError
from ..files import write_json_atomic
from ..formats.coco import coco_categories
from ..io.raster import read_image_unchanged
from ..levels import LEVELS, UNNAMED_CATEGORY, UNNAMED_CATEGORY_ID, level_index, level_name
from ..raster import polygon_area, polygon_bbox
from ..records import Annotation, Record


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
            for key, value in ann.extra.items():
                if key not in item:
                    item[key] = value
            annotations.append(item)
    payload = {
        "info": {"description": "vertxnet vertebral-body annotations", "version": "1.0"},
        "licenses": [],
        "images": images,
        "annotations": annotations,
        "categories": coco_categories(with_unnamed=any_unnamed),
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
        extra = {k: v for k, v in ann.items() if k not in _COCO_ANNOTATION_KEYS}
        rec.annotations.append(Annotation(polygon=polygon, level=level, score=None if score is None else float(score), extra=extra))
    return records


#: COCO annotation keys read into Annotation's own fields (or recomputed); any other key of an
#: annotation (``corners``, ``morphometry``, ``partial`` ...) is kept in ``Annotation.extra``.
_COCO_ANNOTATION_KEYS = frozenset({"id", "image_id", "category_id", "segmentation", "area", "bbox", "iscrowd", "score"})


# ---------------------------------------------------------------------------------------------
# VIA 2.x (VGG Image Annotator) project files and annotation exports


def _via_level(region: dict, attribute: str, where: str, path: Path) -> str | None:
    attrs = region.get("region_attributes", {})
    if not isinstance(attrs, dict):
        raise InputError(path, f"{where}: 'region_attributes' must be an object")
    value = attrs.get(attribute)
    if isinstance(value, dict):  # checkbox attribute: {"L3": true}
        chosen = [k for k, v in value.items() if v]
        if len(chosen) > 1:
            raise InputError(path, f"{where}: attribute '{attribute}' names several levels {chosen}")
        value = chosen[0] if chosen else None
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if not isinstance(value, str):
        raise InputError(path, f"{where}: attribute '{attribute}' must be a level name, got {value!r}")
    name = value.strip().upper()  # annotators type "l3 " as often as "L3"
    if name not in LEVELS:
        raise InputError(path, f"{where}: unknown level {value!r}")
    return name


def _via_polygon(shape: Any, where: str, path: Path) -> np.ndarray:
    if not isinstance(shape, dict):
        raise InputError(path, f"{where}: missing 'shape_attributes'")
    name = shape.get("name")
    try:
        if name == "polygon":
            xs, ys = shape["all_points_x"], shape["all_points_y"]
            if not isinstance(xs, list) or not isinstance(ys, list) or len(xs) != len(ys):
                raise InputError(path, f"{where}: all_points_x and all_points_y must be lists of equal length")
            polygon = np.asarray([xs, ys], dtype=np.float64).T.reshape(-1, 2)
        elif name == "rect":
            x, y, w, h = (float(shape[k]) for k in ("x", "y", "width", "height"))
            polygon = np.array([[x, y], [x + w, y], [x + w, y + h], [x, y + h]], dtype=np.float64)
        else:
            raise InputError(path, f"{where}: unsupported region shape {name!r} (polygon or rect expected)")
    except (KeyError, TypeError, ValueError) as exc:
        raise InputError(path, f"{where}: malformed {name} shape ({exc.__class__.__name__}: {exc})") from None
    return _checked_polygon(polygon, where, path)


def read_via(
    path: str | Path, *, image_root: str | Path | None = None, level_attribute: str = "level"
) -> list[Record]:
    """Records from a VIA 2.x project file (``_via_img_metadata``) or annotation export.

    Regions must be ``polygon`` or ``rect`` shapes; the region attribute ``level_attribute``
    names the level (a missing or empty value gives an unnamed vertebra). VIA does not store
    image sizes, so each image is opened (from ``image_root``, default the JSON's folder).
    """
    path = Path(path)
    data = _load_json(path)
    if not isinstance(data, dict):
        raise InputError(path, "not a VIA file (top level is not an object)")
    metadata = data.get("_via_img_metadata", data)
    if not isinstance(metadata, dict):
        raise InputError(path, "'_via_img_metadata' must be an object")
    root = Path(image_root) if image_root is not None else path.parent
    records: list[Record] = []
    for n, (key, entry) in enumerate(metadata.items(), start=1):
        if key.startswith("_via_"):
            continue  # other sections of a project file
        if not isinstance(entry, dict) or not isinstance(entry.get("filename"), str):
            raise InputError(path, f"entry {key!r}: not a VIA image entry (no 'filename')")
        filename = entry["filename"]
        regions = entry.get("regions", [])
        if isinstance(regions, dict):  # VIA 1.x kept regions as {"0": {...}, ...}
            regions = list(regions.values())
        if not isinstance(regions, list):
            raise InputError(path, f"image {filename!r}: 'regions' must be a list")
        annotations = []
        for r, region in enumerate(regions):
            where = f"image {filename!r} region {r}"
            if not isinstance(region, dict):
                raise InputError(path, f"{where}: not an object")
            polygon = _via_polygon(region.get("shape_attributes"), where, path)
            annotations.append(Annotation(polygon=polygon, level=_via_level(region, level_attribute, where, path)))
        image_path = root / filename
        try:
            image = read_image_unchanged(image_path)
        except InputError as exc:
            raise InputError(path, f"image {filename!r}: {exc}") from None
        records.append(
            Record(image_path=image_path, width=image.shape[1], height=image.shape[0], annotations=annotations, image_id=n)
        )
    return records


# ---------------------------------------------------------------------------------------------
# Label PNG folders

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".dcm")


def _find_image(stem: str, folder: Path) -> Path | None:
    for suffix in IMAGE_SUFFIXES:
        for candidate in (folder / f"{stem}{suffix}", folder / f"{stem}{suffix.upper()}"):
            if candidate.is_file():
                return candidate
    return None


def label_image_to_annotations(label: np.ndarray, *, where: str = "label image", path: Path | None = None) -> list[Annotation]:
    """One annotation per level value in a label image (largest connected outline, +0.5 to
    continuous coordinates), top to bottom in anatomical order."""
    annotations = []
    values = np.unique(label)
    for value in values[values > 0]:
        if value > len(LEVELS):
            raise InputError(path, f"{where}: pixel value {int(value)} is not a level index (1…{len(LEVELS)})")
        mask = (label == value).astype(np.uint8)
        contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        contours = [c for c in contours if len(c) >= 3]
        level = level_name(int(value))
        if not contours:
            warnings.warn(f"{path}: {where}: level {level} is too thin to outline; skipped", stacklevel=3)
            continue
        if len(contours) > 1:
            warnings.warn(f"{path}: {where}: level {level} has {len(contours)} parts; keeping the largest", stacklevel=3)
        contour = max(contours, key=cv2.contourArea)
        annotations.append(Annotation(polygon=contour.reshape(-1, 2).astype(np.float64) + 0.5, level=level))
    return annotations


def read_label_pngs(folder: str | Path, *, images: str | Path | None = None) -> list[Record]:
    """Records from a folder of 8/16-bit label PNGs (value = level index, 0 = background).

    With ``images``, each label ``name.png`` is paired with the image of the same stem there
    (InputError if there is none); without it, records have no image path.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(folder, "label folder not found")
    image_folder = None if images is None else Path(images)
    if image_folder is not None and not image_folder.is_dir():
        raise InputError(image_folder, "image folder not found")
    records = []
    for n, label_path in enumerate(sorted(p for p in folder.iterdir() if p.suffix.lower() == ".png"), start=1):
        label = read_image_unchanged(label_path)
        if label.ndim != 2 or label.dtype not in (np.uint8, np.uint16):
            raise InputError(label_path, f"label PNG must be single-channel 8 or 16 bit, got {label.dtype} {label.shape}")
        image_path = None
        if image_folder is not None:
            image_path = _find_image(label_path.stem, image_folder)
            if image_path is None:
                raise InputError(label_path, f"no image named {label_path.stem}.* in {image_folder}")
        records.append(
            Record(
                image_path=image_path,
                width=label.shape[1],
                height=label.shape[0],
                annotations=label_image_to_annotations(label, path=label_path, where="label"),
                image_id=n,
            )
        )
    if not records:
        raise InputError(folder, "no .png label images in folder")
    return records


# ---------------------------------------------------------------------------------------------
# vertx-infer per-image result JSON (SPEC §5)


def read_infer_json(path: str | Path) -> Record:
    """The vertebrae of one vertx-infer result file as a Record (image path from ``input.path``)."""
    path = Path(path)
    data = _load_json(path)
    if not isinstance(data, dict) or "schema_version" not in data or not isinstance(data.get("vertebrae"), list):
        raise InputError(path, "not a vertx-infer result (needs 'schema_version' and a 'vertebrae' list)")
    inp = data.get("input")
    if not isinstance(inp, dict):
        raise InputError(path, "'input' must be an object")
    if not isinstance(inp.get("path"), str) or not inp["path"]:
        raise InputError(path, "'input.path' is empty: the result cannot be paired with its image")
    width, height = _int_field(inp, "width", "input", path), _int_field(inp, "height", "input", path)
    annotations = []
    for i, v in enumerate(data["vertebrae"]):
        where = f"vertebra {i}"
        if not isinstance(v, dict):
            raise InputError(path, f"{where}: not an object")
        label = v.get("label")
        level = None if label is None else _check_level(label, where, path)
        points = v.get("polygon")
        if not isinstance(points, list) or not all(isinstance(p, list) and len(p) == 2 for p in points):
            raise InputError(path, f"{where}: 'polygon' must be a list of [x, y] points")
        try:
            polygon = np.asarray(points, dtype=np.float64).reshape(-1, 2)
        except (TypeError, ValueError):
            raise InputError(path, f"{where}: polygon coordinates must be numbers") from None
        polygon = _checked_polygon(polygon, where, path)
        score = v.get("score")
        if score is not None and (isinstance(score, bool) or not isinstance(score, (int, float))):
            raise InputError(path, f"{where}: 'score' must be a number")
        annotations.append(Annotation(polygon=polygon, level=level, score=None if score is None else float(score)))
    view = data.get("view")
    return Record(
        image_path=Path(inp["path"]),
        width=width,
        height=height,
        annotations=annotations,
        view=view if isinstance(view, str) else None,
        pixel_spacing_mm=_pixel_spacing(inp.get("pixel_spacing_mm"), "input", path),
        extra={k: data[k] for k in ("reference", "flags") if k in data},
    )
