"""The C++ geometry core (``vertxnet._core``): polygon operations, ensemble rules, labelling.

Labelling comes two ways: :func:`zip_labels` is SPEC §4's zipper; :func:`decode_labels` is the
sequence decoder that generalises it (class probabilities, sizes, shapes, the view's prior; a
confidence per name; docs/DESIGN.md, "Labelling as sequence decoding"). ``tests/oracle/decoder.py``
is its plain numpy twin.

Polygons are (N, 2) arrays of (x, y) pixel coordinates (any real dtype, converted to float64).
Every operation quantises coordinates to 1/1024 px and uses the non-zero fill rule, so
self-touching or self-intersecting traced outlines are well defined. ``tests/oracle/reference.py``
is a readable shapely implementation of the same rules (the test oracle; not shipped).

Mask R-CNN instances travel as :class:`Detection` records (outline, class, score) on the Python
side; :func:`ensemble` hands them to the C++ call as the parallel lists it validates.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

try:
    from . import _core
    from ._core import (
        MAX_ABS_COORDINATE,
        SCALE,
        VIEWS,
        DecoderParams,
        Decoding,
        EnsembleMask,
        Labelling,
        chain_features,
        decode_chain,
        decode_labels,
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


@dataclass(frozen=True, eq=False)
class Detection:
    """One Mask R-CNN instance: its outline ((N, 2) float64, pixel coordinates), class
    ("vertebra", "C2" or "S1") and score. Also accepted by :func:`zip_labels`.

    ``class_probs`` are its probabilities of (vertebra, C2, S1), summing to 1: the graph's
    softmax when the bundle exports one, otherwise what its twin detections' scores say
    (:func:`vertxnet.trace.suppress_duplicates`); None when unknown."""

    polygon: np.ndarray
    cls: str
    score: float
    class_probs: tuple[float, float, float] | None = None


def ensemble(
    unet: list[np.ndarray],
    detections: Iterable[Detection],
    *,
    eta: float = 0.6,
    lam: float = 2.0,
    tau: float = 0.3,
    ref_score: float = 0.5,
    min_area: float = 1.0,
) -> list[EnsembleMask]:
    """VertXNet ensemble (SPEC §3) of U-Net outlines and Mask R-CNN detections, top to bottom.

    ValueErrors name the offending input as the C++ core sees it: ``unet[i]``, ``mrcnn[i]``
    (the i-th detection's polygon), ``mrcnn_classes[i]``, ``mrcnn_scores[i]``.
    """
    found = list(detections)
    return _core.ensemble(
        unet,
        [d.polygon for d in found],
        [d.cls for d in found],
        [d.score for d in found],
        eta=eta, lam=lam, tau=tau, ref_score=ref_score, min_area=min_area,
    )  # fmt: skip


__all__ = [
    "MAX_ABS_COORDINATE",
    "SCALE",
    "VIEWS",
    "DecoderParams",
    "Decoding",
    "Detection",
    "EnsembleMask",
    "Labelling",
    "chain_features",
    "decode_chain",
    "decode_labels",
    "ensemble",
    "intersection_area",
    "polygon_area",
    "polygon_centroid",
    "polygon_union",
    "zip_labels",
]
