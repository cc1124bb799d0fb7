"""Parts of the latency benchmark (vertxnet.evaluation.benchmark): the MAC counter against
hand-computed counts, timing summaries, the peak measurement, checkpoint names from the manifest."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from vertxnet.evaluation.benchmark import Summary, count_macs, measure_peak_flops, node_macs


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
    from vertxnet.evaluation.benchmark import checkpoint_names
    from vertxnet.bundle import Bundle
    from vertxnet.preprocess import PreprocessConfig

    def bundle(training):
        return Bundle(Path("."), {"training": training}, PreprocessConfig(), {}, "0" * 64)

    assert checkpoint_names(bundle({"unet": {"checkpoint": "best.pt"}, "maskrcnn": {"checkpoint": "last.pt"}})) == {"unet": "best.pt", "maskrcnn": "last.pt"}
    # Missing entries fall back to best.pt; a path that leaves the run folder is not followed.
    assert checkpoint_names(bundle({"maskrcnn": {"checkpoint": "../../etc/passwd"}})) == {"unet": "best.pt", "maskrcnn": "best.pt"}


def test_peak_is_measured_in_process_and_under_a_thread_limit():
    inline = measure_peak_flops(64, 2)
    limited = measure_peak_flops(64, 2, threads=1)  # the same routine, in a child with one BLAS thread
    for peak in (inline, limited):
        assert peak.flops_per_s > 0 and len(peak.seconds) == 2
    assert limited.threads == 1 and inline.threads is None
