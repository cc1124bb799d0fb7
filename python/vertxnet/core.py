"""The C++ geometry core (``vertxnet._core``): polygon operations, ensemble rules, labelling.

Polygons are (N, 2) arrays of (x, y) pixel coordinates (any real dtype, converted to float64).
Every operation quantises coordinates to 1/1024 px and uses the non-zero fill rule, so
self-touching or self-intersecting traced outlines are well defined. ``vertxnet.reference`` is
a readable shapely implementation of the same rules.
"""

from __future__ import annotations

try:
    from ._core import (
        MAX_ABS_COORDINATE,
        SCALE,
        EnsembleMask,
        Labelling,
        ensemble,
        intersection_area,
        polygon_area,
        polygon_centroid,
        polygon_union,
        zip_labels,
    )
except ImportError as exc:  # pragma: no cover - only without a built extension
    raise ImportError(
        "vertxnet._core (the compiled geometry core) is not available; build it with "
        "`pip install .` (needs a C++17 compiler and Debian's libpolyclipping-dev): " + str(exc)
    ) from exc

__all__ = [
    "MAX_ABS_COORDINATE",
    "SCALE",
    "EnsembleMask",
    "Labelling",
    "ensemble",
    "intersection_area",
    "polygon_area",
    "polygon_centroid",
    "polygon_union",
    "zip_labels",
]
