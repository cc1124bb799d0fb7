"""The films of a batch job: files, folders and globs as vertx-infer takes them, plus manifests.

A manifest is a CSV or Parquet file (suffix ``.csv``, ``.parquet`` or ``.pq``) with one film per
row in a path column (``path`` unless told otherwise). Relative paths are taken relative to the
manifest's folder, so a manifest can travel with its archive. Films keep the order of the inputs
(manifest rows in row order), appear once, and get the output stems vertx-infer would give them.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ..cli.infer import UsageError, expand_inputs, output_stems

MANIFEST_SUFFIXES = (".csv", ".parquet", ".pq")


@dataclass(frozen=True)
class Film:
    """One film of a job: ``path`` as the user named it (and as the outputs report it), ``stem``
    of its output files."""

    path: str
    stem: str


@dataclass(frozen=True)
class InputProblem:
    """An input that names no usable film (a pattern matching nothing, an empty manifest cell)."""

    source: str
    reason: str


def is_manifest(pattern: str) -> bool:
    path = Path(pattern)
    return path.suffix.lower() in MANIFEST_SUFFIXES and path.is_file()


def list_films(patterns: Sequence[str], *, recursive: bool = False, path_column: str = "path") -> tuple[list[Film], list[InputProblem]]:
    """Films named by ``patterns`` and one problem per input that names nothing usable.

    UsageError for a manifest that cannot be read or has no ``path_column``.
    """
    paths: list[Path] = []
    problems: list[InputProblem] = []
    for pattern in patterns:
        if is_manifest(pattern):
            found, bad = read_manifest(Path(pattern), path_column)
            paths.extend(found)
            problems.extend(bad)
            continue
        found, messages = expand_inputs([pattern], recursive=recursive)
        paths.extend(found)
        problems.extend(InputProblem(pattern, m.removeprefix(f"{pattern}: ")) for m in messages)
    unique = list(dict.fromkeys(paths))
    return [Film(str(p), stem) for p, stem in zip(unique, output_stems(unique))], problems


def read_manifest(manifest: Path, path_column: str = "path") -> tuple[list[Path], list[InputProblem]]:
    """Paths listed in a CSV or Parquet manifest, and one problem per row whose path cell is empty."""
    if manifest.suffix.lower() == ".csv":
        columns, cells = _csv_column(manifest, path_column)
    else:
        columns, cells = _parquet_column(manifest, path_column)
    if cells is None:
        raise UsageError(f"{manifest}: manifest has no {path_column!r} column (columns: {', '.join(columns) or 'none'}); choose one with --path-column")
    paths, problems = [], []
    for row, cell in enumerate(cells, start=1):
        text = "" if cell is None else str(cell).strip()
        if not text:
            problems.append(InputProblem(f"{manifest} row {row}", f"empty {path_column!r} cell"))
            continue
        path = Path(text)
        paths.append(path if path.is_absolute() else manifest.parent / path)
    return paths, problems


def _csv_column(manifest: Path, column: str) -> tuple[list[str], list[str] | None]:
    try:
        with open(manifest, newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f)
            columns = list(reader.fieldnames or [])
            if column not in columns:
                return columns, None
            return columns, [row.get(column) for row in reader]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise UsageError(f"{manifest}: cannot read the CSV manifest ({exc})") from None


def _parquet_column(manifest: Path, column: str) -> tuple[list[str], list[str] | None]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        schema = pq.read_schema(manifest)
        if column not in schema.names:
            return list(schema.names), None
        values = pq.read_table(manifest, columns=[column]).column(column)
    except (OSError, pa.ArrowException) as exc:
        raise UsageError(f"{manifest}: cannot read the Parquet manifest ({exc})") from None
    return list(schema.names), values.to_pylist()
