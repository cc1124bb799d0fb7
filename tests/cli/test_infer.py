"""vertx-infer end to end on hand-built models: outputs, bad inputs, exit codes, atomic writes."""

from __future__ import annotations

import json
import shutil
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import cv2
import jsonschema
import numpy as np

import vertxnet
import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "pipeline"))
sys.path.insert(0, str(ROOT / "tests" / "io"))

from vertxnet.cli.infer import main  # noqa: E402

pytestmark = pytest.mark.train  # the hand-built ONNX models need the onnx package

from vertxnet.result import result_schema  # noqa: E402

SCHEMA = result_schema()
WIDTH, HEIGHT, SIZE = 300, 420, 128
BLOCKS = [(100, 40 + 70 * i, 200, 90 + 70 * i) for i in range(5)]


@pytest.fixture(scope="module")
def bundle(tmp_path_factory) -> Path:
    import synthetic_bundle as sb
    boxes = sb.model_boxes_for(BLOCKS, WIDTH, HEIGHT, SIZE)
    return sb.write_bundle(tmp_path_factory.mktemp("cli") / "bundle", SIZE, boxes, [0.9] * 5, [2, 1, 1, 1, 1])


@pytest.fixture(scope="module")
def film() -> np.ndarray:
    import synthetic_bundle as sb

    return sb.blocks_image(WIDTH, HEIGHT, BLOCKS)


def _png(path: Path, image: np.ndarray) -> Path:
    assert cv2.imwrite(str(path), image)
    return path


def _dicom(path: Path, film: np.ndarray, **kwargs) -> Path:
    from dicom_factory import make_dicom

    pixels = np.round(film.astype(np.float64) / 65535 * 4095).astype(np.uint16)
    return make_dicom(path, pixels, bits_stored=12, **kwargs)


def _png_header_only(path: Path, width: int, height: int) -> Path:
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + struct.pack(">I", len(ihdr)) + chunk + struct.pack(">I", zlib.crc32(chunk)))
    return path


def _run(argv, capsys) -> tuple[int, str]:
    code = main([str(a) for a in argv])
    return code, capsys.readouterr().err


def _leftovers(outdir: Path) -> list[str]:
    return sorted(p.name for p in outdir.iterdir() if ".tmp" in p.name)


def test_writes_every_format_for_a_good_image(bundle, film, tmp_path, capsys):
    from vertxnet.levels import level_index

    src = _png(tmp_path / "lateral.png", film)
    out = tmp_path / "out"
    code, err = _run([src, "-o", out, "--model", bundle, "--format", "json,coco,mask,overlay"], capsys)
    assert code == 0, err
    assert sorted(p.name for p in out.iterdir()) == ["lateral.coco.json", "lateral.json", "lateral.mask.png", "lateral.overlay.png"]
    doc = json.loads((out / "lateral.json").read_text())
    jsonschema.validate(doc, SCHEMA)
    assert [v["label"] for v in doc["vertebrae"]] == ["C2", "C3", "C4", "C5", "C6"]
    assert doc["input"]["path"] == str(src)
    coco = json.loads((out / "lateral.coco.json").read_text())
    assert len(coco["annotations"]) == 5 and coco["images"][0]["file_name"] == "lateral.png"
    mask = cv2.imread(str(out / "lateral.mask.png"), cv2.IMREAD_UNCHANGED)
    assert mask.dtype == np.uint8 and mask.shape == (HEIGHT, WIDTH)
    assert set(np.unique(mask)) == {0} | {level_index(n) for n in ("C2", "C3", "C4", "C5", "C6")}
    overlay = cv2.imread(str(out / "lateral.overlay.png"), cv2.IMREAD_UNCHANGED)
    assert overlay.shape == (HEIGHT, WIDTH, 3)
    assert "1 image: 1 written" in err


def test_sixteen_bit_mask(bundle, film, tmp_path, capsys):
    src = _png(tmp_path / "a.png", film)
    code, err = _run([src, "-o", tmp_path / "o", "--model", bundle, "--format", "mask", "--mask-bits", "16"], capsys)
    assert code == 0, err
    assert cv2.imread(str(tmp_path / "o" / "a.mask.png"), cv2.IMREAD_UNCHANGED).dtype == np.uint16


