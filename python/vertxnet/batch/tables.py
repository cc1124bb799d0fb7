"""The job-wide tables: every vertebra of every film (Parquet) and every film that failed (CSV).

Both are rebuilt at the end of each run and written atomically (and only when they changed): ``vertebrae.parquet`` from the
journal records of the job's films (so films skipped as up to date keep their rows), and
``failures.csv`` from this run's failures (films that failed before are tried again, so the
table lists what is still not done).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..files import atomic_write as write_atomic

VERTEBRAE_NAME = "vertebrae.parquet"
FAILURES_NAME = "failures.csv"
#: Columns naming the film of each vertebra row, before the vertebra's own columns.
FILM_COLUMNS = ("stem", "path", "sha256", "view", "reference", "index")


@dataclass(frozen=True)
class Failure:
    """A film (or input) that could not be done: where it failed and why."""

    path: str
    stage: str  # "input" | "read" | "infer" | "write"
    reason: str

    def message(self) -> str:
        return f"{self.path}: {self.reason}"


def vertebra_rows(records: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    rows = []
    for record in records:
        film = {"stem": record["stem"], "path": record["path"], "sha256": record["sha256"],
                "view": record.get("view"), "reference": record.get("reference")}  # fmt: skip
        for index, vertebra in enumerate(record.get("vertebrae", [])):
            rows.append({**film, "index": index, **vertebra})
    return rows


def write_vertebrae(path: Path, rows: Sequence[Mapping[str, Any]]) -> None:
    """``rows`` as one Parquet table; columns are the union over rows (missing cells are null)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    columns = list(FILM_COLUMNS)
    for row in rows:
        columns.extend(k for k in row if k not in columns)
    if rows:
        table = pa.Table.from_pylist([{c: row.get(c) for c in columns} for row in rows])
    else:
        types = {"index": pa.int64()}
        table = pa.schema([(c, types.get(c, pa.string())) for c in columns]).empty_table()
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    _write_if_changed(path, buffer.getvalue())


def write_failures(path: Path, failures: Sequence[Failure]) -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(("path", "stage", "reason"))
    writer.writerows((f.path, f.stage, f.reason) for f in failures)
    _write_if_changed(path, buffer.getvalue().encode())


def _write_if_changed(path: Path, data: bytes) -> None:
    """Atomic write, left out when the file already holds ``data`` (a re-run with nothing new
    to do writes nothing)."""
    try:
        if path.stat().st_size == len(data) and path.read_bytes() == data:
            return
    except OSError:
        pass
    write_atomic(path, data)
