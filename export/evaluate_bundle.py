"""Measure a model bundle's two networks through ONNX Runtime on annotated images.

Figures (in model-input space, after ``vertxnet.preprocess.prepare`` exactly as at inference, on
the outlines the pipeline traces with the bundle's thresholds and outline convention; see
export/validation.py):
  - U-Net foreground Dice: mean per-image Dice of the traced U-Net outlines against the union of
    the ground-truth vertebra polygons;
  - Mask R-CNN detection rate: share of ground-truth vertebrae matched one-to-one by a traced
    detection with score >= thresholds.mrcnn_score and IoU > 0.5;
  - reference accuracy: share of images with a ground-truth C2 or S1 where the best-scoring
    detection of class C2/S1 matches it (IoU > 0.5) with the right class;
and optionally each network's ONNX Runtime CPU latency (median of ``--latency-runs`` after warm-up).
Needs only numpy, OpenCV and ONNX Runtime (no torch).

Example::

    python export/evaluate_bundle.py --bundle python/vertxnet/models/demo --data test/annotations.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402
import validation as V  # noqa: E402

from vertxnet.errors import VertxError  # noqa: E402

from vertxnet.bundle import load_bundle  # noqa: E402
from vertxnet.pipeline import FALLBACK_THRESHOLDS  # noqa: E402
from vertxnet.preprocess import prepare  # noqa: E402

MASKRCNN_OUTPUTS = ["boxes", "scores", "labels", "mask_probs"]


@dataclass
class EvaluateConfig:
    bundle: Path
    data: Path
    image_root: Path | None = None
    unet_variant: str | None = None  # e.g. "int8"; None = unet.onnx
    threads: int = 1
    latency_runs: int = 0
    max_images: int | None = None


def _session(path: Path, threads: int):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def _latency_ms(session, feed: dict, runs: int, warmup: int = 3) -> dict[str, float]:
    for _ in range(warmup):
        session.run(None, feed)
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        session.run(None, feed)
        times.append((time.perf_counter() - t0) * 1000.0)
    return {"median_ms": float(np.median(times)), "min_ms": float(np.min(times)), "runs": runs}


def evaluate_bundle(config: EvaluateConfig) -> dict[str, Any]:
    bundle = load_bundle(config.bundle)
    pre = bundle.preprocess
    size = pre.input_size
    thr = bundle.thresholds
    unet = _session(bundle.model_path("unet", config.unet_variant), config.threads)
    mrcnn = _session(bundle.model_path("maskrcnn"), config.threads)
    records = C.load_records(config.data, config.image_root)
    if config.max_images:
        records = records[: config.max_images]
    if not records:
        raise ValueError(f"{config.data}: no images to evaluate")
    tracing = V.Tracing.of_bundle({**FALLBACK_THRESHOLDS, **thr}, bundle.manifest.get("postprocess"))
    dices, truth, predicted = [], [], []
    x = None
    for n, rec in enumerate(records, start=1):
        x, _ = prepare(rec.load_image(), pre)
        sample = C.prepare_sample(rec, pre)
        (logits,) = unet.run(["logits"], {"image": x})
        dices.append(V.unet_dice(logits[0, 0], sample.content, sample.polygons, tracing))
        truth.append(V.truth_record(sample.polygons, sample.labels, sample.content, n))
        predicted.append(V.detection_record(mrcnn.run(MASKRCNN_OUTPUTS, {"image": x}), size, n, tracing))
    figures = V.detection_figures(truth, predicted)
    report: dict[str, Any] = {
        "bundle": bundle.name,
        "bundle_version": bundle.version,
        "manifest_sha256": bundle.manifest_sha256,
        "data": str(config.data),
        "images": len(records),
        "unet_variant": config.unet_variant or "fp32",
        "unet_foreground_dice": float(np.mean(dices)),
        "unet_foreground_dice_min": float(np.min(dices)),
        "maskrcnn_detection_rate_iou50": figures["detection_rate_iou50"],
        "maskrcnn_reference_accuracy": figures["reference_accuracy"],
        "gt_vertebrae": figures["gt_instances"],
        "reference_images": figures["reference_images"],
        "outline": tracing.outline,
    }
    if config.latency_runs > 0:
        feed = {"image": x}
        report["latency_onnxruntime_cpu"] = {
            "threads": config.threads,
            "input_size": size,
            "unet": _latency_ms(unet, feed, config.latency_runs),
            "maskrcnn": _latency_ms(mrcnn, feed, config.latency_runs),
        }
    return report


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="evaluate_bundle.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--bundle", type=Path, required=True, help="model bundle folder")
    p.add_argument("--data", type=Path, required=True, help="COCO JSON of annotated images unseen in training")
    p.add_argument("--image-root", type=Path)
    p.add_argument("--unet-variant", help="evaluate a U-Net variant of the bundle (int8, fp16)")
    p.add_argument("--threads", type=int, default=1, help="ONNX Runtime intra-op threads")
    p.add_argument("--latency-runs", type=int, default=0, help="also time each network this many runs (after 3 warm-up runs)")
    p.add_argument("--max-images", type=int)
    p.add_argument("-o", "--output", type=Path, help="write the report JSON here (default: stdout)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = C.parse_args(build_parser(), argv)
    if isinstance(args, int):
        return args
    config = EvaluateConfig(
        bundle=args.bundle,
        data=args.data,
        image_root=args.image_root,
        unet_variant=args.unet_variant,
        threads=args.threads,
        latency_runs=args.latency_runs,
        max_images=args.max_images,
    )
    try:
        report = evaluate_bundle(config)
    except (VertxError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    text = json.dumps(report, indent=2)
    if args.output:
        from vertxnet.files import write_json_atomic

        write_json_atomic(report, args.output, indent=2)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
