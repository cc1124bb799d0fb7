"""Smoke runs of the accuracy and FLOP benchmarks on the shipped demo bundle, and the MAC counter
checked against hand-computed counts."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from vertxnet.benchmark import Summary, count_macs, node_macs
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


def test_node_macs_formulas():
    # Conv: 1x8x10x10 out, weight 8 x (4/2 groups) x 3 x 3 -> 800 outputs x 18 MACs
    assert node_macs("Conv", [[1, 4, 10, 10], [8, 2, 3, 3]], [[1, 8, 10, 10]]) == 800 * 18
    # ConvTranspose: every input element spreads over C_out/group x kh x kw
    assert node_macs("ConvTranspose", [[1, 4, 5, 5], [4, 3, 2, 2]], [[1, 3, 10, 10]]) == 100 * 12
    assert node_macs("Gemm", [[7, 5]], [[7, 3]]) == 7 * 5 * 3
    assert node_macs("MatMul", [[2, 7, 5], [5, 3]], [[2, 7, 3]]) == 2 * 7 * 5 * 3
    assert node_macs("Conv", [[1, 4, 10, 10]], [[1, 8, 10, 10]]) is None  # weight shape unknown


@pytest.mark.train  # builds the model with the onnx package
def test_count_macs_matches_a_hand_counted_graph(tmp_path):
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    init = [
        numpy_helper.from_array(rng.standard_normal((8, 2, 3, 3)).astype(np.float32), "w_conv"),
        numpy_helper.from_array(rng.standard_normal((8, 4, 2, 2)).astype(np.float32), "w_up"),
        numpy_helper.from_array(rng.standard_normal((4 * 16 * 16, 6)).astype(np.float32), "w_fc"),
        numpy_helper.from_array(rng.standard_normal((6, 5)).astype(np.float32), "w_mm"),
        numpy_helper.from_array(np.array([1, -1], dtype=np.int64), "flat_shape"),
    ]
    nodes = [
        helper.make_node("Conv", ["image", "w_conv"], ["c"], group=2, pads=[1, 1, 1, 1], strides=[2, 2]),  # (1,8,8,8)
        helper.make_node("ConvTranspose", ["c", "w_up"], ["u"], strides=[2, 2]),  # (1,4,16,16)
        helper.make_node("Reshape", ["u", "flat_shape"], ["f"]),  # (1, 1024)
        helper.make_node("Gemm", ["f", "w_fc"], ["g"]),  # (1, 6)
        helper.make_node("MatMul", ["g", "w_mm"], ["out"]),  # (1, 5)
    ]
    graph = helper.make_graph(nodes, "macs", [helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 4, 16, 16])],
                              [helper.make_tensor_value_info("out", TensorProto.FLOAT, None)], init)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    path = tmp_path / "macs.onnx"
    onnx.save(model, path)
    result = count_macs(path, np.zeros((1, 4, 16, 16), np.float32))
    expected = {
        "Conv": 8 * 8 * 8 * (2 * 3 * 3),
        "ConvTranspose": 8 * 8 * 8 * (4 * 2 * 2),
        "Gemm": 1024 * 6,
        "MatMul": 6 * 5,
    }
    assert result.by_op == expected
    assert result.macs == sum(expected.values()) and result.nodes == 4 and result.uncounted == []


def test_summary_percentiles():
    s = Summary.of([float(v) for v in range(1, 101)])
    assert s.median == pytest.approx(50.5) and s.p90 == pytest.approx(90.1) and s.p99 == pytest.approx(99.01)
    with pytest.raises(ValueError):
        Summary.of([])


def test_torch_checkpoints_follow_the_manifest():
    from vertxnet.benchmark import checkpoint_names
    from vertxnet.bundle import Bundle
    from vertxnet.preprocess import PreprocessConfig

    def bundle(training):
        return Bundle(Path("."), {"training": training}, PreprocessConfig(), {}, "0" * 64)

    assert checkpoint_names(bundle({"unet": {"checkpoint": "best.pt"}, "maskrcnn": {"checkpoint": "last.pt"}})) == {"unet": "best.pt", "maskrcnn": "last.pt"}
    # Missing entries fall back to best.pt; a path that leaves the run folder is not followed.
    assert checkpoint_names(bundle({"maskrcnn": {"checkpoint": "../../etc/passwd"}})) == {"unet": "best.pt", "maskrcnn": "best.pt"}
