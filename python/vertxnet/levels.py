"""Anatomical vertebral levels, top to bottom, and the Mask R-CNN class mapping."""

from __future__ import annotations

LEVELS: tuple[str, ...] = (
    *(f"C{i}" for i in range(1, 8)),
    *(f"T{i}" for i in range(1, 13)),
    *(f"L{i}" for i in range(1, 6)),
    "S1",
)
"""C1…C7, T1…T12, L1…L5, S1. Label-PNG value and COCO category id = position + 1."""

_INDEX = {name: i for i, name in enumerate(LEVELS)}

#: COCO category name and id (= label-image value) of a vertebra without an anatomical name.
UNNAMED_CATEGORY = "vertebra"
UNNAMED_CATEGORY_ID = len(LEVELS) + 1

#: Mask R-CNN classes; index 0 is the background.
MRCNN_CLASSES: tuple[str, ...] = ("background", "vertebra", "C2", "S1")


def level_index(name: str) -> int:
    """1-based index of a level name (C1 → 1 … S1 → 25); ValueError for an unknown name."""
    try:
        return _INDEX[name] + 1
    except KeyError:
        raise ValueError(f"unknown vertebral level {name!r}; expected one of C1…C7, T1…T12, L1…L5, S1") from None


def level_name(index: int) -> str:
    """Inverse of :func:`level_index`."""
    if not 1 <= index <= len(LEVELS):
        raise ValueError(f"level index {index} outside 1…{len(LEVELS)}")
    return LEVELS[index - 1]


def mrcnn_class_of(level: str) -> str:
    """The Mask R-CNN class a level is trained as: the two references keep their names."""
    level_index(level)
    return level if level in ("C2", "S1") else "vertebra"


#: The regions a lateral film may show, top to bottom (the view model's classes).
VIEWS: tuple[str, ...] = ("cervical", "cervicothoracic", "thoracic", "thoracolumbar", "lumbar")

#: How names are given (PipelineConfig.labelling, vertx-infer --labelling): the sequence decoder
#: in the core, or SPEC §4's zipper alone.
LABELLINGS = ("decoder", "zipper")


def view_of_levels(levels: "list[str] | tuple[str, ...]") -> str | None:
    """The region a film shows, from the levels visible on it (None when none is named).

    cervical: no more than two thoracic levels beside cervical ones; lumbar: lumbar or sacral
    levels with at most two thoracic ones above (the usual T11/T12 at the top of a lumbar film);
    thoracic: at most one lumbar level beside thoracic ones; otherwise the two regions the film
    spans (cervicothoracic or thoracolumbar).
    """
    if not levels:
        return None
    count = {"C": 0, "T": 0, "L": 0}
    for name in levels:
        level_index(name)
        count["L" if name == "S1" else name[0]] += 1
    c, t, low = count["C"], count["T"], count["L"]
    if c and low:
        return "cervicothoracic" if c >= low else "thoracolumbar"
    if c:
        return "cervical" if t <= 2 else "cervicothoracic"
    if low:
        if t <= 2:
            return "lumbar"
        return "thoracic" if low <= 1 else "thoracolumbar"
    return "thoracic"
