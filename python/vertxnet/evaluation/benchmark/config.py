"""What one benchmark run measures (:class:`BenchConfig`) and the names every part shares."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ...runtime import BACKEND_NAMES, PRECISIONS


#: Stages of ``Result.timings_ms``, in pipeline order.
STAGES = ("decode", "preprocess", "unet", "maskrcnn", "trace", "ensemble", "label", "total")
MODELS = ("unet", "maskrcnn")
BASELINE = "ort-cpu default"


@dataclass(frozen=True)
class BenchConfig:
    """One benchmark run.

    bundle        model bundle folder (None: the shipped demo bundle)
    backend       pipeline backend for the stage table ("auto" or a name in runtime.BACKENDS)
    precision     pipeline precision ("fp32", "fp16", "int8"; a variant the bundle must have)
    size          longer side of the phantom films in pixels (the model input size is the bundle's)
    images        distinct phantom films, cycled through the runs
    inputs        films to time instead of phantoms (any format vertx-infer reads: a DICOM as
                  stored, a PNG, ...); given, ``size``, ``images`` and ``seed`` are not used
    warmup, runs  untimed and timed predictions per measurement
    threads       intra-op threads per model session of the pipeline (None: the runtime default)
    seed          phantom seed (seeds from 900000 up are never used in training)
    compare       also time each model under the other backends and session options
    flops         also count multiply-accumulates and measure the machine's matrix-product peak
    torch_checkpoints  folder with the U-Net and Mask R-CNN training run folders (unet/, maskrcnn/
                  holding the checkpoint files the manifest names), for PyTorch eager in the
                  comparison; needs torch and the export/ scripts
    """

    bundle: Path | None = None
    backend: str = "auto"
    precision: str = "fp32"
    size: int = 1024
    images: int = 4
    warmup: int = 3
    runs: int = 20
    threads: int | None = None
    seed: int = 900500
    compare: bool = True
    flops: bool = True
    torch_checkpoints: Path | None = None
    inputs: tuple[Path, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "inputs", tuple(Path(p) for p in self.inputs))
        if self.backend != "auto" and self.backend not in BACKEND_NAMES:
            raise ValueError(f"backend must be 'auto' or one of {', '.join(BACKEND_NAMES)}, got {self.backend!r}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}")
        if isinstance(self.size, bool) or not isinstance(self.size, int) or not 64 <= self.size <= 8192:
            raise ValueError(f"size must be an integer from 64 to 8192 pixels, got {self.size!r}")
        for name, low in (("images", 1), ("warmup", 0), ("runs", 1), ("seed", 0)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
        if self.threads is not None and (isinstance(self.threads, bool) or not isinstance(self.threads, int) or self.threads < 1):
            raise ValueError(f"threads must be a positive integer, got {self.threads!r}")

