"""vertx-infer --engine ray: the plain engine's files, progress and a summary, resumable, exit
status by SPEC §10; the Ray options refused where they do not apply."""

from __future__ import annotations

import csv
import shutil

import pyarrow.parquet as pq
import pytest
import ray  # noqa: F401 - the scale extra is a test requirement: without Ray these tests fail

from vertxnet.cli import infer

N = 6
ARGS = ("--measure", "--format", "json,csv,overlay", "--no-timings")


def _outputs(folder):
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file() and p.name not in ("vertebrae.parquet", "failures.csv")}


@pytest.mark.ray
def test_engine_ray_writes_the_plain_engines_files_with_progress_and_a_summary(local_ray, films, tmp_path, capsys):
    folder = tmp_path / "in"
    folder.mkdir()
    for f in sorted(films.iterdir())[:N]:
        shutil.copy(f, folder / f.name)
    plain, out = tmp_path / "plain", tmp_path / "ray"
    assert infer.main([str(folder), *ARGS, "-o", str(plain), "-q"]) == 0
    capsys.readouterr()

    assert infer.main([str(folder), *ARGS, "-o", str(out), "--engine", "ray", "--workers", "2"]) == 0
    err = capsys.readouterr().err
    assert f"{N}/{N} films ({N} written, 0 up to date, 0 failed)" in err and "films/s" in err
    assert f"{N} films: {N} written, 0 up to date; " in err and "on 2 workers" in err
    assert _outputs(out) == _outputs(plain) and len(_outputs(plain)) == 3 * N

    # The job-wide table carries every vertebra with its measurements, as the CSVs give them.
    table = pq.read_table(out / "vertebrae.parquet").to_pylist()
    rows = []
    for f in sorted(plain.glob("*.csv")):
        with open(f, newline="") as handle:
            rows += [(f.name.removesuffix(".csv"), r) for r in csv.DictReader(handle)]
    assert len(table) == len(rows) > 0
    by_key = {(r["stem"], r["index"]): r for r in table}
    for stem, row in rows:
        got = by_key[(stem, int(row["index"]))]
        for column in ("height_anterior_px", "height_posterior_px", "genant_grade"):
            want = None if row[column] == "" else float(row[column])
            assert got[column] == want, (stem, row["index"], column)

    # A re-run writes nothing; a bad film is reported, the others stay done, exit status 1.
    assert infer.main([str(folder), *ARGS, "-o", str(out), "--engine", "ray", "--workers", "2", "-q"]) == 0
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    assert infer.main([str(folder), *ARGS, "-o", str(out), "--engine", "ray", "--workers", "2"]) == 1
    err = capsys.readouterr().err
    assert f"error: {folder / 'broken.png'}: " in err
    assert f"{N + 1} films: 0 written, {N} up to date, 1 failed" in err
    assert "broken.png" in (out / "failures.csv").read_text()
    assert _outputs(out) == _outputs(plain)


@pytest.mark.ray
def test_engine_ray_writes_each_output_on_its_own_as_the_plain_engine_does(local_ray, films, tmp_path, capsys):
    folder = tmp_path / "in"
    folder.mkdir()
    for f in sorted(films.iterdir())[:2]:
        shutil.copy(f, folder / f.name)
    args = ("--format", "json,dicom-seg", "--no-timings", "-q")  # a PNG film has no SEG
    plain, out = tmp_path / "plain", tmp_path / "ray"
    assert infer.main([str(folder), *args, "-o", str(plain)]) == 1
    plain_err = capsys.readouterr().err
    assert infer.main([str(folder), *args, "-o", str(out), "--engine", "ray", "--workers", "2"]) == 1
    err = capsys.readouterr().err
    assert _outputs(out) == _outputs(plain) and sorted(_outputs(out)) == sorted(f"{f.stem}.json" for f in folder.iterdir())
    for f in folder.iterdir():
        line = f"error: {f}: {f.stem}.seg.dcm not written: "
        assert line in err and line in plain_err
        assert f"{f.stem}.seg.dcm not written" in (out / "failures.csv").read_text()


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--workers", "2"], "--workers only apply to --engine ray"),
        (["--address", "auto", "--gpus-per-worker", "0.5"], "--address, --gpus-per-worker only apply to --engine ray"),
        (["--engine", "ray", "--gpus-per-worker", "-1"], "--gpus-per-worker must be 0 or more"),
        (["--engine", "ray", "--workers", "0"], "expected a positive integer"),
        (["--engine", "spark"], "invalid choice: 'spark'"),
    ],
)
def test_ray_options_are_refused_where_they_do_not_apply(films, tmp_path, capsys, extra, message):
    film = sorted(films.iterdir())[0]
    assert infer.main([str(film), "-o", str(tmp_path / "out"), *extra]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())
