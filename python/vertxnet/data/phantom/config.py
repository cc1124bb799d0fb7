"""Phantom configuration: view, size, seed, difficulty preset and per-knob overrides."""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

#: Regions a film may show (as :data:`vertxnet.levels.VIEWS`), plus ``mixed`` (drawn per image).
VIEWS = ("cervical", "cervicothoracic", "thoracic", "thoracolumbar", "lumbar", "mixed")
#: How often ``mixed`` draws each region.
MIXED_WEIGHTS = {"cervical": 0.3, "cervicothoracic": 0.1, "thoracic": 0.1, "thoracolumbar": 0.2, "lumbar": 0.3}
#: ``film``: the realistic renderer; ``classic``: the first renderer (format version 1), kept so
#: that data made with it (and models trained on it) can be reproduced.
STYLES = ("film", "classic")
DIFFICULTIES = ("easy", "normal", "hard")


@dataclass(frozen=True)
class Knobs:
    """What makes a film hard to read. Probabilities are per image unless stated otherwise."""

    noise: float  # quantum noise: 0 = noiseless, 1 = a low-dose film
    blur_mm: float  # detector blur (Gaussian sigma, mm)
    scatter: float  # scatter-to-primary ratio at the spine
    contrast_jitter: float  # spread of the film curve (gamma, latitude) between images
    rotation_deg: float  # largest in-plane tilt of the patient
    scale_jitter: float  # relative spread of the field size (and so the vertebra size in pixels)
    position_jitter: float  # spread of the spine position across the field (fraction of the width)
    curvature: float  # spread of the lordosis around its typical value (1 = population spread)
    partial_edge: float  # how deep the field edge may cut the end vertebra (0 = clean cut between levels)
    fracture_prob: float  # probability of one wedge/compression fracture
    implant_prob: float  # probability of instrumentation (screws + rods, cages, anterior plate)
    osteophyte_prob: float  # per-vertebra probability of anterior osteophytes
    touching_disc_prob: float  # probability of one disc narrowed until its neighbours touch
    degenerate_disc_prob: float  # per-disc probability of a narrowed (not touching) disc
    soft_tissue: float  # strength of bowel gas, shoulder, skull and pelvis shadows (0 = none)
    # patient roll about the long axis and beam divergence, which double paired bone (film style;
    # 0 = a true lateral with a parallel beam)
    obliquity: float = 1.0


PRESETS: dict[str, Knobs] = {
    "easy": Knobs(
        noise=0.15, blur_mm=0.15, scatter=0.15, contrast_jitter=0.3, rotation_deg=4.0, scale_jitter=0.08,
        position_jitter=0.04, curvature=0.5, partial_edge=0.2, fracture_prob=0.0, implant_prob=0.0,
        osteophyte_prob=0.0, touching_disc_prob=0.0, degenerate_disc_prob=0.05, soft_tissue=0.5, obliquity=0.3,
    ),
    "normal": Knobs(
        noise=0.45, blur_mm=0.3, scatter=0.35, contrast_jitter=0.6, rotation_deg=10.0, scale_jitter=0.15,
        position_jitter=0.08, curvature=1.0, partial_edge=0.6, fracture_prob=0.15, implant_prob=0.12,
        osteophyte_prob=0.15, touching_disc_prob=0.15, degenerate_disc_prob=0.15, soft_tissue=1.0, obliquity=1.0,
    ),
    "hard": Knobs(
        noise=0.85, blur_mm=0.5, scatter=0.6, contrast_jitter=1.0, rotation_deg=18.0, scale_jitter=0.22,
        position_jitter=0.12, curvature=1.6, partial_edge=1.0, fracture_prob=0.4, implant_prob=0.3,
        osteophyte_prob=0.35, touching_disc_prob=0.45, degenerate_disc_prob=0.3, soft_tissue=1.4, obliquity=1.6,
    ),
}

KNOB_NAMES: tuple[str, ...] = tuple(f.name for f in fields(Knobs))


@dataclass(frozen=True)
class PhantomConfig:
    """Everything that determines a phantom data set. ``generate(config, i)`` is a pure function.

    ``view`` is one of :data:`VIEWS` (``mixed`` draws one per image); ``size`` is the longer image
    side in pixels; ``overrides`` replaces individual knobs of the difficulty preset, e.g.
    ``{"implant_prob": 1.0}``; ``style`` picks the renderer (:data:`STYLES`).
    """

    view: str = "mixed"
    size: int = 512
    seed: int = 0
    difficulty: str = "normal"
    overrides: tuple[tuple[str, float], ...] = ()
    style: str = "film"

    def __post_init__(self) -> None:
        if self.style not in STYLES:
            raise ValueError(f"style must be one of {', '.join(STYLES)}, got {self.style!r}")
        if self.style == "classic" and self.view not in ("cervical", "lumbar", "mixed"):
            raise ValueError(f"the classic style draws cervical, lumbar or mixed views only, got {self.view!r}")
        if self.view not in VIEWS:
            raise ValueError(f"view must be one of {', '.join(VIEWS)}, got {self.view!r}")
        if self.difficulty not in DIFFICULTIES:
            raise ValueError(f"difficulty must be one of {', '.join(DIFFICULTIES)}, got {self.difficulty!r}")
        if isinstance(self.size, bool) or not isinstance(self.size, int) or not 64 <= self.size <= 8192:
            raise ValueError(f"size must be an integer from 64 to 8192 pixels, got {self.size!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {self.seed!r}")
        overrides = dict(self.overrides) if not isinstance(self.overrides, dict) else self.overrides
        for name, value in overrides.items():
            if name not in KNOB_NAMES:
                raise ValueError(f"unknown phantom knob {name!r}; known knobs: {', '.join(KNOB_NAMES)}")
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not value >= 0 or value == float("inf"):
                raise ValueError(f"knob {name} must be a finite number >= 0, got {value!r}")
            if name.endswith("_prob") and value > 1:
                raise ValueError(f"knob {name} is a probability and must lie in [0, 1], got {value!r}")
        # a sorted tuple keeps the config hashable and its repr stable
        object.__setattr__(self, "overrides", tuple(sorted((k, float(v)) for k, v in overrides.items())))

    def knobs(self) -> Knobs:
        """The difficulty preset with the overrides applied."""
        return replace(PRESETS[self.difficulty], **dict(self.overrides))
