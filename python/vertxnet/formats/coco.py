"""COCO instances JSON of a result, and the COCO category table vertxnet reads and writes."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..levels import LEVELS, UNNAMED_CATEGORY, UNNAMED_CATEGORY_ID, level_index
from .result_json import JSON_DECIMALS, SCHEMA_VERSION

if TYPE_CHECKING:
    from ..result import Result


def coco_categories(*, with_unnamed: bool = True) -> list[dict[str, Any]]:
    """One category per level (id = level index), then the unnamed "vertebra" category if asked."""
    cats = [{"id": level_index(name), "name": name, "supercategory": "vertebra"} for name in LEVELS]
    if with_unnamed:
        cats.append({"id": UNNAMED_CATEGORY_ID, "name": UNNAMED_CATEGORY, "supercategory": "vertebra"})
    return cats


def result_coco(result: "Result") -> dict[str, Any]:
    """COCO instances JSON object: categories = levels (id = level index) + unnamed "vertebra"."""
    annotations = []
    for i, v in enumerate(result.vertebrae, start=1):
        x0, y0, x1, y1 = v.bbox
        annotations.append(
            {
                "id": i,
                "image_id": 1,
                "category_id": UNNAMED_CATEGORY_ID if v.label is None else level_index(v.label),
                "segmentation": [np.round(v.polygon, JSON_DECIMALS).reshape(-1).tolist()],
                "area": round(v.area_px, JSON_DECIMALS),
                "bbox": [round(x0, JSON_DECIMALS), round(y0, JSON_DECIMALS), round(x1 - x0, JSON_DECIMALS), round(y1 - y0, JSON_DECIMALS)],
                "iscrowd": 0,
                "score": round(v.score, 6),
            }
        )
    file_name = Path(result.input.path).name if result.input.path else "image"
    return {
        "info": {"description": "vertxnet predictions", "version": SCHEMA_VERSION},
        "licenses": [],
        "images": [{"id": 1, "file_name": file_name, "width": result.input.width, "height": result.input.height}],
        "annotations": annotations,
        "categories": coco_categories(),
    }
