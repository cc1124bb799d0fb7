"""Batch jobs on a local Ray with 2 workers: the plain CLI's outputs, exactly once, resumable,
through a killed worker and bad files."""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import signal
from pathlib import Path

import cv2
import numpy as np
import pyarrow.parquet as pq
import pytest
import ray  # noqa: F401 - the scale extra is a test requirement: without Ray these tests fail

from batch_films import FORMATS, N_FILMS
from vertxnet.batch import BatchConfig, run_batch
from vertxnet.batch.journal import JOURNAL_NAME, STATE_DIR
from vertxnet.cli.infer import InferConfig

pytestmark = pytest.mark.ray

TABLES = ("vertebrae.parquet", "failures.csv")


def _config(inputs, outdir: Path, **batch) -> BatchConfig:
    infer = InferConfig(inputs=tuple(str(i) for i in inputs), outdir=outdir, formats=FORMATS, timings=False, progress=True)
    return BatchConfig(infer, workers=2, progress_interval_s=0.0, **batch)


def _film_outputs(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file() and p.name not in TABLES}


def _journal(outdir: Path) -> list[dict]:
    return [json.loads(line) for line in (outdir / STATE_DIR / JOURNAL_NAME).read_text().splitlines()]


def _snapshot(folder: Path) -> dict[str, tuple[int, int, int]]:
    return {str(p.relative_to(folder)): (p.stat().st_ino, p.stat().st_mtime_ns, p.stat().st_size) for p in folder.rglob("*") if p.is_file()}


@pytest.fixture(scope="module")
def batch_run(local_ray, films, tmp_path_factory):
    outdir = tmp_path_factory.mktemp("batch-ray")
    log = io.StringIO()
    summary = run_batch(_config([films], outdir), stderr=log)
    return outdir, summary, log.getvalue()


def test_outputs_are_those_of_the_plain_cli(batch_run, plain_outputs):
    outdir, summary, log = batch_run
    assert (summary.total, summary.written, summary.skipped, summary.failures) == (N_FILMS, N_FILMS, 0, [])
    assert summary.workers == 2
    batch, plain = _film_outputs(outdir), _film_outputs(plain_outputs)
    assert sorted(batch) == sorted(plain) and len(plain) == N_FILMS * len(FORMATS)
    different = [name for name in plain if batch[name] != plain[name]]
    assert different == []
    # Every film published once; nothing left staged.
    records = _journal(outdir)
    assert sorted(r["stem"] for r in records) == sorted({r["stem"] for r in records}) and len(records) == N_FILMS
    assert not (outdir / STATE_DIR / "staging").exists()
    # One table row per vertebra of every film, named as in the JSON.
    table = pq.read_table(outdir / "vertebrae.parquet").to_pylist()
    docs = {p.stem: json.loads(plain[p.name]) for p in map(Path, plain) if p.suffix == ".json" and not p.name.endswith(".coco.json")}
    assert len(table) == sum(len(d["vertebrae"]) for d in docs.values())
    first = next(r for r in table if r["stem"] == "phantom_00000" and r["index"] == 0)
    want = docs["phantom_00000"]["vertebrae"][0]
    assert (first["label"], first["area_px"], first["sha256"]) == (want["label"], want["area_px"], docs["phantom_00000"]["input"]["sha256"])
    assert (outdir / "failures.csv").read_text() == "path,stage,reason\n"
    # Progress while it ran, with rate and counts.
    assert f"{N_FILMS}/{N_FILMS} films ({N_FILMS} written, 0 up to date, 0 failed)" in log and "films/s" in log


def test_rerun_writes_nothing(batch_run):
    outdir, _, _ = batch_run
    before = _snapshot(outdir)
    films = Path(_journal(outdir)[0]["path"]).parent
    summary = run_batch(_config([films], outdir))
    assert (summary.written, summary.skipped, summary.failed, summary.workers) == (0, N_FILMS, 0, 0)
    assert _snapshot(outdir) == before


