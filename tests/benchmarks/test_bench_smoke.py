"""Smoke runs of the accuracy, FLOP and decode benchmarks (benchmarks/) on the shipped demo bundle."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from vertxnet.bundle import default_bundle_path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))

import accuracy  # noqa: E402
import flops  # noqa: E402


def test_accuracy_on_a_few_films_writes_the_three_methods(tmp_path):
    json_out, md_out = tmp_path / "acc.json", tmp_path / "acc.md"
    code = accuracy.main(["--model", str(default_bundle_path()), "--n", "2", "--json", str(json_out),
                          "--markdown", str(md_out), "--etas", "0.4,0.6", "--lams", "2,3", "--quiet"])
    assert code == 0
    payload = json.loads(json_out.read_text())
    assert set(payload["sets"]) == {"cervical normal", "lumbar normal", "cervical hard", "lumbar hard"}
    for entry in payload["sets"].values():
        assert entry["films"] == 2
        assert entry["seed"] >= 900000
        assert set(entry["methods"]) == {"U-Net", "Mask R-CNN", "VertXNet"}
        for method in entry["methods"].values():
            s = method["summary"]
            assert 0.0 <= s["dice_mean"] <= 1.0 and 0.0 <= s["pq_0.7"] <= 1.0
            assert s["n_truth"] > 0
        assert set(entry["ablation"]["eta"]) == {"0.4", "0.6"} and set(entry["ablation"]["lam"]) == {"2", "3"}
        # The per-film comparison pools to the same means as the tables.
        for name in ("U-Net", "Mask R-CNN"):
            gain = entry["ensemble_minus"][name]
            expected = entry["methods"]["VertXNet"]["summary"]["dice_mean"] - entry["methods"][name]["summary"]["dice_mean"]
            assert gain["difference"] == pytest.approx(expected, abs=1e-9)
            assert gain["ci95_low"] <= gain["difference"] + 1e-9 and gain["difference"] <= gain["ci95_high"] + 1e-9
        # eta 0.6 and lam 2 are the bundle defaults here: the ablation reproduces the main row.
        if payload["thresholds"]["eta"] == 0.6 and payload["thresholds"]["lam"] == 2.0:
            assert entry["ablation"]["eta"]["0.6"] == entry["methods"]["VertXNet"]["summary"]
    table = md_out.read_text()
    for name in ("| U-Net |", "| Mask R-CNN |", "| VertXNet |", "Table 1", "Table 2", "Table 3"):
        assert name in table


def test_accuracy_refuses_training_seeds(capsys):
    assert accuracy.main(["--seed", "1000", "--n", "1"]) == 2
    assert "900000" in capsys.readouterr().err


def test_flops_reports_positive_macs_for_both_networks(tmp_path):
    out = tmp_path / "flops.json"
    assert flops.main(["--model", str(default_bundle_path()), "--size", "256", "--runs", "1", "--matrix-n", "256", "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    for model in ("unet", "maskrcnn"):
        m = result["models"][model]
        assert m["macs"] > 0 and m["nodes_counted"] > 0 and m["nodes_uncounted"] == []
        assert m["share_of_peak_same_threads"] > 0
    assert result["models"]["maskrcnn"]["by_op"]["Conv"] > 0
    assert result["peaks"]["all_cores"]["gflops_per_s"] > 0


def test_bench_decode_reports_ratios_and_outline_agreement(tmp_path):
    import bench_decode

    cfg = bench_decode.BenchConfig(repeats=1, cache=str(tmp_path), dicom_size=(400, 900), png_size=(600, 700), outlines=2)
    report = bench_decode.run(cfg)
    films = {f["film"]: f for f in report["films"]}
    assert set(films) == {"dicom_j2k_12bit", "png_8bit"}
    for f in films.values():
        assert f["ratio_before"] > 0 and f["ratio_after"] > 0
        assert f["networks_ms"]["unet"] > 0 and f["networks_ms"]["maskrcnn"] > 0
    assert films["dicom_j2k_12bit"]["reduced_factor"] == 1  # 900 px is under twice the 320 px input
    assert len(report["outlines"]) == 2
    for row in report["outlines"]:
        assert row["film"].endswith("400x900.dcm") and row["vertebrae"][0] > 0
        # without a reduced decode both paths preprocess the same pixels: the outlines agree
        assert row["same_vertebrae"] and row["min_iou"] >= 0.9
