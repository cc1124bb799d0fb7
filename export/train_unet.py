"""Train the VertXNet U-Net (binary vertebra / background) on a COCO-annotated set.

Architecture (SPEC §6, seed 000 §2.1): 5 encoder levels of two 3×3 conv + BN + ReLU with
max-pooling between them, bilinear ×2 upsampling + skip concatenation + two 3×3 conv per decoder
level, and a final 1×1 conv to one logit. Preset ``paper`` has 64 base channels (1024 at the
bottleneck); preset ``edge`` is narrower. Loss: soft Dice + BCE (seed 002).

The run folder holds ``last.pt`` (for ``--resume``), ``best.pt`` (best validation foreground Dice)
and ``history.json``.

Example::

    python export/train_unet.py --train data/train/annotations.json --val data/val/annotations.json \\
        --run runs/unet --preset edge --input-size 256 --epochs 30
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
from torch.nn import functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402

from vertxnet.errors import VertxError  # noqa: E402

from vertxnet.preprocess import PreprocessConfig  # noqa: E402

PRESETS = {"paper": 64, "edge": 12}


# ---------------------------------------------------------------------------------------------
# Model


class DoubleConv(nn.Sequential):
    def __init__(self, cin: int, cout: int):
        super().__init__(
            nn.Conv2d(cin, cout, 3, padding=1, bias=False),
            nn.BatchNorm2d(cout),
            nn.ReLU(inplace=True),
            nn.Conv2d(cout, cout, 3, padding=1, bias=False),
            nn.BatchNorm2d(cout),
            nn.ReLU(inplace=True),
        )


class UNet(nn.Module):
    """U-Net with ``levels`` encoder levels; channels base·2^i (base 64 → 1024 at the bottleneck)."""

    def __init__(self, base_channels: int = 64, levels: int = 5, in_channels: int = 1):
        super().__init__()
        if base_channels < 1 or levels < 2:
            raise ValueError(f"need base_channels >= 1 and levels >= 2, got {base_channels}, {levels}")
        widths = [base_channels * 2**i for i in range(levels)]
        self.base_channels = base_channels
        self.levels = levels
        self.encoders = nn.ModuleList()
        cin = in_channels
        for w in widths:
            self.encoders.append(DoubleConv(cin, w))
            cin = w
        self.decoders = nn.ModuleList()
        for w_skip, w_deep in zip(reversed(widths[:-1]), reversed(widths[1:])):
            self.decoders.append(DoubleConv(w_deep + w_skip, w_skip))
        self.head = nn.Conv2d(widths[0], 1, 1)

    @property
    def divisor(self) -> int:
        return 2 ** (self.levels - 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        for i, enc in enumerate(self.encoders):
            if i:
                x = F.max_pool2d(x, 2)
            x = enc(x)
            skips.append(x)
        x = skips.pop()
        for dec in self.decoders:
            skip = skips.pop()
            x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
            x = dec(torch.cat([x, skip], dim=1))
        return self.head(x)


def build_unet(preset: str = "edge", base_channels: int | None = None) -> UNet:
    if preset not in PRESETS:
        raise ValueError(f"unknown U-Net preset {preset!r}; expected one of {sorted(PRESETS)}")
    return UNet(base_channels=base_channels or PRESETS[preset])


def dice_bce_loss(logits: torch.Tensor, target: torch.Tensor, eps: float = 1.0) -> torch.Tensor:
    """Soft Dice (per image) + binary cross-entropy."""
    bce = F.binary_cross_entropy_with_logits(logits, target)
    prob = torch.sigmoid(logits)
    dims = (1, 2, 3)
    inter = (prob * target).sum(dims)
    dice = (2 * inter + eps) / (prob.sum(dims) + target.sum(dims) + eps)
    return bce + (1 - dice).mean()


# ---------------------------------------------------------------------------------------------
# Training


@dataclass
class UNetTrainConfig:
    train: list[Path]  # one or more COCO instances files
    run_dir: Path
    val: Path | None = None
    image_root: Path | None = None
    preset: str = "edge"
    base_channels: int | None = None
    input_size: int = 256
    mean: float = 0.5
    std: float = 0.25
    clahe: bool = False
    epochs: int = 30
    batch_size: int = 8
    lr: float = 2e-3
    weight_decay: float = 1e-4
    val_fraction: float = 0.1
    max_train_images: int | None = None
    seed: int = 0
    device: str = "cpu"
    threads: int = 2
    resume: bool = False
    augment: C.AugmentConfig = field(default_factory=C.AugmentConfig)
    threshold: float = 0.5

    @property
    def preprocess(self) -> PreprocessConfig:
        return PreprocessConfig(input_size=self.input_size, mean=self.mean, std=self.std, clahe=self.clahe)


def _batch_tensors(samples: Sequence[C.Sample], pre: PreprocessConfig) -> tuple[torch.Tensor, torch.Tensor]:
    size = pre.input_size
    images = np.stack([C.normalise(s.canvas, pre) for s in samples])[:, None]
    masks = np.stack([C.foreground_mask(s.polygons, size) for s in samples])[:, None].astype(np.float32)
    return torch.from_numpy(images), torch.from_numpy(masks)


@torch.no_grad()
def evaluate_dice(model: UNet, samples: Sequence[C.Sample], pre: PreprocessConfig, device, threshold: float = 0.5) -> float:
    """Mean per-image foreground Dice of the thresholded probability map."""
    model.eval()
    scores = []
    logit_threshold = float(np.log(threshold / (1 - threshold)))
    for i in range(0, len(samples), 8):
        images, masks = _batch_tensors(samples[i : i + 8], pre)
        logits = model(images.to(device)).cpu().numpy()
        for lg, m in zip(logits, masks.numpy()):
            scores.append(C.foreground_dice(lg[0] > logit_threshold, m[0] > 0.5))
    return float(np.mean(scores)) if scores else float("nan")


def train_unet(config: UNetTrainConfig) -> Path:
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

    model = build_unet(config.preset, config.base_channels).to(device)
    if pre.input_size % model.divisor:
        raise ValueError(f"input size {pre.input_size} must be a multiple of {model.divisor} for this U-Net")
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    steps_per_epoch = max(1, len(train_samples) // config.batch_size)
    total_steps = config.epochs * steps_per_epoch
    warmup_fraction = 0.15
    start_epoch, best_dice, history = 0, -1.0, []
    last_path, best_path = run / "last.pt", run / "best.pt"
    if config.resume:
        state = C.load_checkpoint(last_path)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        start_epoch, best_dice, history = state["epoch"] + 1, state["best_score"], state["history"]
        C.restore_rng_state(state["rng"])

    meta = {
        "kind": "unet",
        "preset": config.preset,
        "base_channels": model.base_channels,
        "levels": model.levels,
        "preprocess": pre.to_manifest(),
        "config": C.config_dict(config),
        "train_images": len(train_samples),
        "val_images": len(val_samples),
    }
    for epoch in range(start_epoch, config.epochs):
        model.train()
        rng = np.random.default_rng([config.seed, epoch])
        losses = []
        t0 = time.perf_counter()
        bar = tqdm(
            C.batches(len(train_samples), config.batch_size, rng),
            total=steps_per_epoch,
            desc=f"unet epoch {epoch + 1}/{config.epochs}",
            file=sys.stderr,
        )
        for step_in_epoch, idx in enumerate(bar):
            C.set_learning_rate(
                optimizer, C.learning_rate(epoch * steps_per_epoch + step_in_epoch, total_steps, config.lr, warmup_fraction)
            )
            batch = [C.augment(train_samples[i], rng, config.augment) for i in idx]
            images, masks = _batch_tensors(batch, pre)
            loss = dice_bce_loss(model(images.to(device)), masks.to(device))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
            bar.set_postfix(loss=f"{np.mean(losses[-20:]):.4f}")
        val_dice = evaluate_dice(model, val_samples, pre, device, config.threshold)
        entry = {
            "epoch": epoch + 1,
            "train_loss": float(np.mean(losses)) if losses else float("nan"),
            "val_dice": val_dice,
            "seconds": round(time.perf_counter() - t0, 1),
        }
        history.append(entry)
        print(json.dumps(entry), file=sys.stderr)
        state = {
            **meta,
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "epoch": epoch,
            "history": history,
            "rng": C.rng_state(),
        }
        if val_dice >= best_dice:  # a tie goes to the later epoch
            best_dice = val_dice
            C.save_checkpoint(best_path, {**meta, "model": model.state_dict(), "epoch": epoch, "metrics": {"val_dice": val_dice}, "history": history})
        state["best_score"] = best_dice
        C.save_checkpoint(last_path, state)
        C.write_history(run, history, {"best_val_dice": best_dice})
    if not best_path.is_file():
        raise RuntimeError(f"{run}: training ran no epoch, so there is no best checkpoint")
    return best_path


def load_unet(checkpoint: str | Path) -> tuple[UNet, dict]:
    state = C.load_checkpoint(Path(checkpoint))
    if state.get("kind") != "unet":
        raise ValueError(f"{checkpoint}: not a U-Net checkpoint")
    model = UNet(base_channels=state["base_channels"], levels=state["levels"])
    model.load_state_dict(state["model"])
    return model.eval(), state


# ---------------------------------------------------------------------------------------------
# CLI


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="train_unet.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--train", type=Path, action="append", required=True, help="COCO instances JSON of training images (repeatable)")
    p.add_argument("--val", type=Path, help="COCO JSON of validation images (default: hold aside --val-fraction)")
    p.add_argument("--image-root", type=Path, help="folder the COCO file names are relative to")
    p.add_argument("--run", type=Path, required=True, help="run folder for checkpoints and history")
    p.add_argument("--preset", choices=sorted(PRESETS), default="edge")
    p.add_argument("--base-channels", type=int, help="override the preset's base width")
    p.add_argument("--input-size", type=int, default=256)
    p.add_argument("--mean", type=float, default=0.5)
    p.add_argument("--std", type=float, default=0.25)
    p.add_argument("--clahe", action="store_true", help="apply CLAHE in preprocessing (recorded in the bundle)")
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--val-fraction", type=float, default=0.1)
    p.add_argument("--max-train-images", type=int)
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
    config = UNetTrainConfig(
        train=args.train,
        val=args.val,
        image_root=args.image_root,
        run_dir=args.run,
        preset=args.preset,
        base_channels=args.base_channels,
        input_size=args.input_size,
        mean=args.mean,
        std=args.std,
        clahe=args.clahe,
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        val_fraction=args.val_fraction,
        max_train_images=args.max_train_images,
        seed=args.seed,
        device=args.device,
        threads=args.threads,
        resume=args.resume,
        augment=augment,
    )

    def work() -> Path:
        Path(args.run).mkdir(parents=True, exist_ok=True)
        C.append_command(Path(args.run), C.command_line(argv, "train_unet.py"))
        return train_unet(config)

    return C.run_cli(work, (VertxError, ValueError, FileNotFoundError, RuntimeError))


if __name__ == "__main__":
    sys.exit(main())