def test_touched_film_is_checked_by_its_pixels_not_rewritten(batch_run):
    outdir, _, _ = batch_run
    records = _journal(outdir)
    film = Path(records[3]["path"])
    os.utime(film, ns=(film.stat().st_atime_ns, film.stat().st_mtime_ns + 10**9))
    outputs_before = {k: v for k, v in _snapshot(outdir).items() if not k.startswith(STATE_DIR)}
    summary = run_batch(_config([film.parent], outdir))
    assert (summary.written, summary.skipped, summary.failed) == (0, N_FILMS, 0)
    assert {k: v for k, v in _snapshot(outdir).items() if not k.startswith(STATE_DIR)} == outputs_before
    refreshed = _journal(outdir)[-1]
    assert len(_journal(outdir)) == len(records) + 1 and refreshed["stem"] == records[3]["stem"]
    assert refreshed["mtime_ns"] == film.stat().st_mtime_ns
    # Now up to date by its cheap key again.
    assert run_batch(_config([film.parent], outdir)).workers == 0


def test_killed_worker_still_publishes_every_film_once(local_ray, films, plain_outputs, tmp_path):
    outdir = tmp_path / "out"
    killed: list[tuple[int, int]] = []  # (pid, films published when it was killed)
    published: list[str] = []

    def kill_after_five(outcome):
        if outcome.status == "written":
            published.append(outcome.stem)
        if len(published) == 5 and not killed:
            os.kill(outcome.worker, signal.SIGKILL)  # the worker is busy with its next film
            killed.append((outcome.worker, len(published)))

    summary = run_batch(_config([films], outdir), on_film=kill_after_five, stderr=io.StringIO())
    assert killed and killed[0][1] < N_FILMS
    assert (summary.written, summary.failures) == (N_FILMS, [])
    assert sorted(published) == sorted(set(published)) and len(published) == N_FILMS
    stems = [r["stem"] for r in _journal(outdir)]
    assert sorted(stems) == sorted(set(stems)) and len(stems) == N_FILMS
    assert _film_outputs(outdir) == _film_outputs(plain_outputs)
    assert not (outdir / STATE_DIR / "staging").exists()


def test_bad_files_and_manifest_rows_are_recorded_and_the_job_finishes(local_ray, films, plain_outputs, tmp_path):
    # One job over a folder with bad files and a manifest with a missing file and an empty cell.
    folder = tmp_path / "in"
    folder.mkdir()
    good = sorted(films.iterdir())[:4]
    for f in good[:3]:
        shutil.copy(f, folder / f.name)
    (folder / "truncated.png").write_bytes(good[0].read_bytes()[:200])
    (folder / "notes.png").write_text("not an image")
    (folder / "empty.dcm").write_bytes(b"")
    cv2.imwrite(str(folder / "blank.png"), np.full((256, 200), 128, np.uint8))
    manifest = tmp_path / "manifest.csv"
    manifest.write_text(f"id,path\n1,{os.path.relpath(good[3], tmp_path)}\n2,missing.png\n3,\n")
    outdir = tmp_path / "out"
    log = io.StringIO()
    summary = run_batch(_config([folder, manifest], outdir), stderr=log)
    assert (summary.total, summary.written) == (10, 4)
    failed = {Path(f.path).name: f for f in summary.failures}
    assert sorted(failed) == ["blank.png", "empty.dcm", "manifest.csv row 3", "missing.png", "notes.png", "truncated.png"]
    assert (failed["empty.dcm"].stage, failed["empty.dcm"].reason) == ("read", "file is empty")
    assert (failed["missing.png"].stage, failed["missing.png"].reason) == ("read", "file not found")
    assert failed["manifest.csv row 3"].stage == "input"
    assert "constant" in failed["blank.png"].reason and failed["truncated.png"].stage == "read"
    with open(outdir / "failures.csv", newline="") as f:
        table = list(csv.DictReader(f))
    assert sorted(r["path"] for r in table) == sorted(f.path for f in summary.failures)
    assert all(f"error: {f.path}: " in log.getvalue() for f in summary.failures)
    for f in good:  # the input path differs from the plain run's, so compare the images
        assert (outdir / f"{f.stem}.overlay.png").read_bytes() == (plain_outputs / f"{f.stem}.overlay.png").read_bytes()
    assert sorted(p.name.split(".")[0] for p in outdir.iterdir() if p.is_file() and p.name not in TABLES) == sorted([f.stem for f in good] * len(FORMATS))
    again = run_batch(_config([folder, manifest], outdir), stderr=io.StringIO())
    assert (again.written, again.skipped, again.failed) == (0, 4, 6)
