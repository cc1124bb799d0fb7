"""vertx-bench on the shipped demo bundle: a short run writes a complete JSON report; bad use fails cleanly."""

from __future__ import annotations

import json
import math

import pytest

from vertxnet.evaluation.benchmark import BASELINE, STAGES
from vertxnet.bundle import default_bundle_path
from vertxnet.cli.bench import main


@pytest.fixture(scope="module")
def bench_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench") / "bench.json"
    code = main(["--model", str(default_bundle_path()), "--size", "256", "--images", "2", "--warmup", "1", "--runs", "2",
                 "--json", str(out), "--quiet"])
    return code, out


def test_short_run_writes_every_stage(bench_run, capsys):
    code, out = bench_run
    assert code == 0
    report = json.loads(out.read_text())
    stages = report["pipeline"]["stages"]
    assert list(stages) == list(STAGES)
    for name, s in stages.items():
        assert s["n"] == 2
        assert 0 <= s["median_ms"] <= s["p90_ms"] <= s["p99_ms"], name
    # The total covers decode and every processing stage of the same predictions.
    assert stages["total"]["median_ms"] >= stages["maskrcnn"]["median_ms"]
    throughput = report["pipeline"]["throughput"]
    assert throughput["concurrent_images_per_s"] > 0 and throughput["sequential_images_per_s"] > 0
    assert report["peak_rss_bytes"]["after_pipeline"] > 10 * 2**20


def test_backends_side_by_side_against_the_default_session(bench_run):
    _, out = bench_run
    report = json.loads(out.read_text())
    variants = {v["name"]: v for v in report["variants"]}
    baseline = variants[BASELINE]["models"]
    for model in ("unet", "maskrcnn"):
        assert math.isclose(baseline[model]["speedup_vs_baseline"], 1.0)
    # Session options change speed, never results: the fp32 variants reproduce the baseline.
    for name, v in variants.items():
        if name.startswith("ort-cpu") and "int8" not in name and "fp16" not in name and name != BASELINE:
            for model, entry in v["models"].items():
                assert entry["median_ms"] > 0
                assert entry["max_abs_output_diff_vs_baseline"] < 1e-3, (name, model)
    # Without checkpoints the report says why PyTorch eager was not timed.
    assert any("PyTorch eager not run" in note for note in report["notes"])


def test_flops_against_the_measured_peak(bench_run):
    _, out = bench_run
    report = json.loads(out.read_text())
    for model in ("unet", "maskrcnn"):
        assert report["macs"][model]["macs"] > 0
        share = report["compute_share"][model]
        assert 0 < share["baseline_share_of_peak_same_threads"]
    assert report["macs"]["maskrcnn"]["detections"] is not None
    assert report["peaks"]["all"]["gflops_per_s"] > 0


def test_usage_errors_exit_2(capsys):
    assert main(["--runs", "0"]) == 2
    assert "error: runs must be" in capsys.readouterr().err
    assert main(["--backend", "no-such-backend"]) == 2


def test_bad_bundle_exits_1_with_one_line(tmp_path, capsys):
    out = tmp_path / "bench.json"
    assert main(["--model", str(tmp_path), "--runs", "1", "--json", str(out), "--quiet"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "manifest.json" in err and "\n" not in err
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_given_films_are_timed_as_stored_with_each_stages_share(tmp_path, capsys):
    import cv2

    from vertxnet.data.phantom import PhantomConfig, generate

    image, _ = generate(PhantomConfig(view="lumbar", size=600, seed=7), 0)
    film = tmp_path / "my film.png"
    cv2.imwrite(str(film), (image >> 8).astype("uint8"))
    out = tmp_path / "bench.json"
    assert main(["--input", str(film), "--warmup", "1", "--runs", "2", "--no-compare", "--no-flops", "--json", str(out), "--quiet"]) == 0
    table = capsys.readouterr().out
    assert "1 given film(s) (my film.png)" in table and "share" in table
    report = json.loads(out.read_text())
    assert report["config"]["inputs"] == [str(film)]
    shares = report["pipeline"]["share_of_total"]
    assert set(shares) == set(STAGES) - {"total"}
    stages = report["pipeline"]["stages"]
    for name, share in shares.items():
        assert share == pytest.approx(stages[name]["median_ms"] / stages["total"]["median_ms"])
    assert 0 < shares["unet"] < 1 and 0 < shares["decode"] < 1


def test_a_given_film_that_cannot_be_read_exits_1_naming_it(tmp_path, capsys):
    missing = tmp_path / "nowhere.dcm"
    assert main(["--input", str(missing), "--runs", "1", "--no-compare", "--no-flops", "--quiet"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "nowhere.dcm" in err and "\n" not in err
