"""vertxnet._core: the compiled geometry core (C++17, Clipper, pybind11).

Polygons are (N, 2) arrays of (x, y) pixel coordinates, N >= 3, any real dtype (converted to
float64), finite, |coordinate| <= MAX_ABS_COORDINATE. Coordinates are quantised to 1/SCALE px;
rings enclose what they wind around a non-zero number of times. Bad arrays raise ValueError
naming the argument (e.g. "mrcnn[3]: polygon has NaN coordinates"). The GIL is released while
C++ works.
"""

from collections.abc import Iterable, Sequence
from typing import Literal

import numpy as np
import numpy.typing as npt

SCALE: float
"""Coordinates are rounded to multiples of 1/SCALE pixel (1024)."""
MAX_ABS_COORDINATE: float
"""Largest accepted |x| or |y| in pixels (1e6)."""

_PolygonLike = npt.ArrayLike

def polygon_area(p: _PolygonLike) -> float:
    """Area (px^2) enclosed by the ring (non-zero rule); 0.0 for degenerate rings."""

def intersection_area(a: _PolygonLike, b: _PolygonLike) -> float:
    """Area (px^2) of the intersection of the two enclosed regions."""

def polygon_union(a: _PolygonLike, b: _PolygonLike) -> npt.NDArray[np.float64]:
    """Outer ring (N, 2) of the union, holes filled; the largest part's ring for disjoint inputs.

    Positive shoelace area, vertices on the 1/SCALE grid; shape (0, 2) when neither encloses area.
    Simple, except where parts touch at a single point lying inside a straight edge (a case
    Clipper 6 cannot split): then the ring passes through that point twice and covers both.
    """

def polygon_centroid(p: _PolygonLike) -> tuple[float, float]:
    """Centroid (x, y) of the enclosed region; the vertex mean when it encloses no area."""

class EnsembleMask:
    """One vertebra of the ensemble."""

    @property
    def polygon(self) -> npt.NDArray[np.float64]:
        """(N, 2) float64, read-only: the input ring (split/rescued) or the union ring (agreement)."""
    @property
    def cls(self) -> Literal["vertebra", "C2", "S1"]: ...
    @property
    def score(self) -> float:
        """Mask R-CNN score; 0.0 for U-Net-only masks."""
    @property
    def source(self) -> Literal["agreement", "split", "rescued"]: ...
    @property
    def area(self) -> float:
        """Enclosed area in px^2."""
    @property
    def centroid(self) -> tuple[float, float]:
        """(x, y) centroid of the enclosed region."""
    @property
    def unet_index(self) -> int | None:
        """Index of the U-Net input this mask came from, if any."""
    @property
    def mrcnn_index(self) -> int | None:
        """Index of the Mask R-CNN input this mask came from, if any."""

def ensemble(
    unet: Iterable[_PolygonLike],
    mrcnn: Iterable[_PolygonLike],
    mrcnn_classes: Iterable[str],
    mrcnn_scores: Sequence[float] | npt.ArrayLike,
    *,
    eta: float = 0.6,
    lam: float = 2.0,
    tau: float = 0.3,
    ref_score: float = 0.5,
    min_area: float = 1.0,
) -> list[EnsembleMask]:
    """VertXNet ensemble (SPEC section 3); masks ordered top to bottom by centroid y.

    eta in (0, 1], lam > 0, tau in [0, 1], ref_score in [0, 1], min_area >= 0. Polygons with
    fewer than 3 distinct points or no enclosed area are dropped with a RuntimeWarning.
    """

class Labelling:
    """Anatomical names of a list of masks (SPEC section 4)."""

    @property
    def labels(self) -> list[str | None]:
        """One level name ("C1" ... "S1") or None per mask, in input order."""
    @property
    def view(self) -> Literal["cervical", "lumbar", "whole"] | None: ...
    @property
    def reference(self) -> Literal["C2", "S1", "C2+S1", "none"]: ...
    @property
    def flags(self) -> list[str]:
        """Among "no_reference", "gap_inferred", "label_conflict"."""
    @property
    def excluded(self) -> dict[int, str]:
        """Mask index -> "above_reference" | "below_reference" | "past_sequence_end"."""

