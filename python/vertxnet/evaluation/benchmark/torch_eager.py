"""PyTorch eager on the training checkpoints a bundle was exported from (needs torch and export/)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from ...bundle import Bundle
from .config import MODELS
from .variants import Variant


def checkpoint_names(bundle: Bundle) -> dict[str, str]:
    """File name of each model's training checkpoint the bundle was exported from
    (manifest ``training.<model>.checkpoint``; ``best.pt`` when the manifest does not say)."""
    training = bundle.manifest.get("training") if isinstance(bundle.manifest.get("training"), dict) else {}
    names = {}
    for model in MODELS:
        entry = training.get(model) if isinstance(training.get(model), dict) else {}
        name = entry.get("checkpoint")
        names[model] = name if isinstance(name, str) and name and Path(name).name == name else "best.pt"
    return names


def _find_checkpoints(folder: Path, names: dict[str, str]) -> dict[str, Path]:
    """Checkpoint of each model in ``folder``: ``<model>/<name>``, else any ``*/<name>`` or
    ``<name>`` whose checkpoint ``kind`` says which model it holds."""
    import torch

    found: dict[str, Path] = {}
    for model in MODELS:
        candidate = folder / model / names[model]
        if candidate.is_file():
            found[model] = candidate
    for model in MODELS:
        if model in found:
            continue
        for candidate in sorted([*folder.glob(names[model]), *folder.glob(f"*/{names[model]}")]):
            if torch.load(candidate, map_location="cpu", weights_only=False).get("kind") == model:
                found[model] = candidate
                break
    return found


def torch_variant(folder: Path, bundle: Bundle, threads: int) -> tuple[Variant | None, str]:
    """PyTorch eager on the training checkpoints in ``folder``, or (None, why not).

    The checkpoint file names come from the bundle's manifest; the comparison reports how far
    the PyTorch outputs are from ONNX Runtime's, which shows whether they are the same weights.
    """
    try:
        import torch
    except ImportError:
        return None, "torch is not installed (pip install 'vertxnet[train]')"
    export_dir = Path(__file__).resolve().parents[4] / "export"
    if not (export_dir / "train_unet.py").is_file():
        return None, f"the model definitions in export/ are not present (expected {export_dir}; run from a source checkout)"
    if not folder.is_dir():
        return None, f"{folder}: no such checkpoint folder"
    names = checkpoint_names(bundle)
    found = _find_checkpoints(folder, names)
    missing = [f"{m} ({names[m]})" for m in MODELS if m not in found]
    if missing:
        return None, f"{folder}: no checkpoint for {', '.join(missing)}"
    if str(export_dir) not in sys.path:
        sys.path.insert(0, str(export_dir))
    from train_maskrcnn import MaskRCNNForExport, load_maskrcnn  # noqa: PLC0415 - optional, needs torch
    from train_unet import load_unet

    torch.set_num_threads(threads)
    input_size = bundle.preprocess.input_size

    def opener(model: str):
        if model == "unet":
            net = load_unet(found["unet"])[0].eval()
        else:
            net = MaskRCNNForExport(load_maskrcnn(found["maskrcnn"])[0], input_size).eval()

        def run(x: np.ndarray):
            with torch.inference_mode():
                out = net(torch.from_numpy(x))
            return [t.numpy() for t in out] if isinstance(out, (tuple, list)) else [out.numpy()]

        return run

    description = f"PyTorch {torch.__version__} eager, CPU, {threads} thread(s), checkpoints {found['unet']} and {found['maskrcnn']}"
    return Variant("torch eager", description, opener), ""