def test_bad_inputs_are_reported_and_skipped(bundle, film, tmp_path, capsys):
    from dicom_factory import make_dicom

    src = tmp_path / "in"
    src.mkdir()
    good = [_png(src / "good1.png", film), _dicom(src / "good2.dcm", film)]
    (src / "empty.png").write_bytes(b"")
    truncated = (src / "truncated.png")
    truncated.write_bytes(good[0].read_bytes()[:300])
    (src / "notes.dcm").write_text("this is a text file, not a DICOM image\n")
    make_dicom(src / "nopixels.dcm", np.zeros((64, 64), np.uint16), with_pixel_data=False)
    _png(src / "tiny.png", np.array([[128]], np.uint8))
    _png(src / "constant.png", np.full((200, 200), 1000, np.uint16))
    _png_header_only(src / "huge.png", 50000, 50000)
    rng = np.random.default_rng(0)
    photo = cv2.GaussianBlur(rng.integers(0, 256, (240, 320, 3), dtype=np.uint8), (0, 0), 3)
    photo[..., 0] = 30  # strongly coloured, like a holiday photo
    _png(src / "holiday.png", photo)
    bad = ["empty.png", "truncated.png", "notes.dcm", "nopixels.dcm", "tiny.png", "constant.png", "huge.png", "holiday.png"]

    out = tmp_path / "out"
    code, err = _run([src, "-o", out, "--model", bundle, "--format", "json,mask"], capsys)
    assert code == 1
    error_lines = [line for line in err.splitlines() if line.startswith("error: ")]
    assert len(error_lines) == len(bad), err
    for name in bad:
        assert any(str(src / name) in line for line in error_lines), (name, err)
    assert sorted(p.name for p in out.iterdir()) == ["good1.json", "good1.mask.png", "good2.json", "good2.mask.png"]
    assert _leftovers(out) == []
    assert "10 images: 2 written, 8 failed (see above)" in err


def test_dicom_seg_for_dicom_inputs_and_a_clear_refusal_otherwise(bundle, film, tmp_path, capsys):
    import pydicom

    dcm = _dicom(tmp_path / "film.dcm", film)
    png = _png(tmp_path / "film_png.png", film)
    out = tmp_path / "out"
    code, err = _run([dcm, png, "-o", out, "--model", bundle, "--format", "json,dicom-seg"], capsys)
    assert code == 1  # an output was refused
    errors = [line for line in err.splitlines() if line.startswith("error: ")]
    assert errors == [f"error: {png}: film_png.seg.dcm not written: dicom-seg needs a DICOM input (this image is not DICOM)"]
    # Each output on its own: the PNG's JSON is written all the same.
    assert sorted(p.name for p in out.iterdir()) == ["film.json", "film.seg.dcm", "film_png.json"]
    assert "2 images: 1 written, 1 written in part (see above)" in err
    seg = pydicom.dcmread(out / "film.seg.dcm")
    assert seg.Modality == "SEG" and len(seg.SegmentSequence) == 5
    # nothing asked for can be made: the input fails, nothing is written for it
    code, err = _run([png, "-o", tmp_path / "out2", "--model", bundle, "--format", "dicom-seg"], capsys)
    assert code == 1 and "1 image: 0 written, 1 failed (see above)" in err
    assert list((tmp_path / "out2").iterdir()) == []


def _stripped_j2k(path: Path, film: np.ndarray) -> Path:
    """A film de-identified as VinDr-SpineXR's are: no SOP Class (file meta too), no Modality, no
    Frame of Reference, hex strings for UIDs, a JPEG 2000 frame."""
    import warnings

    import pydicom
    from dicom_factory import make_dataset
    from pydicom.uid import JPEG2000Lossless

    ds = make_dataset(np.round(film.astype(np.float64) / 65535 * 4095).astype(np.uint16), bits_stored=12)
    ds.compress(JPEG2000Lossless)
    del ds.SOPClassUID, ds.Modality, ds.file_meta.MediaStorageSOPClassUID
    ds.preamble = b"\0" * 128
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pydicom warns about each invalid UID it is given
        ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID = "77ab01cd", "88ef23ab", "99cd45ef"
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        pydicom.dcmwrite(path, ds, enforce_file_format=False)
    return path