def zip_labels(
    masks: Iterable[EnsembleMask | tuple[_PolygonLike, str, float]],
    *,
    gap_factor: float = 1.6,
) -> Labelling:
    """Zipper labelling from the best-scoring C2 and/or S1 mask (SPEC section 4).

    Accepts ensemble() output, objects with .polygon/.cls/.score, or (polygon, cls, score)
    tuples. gap_factor must be > 1: a step between neighbouring centroids longer than
    gap_factor x the median step skips round(step / median) - 1 levels (at least one).
    """

# ---- labelling as sequence decoding (cpp/include/vertx/decoder.hpp) ---------------------------

_View = Literal["cervical", "cervicothoracic", "thoracic", "thoracolumbar", "lumbar"]
_MaskLike = EnsembleMask | tuple[_PolygonLike, str, float]

VIEWS: tuple[str, ...]
"""The film regions the decoder tells apart: cervical, cervicothoracic, thoracic, thoracolumbar,
lumbar (the view model's classes). A film named from both C2 and S1 reports view "whole"."""

class DecoderParams:
    """Model parameters of the decoder (docs/DESIGN.md, "Labelling as sequence decoding").

    DecoderParams(**fields) starts from the defaults; every field is validated on use (ValueError
    naming the field).
    """

    def __init__(self, **fields: object) -> None: ...
    confidence_threshold: float
    """Names whose confidence (marginal probability) is below this are withheld (0.5), [0, 1]."""
    ref_score: float
    """A C2/S1-class mask scoring at least this is a reference candidate (0.5), [0, 1]."""
    gap_factor: float
    """SPEC section 4 gap factor (1.6), > 1."""
    gap_sharpness: float
    """Decay per median step of a skip other than the zipper's (8.0), > 0."""
    off_gap_weight: float
    """Weight of a skip other than the zipper's before the decay (0.5), (0, 1]."""
    outside_weight: float
    """Likelihood of a mask being an outside object (skull, C1 arch, S2, hardware) rather than a
    body (0.15), (0, 1]."""
    outside_start: float
    """Probability that the top mask, and each next one, lies above the named run (0.3), [0, 1)."""
    end_hazard: float
    """Probability that the named run ends after a level before S1 (0.05), [0, 1)."""
    out_of_view_weight: float
    """Start weight of a level outside the view's start window (0.05), (0, 1]."""
    size_sigma: float
    """Sd of log(area ratio) of named neighbours around the anatomical ratio (0.25), > 0."""
    outside_size_sigma: float
    """Sd of log(area ratio) next to an outside mask (0.4), > 0."""
    vertebra_aspect_mean: float
    """Mean log(height / width) of a body along the chain (-0.2)."""
    vertebra_aspect_sd: float
    c2_aspect_mean: float
    """C2 with its dens is taller (0.2)."""
    c2_aspect_sd: float
    s1_aspect_mean: float
    """S1 is wider (-0.4)."""
    s1_aspect_sd: float
    level_area: list[float]
    """Typical lateral body area per level C1..S1 (25 values; only ratios matter)."""
    view_windows: list[tuple[int, int]]
    """Per view (VIEWS order): levels (first, last), 1-based, where its topmost named vertebra lies."""
    def validate(self) -> None: ...
    def _asdict(self) -> dict[str, object]:
        """Every parameter by name: DecoderParams(**p._asdict()) == p. Equality and pickling go by value."""
    def __eq__(self, other: object) -> bool: ...
    __hash__: None  # type: ignore[assignment]

class Decoding:
    """Result of decode_labels / decode_chain; per-mask lists are in input order."""

    @property
    def labels(self) -> list[str | None]:
        """Level name or None (excluded, withheld below the confidence threshold, or outside)."""
    @property
    def confidence(self) -> npt.NDArray[np.float64]:
        """(n,) marginal probability of each mask's level, in [0, 1]; 0.0 for unnamed masks."""
    @property
    def view(self) -> _View | Literal["whole"] | None:
        """With a reference: SPEC section 4's view (cervical, lumbar, whole); otherwise the most
        probable view when its posterior reaches the threshold ("whole" when C2 and S1 are named)."""
    @property
    def view_probability(self) -> float | None:
        """Posterior probability of `view`; for "whole" the lower confidence of its C2 and S1."""
    @property
    def view_posterior(self) -> dict[str, float]:
        """Posterior probability of each of VIEWS."""
    @property
    def reference(self) -> Literal["C2", "S1", "C2+S1", "none"]: ...
    @property
    def flags(self) -> list[str]:
        """Among "label_conflict", "no_reference", "gap_inferred", "labels_uncertain",
        "relative_order_only"."""
    @property
    def excluded(self) -> dict[int, str]:
        """Mask index -> "above_reference" | "below_reference" | "past_sequence_end"."""
    @property
    def method(self) -> Literal["reference", "chain"]:
        """"reference": SPEC section 4 names from a confident reference the chain agrees with;
        "chain": names decoded from the chain alone."""

