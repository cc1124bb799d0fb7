"""Train the VertXNet Mask R-CNN (classes background / vertebra / C2 / S1) from scratch.

torchvision's Mask R-CNN with a single-channel stem (the network sees the same preprocessed
grayscale tensor as the U-Net). Its GeneralizedRCNNTransform neither resizes nor renormalises
(min_size = max_size = input size, mean 0, std 1): preprocessing lives outside the model, in
``vertxnet.preprocess``. No pretrained weights are used, so every BatchNorm is trainable.

Presets:
  ``paper``  ResNet-50-FPN (256 FPN channels), torchvision's default heads and anchors.
  ``edge``   ResNet-18 without layer4 (FPN on layers 1-3), 64-channel FPN and mask head,
             box head of 256, anchors 16-128 px: a few MB, for 256-384 px inputs.

Validation each epoch: detection rate (share of ground-truth vertebrae matched one-to-one by a
detection with mask IoU > 0.5 and score >= the score threshold) and reference-class accuracy
(share of images with a C2/S1 whose best-scoring C2/S1 detection matches it with the right class).
The run folder holds ``last.pt`` (``--resume``), ``best.pt`` and ``history.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402

from vertxnet.errors import VertxError  # noqa: E402

from vertxnet.levels import MRCNN_CLASSES  # noqa: E402
from vertxnet.preprocess import PreprocessConfig  # noqa: E402

PRESETS = ("paper", "edge")


# ---------------------------------------------------------------------------------------------
# Model


def _one_channel_stem(resnet: nn.Module) -> None:
    old = resnet.conv1
    resnet.conv1 = nn.Conv2d(1, old.out_channels, old.kernel_size, old.stride, old.padding, bias=False)


def build_maskrcnn(preset: str = "edge", input_size: int = 256, *, fpn_channels: int | None = None) -> nn.Module:
    """A randomly initialised Mask R-CNN taking (N, 1, S, S) preprocessed images."""
    from torchvision.models import resnet18, resnet50
    from torchvision.models.detection import MaskRCNN
    from torchvision.models.detection.anchor_utils import AnchorGenerator
    from torchvision.models.detection.backbone_utils import _resnet_fpn_extractor
    from torchvision.models.detection.faster_rcnn import FastRCNNPredictor, TwoMLPHead
    from torchvision.models.detection.mask_rcnn import MaskRCNNHeads, MaskRCNNPredictor
    from torchvision.ops import MultiScaleRoIAlign

    if preset not in PRESETS:
        raise ValueError(f"unknown Mask R-CNN preset {preset!r}; expected one of {list(PRESETS)}")
    common = dict(
        min_size=input_size,
        max_size=input_size,
        image_mean=[0.0],
        image_std=[1.0],
        box_detections_per_img=50,
    )
    if preset == "paper":
        body = resnet50(weights=None, norm_layer=nn.BatchNorm2d)
        _one_channel_stem(body)
        backbone = _resnet_fpn_extractor(body, trainable_layers=5, norm_layer=None)
        return MaskRCNN(backbone, num_classes=len(MRCNN_CLASSES), **common)

    body = resnet18(weights=None, norm_layer=nn.BatchNorm2d)
    _one_channel_stem(body)
    channels = fpn_channels or 64
    from torchvision.models.detection.backbone_utils import BackboneWithFPN
    from torchvision.ops.feature_pyramid_network import LastLevelMaxPool

    backbone = BackboneWithFPN(
        body,
        return_layers={"layer1": "0", "layer2": "1", "layer3": "2"},
        in_channels_list=[64, 128, 256],
        out_channels=channels,
        extra_blocks=LastLevelMaxPool(),
    )
    anchors = AnchorGenerator(sizes=((16,), (32,), (64,), (128,)), aspect_ratios=((0.5, 1.0, 2.0),) * 4)
    levels = ["0", "1", "2"]
    representation = 256
    return MaskRCNN(
        backbone,
        rpn_anchor_generator=anchors,
        rpn_pre_nms_top_n_train=1000,
        rpn_post_nms_top_n_train=500,
        rpn_pre_nms_top_n_test=500,
        rpn_post_nms_top_n_test=200,
        rpn_batch_size_per_image=128,
        box_batch_size_per_image=128,
        box_roi_pool=MultiScaleRoIAlign(levels, output_size=7, sampling_ratio=2),
        box_head=TwoMLPHead(channels * 7 * 7, representation),
        box_predictor=FastRCNNPredictor(representation, len(MRCNN_CLASSES)),
        mask_roi_pool=MultiScaleRoIAlign(levels, output_size=14, sampling_ratio=2),
        mask_head=MaskRCNNHeads(channels, [channels] * 4, 1),
        mask_predictor=MaskRCNNPredictor(channels, channels, len(MRCNN_CLASSES)),
        **common,
    )


# ---------------------------------------------------------------------------------------------
# Training


@dataclass
class MaskRCNNTrainConfig:
    train: list[Path]  # one or more COCO instances files
    run_dir: Path
    val: Path | None = None
    image_root: Path | None = None
    preset: str = "edge"
    fpn_channels: int | None = None
    input_size: int = 256
    mean: float = 0.5
    std: float = 0.25
    clahe: bool = False
    epochs: int = 20
    batch_size: int = 4
    lr: float = 1e-3
    weight_decay: float = 1e-4
    val_fraction: float = 0.1
    max_train_images: int | None = None
    score_threshold: float = 0.5
    seed: int = 0
    device: str = "cpu"
    threads: int = 2
    resume: bool = False
    augment: C.AugmentConfig = field(default_factory=C.AugmentConfig)

    @property
    def preprocess(self) -> PreprocessConfig:
        return PreprocessConfig(input_size=self.input_size, mean=self.mean, std=self.std, clahe=self.clahe)


def to_model_inputs(samples: Sequence[C.Sample], pre: PreprocessConfig, device) -> tuple[list, list]:
    images, targets = [], []
    for s in samples:
        images.append(torch.from_numpy(C.normalise(s.canvas, pre))[None].to(device))
        boxes, labels, masks = C.instance_targets(s)
        targets.append(
            {
                "boxes": torch.from_numpy(boxes).to(device),
                "labels": torch.from_numpy(labels).to(device),
                "masks": torch.from_numpy(masks).to(device),
            }
        )
    return images, targets


@torch.no_grad()
def evaluate_detection(model, samples: Sequence[C.Sample], pre: PreprocessConfig, device, score_threshold: float = 0.5) -> C.DetectionTally:
    model.eval()
    tally = C.DetectionTally()
    for i in range(0, len(samples), 4):
        chunk = samples[i : i + 4]
        images, targets = to_model_inputs(chunk, pre, device)
        outputs = model(images)
        for out, tgt in zip(outputs, targets):
            keep = out["scores"] >= score_threshold
            tally.add(
                (out["masks"][keep, 0] >= 0.5).cpu().numpy(),
                out["scores"][keep].cpu().numpy(),
                out["labels"][keep].cpu().numpy(),
                tgt["masks"].cpu().numpy(),
                tgt["labels"].cpu().numpy(),
            )
    return tally


def train_maskrcnn(config: MaskRCNNTrainConfig) -> Path:
    """Train (or resume) and return the path of the best checkpoint."""
    from tqdm import tqdm

    device = C.configure_torch(config.device, config.threads)
    C.seed_everything(config.seed)
    pre = config.preprocess
    run = Path(config.run_dir)
    run.mkdir(parents=True, exist_ok=True)

    records = C.load_many(config.train, config.image_root)
    if config.val is not None:
        train_records, val_records = records, C.load_records(config.val, config.image_root)
    else:
        train_records, val_records = C.split_records(records, config.val_fraction, config.seed)
    if config.max_train_images:
        train_records = train_records[: config.max_train_images]
    train_samples = C.prepare_samples(train_records, pre, "preprocess train")
    val_samples = C.prepare_samples(val_records, pre, "preprocess val")

    model = build_maskrcnn(config.preset, pre.input_size, fpn_channels=config.fpn_channels).to(device)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)
    steps_per_epoch = max(1, len(train_samples) // config.batch_size)
    total_steps = config.epochs * steps_per_epoch
    warmup_fraction = 0.1
    start_epoch, best_score, history = 0, -1.0, []
    last_path, best_path = run / "last.pt", run / "best.pt"
    if config.resume:
        state = C.load_checkpoint(last_path)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        start_epoch, best_score, history = state["epoch"] + 1, state["best_score"], state["history"]
        C.restore_rng_state(state["rng"])

    meta = {
        "kind": "maskrcnn",
        "preset": config.preset,
        "fpn_channels": config.fpn_channels,
        "input_size": pre.input_size,
        "preprocess": pre.to_manifest(),
        "config": C.config_dict(config),
        "train_images": len(train_samples),
        "val_images": len(val_samples),
    }
    for epoch in range(start_epoch, config.epochs):
        model.train()
        rng = np.random.default_rng([config.seed, epoch])
        losses: list[float] = []
        t0 = time.perf_counter()
        bar = tqdm(
            C.batches(len(train_samples), config.batch_size, rng),
            total=steps_per_epoch,
            desc=f"maskrcnn epoch {epoch + 1}/{config.epochs}",
            file=sys.stderr,
        )
        for step_in_epoch, idx in enumerate(bar):
            C.set_learning_rate(
                optimizer, C.learning_rate(epoch * steps_per_epoch + step_in_epoch, total_steps, config.lr, warmup_fraction)
            )
            batch = [C.augment(train_samples[i], rng, config.augment) for i in idx]
            images, targets = to_model_inputs(batch, pre, device)
            loss_dict = model(images, targets)
            loss = sum(loss_dict.values())
            if not torch.isfinite(loss):
                raise RuntimeError(f"loss became {float(loss)} at epoch {epoch + 1}; lower --lr")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 10.0)
            optimizer.step()
            losses.append(loss.item())
            bar.set_postfix(loss=f"{np.mean(losses[-20:]):.3f}", mask=f"{loss_dict['loss_mask'].item():.3f}")
        tally = evaluate_detection(model, val_samples, pre, device, config.score_threshold)
        # One number to keep the best checkpoint by: both figures matter equally to the pipeline.
        score = 0.5 * (np.nan_to_num(tally.detection_rate) + np.nan_to_num(tally.reference_accuracy))
        entry = {
            "epoch": epoch + 1,
            "train_loss": float(np.mean(losses)) if losses else float("nan"),
            **tally.as_dict("val_"),
            "seconds": round(time.perf_counter() - t0, 1),
        }
        history.append(entry)
        print(json.dumps(entry), file=sys.stderr)
        if score >= best_score:  # a tie goes to the later epoch (lower learning rate, lower loss)
            best_score = score
            metrics = {k: v for k, v in entry.items() if k.startswith("val_")}
            C.save_checkpoint(best_path, {**meta, "model": model.state_dict(), "epoch": epoch, "metrics": metrics, "history": history})
        state = {
            **meta,
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "epoch": epoch,
            "history": history,
            "best_score": best_score,
            "rng": C.rng_state(),
        }
        C.save_checkpoint(last_path, state)
        C.write_history(run, history, {"best_score": best_score})
    if not best_path.is_file():
        raise RuntimeError(f"{run}: training ran no epoch, so there is no best checkpoint")
    return best_path


def load_maskrcnn(checkpoint: str | Path) -> tuple[nn.Module, dict]:
    state = C.load_checkpoint(Path(checkpoint))
    if state.get("kind") != "maskrcnn":
        raise ValueError(f"{checkpoint}: not a Mask R-CNN checkpoint")
    model = build_maskrcnn(state["preset"], state["input_size"], fpn_channels=state.get("fpn_channels"))
    model.load_state_dict(state["model"])
    return model.eval(), state


# ---------------------------------------------------------------------------------------------
# CLI


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="train_maskrcnn.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--train", type=Path, action="append", required=True, help="COCO instances JSON of training images (repeatable)")
    p.add_argument("--val", type=Path, help="COCO JSON of validation images (default: hold aside --val-fraction)")
    p.add_argument("--image-root", type=Path, help="folder the COCO file names are relative to")
    p.add_argument("--run", type=Path, required=True, help="run folder for checkpoints and history")
    p.add_argument("--preset", choices=PRESETS, default="edge")
    p.add_argument("--fpn-channels", type=int, help="override the edge preset's FPN width (64)")
    p.add_argument("--input-size", type=int, default=256)
    p.add_argument("--mean", type=float, default=0.5)
    p.add_argument("--std", type=float, default=0.25)
    p.add_argument("--clahe", action="store_true")
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--val-fraction", type=float, default=0.1)
    p.add_argument("--max-train-images", type=int)
    p.add_argument("--score-threshold", type=float, default=0.5, help="detections below it do not count in validation")
    C.add_augment_arguments(p)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    p.add_argument("--resume", action="store_true", help="continue from RUN/last.pt")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = C.parse_args(build_parser(), argv)
    if isinstance(args, int):
        return args
    try:
        augment = C.augment_config(args)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    config = MaskRCNNTrainConfig(
        train=args.train,
        val=args.val,
        image_root=args.image_root,
        run_dir=args.run,
        preset=args.preset,
        fpn_channels=args.fpn_channels,
        input_size=args.input_size,
        mean=args.mean,
        std=args.std,
        clahe=args.clahe,
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        val_fraction=args.val_fraction,
        max_train_images=args.max_train_images,
        score_threshold=args.score_threshold,
        seed=args.seed,
        device=args.device,
        threads=args.threads,
        resume=args.resume,
        augment=augment,
    )

    def work() -> Path:
        Path(args.run).mkdir(parents=True, exist_ok=True)
        C.append_command(Path(args.run), C.command_line(argv, "train_maskrcnn.py"))
        return train_maskrcnn(config)

    return C.run_cli(work, (VertxError, ValueError, FileNotFoundError, RuntimeError))


if __name__ == "__main__":
    sys.exit(main())
