"""What runs inside the Ray workers: read + decode (tasks) and inference (one pipeline per actor).

Neither stage publishes anything. The inference actor renders a film's outputs with the same
code as vertx-infer and writes them into a private staging folder
(``OUTDIR/.vertx-batch/staging/<attempt>/``); the driver renames them into place, once per
film. A worker that dies after staging leaves only an orphaned attempt folder behind, and a
retried film is staged again under a new attempt, so no film is ever published twice.

Every row has the same columns whatever happened to the film (``status`` says what did), so
Ray Data never has to reconcile block schemas:

    path, file, stem, known_sha256   the film (``file`` is the absolute path that is read)
    status    "decoded" | "unchanged" | "staged" | "failed"
    stage     where it failed: "read" | "infer" | "write" ("" otherwise)
    reason    why it failed, one line
    sha256    of the pixel data ("" before decoding)
    payload   pickled LoadedImage after decoding; pickled staging record after inference
    worker    process id of the inference actor (0 before inference)
"""

from __future__ import annotations

import dataclasses
import os
import pickle
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError
from .journal import STAGING_NAME, STATE_DIR

ROW_COLUMNS = ("path", "file", "stem", "known_sha256", "status", "stage", "reason", "sha256", "payload", "worker")


def film_row(path: str, file: str, stem: str, known_sha256: str = "") -> dict[str, Any]:
    return {"path": path, "file": file, "stem": stem, "known_sha256": known_sha256, "status": "pending",
            "stage": "", "reason": "", "sha256": "", "payload": b"", "worker": 0}  # fmt: skip


def _failed(row: Mapping[str, Any], stage: str, reason: str) -> dict[str, Any]:
    return {**row, "status": "failed", "stage": stage, "reason": " ".join(reason.split()), "payload": b""}


def _reason(exc: BaseException) -> str:
    if isinstance(exc, InputError):
        return exc.reason
    if isinstance(exc, ValueError):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"


def read_film(row: dict[str, Any]) -> dict[str, Any]:
    """Ray Data task: read and decode one film. A film whose pixels hash to ``known_sha256``
    (its outputs are intact) comes back "unchanged" without its pixels."""
    from ..io import load_image

    row = {name: row[name] for name in ROW_COLUMNS}
    t0 = time.perf_counter()
    try:
        loaded = load_image(row["file"])
    except Exception as exc:  # noqa: BLE001 - one film must never stop the others
        return _failed(row, "read", _reason(exc))
    decode_ms = (time.perf_counter() - t0) * 1e3
    if row["known_sha256"] and loaded.sha256 == row["known_sha256"]:
        return {**row, "status": "unchanged", "sha256": loaded.sha256}
    # The outputs name the film as the user did, wherever the worker reads it from.
    loaded = dataclasses.replace(loaded, path=row["path"])
    payload = pickle.dumps((loaded, decode_ms), protocol=pickle.HIGHEST_PROTOCOL)
    return {**row, "status": "decoded", "sha256": loaded.sha256, "payload": payload}


@dataclass(frozen=True)
class WorkerSettings:
    """How each inference actor builds its pipeline and renders its outputs (picklable)."""

    outdir: str  # absolute
    bundle: str | None
    backend: str
    precision: str
    threads: int | None
    thresholds: dict[str, float] = field(default_factory=dict)
    formats: tuple[str, ...] = ("json",)
    mask_bits: int = 8
    timings: bool = True
    labelling: str = "decoder"
    view: str | None = None
    measure: Any = None  # a vertxnet.measure.MeasureConfig, or None (no measurements)


