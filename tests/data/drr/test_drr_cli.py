"""vertx-drr command line: exit 0 ok, 1 bad input file (named), 2 bad arguments."""

from __future__ import annotations

import json

import numpy as np
import pytest

nib = pytest.importorskip("nibabel")

from drr_synthetic import make_phantom  # noqa: E402

from vertxnet.cli.drr import main  # noqa: E402


@pytest.fixture(scope="module")
def phantom(tmp_path_factory):
    return make_phantom(tmp_path_factory.mktemp("ct"))


def test_writes_a_coco_data_set(phantom, tmp_path, capsys):
    out = tmp_path / "out"
    rc = main(["-o", str(out), "--ct", str(phantom.ct), "--labels", str(phantom.labels), "--numbering", "verse",
               "--n", "2", "--size", "96", "--images-per-pose", "2", "--workers", "1", "--bits", "8", "--preview"])
    assert rc == 0, capsys.readouterr().err
    data = json.loads((out / "annotations.json").read_text())
    assert len(data["images"]) == 2 and data["annotations"]
    assert (out / "preview.png").is_file() and (out / "images" / "drr_00001.png").is_file()
    import cv2

    assert cv2.imread(str(out / "images" / "drr_00000.png"), cv2.IMREAD_UNCHANGED).dtype == np.uint8


def test_bad_input_file_exits_1_naming_it(phantom, tmp_path, capsys):
    image = nib.load(phantom.labels)
    shifted = image.affine.copy()
    shifted[2, 3] += 10.0
    moved = tmp_path / "moved.nii.gz"
    nib.save(nib.Nifti1Image(np.asarray(image.dataobj), shifted), moved)
    rc = main(["-o", str(tmp_path / "out"), "--ct", str(phantom.ct), "--labels", str(moved), "--numbering", "verse",
               "--n", "1", "--size", "96", "--workers", "1"])
    err = capsys.readouterr().err
    assert rc == 1 and str(moved) in err and "affine" in err
    assert not (tmp_path / "out" / "annotations.json").exists()
    rc = main(["-o", str(tmp_path / "out"), "--ct", str(phantom.ct), "--labels", str(phantom.labels),
               "--numbering", "mystery", "--n", "1", "--workers", "1"])
    err = capsys.readouterr().err
    assert rc == 1 and str(phantom.labels) in err and "numbering" in err


@pytest.mark.parametrize("args", [
    [],  # no source
    ["--ct", "x.nii.gz"],  # --ct without --labels
    ["--manifest", "m.csv", "--kvp", "10,200"],
    ["--manifest", "m.csv", "--n", "0"],
    ["--manifest", "m.csv", "--implant-prob", "1.5"],
    ["--manifest", "m.csv", "--rotation", "80"],
])
def test_bad_arguments_exit_2(tmp_path, args, capsys):
    assert main(["-o", str(tmp_path / "out"), *args]) == 2
    assert "error:" in capsys.readouterr().err


def test_a_bad_case_among_good_ones(phantom, tmp_path, capsys):
    """A worker process's bad case stops the run with its file named (exit 1); with
    --skip-bad-cases the good cases are written and the exit status still says 1."""
    broken = tmp_path / "broken.nii.gz"
    broken.write_bytes(b"not a volume")
    manifest = tmp_path / "cases.csv"
    manifest.write_text(f"name,ct,labels,numbering\ngood,{phantom.ct},{phantom.labels},verse\n"
                        f"bad,{phantom.ct},{broken},verse\n")
    args = ["--manifest", str(manifest), "--n", "4", "--size", "96", "--images-per-pose", "1"]
    rc = main(["-o", str(tmp_path / "stop"), *args, "--workers", "2"])
    err = capsys.readouterr().err
    assert rc == 1 and str(broken) in err
    assert not (tmp_path / "stop" / "annotations.json").exists()
    rc = main(["-o", str(tmp_path / "skip"), *args, "--workers", "1", "--skip-bad-cases"])
    err = capsys.readouterr().err
    assert rc == 1 and str(broken) in err
    data = json.loads((tmp_path / "skip" / "annotations.json").read_text())
    assert {i["extra"]["drr"]["case"] for i in data["images"]} == {"good"} and len(data["images"]) == 2
