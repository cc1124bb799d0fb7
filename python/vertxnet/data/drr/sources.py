"""Finding labelled CTs: a CSV manifest, a folder of cases (VerSe, TotalSegmentator or plain
layouts), or glob patterns for CTs and label maps.

Folder layouts recognised (searched recursively):

- VerSe 2019/2020: ``*_seg-vert_msk.nii.gz`` paired with the ``*_ct.nii.gz`` of the same subject
  (same folder, or the ``rawdata``/``derivatives`` split of VerSe 2020); numbering ``verse``.
- TotalSegmentator data set: ``<case>/ct.nii.gz`` with ``<case>/segmentations/`` (one mask per
  structure); names from the file names.
- Plain: ``<case>/ct.nii.gz`` with ``<case>/labels.nii.gz`` or ``seg.nii.gz`` and a
  ``numbering.txt`` (one word: verse, totalsegmentator, totalsegmentator-v1) or a
  ``structures.csv`` label table beside it.

A manifest CSV has columns ``ct``, ``labels`` and optionally ``numbering`` and ``name``; relative
paths are relative to the manifest's folder.
"""

from __future__ import annotations

import csv
import glob
import re
from pathlib import Path

from ...errors import InputError
from .generator import CTCase

_NIFTI = (".nii.gz", ".nii")


def _stem(path: Path) -> str:
    name = path.name
    for suffix in _NIFTI:
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return path.stem


def read_manifest(path: str | Path) -> list[CTCase]:
    """Cases of a manifest CSV (columns ct, labels[, numbering][, name])."""
    path = Path(path)
    try:
        with open(path, newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
    except FileNotFoundError:
        raise InputError(path, "manifest not found") from None
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise InputError(path, f"cannot read manifest: {exc}") from None
    if not rows:
        raise InputError(path, "manifest lists no case")
    missing = {"ct", "labels"} - {k.strip().lower() for k in rows[0] if k}
    if missing:
        raise InputError(path, f"manifest needs columns ct and labels (missing {sorted(missing)})")
    cases = []
    names = set()
    for n, row in enumerate(rows, start=2):
        row = {k.strip().lower(): (v or "").strip() for k, v in row.items() if k}
        if not row.get("ct") or not row.get("labels"):
            raise InputError(path, f"line {n}: empty ct or labels")
        ct = (path.parent / row["ct"]).resolve() if not Path(row["ct"]).is_absolute() else Path(row["ct"])
        labels = (path.parent / row["labels"]).resolve() if not Path(row["labels"]).is_absolute() else Path(row["labels"])
        numbering = row.get("numbering") or "auto"
        if numbering.lower().endswith(".csv") and not Path(numbering).is_absolute():
            numbering = str((path.parent / numbering).resolve())
        name = row.get("name") or _stem(ct).removesuffix("_ct")
        if name in names:
            raise InputError(path, f"line {n}: case name {name!r} appears twice")
        names.add(name)
        cases.append(CTCase(name=name, ct=ct, labels=labels, numbering=numbering))
    return cases


def _plain_numbering(folder: Path) -> str:
    text = folder / "numbering.txt"
    if text.is_file():
        return text.read_text(encoding="utf-8").strip() or "auto"
    table = folder / "structures.csv"
    return str(table) if table.is_file() else "auto"


def find_cases(folder: str | Path) -> list[CTCase]:
    """Cases under a folder, in sorted path order (see the module docstring for layouts)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(folder, "case folder not found")
    cases: list[CTCase] = []
    seen: set[Path] = set()
    # VerSe
    cts = {}
    for ct in sorted(folder.rglob("*_ct.nii*")):
        subject = re.sub(r"_ct$", "", _stem(ct))
        cts.setdefault(subject, ct)
    for mask in sorted(folder.rglob("*_seg-vert_msk.nii*")):
        subject = re.sub(r"_seg-vert_msk$", "", _stem(mask))
        ct = mask.parent / f"{subject}_ct{mask.name[len(subject) + len('_seg-vert_msk'):]}"
        if not ct.is_file():
            ct = cts.get(subject)
        if ct is None:
            continue
        cases.append(CTCase(name=subject, ct=ct, labels=mask, numbering="verse"))
        seen.add(ct)
    # TotalSegmentator data set and plain layouts
    for ct in sorted([*folder.rglob("ct.nii.gz"), *folder.rglob("ct.nii")]):
        if ct in seen:
            continue
        case_dir = ct.parent
        segmentations = case_dir / "segmentations"
        if segmentations.is_dir():
            cases.append(CTCase(name=case_dir.name, ct=ct, labels=segmentations, numbering="structures"))
            continue
        for name in ("labels.nii.gz", "labels.nii", "seg.nii.gz", "seg.nii"):
            if (case_dir / name).is_file():
                cases.append(CTCase(name=case_dir.name, ct=ct, labels=case_dir / name,
                                    numbering=_plain_numbering(case_dir)))
                break
    if not cases:
        raise InputError(folder, "no labelled CT found (VerSe, TotalSegmentator or ct.nii.gz + labels.nii.gz layouts)")
    return _unique_names(cases)


def glob_cases(ct_pattern: str, labels_pattern: str, numbering: str = "auto") -> list[CTCase]:
    """Cases from two glob patterns whose sorted matches pair one to one."""
    cts = sorted(Path(p) for p in glob.glob(ct_pattern, recursive=True))
    labels = sorted(Path(p) for p in glob.glob(labels_pattern, recursive=True))
    if not cts:
        raise InputError(ct_pattern, "the CT pattern matches no file")
    if len(cts) != len(labels):
        raise InputError(labels_pattern, f"matches {len(labels)} label maps for {len(cts)} CTs")
    return _unique_names([CTCase(name=_stem(c), ct=c, labels=lab, numbering=numbering) for c, lab in zip(cts, labels)])


def _unique_names(cases: list[CTCase]) -> list[CTCase]:
    out, used = [], set()
    for c in cases:
        name, k = c.name, 1
        while name in used:
            k += 1
            name = f"{c.name}-{k}"
        used.add(name)
        out.append(c if name == c.name else CTCase(name=name, ct=c.ct, labels=c.labels, numbering=c.numbering))
    return out
