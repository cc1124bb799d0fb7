"""Code shared by the training and export scripts: data, augmentation, checkpoints, provenance.

Every image goes through ``vertxnet.preprocess`` exactly as at inference
(``vertxnet.preprocess.letterboxed``: window → optional CLAHE → letterbox, then ``normalise``),
so training and the shipped pipeline see identical inputs. Training targets are rasterised by
pixel centres (``vertxnet.raster``, :data:`TARGET_MASKS`), as the metrics and outputs are.
Augmentation then acts on the letterboxed [0, 1] canvas and on the polygons together, and keeps
the letterbox padding at 0, which is what inference always feeds the networks there.
"""

from __future__ import annotations

import math
import random
import subprocess
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import cv2
import numpy as np

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT / "python") not in sys.path and not any(Path(p, "vertxnet").is_dir() for p in sys.path if p):
    # Running from a source checkout without `pip install -e .`: use the in-tree package.
    sys.path.insert(0, str(REPO_ROOT / "python"))

from vertxnet.cli._args import parse_args  # noqa: E402,F401  (re-exported for the scripts)
from vertxnet.data.datasets import read_coco  # noqa: E402
from vertxnet.records import Record  # noqa: E402
from vertxnet.levels import MRCNN_CLASSES, mrcnn_class_of  # noqa: E402
from vertxnet.files import atomic_path, write_json_atomic  # noqa: E402
from vertxnet.preprocess import PreprocessConfig, letterboxed, normalise  # noqa: E402,F401  (normalise: for the scripts)
from vertxnet.raster import image_mask  # noqa: E402
from randomise import RandomiseConfig, StyleBank, randomise_appearance  # noqa: E402

#: How training masks are drawn from polygons, recorded in every checkpoint: pixels whose centre
#: lies inside (``vertxnet.raster``). Checkpoints without the record were trained on
#: ``cv2.fillPoly`` masks (every pixel the outline touches), which want the "centres" outline.
TARGET_MASKS = "pixel-centres"


# ---------------------------------------------------------------------------------------------
# Reproducibility and threads


def seed_everything(seed: int) -> None:
    import torch

    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


def configure_torch(device: str, threads: int) -> "Any":
    """Return the torch.device to train on; ValueError for an unavailable device."""
    import torch

    if threads > 0:
        torch.set_num_threads(threads)
    if device == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda requested but torch sees no CUDA device")
    if device not in ("cpu", "cuda"):
        raise ValueError(f"device must be 'cpu' or 'cuda', got {device!r}")
    return torch.device(device)



def run_cli(work: "Callable[[], Any]", errors: tuple[type[BaseException], ...]) -> int:
    """Run ``work``; print what it returns (a path, or paths one a line) and return 0, or print
    the expected ``errors`` as one ``error:`` line and return 1."""
    try:
        out = work()
    except errors as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    for item in out if isinstance(out, (list, tuple)) else [out]:
        print(item)
    return 0


def git_commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "-C", str(REPO_ROOT), "rev-parse", "HEAD"], capture_output=True, text=True, check=True, timeout=10
        )
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def command_line(argv: Sequence[str] | None, script: str) -> str:
    import shlex

    args = list(sys.argv[1:] if argv is None else argv)
    return shlex.join(["python", f"export/{script}", *args])


# ---------------------------------------------------------------------------------------------
# Data


@dataclass
class Sample:
    """One letterboxed training image: [0, 1] canvas, content mask and model-space polygons."""

    canvas: np.ndarray  # (S, S) float32 in [0, 1], 0 in the letterbox padding
    content: np.ndarray  # (S, S) uint8, 1 where the image is (not padding)
    polygons: list[np.ndarray]  # (N, 2) float64 in model-input coordinates
    labels: list[int]  # Mask R-CNN class index per polygon (1 vertebra, 2 C2, 3 S1)


def load_records(coco_path: str | Path, image_root: str | Path | None = None) -> list[Record]:
    return read_coco(coco_path, image_root=image_root)


def load_many(coco_paths: Path | Sequence[Path], image_root: str | Path | None = None) -> list[Record]:
    """Records of one or several COCO files, in order."""
    paths = [coco_paths] if isinstance(coco_paths, (str, Path)) else list(coco_paths)
    records: list[Record] = []
    for path in paths:
        records.extend(load_records(path, image_root))
    return records


