"""Films of a batch job (folders, manifests) and the journal's skip decisions, without Ray."""

from __future__ import annotations

import os
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from vertxnet.batch.inputs import list_films, read_manifest
from vertxnet.batch.journal import Journal, file_key, settings_fingerprint
from vertxnet.batch.tables import Failure, write_failures, write_vertebrae
from vertxnet.cli.infer import UsageError, expand_inputs, output_stems


def _touch(path: Path, data: bytes = b"x") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def test_folder_gives_the_films_and_stems_of_vertx_infer(tmp_path):
    for name in ("b.png", "a.png", "sub/a.png", "notes.txt"):
        _touch(tmp_path / name)
    films, problems = list_films([str(tmp_path)], recursive=True)
    expected, _ = expand_inputs([str(tmp_path)], recursive=True)
    assert [f.path for f in films] == [str(p) for p in expected]
    assert [f.stem for f in films] == output_stems(expected)
    assert sorted(f.stem for f in films) == ["a", "a-2", "b"]
    assert not problems


def test_csv_manifest_paths_are_relative_to_the_manifest(tmp_path):
    _touch(tmp_path / "archive/x.png")
    manifest = tmp_path / "archive/list.csv"
    manifest.write_text("patient_free_id,path\n1,x.png\n2,\n3,/abs/y.dcm\n4,x.png\n")
    films, problems = list_films([str(manifest)])
    assert [f.path for f in films] == [str(tmp_path / "archive/x.png"), "/abs/y.dcm"]
    assert [(p.source, p.reason) for p in problems] == [(f"{manifest} row 2", "empty 'path' cell")]


def test_parquet_manifest_with_another_column(tmp_path):
    manifest = tmp_path / "films.parquet"
    pq.write_table(pa.table({"file": ["a.png", None, "b.png"]}), manifest)
    paths, problems = read_manifest(manifest, "file")
    assert paths == [tmp_path / "a.png", tmp_path / "b.png"]
    assert len(problems) == 1 and "row 2" in problems[0].source


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_manifest_without_the_path_column_is_a_usage_error(tmp_path, suffix):
    manifest = tmp_path / f"m{suffix}"
    if suffix == ".csv":
        manifest.write_text("file\na.png\n")
    else:
        pq.write_table(pa.table({"file": ["a.png"]}), manifest)
    with pytest.raises(UsageError, match=r"no 'path' column \(columns: file\)"):
        list_films([str(manifest)])


def test_unreadable_parquet_manifest_is_a_usage_error(tmp_path):
    manifest = _touch(tmp_path / "m.parquet", b"not parquet at all")
    with pytest.raises(UsageError, match="cannot read the Parquet manifest"):
        list_films([str(manifest)])


def test_pattern_matching_nothing_is_a_problem_not_an_error(tmp_path):
    films, problems = list_films([str(tmp_path / "*.png")])
    assert films == [] and problems[0].reason == "no file matches this pattern"


def _published(journal: Journal, outdir: Path, stem: str, film: Path, fingerprint: str) -> dict:
    out = _touch(outdir / f"{stem}.json", b"{}")
    size, mtime = file_key(film)
    journal.append({"stem": stem, "path": str(film), "size": size, "mtime_ns": mtime, "sha256": "abc",
                    "settings": fingerprint, "outputs": journal.output_keys([out.name])})  # fmt: skip
    return journal.latest[stem]


def test_journal_skips_only_films_whose_key_settings_and_outputs_match(tmp_path):
    film = _touch(tmp_path / "in/f.png")
    outdir = tmp_path / "out"
    fp = settings_fingerprint({"model": "m", "formats": ["json"]})
    with Journal(outdir) as journal:
        _published(journal, outdir, "f", film, fp)
        key = file_key(film)
        assert journal.plan("f", str(film), key, fp).skip
        assert not journal.plan("f", str(film), key, settings_fingerprint({"model": "m2"})).skip
        assert not journal.plan("f", "elsewhere/f.png", key, fp).skip
        assert not journal.plan("g", str(film), key, fp).skip
        # Same outputs, new cheap key: decode again and compare the pixels' sha256.
        plan = journal.plan("f", str(film), (key[0], key[1] + 1), fp)
        assert not plan.skip and plan.known_sha256 == "abc"
        # An output that changed or went missing means the film is done again.
        os.utime(outdir / "f.json", ns=(1, 1))
        assert not journal.plan("f", str(film), key, fp).skip
        (outdir / "f.json").unlink()
        assert not journal.plan("f", str(film), key, fp).skip


def test_journal_survives_a_torn_last_line_and_reloads(tmp_path):
    film = _touch(tmp_path / "f.png")
    outdir = tmp_path / "out"
    with Journal(outdir) as journal:
        _published(journal, outdir, "f", film, "fp")
    with open(journal.path, "a") as f:
        f.write('{"v":1,"stem":"g","path":')  # a job killed mid-append
    with Journal(outdir) as again:
        assert set(again.latest) == {"f"}
        assert again.plan("f", str(film), file_key(film), "fp").skip


def test_one_job_per_output_folder(tmp_path):
    with Journal(tmp_path):
        with pytest.raises(UsageError, match="another batch job"):
            Journal(tmp_path)
    Journal(tmp_path).close()  # released when the first job ends


def test_tables(tmp_path):
    rows = [{"stem": "a", "path": "a.png", "sha256": "s", "view": "lumbar", "reference": "S1", "index": 0, "label": "L5", "area_mm2": 3.5},
            {"stem": "b", "path": "b.png", "sha256": "t", "view": None, "reference": None, "index": 0, "label": None, "score": 0.9}]  # fmt: skip
    write_vertebrae(tmp_path / "v.parquet", rows)
    table = pq.read_table(tmp_path / "v.parquet").to_pylist()
    assert table[0]["area_mm2"] == 3.5 and table[0]["score"] is None and table[1]["area_mm2"] is None
    write_vertebrae(tmp_path / "empty.parquet", [])
    assert pq.read_table(tmp_path / "empty.parquet").num_rows == 0
    write_failures(tmp_path / "f.csv", [Failure("x, y.png", "read", 'file is "empty"')])
    assert (tmp_path / "f.csv").read_text() == 'path,stage,reason\n"x, y.png",read,"file is ""empty"""\n'
    before = (tmp_path / "f.csv").stat().st_mtime_ns
    os.utime(tmp_path / "f.csv", ns=(before - 10**9, before - 10**9))
    write_failures(tmp_path / "f.csv", [Failure("x, y.png", "read", 'file is "empty"')])
    assert (tmp_path / "f.csv").stat().st_mtime_ns == before - 10**9  # same table: not rewritten


def test_fingerprint_is_order_free():
    assert settings_fingerprint({"a": 1, "b": [1, 2]}) == settings_fingerprint({"b": [1, 2], "a": 1})
    assert settings_fingerprint({"a": 1, "b": [1, 2]}) != settings_fingerprint({"a": 1, "b": [2, 1]})