def decode_labels(
    masks: Iterable[_MaskLike],
    *,
    class_probs: npt.ArrayLike | Sequence[npt.ArrayLike | None] | None = None,
    view_prior: Sequence[float] | dict[str, float] | None = None,
    excluded: Sequence[bool] | None = None,
    class_names: Sequence[str] | None = None,
    class_prior: Sequence[float] | None = None,
    params: DecoderParams | None = None,
    confidence_threshold: float | None = None,
    ref_score: float | None = None,
    gap_factor: float | None = None,
) -> Decoding:
    """Labelling as sequence decoding of ensemble() output, objects with .polygon/.cls/.score, or
    (polygon, cls, score) tuples.

    class_probs: per mask, probabilities of the class_names columns (default vertebra, C2, S1;
    landmark levels such as "T1" or "L1" may follow), each row in [0, 1] summing to 1; an (n, C)
    array, or a list whose None rows are derived from the mask's class and score. view_prior: five
    probabilities in VIEWS order or a {view: probability} mapping (missing views 0); None =
    uniform. excluded: masks never named and left out of the chain (not listed in .excluded).
    class_prior: training frequency of each column (default 0.075 per named column). The keyword
    thresholds override the same fields of params. Bad arrays raise ValueError naming them.
    """

def decode_chain(
    centroids: npt.ArrayLike,
    areas: npt.ArrayLike,
    classes: Sequence[str],
    scores: npt.ArrayLike,
    *,
    extents: npt.ArrayLike | None = None,
    class_probs: npt.ArrayLike | Sequence[npt.ArrayLike | None] | None = None,
    view_prior: Sequence[float] | dict[str, float] | None = None,
    excluded: Sequence[bool] | None = None,
    class_names: Sequence[str] | None = None,
    class_prior: Sequence[float] | None = None,
    params: DecoderParams | None = None,
    confidence_threshold: float | None = None,
    ref_score: float | None = None,
    gap_factor: float | None = None,
) -> Decoding:
    """The decoder on per-mask features: centroids (n, 2), areas (n,) > 0, classes, scores (n,)
    in [0, 1], extents (n, 2) of (height, width) along and across the chain (0 = unknown, no
    shape evidence). With c, a, e = chain_features(masks), decode_labels(masks, ...) equals
    decode_chain(c, a, [m.cls ...], [m.score ...], extents=e, ...)."""