def test_a_stripped_de_identified_dicom_gives_every_output(bundle, film, tmp_path, capsys):
    import highdicom as hd

    src = _stripped_j2k(tmp_path / "vindr.dicom", film)
    out = tmp_path / "out"
    code, err = _run([src, "-o", out, "--model", bundle, "--format", "json,overlay,dicom-seg,sr,coco"], capsys)
    assert code == 0, err
    assert "Traceback" not in err and "error" not in err
    assert sorted(p.name for p in out.iterdir()) == ["vindr.coco.json", "vindr.json", "vindr.overlay.png", "vindr.seg.dcm", "vindr.sr.dcm"]
    doc = json.loads((out / "vindr.json").read_text())
    jsonschema.validate(doc, SCHEMA)
    assert "dicom_header_repaired" in doc["flags"]
    repairs = {r["attribute"]: r for r in doc["dicom_header_repairs"]}
    assert {k: repairs[k]["original"] for k in ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID")} == {
        "StudyInstanceUID": "77ab01cd", "SeriesInstanceUID": "88ef23ab", "SOPInstanceUID": "99cd45ef"}
    assert repairs["SOPClassUID"]["original"] is None and repairs["Modality"]["value"] == "DX"
    seg = hd.seg.segread(out / "vindr.seg.dcm")
    assert seg.number_of_segments == 5 and seg.StudyInstanceUID == repairs["StudyInstanceUID"]["value"]
    source = seg.PerFrameFunctionalGroupsSequence[0].DerivationImageSequence[0].SourceImageSequence[0]
    assert source.ReferencedSOPInstanceUID == repairs["SOPInstanceUID"]["value"]
    report = hd.sr.srread(out / "vindr.sr.dcm")
    assert len(report.content.get_planar_roi_measurement_groups()) == len(doc["vertebrae"])
    # a conformant DX film needs no repair and says none
    dcm = _dicom(tmp_path / "dx.dcm", film)
    assert _run([dcm, "-o", out, "--model", bundle], capsys)[0] == 0
    clean = json.loads((out / "dx.json").read_text())
    assert "dicom_header_repaired" not in clean["flags"] and "dicom_header_repairs" not in clean


def test_a_failing_output_costs_none_of_the_others(bundle, film, tmp_path, capsys, monkeypatch):
    """A DICOM SEG whose encoder fails is refused with a one-line reason; the JSON, overlay, COCO
    and an SR (then referring to the outlines) of that film are written."""
    import highdicom as hd

    from vertxnet.result import Result

    def broken(self, **kwargs):
        raise RuntimeError("encoder\nexploded")

    monkeypatch.setattr(Result, "to_dicom_seg", broken)
    dcm = _dicom(tmp_path / "film.dcm", film)
    out = tmp_path / "out"
    code, err = _run([dcm, "-o", out, "--model", bundle, "--format", "json,dicom-seg,overlay,coco,sr"], capsys)
    assert code == 1
    assert [line for line in err.splitlines() if line.startswith("error: ")] == [
        f"error: {dcm}: film.seg.dcm not written: RuntimeError: encoder exploded"]
    assert "Traceback" not in err
    assert sorted(p.name for p in out.iterdir()) == ["film.coco.json", "film.json", "film.overlay.png", "film.sr.dcm"]
    groups = hd.sr.srread(out / "film.sr.dcm").content.get_planar_roi_measurement_groups()
    assert {g.reference_type.value for g in groups} == {"111030"}  # outlines, no SEG to point at
    assert _leftovers(out) == []


def test_globs_folders_recursion_and_repeated_stems(bundle, film, tmp_path, capsys):
    (tmp_path / "a" / "deep").mkdir(parents=True)
    (tmp_path / "b").mkdir()
    _png(tmp_path / "a" / "x.png", film)
    _png(tmp_path / "a" / "deep" / "y.png", film)
    _png(tmp_path / "b" / "x.png", film)
    (tmp_path / "a" / "readme.txt").write_text("not an image")
    out = tmp_path / "out"
    code, err = _run([tmp_path / "a", str(tmp_path / "b" / "*.png"), "-o", out, "--model", bundle], capsys)
    assert code == 0, err
    assert sorted(p.name for p in out.iterdir()) == ["x-2.json", "x.json"]
    out2 = tmp_path / "out2"
    code, err = _run([tmp_path / "a", "-o", out2, "--model", bundle, "--recursive", "-q"], capsys)
    assert code == 0 and err == ""
    assert sorted(p.name for p in out2.iterdir()) == ["x.json", "y.json"]
    code, err = _run([tmp_path / "nothing-*.png", tmp_path / "missing.png", "-o", out2, "--model", bundle], capsys)
    assert code == 1
    assert "no file matches" in err and f"{tmp_path / 'missing.png'}: file not found" in err


