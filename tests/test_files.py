"""vertxnet.files: the one atomic writer (temporary name, fsync, rename)."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from vertxnet import files


def test_a_write_lands_whole_and_leaves_no_temporary(tmp_path):
    path = files.atomic_write(tmp_path / "a.json", "ä\n")
    assert path.read_bytes() == "ä\n".encode()
    files.write_json_atomic({"x": [1, 2]}, path)
    assert path.read_text() == '{"x": [1, 2]}\n'
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json"]


def test_data_is_synced_before_the_rename_and_the_folder_after(tmp_path, monkeypatch):
    events = []
    real_fsync, real_replace = os.fsync, os.replace
    monkeypatch.setattr(os, "fsync", lambda fd: (events.append(("fsync", os.readlink(f"/proc/self/fd/{fd}"))), real_fsync(fd))[1])
    monkeypatch.setattr(os, "replace", lambda a, b: (events.append(("replace", str(b))), real_replace(a, b))[1])
    final = tmp_path / "out.bin"
    files.atomic_write(final, b"data")
    kinds = [kind for kind, _ in events]
    assert kinds == ["fsync", "replace", "fsync"]
    assert ".tmp-" in events[0][1]  # the temporary file's data, before it gets the final name
    assert events[1][1] == str(final) and events[2][1] == str(tmp_path)  # then the folder entry
    events.clear()
    with files.atomic_path(tmp_path / "model.onnx") as tmp:
        tmp.write_bytes(b"by name")
    assert [kind for kind, _ in events] == ["fsync", "replace", "fsync"]


def test_a_failed_write_keeps_the_old_file_and_removes_the_temporary(tmp_path, monkeypatch):
    final = tmp_path / "keep.txt"
    final.write_text("old")
    with pytest.raises(RuntimeError):
        with files.atomic_path(final) as tmp:
            tmp.write_text("half")
            raise RuntimeError("writer failed")
    monkeypatch.setattr(os, "fsync", lambda fd: (_ for _ in ()).throw(OSError(5, "disk error")))
    with pytest.raises(OSError, match="disk error"):
        files.atomic_write(final, "new")
    assert final.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.txt"]


def test_a_writer_that_writes_nothing_is_an_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="left nothing"):
        with files.atomic_path(tmp_path / "x"):
            pass
    assert not (tmp_path / "x").exists()


def test_temporary_names_are_unique_per_call():
    names = {files.temporary_name("/out/a.json") for _ in range(100)}
    assert len(names) == 100 and all(n.parent == Path("/out") and n.name.startswith(f"a.json.tmp-{os.getpid()}-") for n in names)


def test_threads_writing_one_file_never_mix_their_bytes(tmp_path):
    final = tmp_path / "shared.bin"
    payloads = [bytes([i]) * 200_000 for i in range(8)]
    errors = []

    def write(data):
        try:
            for _ in range(5):
                files.atomic_write(final, data)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(p,)) for p in payloads]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert final.read_bytes() in payloads  # one writer's bytes, whole
    assert sorted(p.name for p in tmp_path.iterdir()) == ["shared.bin"]
