"""Export trained U-Net and Mask R-CNN checkpoints to a verified vertxnet model bundle.

Writes ``unet.onnx`` (``image`` (1,1,S,S) → ``logits``), ``maskrcnn.onnx`` (``image`` → ``boxes``,
``scores``, ``labels``, ``mask_probs`` (K,28,28), ``class_probs`` (K,4); no resizing, normalisation or
mask pasting in the graph; K may be 0), optionally ``view.onnx`` (``image`` → ``view_logits``
(1, 5), the film's region, from ``--view``), optional U-Net variants (``unet.int8.onnx`` by ONNX Runtime static
quantization calibrated on training images, ``unet.fp16.onnx``), and ``manifest.json`` through
``vertxnet.bundle.write_manifest``. The bundle is built in a temporary folder and moved into place
only after ``vertxnet.bundle.load_bundle`` accepts it and ONNX Runtime reproduces PyTorch on
preprocessed images within tolerance.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402
import validation as V  # noqa: E402
from train_maskrcnn import MaskRCNNForExport, load_maskrcnn  # noqa: E402
from train_unet import load_unet  # noqa: E402
from train_view import load_view  # noqa: E402

from vertxnet import bundle as vbundle  # noqa: E402
from vertxnet.errors import VertxError  # noqa: E402
from vertxnet.files import temporary_name  # noqa: E402
from vertxnet.levels import MRCNN_CLASSES  # noqa: E402
from vertxnet.preprocess import PreprocessConfig, prepare  # noqa: E402

OPSET = 17
MASKRCNN_OUTPUTS = ["boxes", "scores", "labels", "mask_probs", "class_probs"]
#: The outputs tracing needs (every bundle has them; class_probs came later).
TRACED_OUTPUTS = MASKRCNN_OUTPUTS[:4]


# ---------------------------------------------------------------------------------------------
# Export and verification


def export_unet_onnx(model: nn.Module, input_size: int, path: Path) -> Path:
    dummy = torch.zeros(1, 1, input_size, input_size)
    torch.onnx.export(
        model.eval(), (dummy,), str(path), dynamo=False, opset_version=OPSET,
        input_names=["image"], output_names=["logits"],
    )
    return path


def export_maskrcnn_onnx(model: nn.Module, input_size: int, path: Path) -> Path:
    wrapper = MaskRCNNForExport(model, input_size).eval()
    dummy = torch.zeros(1, 1, input_size, input_size)
    dynamic = {name: {0: "detections"} for name in MASKRCNN_OUTPUTS}
    with torch.no_grad():
        torch.onnx.export(
            wrapper, (dummy,), str(path), dynamo=False, opset_version=OPSET,
            input_names=["image"], output_names=MASKRCNN_OUTPUTS, dynamic_axes=dynamic,
        )
    return path


def export_view_onnx(model: nn.Module, input_size: int, path: Path) -> Path:
    dummy = torch.zeros(1, 1, input_size, input_size)
    torch.onnx.export(
        model.eval(), (dummy,), str(path), dynamo=False, opset_version=OPSET,
        input_names=["image"], output_names=["view_logits"],
    )  # fmt: skip
    return path


def compare_view(model: nn.Module, session, inputs: Sequence[np.ndarray]) -> float:
    worst = 0.0
    for x in inputs:
        with torch.no_grad():
            ref = model(torch.from_numpy(x)).numpy()
        (out,) = session.run(["view_logits"], {"image": x})
        worst = max(worst, float(np.abs(out - ref).max()))
    return worst


def ort_session(path: Path):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = max(1, torch.get_num_threads())
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


@dataclass
class Tolerances:
    unet_logits: float = 1e-3
    maskrcnn_boxes_px: float = 1e-2
    maskrcnn_scores: float = 1e-3
    maskrcnn_mask_probs: float = 1e-3


def compare_unet(model: nn.Module, session, inputs: Sequence[np.ndarray]) -> float:
    worst = 0.0
    for x in inputs:
        with torch.no_grad():
            ref = model(torch.from_numpy(x)).numpy()
        (out,) = session.run(["logits"], {"image": x})
        worst = max(worst, float(np.abs(out - ref).max()))
    return worst


def compare_maskrcnn(model: nn.Module, session, inputs: Sequence[np.ndarray], input_size: int) -> dict[str, Any]:
    """Max abs differences between ONNX Runtime and PyTorch; ValueError if detections differ."""
    wrapper = MaskRCNNForExport(model, input_size).eval()
    worst = {"boxes": 0.0, "scores": 0.0, "mask_probs": 0.0, "class_probs": 0.0, "detections": []}
    for i, x in enumerate(inputs):
        with torch.no_grad():
            ref = [t.numpy() for t in wrapper(torch.from_numpy(x))]
        out = session.run(MASKRCNN_OUTPUTS, {"image": x})
        if len(out[0]) != len(ref[0]):
            raise ValueError(f"check image {i}: ONNX Runtime found {len(out[0])} detections, PyTorch {len(ref[0])}")
        if not np.array_equal(out[2], ref[2]):
            raise ValueError(f"check image {i}: ONNX Runtime and PyTorch disagree on the classes")
        worst["detections"].append(len(ref[0]))
        if len(ref[0]):
            worst["boxes"] = max(worst["boxes"], float(np.abs(out[0] - ref[0]).max()))
            worst["scores"] = max(worst["scores"], float(np.abs(out[1] - ref[1]).max()))
            worst["mask_probs"] = max(worst["mask_probs"], float(np.abs(out[3] - ref[3]).max()))
            worst["class_probs"] = max(worst.get("class_probs", 0.0), float(np.abs(out[4] - ref[4]).max()))
    return worst


class _UNetCalibrationReader:
    """CalibrationDataReader over preprocessed training images (ORT duck-types the interface)."""

    def __init__(self, inputs: Sequence[np.ndarray]):
        self._it = iter([{"image": x} for x in inputs])

    def get_next(self):
        return next(self._it, None)

    def rewind(self):  # pragma: no cover - used by some ORT calibrators
        pass


def quantize_unet_int8(fp32_path: Path, out_path: Path, calibration: Sequence[np.ndarray]) -> Path:
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    reader_cls = type("UNetCalibrationReader", (_UNetCalibrationReader, CalibrationDataReader), {})
    prepped = out_path.with_name(out_path.name + ".pre.onnx")
    try:
        quant_pre_process(str(fp32_path), str(prepped), skip_symbolic_shape=True)
        quantize_static(
            str(prepped), str(out_path), reader_cls(calibration),
            quant_format=QuantFormat.QDQ, per_channel=True,
            activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
        )
    finally:
        prepped.unlink(missing_ok=True)
    return out_path


def convert_unet_fp16(fp32_path: Path, out_path: Path) -> Path:
    import onnx
    from onnxruntime.transformers.float16 import convert_float_to_float16

    model = convert_float_to_float16(onnx.load(str(fp32_path)), keep_io_types=True)
    onnx.save(model, str(out_path))
    return out_path


def unet_dice_onnx(session, inputs: Sequence[np.ndarray], samples: Sequence[C.Sample], tracing: V.Tracing) -> float:
    """Mean foreground Dice of the outlines the pipeline traces from ``session``'s logits."""
    scores = []
    for x, sample in zip(inputs, samples):
        (logits,) = session.run(["logits"], {"image": x})
        scores.append(V.unet_dice(logits[0, 0], sample.content, sample.polygons, tracing))
    return float(np.mean(scores))


