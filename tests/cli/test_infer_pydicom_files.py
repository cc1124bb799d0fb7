"""Every file of pydicom's own test set (shipped in the pydicom wheel: pydicom.data) through
vertx-infer: each gives a result or a clear one-line reason, exit codes as SPEC §10, and no
Python traceback reaches the user. The set holds what real archives hold: CT, MR, RT objects
without pixels, multi-frame, colour, palette, every compressed transfer syntax, big-endian,
implicit VR, files without preamble, deflated datasets, corrupt and truncated files, DICOMDIRs,
and files that are not DICOM at all."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "pipeline"))
sys.path.insert(0, str(ROOT / "tests" / "io"))

from vertxnet.cli.infer import main, output_stems  # noqa: E402

pytestmark = pytest.mark.train  # the hand-built ONNX models need the onnx package

SIZE = 64


@pytest.fixture(scope="module")
def bundle(tmp_path_factory) -> Path:
    import synthetic_bundle as sb

    boxes = np.array([[16, 8 + 12 * i, 48, 16 + 12 * i] for i in range(4)], float)
    return sb.write_bundle(tmp_path_factory.mktemp("pydicom-set") / "bundle", SIZE, boxes, [0.9] * 4, [2, 1, 1, 1])


def pydicom_test_files() -> list[Path]:
    from pydicom.data import get_testdata_files

    return sorted({Path(f) for f in get_testdata_files() if Path(f).is_file()})


def test_every_pydicom_test_file_gives_a_result_or_one_clear_reason(bundle, tmp_path, capsys):
    files = pydicom_test_files()
    assert len(files) > 100, "pydicom's test files are missing from this install"
    out = tmp_path / "out"
    code = main([*map(str, files), "-o", str(out), "--model", str(bundle), "--format", "json,dicom-seg", "-q"])
    err = capsys.readouterr().err
    lines = err.splitlines()
    assert "Traceback" not in err
    # every line on stderr is one error or one warning: no stray multi-line message
    assert all(line.startswith(("error: ", "warning: ")) for line in lines), [x for x in lines if not x.startswith(("error: ", "warning: "))]
    errors = [line for line in lines if line.startswith("error: ")]
    results = 0
    for path, stem in zip(files, output_stems(files)):
        mine = [line for line in errors if line.startswith(f"error: {path}: ")]
        if (out / f"{stem}.json").exists():
            results += 1
            # the SEG is written or refused with its own reason (refused: a PNG-like source is never the case here)
            seg_refusals = [line for line in mine if line.startswith(f"error: {path}: {stem}.seg.dcm not written: ")]
            assert (out / f"{stem}.seg.dcm").exists() != bool(seg_refusals), (path, mine)
            assert len(mine) == len(seg_refusals), (path, mine)
        else:
            assert len(mine) == 1, (path, mine)  # one input, one reason
            reason = mine[0][len(f"error: {path}: "):]
            assert len(reason) > 10 and "Error:" not in reason.split(" ")[0], (path, reason)  # words, not an exception's repr
    assert results >= 15  # the set's single-frame grayscale and colour images (CT, MR, SC...) give results
    assert len(errors) >= len(files) - results
    assert code == 1  # some inputs failed (SPEC §10); the others are written
    assert not [p for p in out.iterdir() if ".tmp" in p.name]


def test_the_installed_command_on_a_sample_of_the_set(bundle, tmp_path):
    """The console entry point itself, on a few files of each kind: exit 1 with a reason per bad
    file, exit 0 for the good one alone, never a traceback."""
    from pydicom.data import get_testdata_file

    good = get_testdata_file("CT_small.dcm")
    names = ("rtplan.dcm", "no_meta.dcm", "JPEG-lossy.dcm", "zipMR.gz", "SC_rgb_rle_16bit_2frame.dcm", "examples_palette.dcm")
    bad = [get_testdata_file(name) for name in names]  # all shipped in the wheel: nothing is downloaded
    run = subprocess.run([sys.executable, "-m", "vertxnet.cli.infer", good, *bad, "-o", str(tmp_path / "o"), "--model", str(bundle), "-q"],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 1 and "Traceback" not in run.stderr, run.stderr
    errors = [line for line in run.stderr.splitlines() if line.startswith("error: ")]
    assert sorted(line.split(": ")[1] for line in errors) == sorted(bad), run.stderr
    assert all(line.startswith(("error: ", "warning: ")) for line in run.stderr.splitlines()), run.stderr
    assert (tmp_path / "o" / "CT_small.json").exists()
    run = subprocess.run([sys.executable, "-m", "vertxnet.cli.infer", good, "-o", str(tmp_path / "o2"), "--model", str(bundle), "-q"],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0 and run.stderr == "", run.stderr
