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
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402
import training as T  # noqa: E402
import validation as V  # noqa: E402


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
class UNetTrainConfig(T.TrainConfig):
    preset: str = "edge"
    base_channels: int | None = None
    epochs: int = 30
    batch_size: int = 8
    lr: float = 2e-3
    threshold: float = 0.5


def _batch_tensors(samples: Sequence[C.Sample], pre: PreprocessConfig) -> tuple[torch.Tensor, torch.Tensor]:
    size = pre.input_size
    images = np.stack([C.normalise(s.canvas, pre) for s in samples])[:, None]
    masks = np.stack([C.foreground_mask(s.polygons, size) for s in samples])[:, None].astype(np.float32)
    return torch.from_numpy(images), torch.from_numpy(masks)


@torch.no_grad()
def evaluate_dice(model: UNet, samples: Sequence[C.Sample], pre: PreprocessConfig, device, tracing: V.Tracing) -> float:
    """Mean per-image foreground Dice of the outlines the pipeline traces from the U-Net output."""
    model.eval()
    scores = []
    for i in range(0, len(samples), 8):
        chunk = samples[i : i + 8]
        images, _ = _batch_tensors(chunk, pre)
        logits = model(images.to(device)).cpu().numpy()
        for lg, s in zip(logits, chunk):
            scores.append(V.unet_dice(lg[0], s.content, s.polygons, tracing))
    return float(np.mean(scores)) if scores else float("nan")


def train_unet(config: UNetTrainConfig) -> Path:
    """Train (or resume) and return the path of the best checkpoint."""
    device, train_samples, val_samples = T.start(config)
    pre = config.preprocess
    model = build_unet(config.preset, config.base_channels).to(device)
    if pre.input_size % model.divisor:
        raise ValueError(f"input size {pre.input_size} must be a multiple of {model.divisor} for this U-Net")
    target_masks = T.target_masks(config.resume, config.run_dir)
    tracing = V.Tracing(unet=config.threshold, outline=V.outline_for(target_masks))
    meta = T.checkpoint_meta("unet", config, train_samples, val_samples, preset=config.preset, base_channels=model.base_channels,
                             levels=model.levels, target_masks=target_masks)

    def loss(batch: list[C.Sample], _indices: np.ndarray) -> tuple[torch.Tensor, dict[str, str]]:
        images, masks = _batch_tensors(batch, pre)
        return dice_bce_loss(model(images.to(device)), masks.to(device)), {}

    network = T.Network(
        kind="unet", model=model, meta=meta, loss=loss,
        validate=lambda: {"val_dice": evaluate_dice(model, val_samples, pre, device, tracing)},
        score=lambda figures: figures["val_dice"], warmup_fraction=0.15, best_key="best_val_dice",
    )  # fmt: skip
    return T.fit(network, train_samples, config.schedule)


def load_unet(checkpoint: str | Path) -> tuple[UNet, dict]:
    return T.load_trained(checkpoint, "unet", "U-Net", lambda state: UNet(base_channels=state["base_channels"], levels=state["levels"]))


# ---------------------------------------------------------------------------------------------
# CLI


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="train_unet.py", description=__doc__.split("\n\n")[0])
    T.add_arguments(p, input_size=256, epochs=30, batch_size=8, lr=2e-3, threads=2)
    p.add_argument("--preset", choices=sorted(PRESETS), default="edge")
    p.add_argument("--base-channels", type=int, help="override the preset's base width")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    return T.main("train_unet.py", build_parser(), argv, lambda args, fields: UNetTrainConfig(**fields, preset=args.preset, base_channels=args.base_channels), train_unet)


if __name__ == "__main__":
    sys.exit(main())