def maskrcnn_figures(session, inputs: Sequence[np.ndarray], samples: Sequence[C.Sample], tracing: V.Tracing, *, min_pixels: int = 16) -> dict[str, float]:
    """Detection figures (export/validation.py) of the detections the pipeline traces from ``session``."""
    truth, predicted = [], []
    for n, (x, sample) in enumerate(zip(inputs, samples), start=1):
        outputs = session.run(TRACED_OUTPUTS, {"image": x})
        truth.append(V.truth_record(sample.polygons, sample.labels, sample.content, n, min_pixels=min_pixels))
        predicted.append(V.detection_record(outputs, x.shape[-1], n, tracing))
    return V.detection_figures(truth, predicted)


# ---------------------------------------------------------------------------------------------
# Bundle


@dataclass
class ExportConfig:
    unet_checkpoint: Path
    maskrcnn_checkpoint: Path
    out_dir: Path
    check_data: Path  # COCO file of images not used in training (verification, variant accuracy)
    calibration_data: Path | None = None  # COCO file of training images for INT8 calibration
    name: str = "vertxnet-bundle"
    version: str = "0.1.0"
    description: str = ""
    data_description: str = ""
    data_commands: list[str] = field(default_factory=list)
    export_command: str = ""
    check_images: int = 8
    calibration_images: int = 32
    int8: bool = True
    fp16: bool = True
    threads: int = 2
    view_checkpoint: Path | None = None  # view model (train_view.py best.pt); no view model when None
    tolerances: Tolerances = field(default_factory=Tolerances)
    thresholds: dict[str, float] = field(default_factory=lambda: dict(vbundle.DEFAULT_THRESHOLDS))


