"""Train the view model: which part of the spine a lateral film shows.

A small CNN on the same preprocessed tensor the U-Net and the Mask R-CNN see (it pools the
(1, 1, S, S) input down to 128 px inside the graph), with five outputs: cervical,
cervicothoracic, thoracic, thoracolumbar, lumbar (``vertxnet.levels.VIEWS``). A film's truth
view is derived from the levels annotated on it (``vertxnet.levels.view_of_levels``), never from
a free-text field, so phantoms, DRRs and any COCO set give consistent targets.

The run folder holds ``last.pt`` (``--resume``), ``best.pt`` (best validation accuracy) and
``history.json``.
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
from vertxnet.levels import VIEWS, view_of_levels  # noqa: E402
from vertxnet.preprocess import PreprocessConfig  # noqa: E402

#: The resolution the view model works at, whatever the bundle's input size.
VIEW_RESOLUTION = 128


class ViewNet(nn.Module):
    """(N, 1, S, S) preprocessed image → (N, len(VIEWS)) logits."""

    def __init__(self, width: int = 16):
        super().__init__()
        chans = [1, width, 2 * width, 4 * width, 8 * width, 8 * width]
        layers: list[nn.Module] = []
        for cin, cout in zip(chans[:-1], chans[1:]):
            layers += [nn.Conv2d(cin, cout, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(chans[-1], len(VIEWS))

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        x = F.adaptive_avg_pool2d(image, VIEW_RESOLUTION)
        x = self.features(x)
        return self.head(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


@dataclass
class ViewTrainConfig:
    train: Sequence[Path]
    val: Path | None
    run_dir: Path
    image_root: Path | None = None
    input_size: int = 384
    mean: float = 0.5
    std: float = 0.25
    clahe: bool = False
    width: int = 16
    epochs: int = 10
    batch_size: int = 32
    lr: float = 2e-3
    weight_decay: float = 1e-4
    val_fraction: float = 0.1
    seed: int = 0
    device: str = "cpu"
    threads: int = 1
    resume: bool = False
    augment: C.AugmentConfig = field(default_factory=C.AugmentConfig)

    @property
    def preprocess(self) -> PreprocessConfig:
        return PreprocessConfig(input_size=self.input_size, mean=self.mean, std=self.std, clahe=self.clahe)


def view_targets(records) -> tuple[list, np.ndarray]:
    """Records whose annotations name a view, and the view index of each."""
    kept, targets = [], []
    for record in records:
        view = view_of_levels([a.level for a in record.annotations if a.level is not None])
        if view is not None:
            kept.append(record)
            targets.append(VIEWS.index(view))
    return kept, np.asarray(targets, dtype=np.int64)


@torch.no_grad()
def accuracy(model: nn.Module, samples: Sequence[C.Sample], targets: np.ndarray, pre: PreprocessConfig, device) -> float:
    model.eval()
    correct = 0
    for i in range(0, len(samples), 32):
        x = torch.from_numpy(np.stack([C.normalise(s.canvas, pre) for s in samples[i : i + 32]]))[:, None].to(device)
        correct += int((model(x).argmax(1).cpu().numpy() == targets[i : i + 32]).sum())
    return correct / max(1, len(samples))


def train_view(config: ViewTrainConfig) -> Path:
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
    train_records, train_y = view_targets(train_records)
    val_records, val_y = view_targets(val_records)
    if not train_records or not val_records:
        raise ValueError("no training or validation image has annotated levels to derive its view from")
    train_samples = C.prepare_samples(train_records, pre, "preprocess train")
    val_samples = C.prepare_samples(val_records, pre, "preprocess val")
    counts = np.bincount(train_y, minlength=len(VIEWS))
    # Classes the data lack get no weight; the others are balanced.
    weights = torch.tensor(np.where(counts > 0, counts.sum() / np.maximum(counts, 1) / max(1, (counts > 0).sum()), 0.0), dtype=torch.float32)

    model = ViewNet(config.width).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    steps_per_epoch = max(1, len(train_samples) // config.batch_size)
    total_steps = config.epochs * steps_per_epoch
    start_epoch, best, history = 0, -1.0, []
    last_path, best_path = run / "last.pt", run / "best.pt"
    if config.resume:
        state = C.load_checkpoint(last_path)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        start_epoch, best, history = state["epoch"] + 1, state["best_score"], state["history"]
        C.restore_rng_state(state["rng"])
    meta = {"kind": "view", "width": config.width, "input_size": pre.input_size, "preprocess": pre.to_manifest(),
            "views": list(VIEWS), "config": C.config_dict(config), "train_images": len(train_samples),
            "val_images": len(val_samples), "train_view_counts": {v: int(c) for v, c in zip(VIEWS, counts)}}  # fmt: skip
    for epoch in range(start_epoch, config.epochs):
        model.train()
        rng = np.random.default_rng([config.seed, epoch])
        losses: list[float] = []
        t0 = time.perf_counter()
        for step, idx in enumerate(tqdm(C.batches(len(train_samples), config.batch_size, rng), total=steps_per_epoch,
                                        desc=f"view epoch {epoch + 1}/{config.epochs}", file=sys.stderr)):  # fmt: skip
            C.set_learning_rate(optimizer, C.learning_rate(epoch * steps_per_epoch + step, total_steps, config.lr, 0.1))
            batch = [C.augment(train_samples[i], rng, config.augment) for i in idx]
            x = torch.from_numpy(np.stack([C.normalise(s.canvas, pre) for s in batch]))[:, None].to(device)
            loss = F.cross_entropy(model(x), torch.from_numpy(train_y[idx]).to(device), weight=weights.to(device))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
        val_acc = accuracy(model, val_samples, val_y, pre, device)
        entry = {"epoch": epoch + 1, "train_loss": float(np.mean(losses)), "val_view_accuracy": val_acc,
                 "seconds": round(time.perf_counter() - t0, 1)}  # fmt: skip
        history.append(entry)
        print(json.dumps(entry), file=sys.stderr)
        if val_acc >= best:
            best = val_acc
            C.save_checkpoint(best_path, {**meta, "model": model.state_dict(), "epoch": epoch, "metrics": {"val_view_accuracy": val_acc}, "history": history})
        C.save_checkpoint(last_path, {**meta, "model": model.state_dict(), "optimizer": optimizer.state_dict(), "epoch": epoch,
                                      "history": history, "best_score": best, "rng": C.rng_state()})  # fmt: skip
        C.write_history(run, history, {"best_score": best})
    if not best_path.is_file():
        raise RuntimeError(f"{run}: training ran no epoch, so there is no best checkpoint")
    return best_path


def load_view(checkpoint: str | Path) -> tuple[nn.Module, dict]:
    state = C.load_checkpoint(Path(checkpoint))
    if state.get("kind") != "view":
        raise ValueError(f"{checkpoint}: not a view-model checkpoint")
    model = ViewNet(state["width"])
    model.load_state_dict(state["model"])
    return model.eval(), state


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="train_view.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--train", type=Path, action="append", required=True, help="COCO instances JSON of training images (repeatable)")
    p.add_argument("--val", type=Path, help="COCO JSON of validation images (default: hold aside --val-fraction)")
    p.add_argument("--image-root", type=Path)
    p.add_argument("--run", type=Path, required=True)
    p.add_argument("--input-size", type=int, default=384)
    p.add_argument("--mean", type=float, default=0.5)
    p.add_argument("--std", type=float, default=0.25)
    p.add_argument("--clahe", action="store_true")
    p.add_argument("--width", type=int, default=16)
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--resume", action="store_true")
    C.add_augment_arguments(p)
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
    config = ViewTrainConfig(
        train=args.train, val=args.val, run_dir=args.run, image_root=args.image_root, input_size=args.input_size,
        mean=args.mean, std=args.std, clahe=args.clahe, width=args.width, epochs=args.epochs,
        batch_size=args.batch_size, lr=args.lr, seed=args.seed, device=args.device, threads=args.threads,
        resume=args.resume, augment=augment,
    )  # fmt: skip

    def work() -> Path:
        Path(args.run).mkdir(parents=True, exist_ok=True)
        C.append_command(Path(args.run), C.command_line(argv, "train_view.py"))
        return train_view(config)

    return C.run_cli(work, (VertxError, ValueError, FileNotFoundError, RuntimeError))


if __name__ == "__main__":
    sys.exit(main())