class FilmInference:
    """Ray Data actor: one :class:`~vertxnet.pipeline.Pipeline` (its sessions opened once) that
    infers decoded films and stages their outputs."""

    def __init__(self, settings: WorkerSettings):
        from ..pipeline import Pipeline, PipelineConfig

        self.settings = settings
        self.pid = os.getpid()
        self.staging = Path(settings.outdir) / STATE_DIR / STAGING_NAME
        self.pipeline = Pipeline(
            settings.bundle, backend=settings.backend, threads=settings.threads,
            config=PipelineConfig(**settings.thresholds, labelling=settings.labelling, view=settings.view),
            precision=settings.precision, measure=settings.measure or False,
        )  # fmt: skip
        # One worker is one core's work: its two models run one after the other.
        from concurrent.futures import ThreadPoolExecutor

        self.pipeline._executor.shutdown(wait=True)
        self.pipeline._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="vertxnet-model")

    def __call__(self, batch: Mapping[str, np.ndarray]) -> dict[str, list[Any]]:
        rows = [{name: _scalar(batch[name][i]) for name in ROW_COLUMNS} for i in range(len(batch["path"]))]
        done = [self._film(row) for row in rows]
        return {name: [row[name] for row in done] for name in ROW_COLUMNS}

    def _film(self, row: dict[str, Any]) -> dict[str, Any]:
        row = {**row, "worker": self.pid}
        if row["status"] != "decoded":
            return row
        from ..cli.infer import SUFFIXES, refusal_reason, render_each
        from ..files import atomic_write as write_atomic

        loaded, decode_ms = pickle.loads(row["payload"])
        try:
            result = self.pipeline.predict(loaded)
            # Decoding ran in the read task: report its time, as vertx-infer reports its own.
            result.timings_ms["total"] += decode_ms - result.timings_ms.get("decode", 0.0)
            result.timings_ms["decode"] = decode_ms
        except Exception as exc:  # noqa: BLE001
            return _failed(row, "infer", _reason(exc))
        # Each output is made or refused on its own, as vertx-infer does: a refused one (a SEG
        # of a non-DICOM film, say) is reported by the driver and costs the film nothing else.
        made = render_each(result, self.settings.formats, mask_bits=self.settings.mask_bits, timings=self.settings.timings)
        payloads = {fmt: data for fmt, data in made.items() if isinstance(data, bytes)}
        refused = [(f"{row['stem']}{SUFFIXES[fmt]}", refusal_reason(data)) for fmt, data in made.items() if not isinstance(data, bytes)]
        if not payloads:
            return _failed(row, "infer", "; ".join(f"{name} not written: {reason}" for name, reason in refused))
        attempt = self.staging / uuid.uuid4().hex
        names = [f"{row['stem']}{SUFFIXES[fmt]}" for fmt in payloads]
        try:
            attempt.mkdir(parents=True)
            for name, data in zip(names, payloads.values()):
                write_atomic(attempt / name, data)
        except OSError as exc:
            return _failed(row, "write", f"cannot stage outputs in {attempt}: {exc.strerror or exc}")
        record = {
            "staged": str(attempt),
            "files": names,
            "refused": refused,
            "view": result.view,
            "reference": result.reference,
            "flags": list(result.flags),
            "vertebrae": result_rows(result),
        }
        return {**row, "status": "staged", "payload": pickle.dumps(record, protocol=pickle.HIGHEST_PROTOCOL)}


def result_rows(result: Any) -> list[dict[str, Any]]:
    """One flat row per vertebra of ``result``, with its measurements (the columns of the CSV
    format, ``flags`` as ``measure_flags``) when the result was measured."""
    rows = [vertebra_row(v) for v in result.vertebrae]
    if result.measurements is not None:
        from ..formats.csv_table import measurements_values
        from ..measure import DECIMALS

        for row, values in zip(rows, measurements_values(result.measurements)):
            for key, value in values.items():
                if key in ("image", "index", "label"):
                    continue
                if isinstance(value, (float, np.floating)):
                    value = round(float(value), DECIMALS)
                elif isinstance(value, np.integer):
                    value = int(value)
                row["measure_flags" if key == "flags" else key] = value
    return rows


def vertebra_row(vertebra: Any) -> dict[str, Any]:
    """One vertebra as flat columns, with the values (and rounding) of the result JSON; the
    polygon stays in the per-film outputs."""
    row: dict[str, Any] = {}
    names = {"centroid": ("x", "y"), "bbox": ("x0", "y0", "x1", "y1")}
    for key, value in vertebra.to_dict().items():
        if key == "polygon":
            continue
        if isinstance(value, Mapping):
            row.update({f"{key}_{k}": v for k, v in value.items() if not isinstance(v, (list, dict))})
        elif isinstance(value, Sequence) and not isinstance(value, str):
            suffixes = names.get(key, tuple(str(i) for i in range(len(value))))
            row.update({f"{key}_{s}": v for s, v in zip(suffixes, value)})
        else:
            row[key] = value
    return row


def _scalar(value: Any) -> Any:
    """Plain Python value of one cell of a numpy batch."""
    if isinstance(value, np.generic):
        return value.item()
    return value