def _preprocessed(coco: Path, pre: PreprocessConfig, limit: int) -> tuple[list[np.ndarray], list[C.Sample]]:
    """Inputs through ``vertxnet.preprocess.prepare`` (the inference path) and their samples (truth)."""
    records = C.load_records(coco)[:limit]
    if not records:
        raise ValueError(f"{coco}: no images")
    inputs, samples = [], []
    for rec in records:
        x, _ = prepare(rec.load_image(), pre)
        inputs.append(np.ascontiguousarray(x, dtype=np.float32))
        samples.append(C.prepare_sample(rec, pre))
    return inputs, samples


def _checkpoint_metrics(state: dict) -> dict[str, Any]:
    """Validation figures of the checkpoint's epoch (best.pt stores them; last.pt has the history)."""
    if "metrics" in state:
        return dict(state["metrics"])
    epoch = int(state["epoch"]) + 1
    entry = next((e for e in state.get("history", []) if e.get("epoch") == epoch), {})
    return {k: v for k, v in entry.items() if k.startswith("val_")}


def _run_provenance(checkpoint: Path, state: dict) -> dict[str, Any]:
    run = Path(checkpoint).parent
    commands_file = run / "commands.json"
    config = state.get("config", {})
    return {
        "checkpoint": Path(checkpoint).name,
        "target_masks": state.get("target_masks", "cv2.fillPoly"),
        "commands": json.loads(commands_file.read_text()) if commands_file.is_file() else [],
        "seed": config.get("seed"),
        "epochs": config.get("epochs"),
        "best_epoch": int(state["epoch"]) + 1,
        "train_images": state.get("train_images"),
        "val_images": state.get("val_images"),
        "history": state.get("history", []),
    }


def _replace_dir(tmp: Path, final: Path) -> None:
    old = final.with_name(f"{final.name}.old-{os.getpid()}")
    if final.exists():
        os.replace(final, old)
    os.replace(tmp, final)
    if old.exists():
        shutil.rmtree(old)