def chain_features(
    masks: Iterable[_MaskLike], *, excluded: Sequence[bool] | None = None
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """(centroids (n, 2), areas (n,), extents (n, 2)) as decode_labels computes them; extents are
    the polygon's (height, width) along and across the local chain direction, (0, 0) if excluded."""

# ---- morphometry (cpp/include/vertx/morphometry.hpp) ----------------------------------------

_Facing = Literal["left", "right"]
_Level = str | int | None

class BodyMorphometry:
    """Corners, endplates, heights and tilts of one body (px; *_mm with a pixel spacing).
    Every measure is None when ``measured`` is False."""

    @property
    def measured(self) -> bool: ...
    @property
    def corners(self) -> npt.NDArray[np.float64] | None:
        """(4, 2) rim corners: posterior-superior, anterior-superior, anterior-inferior, posterior-inferior."""
    @property
    def superior_middle(self) -> tuple[float, float] | None: ...
    @property
    def inferior_middle(self) -> tuple[float, float] | None: ...
    @property
    def caudal_axis(self) -> tuple[float, float] | None: ...
    @property
    def height_anterior(self) -> float | None: ...
    @property
    def height_middle(self) -> float | None: ...
    @property
    def height_posterior(self) -> float | None: ...
    @property
    def height_anterior_mm(self) -> float | None: ...
    @property
    def height_middle_mm(self) -> float | None: ...
    @property
    def height_posterior_mm(self) -> float | None: ...
    @property
    def depth_superior(self) -> float | None: ...
    @property
    def depth_inferior(self) -> float | None: ...
    @property
    def depth_superior_mm(self) -> float | None: ...
    @property
    def depth_inferior_mm(self) -> float | None: ...
    @property
    def superior_tilt_deg(self) -> float | None:
        """+ when the anterior end lies lower in the image."""
    @property
    def inferior_tilt_deg(self) -> float | None: ...
    @property
    def endplate_angle_deg(self) -> float | None:
        """Inferior minus superior tilt (+ = taller anteriorly)."""
    @property
    def flags(self) -> list[str]:
        """Among "unmeasurable", "irregular_outline", "linear_fit", "spur_<corner>"."""

class GenantGrade:
    @property
    def grade(self) -> int | None:
        """0..3; None when not graded."""
    @property
    def deformity(self) -> Literal["none", "wedge", "biconcave", "crush"] | None: ...
    @property
    def reduction(self) -> float | None: ...
    @property
    def wedge_reduction(self) -> float | None: ...
    @property
    def biconcave_reduction(self) -> float | None: ...
    @property
    def crush_reduction(self) -> float | None: ...

class SegmentMorphometry:
    upper: int
    lower: int
    disc_height_anterior: float
    disc_height_middle: float
    disc_height_posterior: float
    @property
    def disc_height_anterior_mm(self) -> float | None: ...
    @property
    def disc_height_middle_mm(self) -> float | None: ...
    @property
    def disc_height_posterior_mm(self) -> float | None: ...
    disc_angle_deg: float
    segmental_angle_deg: float
    slip: float
    """px along the lower body's superior rim; + = anterolisthesis of the upper body."""
    @property
    def slip_mm(self) -> float | None: ...
    @property
    def slip_percent(self) -> float | None: ...
    meyerding_grade: int
    listhesis: Literal["anterolisthesis", "retrolisthesis", "none"]
    @property
    def flags(self) -> list[str]:
        """Among "unnamed", "partial"."""

class SpineMorphometry:
    @property
    def facing(self) -> _Facing: ...
    facing_source: Literal["given", "curvature", "default"]
    bodies: list[BodyMorphometry]
    genant: list[GenantGrade]
    @property
    def reference_posterior(self) -> list[float | None]: ...
    segments: list[SegmentMorphometry]
    @property
    def lumbar_lordosis_deg(self) -> float | None: ...
    @property
    def cervical_lordosis_deg(self) -> float | None: ...
    @property
    def flags(self) -> list[str]:
        """Among "facing_assumed"."""

def measure_body(
    polygon: _PolygonLike,
    *,
    facing: _Facing,
    caudal_axis: tuple[float, float] | None = None,
    pixel_spacing_mm: tuple[float, float] | None = None,
    side_margin: float = 0.1,
) -> BodyMorphometry:
    """Rim corners, endplates, heights and tilts of one body outline; pixel_spacing_mm is (row, column)."""

def measure_spine(
    polygons: Iterable[_PolygonLike],
    levels: Iterable[_Level],
    *,
    facing: Literal["auto", "left", "right"] = "auto",
    partial: Iterable[bool] | None = None,
    pixel_spacing_mm: tuple[float, float] | None = None,
    side_margin: float = 0.1,
    min_slip_percent: float = 5.0,
) -> SpineMorphometry:
    """Heights, Genant grades, segments and lordosis of one film's bodies (results in input order)."""

def infer_facing(polygons: Iterable[_PolygonLike], levels: Iterable[_Level], *, min_bow: float = 0.015) -> _Facing | None:
    """Side the patient faces from the lordotic bow of the chain; None when undecidable."""

def genant_grade(
    height_anterior: float, height_middle: float, height_posterior: float, reference_posterior: float | None = None
) -> GenantGrade: ...
def genant_grade_of_reduction(reduction: float) -> int:
    """0 below 0.20, 1 below 0.25, 2 up to 0.40, 3 above; -1 for NaN."""

def meyerding_grade(slip_percent: float, min_percent: float = 5.0) -> int:
    """0 below min_percent, then 1..5 in steps of 25 %; -1 for NaN."""
