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

from vertxnet.levels import VIEWS, view_of_levels  # noqa: E402
from vertxnet.preprocess import PreprocessConfig  # noqa: E402

#: The resolution the view model works at, whatever the bundle's input size.
VIEW_RESOLUTION = 128


def adaptive_pool_matrix(size: int, out: int) -> torch.Tensor:
    """(out, size) matrix whose product with a column is adaptive average pooling's: row i
    averages [floor(i * size / out), ceil((i + 1) * size / out))."""
    m = torch.zeros(out, size)
    for i in range(out):
        start, end = (i * size) // out, -((-(i + 1) * size) // out)
        m[i, start:end] = 1.0 / (end - start)
    return m


def adaptive_pool(image: torch.Tensor, out: int) -> torch.Tensor:
    """``F.adaptive_avg_pool2d(image, out)`` as two matrix products: the same values, and an
    ONNX export for any input size (ONNX's pooling needs the output to divide the input)."""
    h, w = image.shape[-2:]
    if h % out == 0 and w % out == 0:
        return F.adaptive_avg_pool2d(image, out)
    rows = adaptive_pool_matrix(int(h), out).to(image)
    cols = adaptive_pool_matrix(int(w), out).to(image)
    return rows @ image @ cols.T


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
        x = adaptive_pool(image, VIEW_RESOLUTION)
        x = self.features(x)
        return self.head(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


@dataclass
class ViewTrainConfig(T.TrainConfig):
    input_size: int = 384
    width: int = 16
    epochs: int = 10
    batch_size: int = 32
    lr: float = 2e-3
    threads: int = 1


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
    targets: list[np.ndarray] = []

    def select(records: list) -> list:
        kept, views = view_targets(records)
        targets.append(views)
        return kept

    device, train_samples, val_samples = T.start(
        config, select=select, nothing_selected="no training or validation image has annotated levels to derive its view from"
    )
    train_y, val_y = targets
    pre = config.preprocess
    counts = np.bincount(train_y, minlength=len(VIEWS))
    # Classes the data lack get no weight; the others are balanced.
    weights = torch.tensor(np.where(counts > 0, counts.sum() / np.maximum(counts, 1) / max(1, (counts > 0).sum()), 0.0), dtype=torch.float32)

    model = ViewNet(config.width).to(device)
    meta = T.checkpoint_meta("view", config, train_samples, val_samples, width=config.width, input_size=pre.input_size,
                             views=list(VIEWS), train_view_counts={v: int(c) for v, c in zip(VIEWS, counts)})

    def loss(batch: list[C.Sample], indices: np.ndarray) -> tuple[torch.Tensor, dict[str, str]]:
        x = torch.from_numpy(np.stack([C.normalise(s.canvas, pre) for s in batch]))[:, None].to(device)
        return F.cross_entropy(model(x), torch.from_numpy(train_y[indices]).to(device), weight=weights.to(device)), {}

    network = T.Network(
        kind="view", model=model, meta=meta, loss=loss,
        validate=lambda: {"val_view_accuracy": accuracy(model, val_samples, val_y, pre, device)},
        score=lambda figures: figures["val_view_accuracy"], warmup_fraction=0.1,
    )  # fmt: skip
    return T.fit(network, train_samples, config.schedule)


def load_view(checkpoint: str | Path) -> tuple[nn.Module, dict]:
    return T.load_trained(checkpoint, "view", "view-model", lambda state: ViewNet(state["width"]))


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="train_view.py", description=__doc__.split("\n\n")[0])
    T.add_arguments(p, input_size=384, epochs=10, batch_size=32, lr=2e-3, threads=1, held_out=False)
    p.add_argument("--width", type=int, default=16)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    return T.main("train_view.py", build_parser(), argv, lambda args, fields: ViewTrainConfig(**fields, width=args.width), train_view)


if __name__ == "__main__":
    sys.exit(main())