def export_bundle(config: ExportConfig) -> Path:
    """Build, verify and install the bundle at ``config.out_dir``; returns its path."""
    import onnxruntime
    import torchvision

    if config.threads > 0:
        torch.set_num_threads(config.threads)
    unet, unet_state = load_unet(config.unet_checkpoint)
    mrcnn, mrcnn_state = load_maskrcnn(config.maskrcnn_checkpoint)
    if unet_state["preprocess"] != mrcnn_state["preprocess"]:
        raise ValueError(
            f"the two checkpoints were trained with different preprocessing: "
            f"{unet_state['preprocess']} vs {mrcnn_state['preprocess']}"
        )
    pre = PreprocessConfig.from_manifest(unet_state["preprocess"])
    size = pre.input_size

    out = Path(config.out_dir)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_name(out)
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    try:
        export_unet_onnx(unet, size, tmp / "unet.onnx")
        export_maskrcnn_onnx(mrcnn, size, tmp / "maskrcnn.onnx")

        check_inputs, check_samples = _preprocessed(config.check_data, pre, config.check_images)
        unet_sess, mrcnn_sess = ort_session(tmp / "unet.onnx"), ort_session(tmp / "maskrcnn.onnx")
        tol = config.tolerances
        unet_diff = compare_unet(unet, unet_sess, check_inputs)
        if unet_diff > tol.unet_logits:
            raise ValueError(f"unet.onnx differs from PyTorch by {unet_diff:.3g} in logits (tolerance {tol.unet_logits})")
        mr = compare_maskrcnn(mrcnn, mrcnn_sess, check_inputs, size)
        for key, limit in (("boxes", tol.maskrcnn_boxes_px), ("scores", tol.maskrcnn_scores), ("mask_probs", tol.maskrcnn_mask_probs), ("class_probs", tol.maskrcnn_scores)):
            if mr[key] > limit:
                raise ValueError(f"maskrcnn.onnx differs from PyTorch by {mr[key]:.3g} in {key} (tolerance {limit})")
        export_check = {
            "images": len(check_inputs),
            "unet_logits_max_abs_diff": unet_diff,
            "maskrcnn_boxes_max_abs_diff_px": mr["boxes"],
            "maskrcnn_scores_max_abs_diff": mr["scores"],
            "maskrcnn_mask_probs_max_abs_diff": mr["mask_probs"],
            "maskrcnn_class_probs_max_abs_diff": mr["class_probs"],
            "maskrcnn_detections_per_image": mr["detections"],
            "tolerances": vars(tol),
        }

        # The outline convention that fits how the checkpoints' training masks were drawn; the
        # figures below are measured through the pipeline's tracing with it and these thresholds.
        outline = V.outline_for(unet_state.get("target_masks")) if unet_state.get("target_masks") == mrcnn_state.get("target_masks") else "centres"
        tracing = V.Tracing.of_bundle(config.thresholds, {"outline": outline})
        fp32_dice = unet_dice_onnx(unet_sess, check_inputs, check_samples, tracing)
        unet_entry: dict[str, Any] = {
            "file": "unet.onnx",
            "preset": unet_state["preset"],
            "base_channels": unet_state["base_channels"],
            "levels": unet_state["levels"],
            "inputs": {"image": [1, 1, size, size]},
            "outputs": {"logits": [1, 1, size, size]},
            "variants": {},
        }
        variant_metrics: dict[str, Any] = {}
        files = ["unet.onnx", "maskrcnn.onnx"]
        if config.int8:
            if config.calibration_data is None:
                raise ValueError("INT8 quantization needs --calibration-data (training images)")
            calib, _ = _preprocessed(config.calibration_data, pre, config.calibration_images)
            quantize_unet_int8(tmp / "unet.onnx", tmp / "unet.int8.onnx", calib)
            dice = unet_dice_onnx(ort_session(tmp / "unet.int8.onnx"), check_inputs, check_samples, tracing)
            unet_entry["variants"]["int8"] = "unet.int8.onnx"
            variant_metrics["unet.int8"] = {"dice": dice, "dice_delta_vs_fp32": dice - fp32_dice, "calibration_images": len(calib), "method": "onnxruntime quantize_static QDQ, per-channel, MinMax"}
            files.append("unet.int8.onnx")
        if config.fp16:
            convert_unet_fp16(tmp / "unet.onnx", tmp / "unet.fp16.onnx")
            dice = unet_dice_onnx(ort_session(tmp / "unet.fp16.onnx"), check_inputs, check_samples, tracing)
            unet_entry["variants"]["fp16"] = "unet.fp16.onnx"
            variant_metrics["unet.fp16"] = {"dice": dice, "dice_delta_vs_fp32": dice - fp32_dice, "method": "onnxruntime.transformers.float16, float32 inputs/outputs kept"}
            files.append("unet.fp16.onnx")

        # Mask R-CNN figures through ONNX Runtime and the pipeline's tracing on the check images.
        mrcnn_check = maskrcnn_figures(mrcnn_sess, check_inputs, check_samples, tracing)

        models_extra: dict[str, Any] = {}
        view_metrics: dict[str, Any] = {}
        if config.view_checkpoint is not None:
            view_model, view_state = load_view(config.view_checkpoint)
            if view_state["preprocess"] != unet_state["preprocess"]:
                raise ValueError(f"{config.view_checkpoint}: the view model was trained with other preprocessing than the U-Net")
            export_view_onnx(view_model, size, tmp / "view.onnx")
            view_sess = ort_session(tmp / "view.onnx")
            view_diff = compare_view(view_model, view_sess, check_inputs)
            if view_diff > tol.unet_logits:
                raise ValueError(f"view.onnx differs from PyTorch by {view_diff:.3g} in logits (tolerance {tol.unet_logits})")
            export_check["view_logits_max_abs_diff"] = view_diff
            models_extra["view"] = {
                "file": "view.onnx", "width": view_state["width"], "views": list(view_state["views"]),
                "inputs": {"image": [1, 1, size, size]}, "outputs": {"view_logits": [1, len(view_state["views"])]},
            }  # fmt: skip
            files.append("view.onnx")
            view_metrics = {**_checkpoint_metrics(view_state)}

        backbone = {"edge": "resnet18 (layers 1-3) + FPN", "paper": "resnet50 + FPN"}[mrcnn_state["preset"]]
        manifest: dict[str, Any] = {
            "format": vbundle.FORMAT,
            "format_version": vbundle.FORMAT_VERSION,
            "name": config.name,
            "version": config.version,
            "created": dt.datetime.now(dt.timezone.utc).replace(microsecond=0).isoformat(),
            "description": config.description,
            "preprocess": pre.to_manifest(),
            "classes": list(MRCNN_CLASSES),
            "thresholds": dict(config.thresholds),
            # How outlines are traced must fit how the training masks were drawn (docs/DESIGN.md,
            # "Manifest details used by the pipeline"): pixel-centre masks "edges", cv2.fillPoly "centres".
            "postprocess": {"outline": outline},
            "models": {
                "unet": unet_entry,
                "maskrcnn": {
                    "file": "maskrcnn.onnx",
                    "preset": mrcnn_state["preset"],
                    "backbone": backbone,
                    "inputs": {"image": [1, 1, size, size]},
                    "outputs": {"boxes": ["K", 4], "scores": ["K"], "labels": ["K"], "mask_probs": ["K", 28, 28], "class_probs": ["K", len(MRCNN_CLASSES)]},
                    "graph_score_threshold": float(mrcnn.roi_heads.score_thresh),
                    "max_detections": int(mrcnn.roi_heads.detections_per_img),
                },
                **models_extra,
            },
            "files": {name: {} for name in files},
            "training": {
                "data": config.data_description,
                "data_commands": list(config.data_commands),
                "unet": _run_provenance(config.unet_checkpoint, unet_state),
                "maskrcnn": _run_provenance(config.maskrcnn_checkpoint, mrcnn_state),
                **({"view": _run_provenance(config.view_checkpoint, view_state)} if config.view_checkpoint else {}),
                "export_command": config.export_command,
                "git_commit": C.git_commit(),
                "torch": torch.__version__,
                "torchvision": torchvision.__version__,
                "onnxruntime": onnxruntime.__version__,
                "onnx_opset": OPSET,
                "pretrained_weights": None,
            },
            "metrics": {
                "unet": {**_checkpoint_metrics(unet_state), "check_dice_onnx": fp32_dice},
                "maskrcnn": {**_checkpoint_metrics(mrcnn_state), **V.prefixed(mrcnn_check, "check_")},
                **({"view": view_metrics} if view_metrics else {}),
                "variants": variant_metrics,
                "export_check": export_check,
            },
        }
        vbundle.write_manifest(tmp, manifest)
        vbundle.load_bundle(tmp)
        _replace_dir(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


# ---------------------------------------------------------------------------------------------
# CLI


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="export_bundle.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--unet", type=Path, required=True, help="U-Net checkpoint (best.pt of a train_unet run)")
    p.add_argument("--maskrcnn", type=Path, required=True, help="Mask R-CNN checkpoint (best.pt of a train_maskrcnn run)")
    p.add_argument("--out", type=Path, required=True, help="bundle folder to write (replaced if it exists)")
    p.add_argument("--check-data", type=Path, required=True, help="COCO JSON of images unseen in training, for verification")
    p.add_argument("--calibration-data", type=Path, help="COCO JSON of training images for INT8 calibration")
    p.add_argument("--check-images", type=int, default=8)
    p.add_argument("--calibration-images", type=int, default=32)
    p.add_argument("--name", default="vertxnet-bundle")
    p.add_argument("--version", default="0.1.0")
    p.add_argument("--description", default="")
    p.add_argument("--data-description", required=True, help="what the networks were trained on (recorded in the manifest)")
    p.add_argument("--data-command", action="append", default=[], help="command that produced training data (repeatable)")
    p.add_argument("--no-int8", action="store_true")
    p.add_argument("--no-fp16", action="store_true")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--view", type=Path, help="view-model checkpoint (best.pt of a train_view run) to ship as view.onnx")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = C.parse_args(build_parser(), argv)
    if isinstance(args, int):
        return args
    if not args.no_int8 and args.calibration_data is None:
        print("error: --calibration-data is required for the INT8 variant (or pass --no-int8)", file=sys.stderr)
        return 2
    config = ExportConfig(
        unet_checkpoint=args.unet,
        maskrcnn_checkpoint=args.maskrcnn,
        out_dir=args.out,
        check_data=args.check_data,
        calibration_data=args.calibration_data,
        name=args.name,
        version=args.version,
        description=args.description,
        data_description=args.data_description,
        data_commands=args.data_command,
        export_command=C.command_line(argv, "export_bundle.py"),
        check_images=args.check_images,
        calibration_images=args.calibration_images,
        int8=not args.no_int8,
        fp16=not args.no_fp16,
        threads=args.threads,
        view_checkpoint=args.view,
    )
    return C.run_cli(lambda: export_bundle(config), (VertxError, ValueError, FileNotFoundError))


if __name__ == "__main__":
    sys.exit(main())
