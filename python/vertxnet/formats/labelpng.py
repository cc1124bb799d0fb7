"""Label images of a result: value = level index of the vertebra (C1 = 1 … S1 = 25), 0 = background,
:data:`UNNAMED_VALUE` (the COCO category id of unnamed vertebrae, 26) for a vertebra without a name."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from ..levels import UNNAMED_CATEGORY_ID
from ..raster import rasterize

if TYPE_CHECKING:
    from ..result import Result

#: Label-image value of a vertebra that has no anatomical name.
UNNAMED_VALUE = UNNAMED_CATEGORY_ID


def label_mask(result: "Result", dtype: Any = np.uint8) -> np.ndarray:
    """(H, W) label image in ``dtype`` (uint8 or uint16).

    A pixel belongs to a polygon when its centre lies inside it (:func:`vertxnet.raster.rasterize`,
    which the metrics use too); where polygons overlap the lower vertebra wins (they are drawn
    top to bottom).
    """
    dtype = np.dtype(dtype)
    if dtype not in (np.dtype(np.uint8), np.dtype(np.uint16)):
        raise ValueError(f"label_mask dtype must be uint8 or uint16, got {dtype}")
    return rasterize(result.to_record(), unnamed_value=UNNAMED_VALUE).astype(dtype)
