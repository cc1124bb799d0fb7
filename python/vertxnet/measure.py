"""Clinical measurements from the vertebral bodies of one lateral film (SPEC section 11).

Per vertebra: the four rim corners and the endplates, anterior / middle / posterior heights
(px, and mm when the pixel spacing is known), their ratios, the Genant semi-quantitative grade
with its deformity type, the endplate tilts and first-order radiomics of the pixels inside the
outline. Per spine: lumbar lordosis (L1 superior to S1 superior endplate), cervical lordosis
(C2 inferior to C7 inferior endplate) and, between every two neighbouring bodies, the disc and
segmental angles, anterior / middle / posterior disc heights and antero- or retrolisthesis
(slip in px / mm and as a share of the lower body's depth, Meyerding grade).

The geometry is the C++ core's (``vertxnet._core.measure_spine``; algorithm notes in
``cpp/include/vertx/morphometry.hpp``); this module names and packages it.

Conventions
- Corners are listed posterior-superior, anterior-superior, anterior-inferior, posterior-inferior
  (the order of the real-film annotations), in original pixels.
- ``faces`` is the side of the image the patient's front is on (``left`` / ``right``), or
  ``auto``: a DICOM image's Patient Orientation (0020,0020) when it names the row direction
  (A or P), else inferred from the bow of the chain (cervical and lumbar spines bulge forwards,
  the mid-thoracic spine backwards); when the bow is too slight the film is taken to face left
  and flag ``facing_assumed`` is set. The choice and where it came from are in ``spine``.
- Angles are in degrees, positive when lordotic (open towards the front). An endplate's tilt is
  positive when its anterior end lies lower in the image.
- Genant: reduction = the largest of 1 - Ha/Hp (wedge), 1 - Hm/Hp (biconcave) and 1 - Hp/Hp_ref
  (crush; Hp_ref = mean posterior height of the measured, whole, graded neighbours); grade 0 below
  20 %, 1 from 20 %, 2 from 25 % to 40 %, 3 above 40 %. C3...L5 and unnamed bodies are graded; C1,
  C2 (the dens) and S1 (the sacrum) are not, nor are partial bodies (their heights are cut).
- Nothing is dropped: an unnamed, partial or unmeasurable vertebra keeps its entry, with flags
  (``unnamed``, ``partial``, ``unmeasurable``, ``not_graded``, ``spur_<corner>`` where the outline
  shows an osteophyte that was left out of the endplate fit).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from . import radiomics as _radiomics
from ._core import measure_spine as _measure_spine
from .levels import LEVELS
from .raster import polygon_mask, polygon_window

Faces = Literal["auto", "left", "right"]
CORNER_NAMES: tuple[str, ...] = ("posterior_superior", "anterior_superior", "anterior_inferior", "posterior_inferior")
#: Decimal places in JSON (lengths and angles; ratios get 4 significant decimals too).
DECIMALS = 4
#: A vertex closer than this (px) to the image border marks a vertebra cut by the field edge.
EDGE_TOLERANCE_PX = 1.0


@dataclass(frozen=True)
class MeasureConfig:
    """What ``measure`` does. ``radiomics`` needs the image pixels."""

    faces: Faces = "auto"
    side_margin: float = 0.1  # share of each side left out of its fit at both corners
    min_slip_percent: float = 5.0  # smaller slips are not listhesis (Meyerding grade 0)
    radiomics: bool = True
    bin_width: float = _radiomics.DEFAULT_BIN_WIDTH
    # "numpy": pyradiomics' definitions, about 1 ms a vertebra; "pyradiomics" (or "auto" when it
    # is installed) runs pyradiomics itself, the same numbers, about 10 ms a vertebra after a
    # first call that imports it (seconds).
    radiomics_backend: _radiomics.Backend = "numpy"

    def validate(self) -> None:
        if self.faces not in ("auto", "left", "right"):
            raise ValueError(f"faces must be 'auto', 'left' or 'right', got {self.faces!r}")
        if not 0.0 <= self.side_margin <= 0.4:
            raise ValueError(f"side_margin must lie in [0, 0.4], got {self.side_margin!r}")
        if not (np.isfinite(self.min_slip_percent) and self.min_slip_percent >= 0):
            raise ValueError(f"min_slip_percent must be a finite number >= 0, got {self.min_slip_percent!r}")
        if not (np.isfinite(self.bin_width) and self.bin_width > 0):
            raise ValueError(f"bin_width must be a finite number > 0, got {self.bin_width!r}")
        _radiomics.resolve_backend(self.radiomics_backend)


@dataclass(frozen=True)
class VertebraMeasurement:
    """The measurements of one vertebra (None where a value cannot be had)."""

    label: str | None
    measured: bool
    partial: bool
    corners: np.ndarray | None  # (4, 2) in CORNER_NAMES order, original pixels
    superior_middle: tuple[float, float] | None
    inferior_middle: tuple[float, float] | None
    height_anterior_px: float | None
    height_middle_px: float | None
    height_posterior_px: float | None
    height_anterior_mm: float | None
    height_middle_mm: float | None
    height_posterior_mm: float | None
    depth_superior_px: float | None
    depth_inferior_px: float | None
    ratio_anterior_posterior: float | None  # Ha / Hp
    ratio_middle_posterior: float | None  # Hm / Hp
    ratio_posterior_reference: float | None  # Hp / mean posterior height of the neighbours
    superior_tilt_deg: float | None
    inferior_tilt_deg: float | None
    endplate_angle_deg: float | None  # inferior minus superior tilt (+ = taller anteriorly)
    genant_grade: int | None
    deformity: str | None  # "none" | "wedge" | "biconcave" | "crush"
    height_reduction: float | None  # the reduction that sets the grade (share, 0.2 = 20 %)
    radiomics: dict[str, float | None] | None
    flags: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        d = DECIMALS

        def r(value: float | None) -> float | None:
            return None if value is None else round(float(value), d)

        out: dict[str, Any] = {
            "measured": self.measured,
            "corners": None if self.corners is None else {
                name: [r(v) for v in self.corners[k]] for k, name in enumerate(CORNER_NAMES)
            },
            "superior_middle": None if self.superior_middle is None else [r(v) for v in self.superior_middle],
            "inferior_middle": None if self.inferior_middle is None else [r(v) for v in self.inferior_middle],
            "height_anterior_px": r(self.height_anterior_px),
            "height_middle_px": r(self.height_middle_px),
            "height_posterior_px": r(self.height_posterior_px),
        }
        if self.height_anterior_mm is not None or self.height_posterior_mm is not None:
            out.update(
                height_anterior_mm=r(self.height_anterior_mm),
                height_middle_mm=r(self.height_middle_mm),
                height_posterior_mm=r(self.height_posterior_mm),
            )
        out.update(
            depth_superior_px=r(self.depth_superior_px),
            depth_inferior_px=r(self.depth_inferior_px),
            ratio_anterior_posterior=r(self.ratio_anterior_posterior),
            ratio_middle_posterior=r(self.ratio_middle_posterior),
            ratio_posterior_reference=r(self.ratio_posterior_reference),
            superior_tilt_deg=r(self.superior_tilt_deg),
            inferior_tilt_deg=r(self.inferior_tilt_deg),
            endplate_angle_deg=r(self.endplate_angle_deg),
            genant_grade=self.genant_grade,
            deformity=self.deformity,
            height_reduction=r(self.height_reduction),
        )
        if self.radiomics is not None:
            out["radiomics"] = {k: (None if v is None else float(v)) for k, v in self.radiomics.items()}
        out["flags"] = list(self.flags)
        return out


@dataclass(frozen=True)
class SegmentMeasurement:
    """Disc and alignment between two neighbouring vertebrae (indices into the vertebra list)."""

    upper: int
    lower: int
    upper_label: str | None
    lower_label: str | None
    disc_height_anterior_px: float
    disc_height_middle_px: float
    disc_height_posterior_px: float
    disc_height_anterior_mm: float | None
    disc_height_middle_mm: float | None
    disc_height_posterior_mm: float | None
    disc_angle_deg: float  # lower's superior minus upper's inferior endplate tilt
    segmental_angle_deg: float  # lower's inferior minus upper's superior endplate tilt
    slip_px: float  # + = anterolisthesis of the upper body
    slip_mm: float | None
    slip_percent: float | None  # of the lower body's superior endplate depth
    meyerding_grade: int  # 0 = no listhesis
    listhesis: str  # "anterolisthesis" | "retrolisthesis" | "none"
    flags: tuple[str, ...]

    @property
    def name(self) -> str | None:
        """e.g. "L4-L5"; None when either body is unnamed."""
        return None if self.upper_label is None or self.lower_label is None else f"{self.upper_label}-{self.lower_label}"

    def to_dict(self) -> dict[str, Any]:
        d = DECIMALS

        def r(value: float | None) -> float | None:
            return None if value is None else round(float(value), d)

        out: dict[str, Any] = {
            "name": self.name,
            "upper": self.upper,
            "lower": self.lower,
            "upper_label": self.upper_label,
            "lower_label": self.lower_label,
            "disc_height_anterior_px": r(self.disc_height_anterior_px),
            "disc_height_middle_px": r(self.disc_height_middle_px),
            "disc_height_posterior_px": r(self.disc_height_posterior_px),
        }
        if self.disc_height_anterior_mm is not None:
            out.update(
                disc_height_anterior_mm=r(self.disc_height_anterior_mm),
                disc_height_middle_mm=r(self.disc_height_middle_mm),
                disc_height_posterior_mm=r(self.disc_height_posterior_mm),
            )
        out.update(disc_angle_deg=r(self.disc_angle_deg), segmental_angle_deg=r(self.segmental_angle_deg), slip_px=r(self.slip_px))
        if self.slip_mm is not None:
            out["slip_mm"] = r(self.slip_mm)
        out.update(
            slip_percent=r(self.slip_percent),
            meyerding_grade=self.meyerding_grade,
            listhesis=self.listhesis,
            flags=list(self.flags),
        )
        return out


@dataclass(frozen=True)
class SpineMeasurement:
    facing: str  # "left" | "right": side of the image the patient's front is on
    facing_source: str  # "given" | "dicom" | "curvature" | "default"
    lumbar_lordosis_deg: float | None
    cervical_lordosis_deg: float | None
    segments: tuple[SegmentMeasurement, ...]
    flags: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        def r(value: float | None) -> float | None:
            return None if value is None else round(float(value), DECIMALS)

        return {
            "facing": self.facing,
            "facing_source": self.facing_source,
            "lumbar_lordosis_deg": r(self.lumbar_lordosis_deg),
            "cervical_lordosis_deg": r(self.cervical_lordosis_deg),
            "segments": [s.to_dict() for s in self.segments],
            "flags": list(self.flags),
        }


@dataclass(frozen=True)
class Measurements:
    """Everything measured on one film: one entry per input vertebra (same order) and the spine."""

    vertebrae: tuple[VertebraMeasurement, ...]
    spine: SpineMeasurement
    radiomics_backend: str | None = None  # "numpy" | "pyradiomics" | None (no radiomics)
    config: MeasureConfig = field(default_factory=MeasureConfig)


def partial_at_edge(polygon: np.ndarray, width: int, height: int, tolerance: float = EDGE_TOLERANCE_PX) -> bool:
    """Whether an outline reaches the image border (within ``tolerance`` px): cut by the field."""
    p = np.asarray(polygon, dtype=np.float64)
    return bool(
        p[:, 0].min() <= tolerance
        or p[:, 1].min() <= tolerance
        or p[:, 0].max() >= width - tolerance
        or p[:, 1].max() >= height - tolerance
    )


def facing_from_dicom(dataset: Any) -> str | None:
    """``right`` / ``left`` from a DICOM dataset's Patient Orientation (0020,0020), whose first
    value is the patient direction of the image rows (left to right): anterior (A) there means
    the patient faces right; None when absent or not anterior/posterior."""
    try:
        orientation = dataset.get("PatientOrientation") if dataset is not None else None
    except Exception:  # noqa: BLE001 - a malformed element is simply no hint
        return None
    if not orientation or isinstance(orientation, str) or len(orientation) < 1:
        return None
    rows = str(orientation[0]).upper()
    if "A" in rows and "P" not in rows:
        return "right"
    if "P" in rows and "A" not in rows:
        return "left"
    return None


def _label_check(label: str | None, i: int) -> str | None:
    if label is not None and label not in LEVELS:
        raise ValueError(f"labels[{i}]: unknown vertebral level {label!r}")
    return label


def _ratio(num: float | None, den: float | None) -> float | None:
    return None if num is None or den is None or den <= 0 else num / den


def measure(
    polygons: Sequence[np.ndarray],
    labels: Sequence[str | None],
    *,
    config: MeasureConfig | None = None,
    pixel_spacing_mm: tuple[float, float] | None = None,
    partial: Sequence[bool] | None = None,
    image: np.ndarray | None = None,
    dicom: Any = None,
) -> Measurements:
    """Measure every vertebra of one film.

    ``polygons``: (N, 2) outlines in original pixels; ``labels``: a level name or None each;
    ``pixel_spacing_mm``: (row, column) spacing; ``partial``: per outline, whether the field edge
    cuts it (default: :func:`partial_at_edge` when ``image`` is given, else False); ``image``:
    the decoded pixels (H, W), for radiomics and the edge test; ``dicom``: the source dataset,
    whose Patient Orientation says the facing when ``config.faces`` is ``auto``. ValueError for
    bad arrays.
    """
    config = config or MeasureConfig()
    config.validate()
    polygons = [np.asarray(p, dtype=np.float64) for p in polygons]
    labels = [_label_check(label, i) for i, label in enumerate(labels)]
    if len(labels) != len(polygons):
        raise ValueError(f"labels: expected one per polygon ({len(polygons)}), got {len(labels)}")
    pixels = None
    if image is not None:
        pixels = np.asarray(image)
        if pixels.ndim != 2:
            raise ValueError(f"image: expected a 2-D array of pixels, got shape {pixels.shape}")
    if partial is None:
        cut = [partial_at_edge(p, pixels.shape[1], pixels.shape[0]) if pixels is not None and len(p) else False for p in polygons]
    else:
        cut = [bool(v) for v in partial]
        if len(cut) != len(polygons):
            raise ValueError(f"partial: expected one flag per polygon ({len(polygons)}), got {len(cut)}")
    faces, from_dicom = config.faces, None
    if faces == "auto":
        from_dicom = facing_from_dicom(dicom)
        faces = from_dicom or "auto"
    core = _measure_spine(
        polygons,
        labels,
        facing=faces,
        partial=cut,
        pixel_spacing_mm=pixel_spacing_mm,
        side_margin=config.side_margin,
        min_slip_percent=config.min_slip_percent,
    )
    backend = _radiomics.resolve_backend(config.radiomics_backend) if config.radiomics and pixels is not None else None
    area_mm2 = None if pixel_spacing_mm is None else float(pixel_spacing_mm[0]) * float(pixel_spacing_mm[1])
    vertebrae = []
    for i, (polygon, label) in enumerate(zip(polygons, labels)):
        body, grade, reference = core.bodies[i], core.genant[i], core.reference_posterior[i]
        flags: list[str] = []
        if label is None:
            flags.append("unnamed")
        if cut[i]:
            flags.append("partial")
        flags.extend(body.flags)
        if grade.grade is None:
            flags.append("not_graded")
        features = None
        if backend is not None:
            x0, y0, x1, y1 = polygon_window(polygon, pixels.shape[0], pixels.shape[1])
            mask = polygon_mask(polygon, x0, y0, x1 - x0, y1 - y0)
            if mask.any():
                features = _radiomics.first_order(
                    pixels[y0:y1, x0:x1], mask, bin_width=config.bin_width, pixel_area_mm2=area_mm2, backend=backend
                )
            else:
                flags.append("no_pixels")
        ha, hm, hp = body.height_anterior, body.height_middle, body.height_posterior
        vertebrae.append(
            VertebraMeasurement(
                label=label,
                measured=body.measured,
                partial=cut[i],
                corners=body.corners,
                superior_middle=body.superior_middle,
                inferior_middle=body.inferior_middle,
                height_anterior_px=ha,
                height_middle_px=hm,
                height_posterior_px=hp,
                height_anterior_mm=body.height_anterior_mm,
                height_middle_mm=body.height_middle_mm,
                height_posterior_mm=body.height_posterior_mm,
                depth_superior_px=body.depth_superior,
                depth_inferior_px=body.depth_inferior,
                ratio_anterior_posterior=_ratio(ha, hp),
                ratio_middle_posterior=_ratio(hm, hp),
                ratio_posterior_reference=_ratio(hp, reference),
                superior_tilt_deg=body.superior_tilt_deg,
                inferior_tilt_deg=body.inferior_tilt_deg,
                endplate_angle_deg=body.endplate_angle_deg,
                genant_grade=grade.grade,
                deformity=grade.deformity,
                height_reduction=grade.reduction if grade.grade is not None else None,
                radiomics=features,
                flags=tuple(flags),
            )
        )
    segments = tuple(
        SegmentMeasurement(
            upper=s.upper,
            lower=s.lower,
            upper_label=labels[s.upper],
            lower_label=labels[s.lower],
            disc_height_anterior_px=s.disc_height_anterior,
            disc_height_middle_px=s.disc_height_middle,
            disc_height_posterior_px=s.disc_height_posterior,
            disc_height_anterior_mm=s.disc_height_anterior_mm,
            disc_height_middle_mm=s.disc_height_middle_mm,
            disc_height_posterior_mm=s.disc_height_posterior_mm,
            disc_angle_deg=s.disc_angle_deg,
            segmental_angle_deg=s.segmental_angle_deg,
            slip_px=s.slip,
            slip_mm=s.slip_mm,
            slip_percent=s.slip_percent,
            meyerding_grade=s.meyerding_grade,
            listhesis=s.listhesis,
            flags=tuple(s.flags),
        )
        for s in core.segments
    )
    spine = SpineMeasurement(
        facing=core.facing,
        facing_source="dicom" if from_dicom else core.facing_source,
        lumbar_lordosis_deg=core.lumbar_lordosis_deg,
        cervical_lordosis_deg=core.cervical_lordosis_deg,
        segments=segments,
        flags=tuple(core.flags),
    )
    return Measurements(vertebrae=tuple(vertebrae), spine=spine, radiomics_backend=backend, config=config)


__all__ = [
    "CORNER_NAMES",
    "MeasureConfig",
    "Measurements",
    "SegmentMeasurement",
    "SpineMeasurement",
    "VertebraMeasurement",
    "facing_from_dicom",
    "measure",
    "partial_at_edge",
]
