"""Multiply-accumulates of a model run, from the tensor shapes ONNX Runtime's profiler records."""

from __future__ import annotations

import json
import math
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ...errors import BundleError


#: Operators whose multiply-accumulates are counted; everything else (RoiAlign, resize, NMS,
#: element-wise ops) is cheap in comparison and left out.
MAC_OPS = ("Conv", "ConvTranspose", "Gemm", "MatMul")


@dataclass
class ModelMacs:
    """Multiply-accumulates of one model run on one input, from run-time tensor shapes."""

    model: str
    macs: int
    by_op: dict[str, int]
    nodes: int  # MAC nodes counted
    uncounted: list[str]  # MAC nodes whose shapes the profiler did not report
    detections: int | None = None  # Mask R-CNN: K of this run

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model, "macs": self.macs, "gmacs": self.macs / 1e9, "by_op": dict(self.by_op),
                "nodes_counted": self.nodes, "nodes_uncounted": list(self.uncounted), "detections": self.detections}


def _shapes(entries: Any) -> list[list[int]]:
    shapes = []
    for entry in entries or []:
        (dims,) = entry.values()
        shapes.append([int(d) for d in dims])
    return shapes


def node_macs(op: str, inputs: Sequence[Sequence[int]], outputs: Sequence[Sequence[int]]) -> int | None:
    """Multiply-accumulates of one node from its run-time input and output shapes, or None.

    Conv: every output element costs (C_in / group) x kh x kw = prod(W.shape[1:]).
    ConvTranspose: every input element is spread over (C_out / group) x kh x kw outputs.
    Gemm: M x K x N = prod(A) x N (independent of transA). MatMul: prod(Y) x K.
    """
    if not outputs:
        return None
    y = outputs[0]
    if op == "Conv" and len(inputs) >= 2 and len(inputs[1]) >= 3:
        return math.prod(y) * math.prod(inputs[1][1:])
    if op == "ConvTranspose" and len(inputs) >= 2 and len(inputs[1]) >= 3:
        return math.prod(inputs[0]) * math.prod(inputs[1][1:])
    if op == "Gemm" and inputs and len(inputs[0]) == 2 and len(y) == 2:
        return math.prod(inputs[0]) * y[1]
    if op == "MatMul" and inputs and inputs[0]:
        return math.prod(y) * inputs[0][-1]
    return None


def count_macs(model_path: str | Path, tensor: np.ndarray, *, model: str = "") -> ModelMacs:
    """Multiply-accumulates of Conv / ConvTranspose / Gemm / MatMul nodes for one run on ``tensor``.

    The model runs once in ONNX Runtime with graph optimisations off (so the nodes are those of
    the file, not fused or channel-blocked ones) and its profiler on; each node's MACs follow
    from the tensor shapes it actually saw, so the data-dependent parts of Mask R-CNN (RoI heads
    on the proposals and detections of this image, nodes inside If branches) count what ran.
    """
    import onnxruntime as ort

    workdir = Path(tempfile.mkdtemp(prefix="vertx-macs-"))
    try:
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        options.enable_profiling = True
        # Prepacked weights vanish from the profiler's input shapes; the counts need them.
        options.add_session_config_entry("session.disable_prepacking", "1")
        options.profile_file_prefix = str(workdir / "profile")
        options.log_severity_level = 3
        try:
            session = ort.InferenceSession(str(model_path), sess_options=options, providers=["CPUExecutionProvider"])
        except Exception as exc:
            raise BundleError(model_path, f"ONNX Runtime cannot load the model ({' '.join(str(exc).split())[:200]})") from None
        outputs = session.run(None, {session.get_inputs()[0].name: tensor})
        profile = Path(session.end_profiling())
        events = json.loads(profile.read_text())
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    by_op = {op: 0 for op in MAC_OPS}
    nodes, uncounted = 0, []
    for event in events:
        args = event.get("args") or {}
        op = args.get("op_name")
        if event.get("cat") != "Node" or op not in MAC_OPS or not str(event.get("name", "")).endswith("_kernel_time"):
            continue
        macs = node_macs(op, _shapes(args.get("input_type_shape")), _shapes(args.get("output_type_shape")))
        if macs is None:
            uncounted.append(str(event["name"]).removesuffix("_kernel_time"))
            continue
        by_op[op] += macs
        nodes += 1
    names = [o.name for o in session.get_outputs()]
    detections = int(np.asarray(outputs[names.index("boxes")]).shape[0]) if "boxes" in names else None
    return ModelMacs(model or Path(model_path).stem, sum(by_op.values()), by_op, nodes, uncounted, detections)

