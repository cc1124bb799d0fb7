"""Tiny hand-built model bundles that follow the ONNX contract of docs/DESIGN.md exactly.

The "U-Net" thresholds the preprocessed image (bright = vertebra), and the "Mask R-CNN" returns
fixed detections, so the pipeline's geometry can be checked against known answers. Built with
``onnx.helper`` (the train extra); tests elsewhere import this module after putting this folder
on ``sys.path``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from vertxnet.bundle import write_manifest
from vertxnet.preprocess import PreprocessConfig

OPSET = 17


def _save(graph: onnx.GraphProto, path: Path) -> None:
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="vertxnet-tests")
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))


def threshold_unet(path: Path, size: int, *, cut: float = 0.0, gain: float = 20.0) -> Path:
    """logits = gain * (image - cut): pixels brighter than ``cut`` (preprocessed units) are vertebra."""
    image = helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 1, size, size])
    logits = helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 1, size, size])
    nodes = [
        helper.make_node("Sub", ["image", "cut"], ["centred"]),
        helper.make_node("Mul", ["centred", "gain"], ["logits"]),
    ]
    inits = [numpy_helper.from_array(np.array(cut, np.float32), "cut"), numpy_helper.from_array(np.array(gain, np.float32), "gain")]
    _save(helper.make_graph(nodes, "threshold_unet", [image], [logits], inits), path)
    return path


def fixed_maskrcnn(path: Path, size: int, boxes: np.ndarray, scores: np.ndarray, labels: np.ndarray, mask_probs: np.ndarray | None = None) -> Path:
    """Returns the given detections whatever the image (the image feeds a zero term so it is used)."""
    boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
    k = len(boxes)
    if mask_probs is None:
        mask_probs = np.ones((k, 28, 28), np.float32)
    image = helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 1, size, size])
    outs = [
        helper.make_tensor_value_info("boxes", TensorProto.FLOAT, [k, 4]),
        helper.make_tensor_value_info("scores", TensorProto.FLOAT, [k]),
        helper.make_tensor_value_info("labels", TensorProto.INT64, [k]),
        helper.make_tensor_value_info("mask_probs", TensorProto.FLOAT, [k, 28, 28]),
    ]
    nodes = [
        helper.make_node("ReduceMean", ["image"], ["mean"], keepdims=0),
        helper.make_node("Mul", ["mean", "zero"], ["nothing"]),
        helper.make_node("Add", ["boxes_c", "nothing"], ["boxes"]),
        helper.make_node("Add", ["scores_c", "nothing"], ["scores"]),
        helper.make_node("Identity", ["labels_c"], ["labels"]),
        helper.make_node("Add", ["masks_c", "nothing"], ["mask_probs"]),
    ]
    inits = [
        numpy_helper.from_array(np.array(0.0, np.float32), "zero"),
        numpy_helper.from_array(boxes, "boxes_c"),
        numpy_helper.from_array(np.asarray(scores, np.float32).reshape(k), "scores_c"),
        numpy_helper.from_array(np.asarray(labels, np.int64).reshape(k), "labels_c"),
        numpy_helper.from_array(np.asarray(mask_probs, np.float32).reshape(k, 28, 28), "masks_c"),
    ]
    _save(helper.make_graph(nodes, "fixed_maskrcnn", [image], outs, inits), path)
    return path


def write_bundle(root: Path, size: int, boxes, scores, labels, mask_probs=None, *, unet_cut: float = 0.0, unet_gain: float = 20.0, thresholds: dict | None = None) -> Path:
    """A complete bundle folder (manifest with sha256 of both models) at ``root``."""
    root.mkdir(parents=True, exist_ok=True)
    threshold_unet(root / "unet.onnx", size, cut=unet_cut, gain=unet_gain)
    fixed_maskrcnn(root / "maskrcnn.onnx", size, boxes, scores, labels, mask_probs)
    manifest = {
        "format": "vertxnet-bundle",
        "format_version": 1,
        "name": "synthetic-test",
        "version": "0.0.1",
        "created": "2026-01-01",
        "preprocess": PreprocessConfig(input_size=size, mean=0.5, std=0.25).to_manifest(),
        "classes": ["background", "vertebra", "C2", "S1"],
        "thresholds": {"unet": 0.5, "mrcnn_score": 0.5, "mask": 0.5, "eta": 0.6, "lam": 2.0, "tau": 0.3, "ref_score": 0.5, **(thresholds or {})},
        "models": {"unet": {"file": "unet.onnx"}, "maskrcnn": {"file": "maskrcnn.onnx"}},
        "files": {"unet.onnx": {}, "maskrcnn.onnx": {}},
        "training": {"data": "none: hand-built test models"},
        "metrics": {},
    }
    write_manifest(root, manifest)
    return root


def model_boxes_for(blocks, width: int, height: int, size: int) -> np.ndarray:
    """The blocks (x0, y0, x1, y1 in film pixels) as boxes in the letterboxed model input."""
    from vertxnet.preprocess import letterbox

    _, box = letterbox(np.zeros((height, width), np.float32), size)
    return np.array([box.to_model(np.array([[x0, y0], [x1, y1]], float)).reshape(-1) for x0, y0, x1, y1 in blocks])


def blocks_image(width: int, height: int, blocks: list[tuple[int, int, int, int]], *, dtype=np.uint16, seed: int = 0) -> np.ndarray:
    """Dark image with bright axis-aligned blocks (x0, y0, x1, y1, pixel-index bounds, end exclusive)."""
    rng = np.random.default_rng(seed)
    full = np.iinfo(dtype).max
    img = np.full((height, width), 0.1 * full) + rng.normal(0, 0.005 * full, (height, width))
    for x0, y0, x1, y1 in blocks:
        img[y0:y1, x0:x1] = 0.9 * full
    return np.clip(np.round(img), 0, full).astype(dtype)