def prepare_sample(record: Record, pre: PreprocessConfig) -> Sample:
    """Preprocess one record exactly as inference does (without the final normalisation)."""
    canvas, box = letterboxed(record.load_image(), pre)
    x0, y0, x1, y1 = box.content_box
    content = np.zeros_like(canvas, dtype=np.uint8)
    content[y0:y1, x0:x1] = 1
    polygons, labels = [], []
    for ann in record.annotations:
        # An unnamed vertebra (COCO category 27, e.g. a pseudo-label on a real film) is still a
        # vertebra: it trains the U-Net and the Mask R-CNN's plain "vertebra" class.
        polygons.append(box.to_model(ann.polygon))
        labels.append(MRCNN_CLASSES.index("vertebra" if ann.level is None else mrcnn_class_of(ann.level)))
    return Sample(canvas.astype(np.float32), content, polygons, labels)


def prepare_samples(records: Sequence[Record], pre: PreprocessConfig, desc: str = "preprocess") -> list[Sample]:
    from tqdm import tqdm

    return [prepare_sample(r, pre) for r in tqdm(records, desc=desc, leave=False, file=sys.stderr)]


def split_records(records: list[Record], val_fraction: float, seed: int) -> tuple[list[Record], list[Record]]:
    """Deterministic train/validation split (used only when no separate validation file is given)."""
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction}")
    order = list(range(len(records)))
    random.Random(seed).shuffle(order)
    n_val = max(1, round(len(records) * val_fraction))
    if n_val >= len(records):
        raise ValueError(f"{len(records)} images are too few to hold {n_val} aside for validation")
    return [records[i] for i in order[n_val:]], [records[i] for i in order[:n_val]]


def foreground_mask(polygons: Sequence[np.ndarray], size: int) -> np.ndarray:
    """(S, S) uint8 union of the polygons' pixel-centre masks: the U-Net's target."""
    mask = np.zeros((size, size), dtype=np.uint8)
    for p in polygons:
        mask |= image_mask(p, size, size)
    return mask


# ---------------------------------------------------------------------------------------------
# Augmentation


@dataclass(frozen=True)
class AugmentConfig:
    rotation_deg: float = 10.0
    scale_range: tuple[float, float] = (0.85, 1.15)
    translate_fraction: float = 0.08
    contrast_range: tuple[float, float] = (0.75, 1.25)
    brightness: float = 0.08
    gamma_range: tuple[float, float] = (0.7, 1.4)
    hflip_probability: float = 0.5
    noise_std_max: float = 0.03
    enabled: bool = True
    #: appearance randomisation for transfer to real films (export/randomise.py); None = off
    randomise: "RandomiseConfig | None" = None


def augment(sample: Sample, rng: np.random.Generator, cfg: AugmentConfig) -> Sample:
    """Random geometry (rotation, scale, shift = crop, flip) and intensity, applied consistently."""
    if not cfg.enabled:
        return sample
    size = sample.canvas.shape[0]
    centre = size / 2.0
    angle = rng.uniform(-cfg.rotation_deg, cfg.rotation_deg)
    scale = rng.uniform(*cfg.scale_range)
    shift = rng.uniform(-cfg.translate_fraction, cfg.translate_fraction, size=2) * size
    # Affine map in continuous coordinates about the canvas centre.
    a = math.radians(angle)
    rot = scale * np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
    if rng.random() < cfg.hflip_probability:
        rot = rot @ np.array([[-1.0, 0.0], [0.0, 1.0]])
    offset = np.array([centre, centre]) + shift - rot @ np.array([centre, centre])
    # cv2.warpAffine works on pixel indices (centre of pixel j is j + 0.5): p_idx' = R p_idx + t_idx
    t_idx = offset + rot @ np.array([0.5, 0.5]) - 0.5
    m_idx = np.hstack([rot, t_idx[:, None]])
    canvas = cv2.warpAffine(sample.canvas, m_idx, (size, size), flags=cv2.INTER_LINEAR, borderValue=0.0)
    content = cv2.warpAffine(sample.content, m_idx, (size, size), flags=cv2.INTER_NEAREST, borderValue=0)
    polygons = [np.asarray(p) @ rot.T + offset for p in sample.polygons]

    gamma = rng.uniform(*cfg.gamma_range)
    contrast = rng.uniform(*cfg.contrast_range)
    brightness = rng.uniform(-cfg.brightness, cfg.brightness)
    canvas = np.clip(canvas, 0.0, 1.0) ** gamma
    canvas = (canvas - 0.5) * contrast + 0.5 + brightness
    noise_std = rng.uniform(0.0, cfg.noise_std_max)
    if noise_std > 0:
        canvas = canvas + rng.normal(0.0, noise_std, size=canvas.shape)
    canvas = np.clip(canvas, 0.0, 1.0).astype(np.float32) * content  # padding stays exactly 0
    if cfg.randomise is not None:
        canvas = randomise_appearance(canvas, content, rng, cfg.randomise)
    return Sample(canvas.astype(np.float32), content, polygons, list(sample.labels))