def test_outputs_are_identical_across_runs_without_timings(bundle, film, tmp_path, capsys):
    src = _png(tmp_path / "f.png", film)
    for run in ("r1", "r2"):
        assert _run([src, "-o", tmp_path / run, "--model", bundle, "--format", "json,coco,mask", "--no-timings"], capsys)[0] == 0
    for name in ("f.json", "f.coco.json", "f.mask.png"):
        assert (tmp_path / "r1" / name).read_bytes() == (tmp_path / "r2" / name).read_bytes()
    assert "timings_ms" not in json.loads((tmp_path / "r1" / "f.json").read_text())


def test_thresholds_from_the_command_line(bundle, film, tmp_path, capsys):
    src = _png(tmp_path / "f.png", film)
    code, _ = _run([src, "-o", tmp_path / "o", "--model", bundle, "--score-threshold", "0.95"], capsys)
    # Every detection scores 0.9: with none left, only U-Net blobs remain, unnamed.
    assert code == 0
    doc = json.loads((tmp_path / "o" / "f.json").read_text())
    assert doc["reference"] is None and all(v["label"] is None for v in doc["vertebrae"])


@pytest.mark.parametrize(
    "args, message",
    [
        (["--format", "json,pdf"], "unknown format"),
        (["--threads", "0"], "positive integer"),
        (["--eta", "1.5"], "eta"),
        (["--eta", "abc"], "expected a number"),
        (["--model", "/nonexistent/bundle"], "model bundle folder not found"),
        (["--backend", "cuda"], "invalid choice"),
        (["--precision", "int8"], "no int8 variant"),
    ],
)
def test_usage_errors_exit_2(args, message, bundle, film, tmp_path, capsys):
    src = _png(tmp_path / "f.png", film)
    argv = [src, "-o", tmp_path / "o", *args]
    if "--model" not in args:
        argv += ["--model", bundle]
    code, err = _run(argv, capsys)
    assert code == 2 and message in err


def test_missing_output_folder_argument_is_a_usage_error(bundle, film, tmp_path, capsys):
    code, err = _run([_png(tmp_path / "f.png", film)], capsys)
    assert code == 2 and "-o/--outdir" in err


def test_unavailable_backend_is_a_usage_error(bundle, film, tmp_path, capsys):
    import importlib.util

    if importlib.util.find_spec("tensorrt") is not None:
        pytest.skip("TensorRT installed: the backend is available")
    code, err = _run([_png(tmp_path / "f.png", film), "-o", tmp_path / "o", "--model", bundle, "--backend", "tensorrt"], capsys)
    assert code == 2 and err.startswith("error: backend 'tensorrt' is not available here")
    assert len(err.strip().splitlines()) == 1


def test_tampered_bundle_exits_1_naming_the_file(bundle, film, tmp_path, capsys):
    copy = tmp_path / "tampered"
    shutil.copytree(bundle, copy)
    data = bytearray((copy / "maskrcnn.onnx").read_bytes())
    data[-1] ^= 0xFF
    (copy / "maskrcnn.onnx").write_bytes(bytes(data))
    out = tmp_path / "o"
    code, err = _run([_png(tmp_path / "f.png", film), "-o", out, "--model", copy], capsys)
    assert code == 1
    assert err.strip() == f"error: {copy / 'maskrcnn.onnx'}: sha256 does not match the manifest: the file is corrupt or was modified"
    assert list(out.iterdir()) == []


def test_console_entry_point_runs_as_a_module(bundle, film, tmp_path):
    src = _png(tmp_path / "f.png", film)
    # The vertxnet this test imported (installed, or the source tree with its built core).
    env = {"PYTHONPATH": str(Path(vertxnet.__file__).resolve().parents[1]), "PATH": "/usr/bin:/bin"}
    proc = subprocess.run(
        [sys.executable, "-m", "vertxnet.cli.infer", str(src), "-o", str(tmp_path / "o"), "--model", str(bundle)],
        capture_output=True, text=True, env=env, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "" and proc.stderr.strip() == "1 image: 1 written"
