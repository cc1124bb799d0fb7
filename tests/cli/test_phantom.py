"""vertx-phantom: exit codes, one-line errors, and no half-written files."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from vertxnet.cli import phantom as cli


def test_writes_images_annotations_and_preview(tmp_path, capsys):
    out = tmp_path / "set"
    code = cli.main(["-o", str(out), "--n", "3", "--view", "cervical", "--size", "192", "--seed", "4",
                     "--difficulty", "easy", "--preview"])
    assert code == 0
    coco = json.loads((out / "annotations.json").read_text())
    assert [i["file_name"] for i in coco["images"]] == [f"images/phantom_0000{k}.png" for k in range(3)]
    assert all(i["view"] == "cervical" for i in coco["images"])
    sheet = cv2.imread(str(out / "preview.png"), cv2.IMREAD_UNCHANGED)
    assert sheet.dtype == np.uint8 and sheet.ndim == 3
    # the truth outlines are drawn in colour on the grey films
    assert np.count_nonzero(np.ptp(sheet.astype(int), axis=2) > 60) > 200
    assert not list(out.rglob("*.tmp-*"))


def test_knob_override_reaches_the_generator(tmp_path):
    out = tmp_path / "k"
    assert cli.main(["-o", str(out), "--n", "2", "--view", "lumbar", "--size", "128", "--knob", "implant_prob=1"]) == 0
    coco = json.loads((out / "annotations.json").read_text())
    assert all(i["extra"]["phantom"]["implants"] for i in coco["images"])


def test_classic_style_writes_the_first_renderers_films(tmp_path):
    from vertxnet.data.phantom import PhantomConfig, generate

    out = tmp_path / "c"
    assert cli.main(["-o", str(out), "--n", "1", "--view", "lumbar", "--size", "160", "--seed", "7", "--style", "classic"]) == 0
    written = cv2.imread(str(out / "images" / "phantom_00000.png"), cv2.IMREAD_UNCHANGED)
    classic, _ = generate(PhantomConfig(view="lumbar", size=160, seed=7, style="classic"), 0)
    film, _ = generate(PhantomConfig(view="lumbar", size=160, seed=7), 0)
    np.testing.assert_array_equal(written, classic)
    assert written.shape != film.shape or not np.array_equal(written, film)


@pytest.mark.parametrize(
    "argv",
    [
        [],  # -o is required
        ["-o", "X", "--view", "axial"],
        ["-o", "X", "--style", "cartoon"],
        ["-o", "X", "--style", "classic", "--view", "thoracic"],
        ["-o", "X", "--n", "0"],
        ["-o", "X", "--n", "many"],
        ["-o", "X", "--size", "12"],
        ["-o", "X", "--seed", "-3"],
        ["-o", "X", "--difficulty", "brutal"],
        ["-o", "X", "--knob", "bogus=1"],
        ["-o", "X", "--knob", "noise"],
        ["-o", "X", "--knob", "fracture_prob=3"],
        ["-o", "X", "--frobnicate"],
    ],
)
def test_bad_arguments_exit_2_with_one_line_error(argv, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert cli.main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ")
    assert not (tmp_path / "X").exists()


def test_output_path_that_is_a_file_is_a_usage_error(tmp_path, capsys):
    target = tmp_path / "file.txt"
    target.write_text("x")
    assert cli.main(["-o", str(target), "--n", "1", "--size", "128"]) == 2
    assert "not a folder" in capsys.readouterr().err


def test_unwritable_output_exits_1_and_names_the_path(tmp_path, capsys):
    out = tmp_path / "set"
    out.mkdir()
    (out / "images").write_text("in the way")  # a file where the images folder must go
    assert cli.main(["-o", str(out), "--n", "1", "--size", "128"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and "images" in err[0]
    assert not (out / "annotations.json").exists()


def test_a_failure_midway_leaves_no_partial_files(tmp_path, monkeypatch, capsys):
    import vertxnet.data.phantom.generator as gen

    real_imencode = gen.cv2.imencode
    calls = {"n": 0}

    def failing_imencode(ext, image, params):
        calls["n"] += 1
        if calls["n"] == 2:
            return False, None
        return real_imencode(ext, image, params)

    monkeypatch.setattr(gen.cv2, "imencode", failing_imencode)
    out = tmp_path / "set"
    assert cli.main(["-o", str(out), "--n", "3", "--size", "128"]) == 1
    assert "PNG encoding failed" in capsys.readouterr().err
    assert sorted(p.name for p in (out / "images").iterdir()) == ["phantom_00000.png"]  # complete file only
    assert not (out / "annotations.json").exists()
    assert not list(out.rglob("*.tmp-*"))
