"""The one training loop of every network in export/ (U-Net, Mask R-CNN, view model).

A network's script says what is its own: the model, how a batch becomes a loss, which figures
validation measures and which of them picks the best checkpoint (:class:`Network`). The loop
does the rest the same way for all: seeded batches and augmentation per epoch, the step-based
learning-rate schedule (warm-up, then cosine decay; a resumed run may change ``--epochs``),
AdamW, a refusal of non-finite losses, optional gradient clipping, and in the run folder
``best.pt`` (best validation score; a tie goes to the later epoch), ``last.pt`` (to resume,
with optimizer and RNG state) and ``history.json``.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

import _common as C


@dataclass
class Network:
    """What one network's training brings to :func:`fit`.

    loss(batch, indices) -> (loss, extra progress-bar fields): forward pass on the augmented
    samples ``batch`` (``indices`` are theirs in the training set). validate() -> ``val_*`` figures of
    the model as it is now; score(figures) -> the number the best checkpoint is chosen by.
    """

    kind: str
    model: torch.nn.Module
    meta: dict[str, Any]
    loss: Callable[[list[C.Sample], np.ndarray], tuple[torch.Tensor, dict[str, str]]]
    validate: Callable[[], dict[str, float]]
    score: Callable[[dict[str, float]], float]
    warmup_fraction: float = 0.1
    clip_grad_norm: float | None = None
    #: Key of the best score in history.json.
    best_key: str = "best_score"
    #: Format of the running loss on the progress bar.
    loss_format: str = ".4f"


@dataclass(frozen=True)
class Schedule:
    """The options every training script shares."""

    run_dir: Path
    epochs: int
    batch_size: int
    lr: float
    weight_decay: float
    seed: int
    augment: C.AugmentConfig
    resume: bool = False


@dataclass
class TrainConfig:
    """The options every training run has (each network's config adds its own and its defaults)."""

    train: list[Path]
    """One or more COCO instances files."""
    run_dir: Path
    val: Path | None = None
    """Validation COCO file; without one, ``val_fraction`` of ``train`` is held aside."""
    image_root: Path | None = None
    val_fraction: float = 0.1
    max_train_images: int | None = None
    input_size: int = 256
    mean: float = 0.5
    std: float = 0.25
    clahe: bool = False
    """Preprocessing (:class:`vertxnet.preprocess.PreprocessConfig`), recorded in the bundle."""
    augment: C.AugmentConfig = field(default_factory=C.AugmentConfig)
    epochs: int = 20
    batch_size: int = 4
    lr: float = 1e-3
    weight_decay: float = 1e-4
    seed: int = 0
    """Seeds torch, numpy and Python; batches and augmentation of epoch e draw from (seed, e)."""
    device: str = "cpu"
    threads: int = 2
    resume: bool = False

    @property
    def preprocess(self) -> "C.PreprocessConfig":
        return C.PreprocessConfig(input_size=self.input_size, mean=self.mean, std=self.std, clahe=self.clahe)

    @property
    def schedule(self) -> Schedule:
        return Schedule(run_dir=self.run_dir, epochs=self.epochs, batch_size=self.batch_size, lr=self.lr,
                        weight_decay=self.weight_decay, seed=self.seed, augment=self.augment, resume=self.resume)

    def records(self) -> tuple[list, list]:
        """Training and validation records (:func:`training_records`)."""
        return training_records(self.train, self.val, self.image_root, self.val_fraction, self.seed, self.max_train_images)


def start(config: TrainConfig, *, select: Callable[[list], list] | None = None,
          nothing_selected: str = "no training or validation image is left to learn from") -> tuple[Any, list[C.Sample], list[C.Sample]]:
    """Device, seeds and the preprocessed training and validation samples of ``config``'s run
    (``select`` keeps the records a network can learn from; ValueError ``nothing_selected`` when
    it leaves none)."""
    device = C.configure_torch(config.device, config.threads)
    C.seed_everything(config.seed)
    train_records, val_records = config.records()
    if select is not None:
        train_records, val_records = select(train_records), select(val_records)
        if not train_records or not val_records:
            raise ValueError(nothing_selected)
    pre = config.preprocess
    return device, C.prepare_samples(train_records, pre, "preprocess train"), C.prepare_samples(val_records, pre, "preprocess val")


def checkpoint_meta(kind: str, config: TrainConfig, train_samples: Sequence, val_samples: Sequence, **model: Any) -> dict[str, Any]:
    """What every checkpoint records besides the weights: the network and how it was trained."""
    return {"kind": kind, **model, "preprocess": config.preprocess.to_manifest(), "config": C.config_dict(config),
            "train_images": len(train_samples), "val_images": len(val_samples)}  # fmt: skip


def fit(net: Network, train_samples: Sequence[C.Sample], schedule: Schedule) -> Path:
    """Train ``net`` (or resume it from ``run_dir/last.pt``); returns the path of best.pt."""
    from tqdm import tqdm

    run = Path(schedule.run_dir)
    run.mkdir(parents=True, exist_ok=True)
    params = [p for p in net.model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=schedule.lr, weight_decay=schedule.weight_decay)
    steps_per_epoch = max(1, len(train_samples) // schedule.batch_size)
    total_steps = schedule.epochs * steps_per_epoch
    start_epoch, best, history = 0, -1.0, []
    last_path, best_path = run / "last.pt", run / "best.pt"
    if schedule.resume:
        state = C.load_checkpoint(last_path)
        net.model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        start_epoch, best, history = state["epoch"] + 1, state["best_score"], state["history"]
        C.restore_rng_state(state["rng"])
    for epoch in range(start_epoch, schedule.epochs):
        net.model.train()
        rng = np.random.default_rng([schedule.seed, epoch])
        losses: list[float] = []
        t0 = time.perf_counter()
        bar = tqdm(
            C.batches(len(train_samples), schedule.batch_size, rng),
            total=steps_per_epoch,
            desc=f"{net.kind} epoch {epoch + 1}/{schedule.epochs}",
            file=sys.stderr,
        )
        for step_in_epoch, idx in enumerate(bar):
            step = epoch * steps_per_epoch + step_in_epoch
            C.set_learning_rate(optimizer, C.learning_rate(step, total_steps, schedule.lr, net.warmup_fraction))
            batch = [C.augment(train_samples[i], rng, schedule.augment) for i in idx]
            loss, postfix = net.loss(batch, idx)
            if not torch.isfinite(loss):
                raise RuntimeError(f"loss became {float(loss)} at epoch {epoch + 1}; lower --lr")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if net.clip_grad_norm is not None:
                torch.nn.utils.clip_grad_norm_(params, net.clip_grad_norm)
            optimizer.step()
            losses.append(loss.item())
            bar.set_postfix(loss=f"{np.mean(losses[-20:]):{net.loss_format}}", **postfix)
        figures = net.validate()
        score = net.score(figures)
        entry = {
            "epoch": epoch + 1,
            "train_loss": float(np.mean(losses)) if losses else float("nan"),
            **figures,
            "seconds": round(time.perf_counter() - t0, 1),
        }
        history.append(entry)
        print(json.dumps(entry), file=sys.stderr)
        if score >= best:  # a tie goes to the later epoch (lower learning rate, lower loss)
            best = score
            metrics = {k: v for k, v in entry.items() if k.startswith("val_")}
            C.save_checkpoint(best_path, {**net.meta, "model": net.model.state_dict(), "epoch": epoch, "metrics": metrics, "history": history})
        state = {
            **net.meta,
            "model": net.model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "epoch": epoch,
            "history": history,
            "best_score": best,
            "rng": C.rng_state(),
        }
        C.save_checkpoint(last_path, state)
        C.write_history(run, history, {net.best_key: best})
    if not best_path.is_file():
        raise RuntimeError(f"{run}: training ran no epoch, so there is no best checkpoint")
    return best_path


def load_trained(checkpoint: str | Path, kind: str, name: str, build: Callable[[dict[str, Any]], torch.nn.Module]) -> tuple[torch.nn.Module, dict]:
    """The network a checkpoint of ``kind`` holds, rebuilt by ``build(state)``, in eval mode, and
    the checkpoint; ValueError naming the file when it holds another network (``name`` says which it should)."""
    state = C.load_checkpoint(Path(checkpoint))
    if state.get("kind") != kind:
        raise ValueError(f"{checkpoint}: not a {name} checkpoint")
    model = build(state)
    model.load_state_dict(state["model"])
    return model.eval(), state


def training_records(train: Sequence[Path], val: Path | None, image_root: Path | None, val_fraction: float, seed: int,
                     max_train_images: int | None = None) -> tuple[list, list]:
    """Training and validation records: the ``val`` file, or ``val_fraction`` held aside."""
    records = C.load_many(train, image_root)
    if val is not None:
        train_records, val_records = records, C.load_records(val, image_root)
    else:
        train_records, val_records = C.split_records(records, val_fraction, seed)
    if max_train_images:
        train_records = train_records[:max_train_images]
    return train_records, val_records


def target_masks(resume: bool, run_dir: Path) -> str:
    """How the run's training masks were drawn, for its checkpoints: :data:`_common.TARGET_MASKS`;
    a resumed run keeps what it recorded, and one begun before the record (cv2.fillPoly masks)
    says that its later epochs saw pixel-centre masks."""
    if not resume:
        return C.TARGET_MASKS
    state = C.load_checkpoint(Path(run_dir) / "last.pt")
    if "target_masks" in state:
        return state["target_masks"]
    return f"cv2.fillPoly to epoch {int(state['epoch']) + 1}, {C.TARGET_MASKS} after"


# ---------------------------------------------------------------------------------------------
# The command line every training script shares


def add_arguments(p: Any, *, input_size: int, epochs: int, batch_size: int, lr: float, threads: int, held_out: bool = True) -> None:
    """Data, preprocessing, schedule and run options (each script adds its model's own).

    ``held_out``: also ``--val-fraction`` and ``--max-train-images``.
    """
    p.add_argument("--train", type=Path, action="append", required=True, help="COCO instances JSON of training images (repeatable)")
    p.add_argument("--val", type=Path, help="COCO JSON of validation images (default: hold aside --val-fraction)")
    p.add_argument("--image-root", type=Path, help="folder the COCO file names are relative to")
    p.add_argument("--run", type=Path, required=True, help="run folder for checkpoints and history")
    p.add_argument("--input-size", type=int, default=input_size)
    p.add_argument("--mean", type=float, default=0.5)
    p.add_argument("--std", type=float, default=0.25)
    p.add_argument("--clahe", action="store_true", help="apply CLAHE in preprocessing (recorded in the bundle)")
    p.add_argument("--epochs", type=int, default=epochs)
    p.add_argument("--batch-size", type=int, default=batch_size)
    p.add_argument("--lr", type=float, default=lr)
    if held_out:
        p.add_argument("--val-fraction", type=float, default=0.1)
        p.add_argument("--max-train-images", type=int)
    C.add_augment_arguments(p)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    p.add_argument("--threads", type=int, default=threads, help="torch CPU threads")
    p.add_argument("--resume", action="store_true", help="continue from RUN/last.pt")


def config_arguments(args: Any, augment: C.AugmentConfig) -> dict[str, Any]:
    """The training-config fields :func:`add_arguments` options give."""
    fields = dict(
        train=args.train, val=args.val, image_root=args.image_root, run_dir=args.run, input_size=args.input_size,
        mean=args.mean, std=args.std, clahe=args.clahe, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
        seed=args.seed, device=args.device, threads=args.threads, resume=args.resume, augment=augment,
    )  # fmt: skip
    for name in ("val_fraction", "max_train_images"):
        if hasattr(args, name):
            fields[name] = getattr(args, name)
    return fields


def main(script: str, parser: Any, argv: Sequence[str] | None, make_config: Callable[[Any, dict[str, Any]], Any],
         train: Callable[[Any], Path]) -> int:
    """Parse, build the config (``make_config(args, fields)``), record the command line in the
    run folder and train; exit 0 with the best checkpoint's path printed, 1 on failure, 2 on usage."""
    from vertxnet.errors import VertxError

    args = C.parse_args(parser, argv)
    if isinstance(args, int):
        return args
    try:
        augment = C.augment_config(args)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    config = make_config(args, config_arguments(args, augment))

    def work() -> Path:
        Path(args.run).mkdir(parents=True, exist_ok=True)
        C.append_command(Path(args.run), C.command_line(argv, script))
        return train(config)

    return C.run_cli(work, (VertxError, ValueError, FileNotFoundError, RuntimeError))