def instance_targets(sample: Sample, min_pixels: int = 16) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Boxes (K, 4) x1,y1,x2,y2, labels (K,), masks (K, S, S) uint8 of the instances still visible."""
    size = sample.canvas.shape[0]
    boxes, labels, masks = [], [], []
    for poly, label in zip(sample.polygons, sample.labels):
        mask = image_mask(poly, size, size).astype(np.uint8) & sample.content
        if int(mask.sum()) < min_pixels:
            continue
        ys, xs = np.nonzero(mask)
        boxes.append([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1])
        labels.append(label)
        masks.append(mask)
    if not boxes:
        return np.zeros((0, 4), np.float32), np.zeros((0,), np.int64), np.zeros((0, size, size), np.uint8)
    return np.asarray(boxes, np.float32), np.asarray(labels, np.int64), np.stack(masks)


def batches(n: int, batch_size: int, rng: np.random.Generator) -> Iterator[np.ndarray]:
    order = rng.permutation(n)
    for i in range(0, n - batch_size + 1 if n >= batch_size else 1, batch_size):
        yield order[i : i + batch_size]


def add_augment_arguments(parser: Any) -> None:
    """Training-data options shared by both training scripts."""
    parser.add_argument("--no-augment", action="store_true", help="no geometric, intensity or appearance augmentation")
    parser.add_argument(
        "--randomise", choices=("strong", "off"), default="off",
        help="appearance randomisation for transfer to real films (export/randomise.py): tone curves, "
        "edge enhancement, noise, collimation, bars, text, markers, JPEG, real-film style",
    )  # fmt: skip
    parser.add_argument("--style-films", type=Path, help="folder of UNLABELLED real films whose style (FDA / histogram) training images take on")
    parser.add_argument("--style-limit", type=int, default=200, help="at most this many style films are loaded")


def augment_config(args: Any) -> AugmentConfig:
    """The AugmentConfig the options of :func:`add_augment_arguments` ask for."""
    if args.style_films is not None and args.randomise == "off":
        raise ValueError("--style-films needs --randomise strong")
    randomise = None
    if args.randomise == "strong":
        bank = StyleBank.from_folder(args.style_films, limit=args.style_limit) if args.style_films else None
        randomise = RandomiseConfig(style_bank=bank)
    return AugmentConfig(enabled=not args.no_augment, randomise=randomise)


# ---------------------------------------------------------------------------------------------
# Checkpoints


def save_checkpoint(path: Path, state: dict[str, Any]) -> Path:
    """torch.save to a temporary name in the same folder, then rename (never a half-written file)."""
    import torch

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        torch.save(state, tmp)
    return path


def load_checkpoint(path: Path) -> dict[str, Any]:
    import torch

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no checkpoint to resume from")
    # Our own checkpoints hold plain Python metadata next to tensors.
    return torch.load(path, map_location="cpu", weights_only=False)


def learning_rate(step: int, total_steps: int, max_lr: float, warmup_fraction: float) -> float:
    """Linear warm-up from max_lr/25, then cosine decay to max_lr/1e4 (the one-cycle shape).

    A pure function of the step, so a resumed run with a different ``--epochs`` simply follows
    the schedule of its new length from where it stopped.
    """
    total = max(1, total_steps)
    warmup = max(1, int(round(warmup_fraction * total)))
    start, end = max_lr / 25.0, max_lr / 1e4
    if step < warmup:
        return start + (max_lr - start) * step / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return end + 0.5 * (max_lr - end) * (1.0 + math.cos(math.pi * progress))


def set_learning_rate(optimizer: Any, lr: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = lr


def rng_state() -> dict[str, Any]:
    import torch

    return {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}


def restore_rng_state(state: dict[str, Any]) -> None:
    import torch

    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])


def write_history(run: Path, history: list[dict], summary: dict) -> None:
    write_json_atomic({"epochs": history, **summary}, Path(run) / "history.json", indent=1)


def append_command(run: Path, command: str) -> None:
    """Record the exact command line of every (re)start of a run in RUN/commands.json."""
    import json

    path = Path(run) / "commands.json"
    commands = json.loads(path.read_text()) if path.is_file() else []
    commands.append(command)
    write_json_atomic(commands, path, indent=1)


def config_dict(config: Any) -> dict[str, Any]:
    d = asdict(config)
    return {k: (str(v) if isinstance(v, Path) else v) for k, v in d.items()}
