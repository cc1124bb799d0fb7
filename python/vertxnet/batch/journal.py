"""What a batch job has finished, kept in OUTDIR so that a re-run does only what is left.

``OUTDIR/.vertx-batch/journal.jsonl`` holds one JSON line per published film, appended and
fsync-ed by the job's driver (the only process that publishes outputs) right after the film's
files are renamed into place. A record names the film (path, stem), its identity (the sha256 of
its pixel data, as in the result JSON), the cheap key it had when read (file size and mtime),
the fingerprint of the settings that made it, and the size and mtime of every output file.

A film is up to date, and skipped without being read, when its latest record has the same path,
cheap key and settings and every output file still has the recorded size and mtime. When only
the cheap key differs (a copied or touched file), the film is decoded again and its pixel sha256
compared with the record's: equal pixels keep the outputs (the record is refreshed, nothing is
written), different pixels are inferred again. A torn last line (a job killed while appending)
is ignored, so its film is simply done again.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..cli.infer import UsageError

STATE_DIR = ".vertx-batch"
JOURNAL_NAME = "journal.jsonl"
STAGING_NAME = "staging"
RECORD_VERSION = 1


def settings_fingerprint(settings: Mapping[str, Any]) -> str:
    """Stable digest of everything that shapes a film's outputs (model, thresholds, formats…)."""
    text = json.dumps(settings, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def file_key(path: str | os.PathLike) -> tuple[int, int]:
    """The cheap key of a file: (size in bytes, mtime in ns). OSError if it cannot be stat-ed."""
    st = os.stat(path)
    return st.st_size, st.st_mtime_ns


@dataclass
class Plan:
    """What to do with one film: ``skip`` (up to date), or read it, with ``known_sha256`` set when
    its outputs are intact and only its cheap key changed (equal pixels then keep them)."""

    skip: bool
    known_sha256: str = ""


class Journal:
    """The journal of one output folder. Holds an exclusive lock on it while open, so two jobs
    never publish into the same folder at once."""

    def __init__(self, outdir: Path):
        self.outdir = outdir
        self.state_dir = outdir / STATE_DIR
        self.path = self.state_dir / JOURNAL_NAME
        self.staging = self.state_dir / STAGING_NAME
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self._lock = open(self.state_dir / "lock", "a+")
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._lock.close()
            raise UsageError(f"{outdir}: another batch job is writing to this output folder") from None
        self.latest: dict[str, dict[str, Any]] = dict(self._read())
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def _read(self) -> Iterable[tuple[str, dict[str, Any]]]:
        try:
            with open(self.path, encoding="utf-8") as f:
                for line in f:
                    try:
                        record = json.loads(line)
                    except json.JSONDecodeError:
                        continue  # a torn line from a killed job: its film is done again
                    if isinstance(record, dict) and record.get("v") == RECORD_VERSION and "stem" in record:
                        yield record["stem"], record
        except FileNotFoundError:
            return

    def plan(self, stem: str, path: str, key: tuple[int, int], fingerprint: str) -> Plan:
        record = self.latest.get(stem)
        if record is None or record.get("path") != path or record.get("settings") != fingerprint:
            return Plan(skip=False)
        if not self.outputs_intact(record):
            return Plan(skip=False)
        if (record.get("size"), record.get("mtime_ns")) == key:
            return Plan(skip=True)
        return Plan(skip=False, known_sha256=str(record.get("sha256", "")))

    def outputs_intact(self, record: Mapping[str, Any]) -> bool:
        outputs = record.get("outputs")
        if not isinstance(outputs, dict) or not outputs:
            return False
        for name, recorded in outputs.items():
            try:
                if list(file_key(self.outdir / name)) != list(recorded):
                    return False
            except OSError:
                return False
        return True

    def output_keys(self, names: Iterable[str]) -> dict[str, list[int]]:
        return {name: list(file_key(self.outdir / name)) for name in names}

    def append(self, record: dict[str, Any]) -> None:
        """Append one record and make it durable before returning."""
        record = {"v": RECORD_VERSION, **record}
        line = (json.dumps(record, separators=(",", ":"), allow_nan=False) + "\n").encode()
        os.write(self._fd, line)
        os.fsync(self._fd)
        self.latest[record["stem"]] = record

    def clear_staging(self) -> int:
        """Remove staged outputs that were never published (attempts of workers that died, or
        of a job that was killed); the number of attempt folders removed."""
        if not self.staging.is_dir():
            return 0
        attempts = [p for p in self.staging.iterdir()]
        shutil.rmtree(self.staging, ignore_errors=True)
        return len(attempts)

    def close(self) -> None:
        os.close(self._fd)
        self._lock.close()

    def __enter__(self) -> "Journal":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
