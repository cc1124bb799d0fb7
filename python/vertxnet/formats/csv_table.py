"""Measurements as a CSV table: one row per vertebra, top to bottom (``vertx-infer --format csv``).

(Named ``csv_table`` so that no module of the package shadows the standard library's ``csv``.)

Columns (:data:`CSV_COLUMNS`), an empty cell = not available. Lengths in px and, when the pixel
spacing is known, mm; angles in degrees, positive when lordotic (see :mod:`vertxnet.measure`).

- ``image`` input path (or empty); ``index`` position in the result's ``vertebrae`` (0-based);
  ``label`` level name (empty when unnamed); ``measured`` 1 when the outline could be read as a
  body; ``partial`` 1 when the field edge cuts it; ``flags`` its flags, separated by ``;``
- ``height_anterior_px``, ``height_middle_px``, ``height_posterior_px``, ``height_anterior_mm``,
  ``height_middle_mm``, ``height_posterior_mm``: body heights at the front, middle and back
- ``depth_superior_px``, ``depth_inferior_px``: rim chord lengths (antero-posterior depth)
- ``ratio_anterior_posterior`` (Ha/Hp, wedging), ``ratio_middle_posterior`` (Hm/Hp,
  biconcavity), ``ratio_posterior_reference`` (Hp / mean posterior height of the neighbours)
- ``superior_tilt_deg``, ``inferior_tilt_deg`` (+ = anterior end lower), ``endplate_angle_deg``
  (inferior minus superior tilt)
- ``genant_grade`` (0..3), ``deformity`` (none, wedge, biconcave, crush), ``height_reduction``
  (the share that sets the grade)
- ``posterior_superior_x``, ``posterior_superior_y``, ``anterior_superior_x``,
  ``anterior_superior_y``, ``anterior_inferior_x``, ``anterior_inferior_y``,
  ``posterior_inferior_x``, ``posterior_inferior_y``: the rim corners (original pixels)
- the segment between this vertebra and the next one down (empty for the lowest, or across a
  gap): ``disc_below_height_anterior_px``, ``disc_below_height_middle_px``,
  ``disc_below_height_posterior_px``, ``disc_below_height_anterior_mm``,
  ``disc_below_height_middle_mm``, ``disc_below_height_posterior_mm``, ``disc_below_angle_deg``
  (disc angle), ``disc_below_segmental_angle_deg``, ``disc_below_slip_px``,
  ``disc_below_slip_mm``, ``disc_below_slip_percent`` (of the lower body's depth; + =
  anterolisthesis), ``disc_below_meyerding_grade``, ``disc_below_listhesis``
- ``lumbar_lordosis_deg``, ``cervical_lordosis_deg``, ``facing`` (side of the image the patient's
  front is on): the film's values, repeated on every row so the table stands alone
- ``radiomics_<feature>``: first-order radiomics with pyradiomics' names (``radiomics_Energy``,
  ``radiomics_Skewness``, ... see :data:`vertxnet.radiomics.FIRST_ORDER_FEATURES`) and
  ``radiomics_MeanOfPositivePixels``
"""

from __future__ import annotations

import csv
import io
from typing import TYPE_CHECKING, Any

from ..measure import CORNER_NAMES, DECIMALS
from ..radiomics import FIRST_ORDER_FEATURES, MEAN_OF_POSITIVE_PIXELS

if TYPE_CHECKING:
    from ..measure import Measurements

_VERTEBRA = (
    "height_anterior_px", "height_middle_px", "height_posterior_px",
    "height_anterior_mm", "height_middle_mm", "height_posterior_mm",
    "depth_superior_px", "depth_inferior_px",
    "ratio_anterior_posterior", "ratio_middle_posterior", "ratio_posterior_reference",
    "superior_tilt_deg", "inferior_tilt_deg", "endplate_angle_deg",
    "genant_grade", "deformity", "height_reduction",
)  # fmt: skip
_SEGMENT = (
    "disc_height_anterior_px", "disc_height_middle_px", "disc_height_posterior_px",
    "disc_height_anterior_mm", "disc_height_middle_mm", "disc_height_posterior_mm",
    "disc_angle_deg", "segmental_angle_deg", "slip_px", "slip_mm", "slip_percent", "meyerding_grade", "listhesis",
)  # fmt: skip
_RADIOMICS = (*FIRST_ORDER_FEATURES, MEAN_OF_POSITIVE_PIXELS)



def _segment_column(name: str) -> str:
    return "disc_below_" + name.removeprefix("disc_")


CSV_COLUMNS: tuple[str, ...] = (
    "image", "index", "label", "measured", "partial", "flags",
    *_VERTEBRA,
    *(f"{corner}_{axis}" for corner in CORNER_NAMES for axis in ("x", "y")),
    *(_segment_column(name) for name in _SEGMENT),
    "lumbar_lordosis_deg", "cervical_lordosis_deg", "facing",
    *(f"radiomics_{name}" for name in _RADIOMICS),
)  # fmt: skip


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float):
        return repr(round(value, DECIMALS)) if abs(value) < 1e15 else repr(value)
    return str(value)


def measurements_rows(measurements: "Measurements", *, image: str | None = None) -> list[dict[str, str]]:
    """The table as dicts keyed by :data:`CSV_COLUMNS` (the cells' text)."""
    return [{column: _cell(row[column]) for column in CSV_COLUMNS} for row in measurements_values(measurements, image=image)]


def measurements_values(measurements: "Measurements", *, image: str | None = None) -> list[dict[str, Any]]:
    """The table's rows as typed values keyed by :data:`CSV_COLUMNS` (None = not available),
    e.g. for a Parquet table."""
    below = {s.upper: s for s in measurements.spine.segments}
    spine = measurements.spine
    rows = []
    for i, v in enumerate(measurements.vertebrae):
        row: dict[str, Any] = {
            "image": image,
            "index": i,
            "label": v.label,
            "measured": v.measured,
            "partial": v.partial,
            "flags": ";".join(v.flags),
        }
        row.update({name: getattr(v, name) for name in _VERTEBRA})
        for k, corner in enumerate(CORNER_NAMES):
            row[f"{corner}_x"] = None if v.corners is None else float(v.corners[k, 0])
            row[f"{corner}_y"] = None if v.corners is None else float(v.corners[k, 1])
        segment = below.get(i)
        for name in _SEGMENT:
            row[_segment_column(name)] = None if segment is None else getattr(segment, name)
        row.update(lumbar_lordosis_deg=spine.lumbar_lordosis_deg, cervical_lordosis_deg=spine.cervical_lordosis_deg, facing=spine.facing)
        for name in _RADIOMICS:
            row[f"radiomics_{name}"] = None if v.radiomics is None else v.radiomics.get(name)
        rows.append({column: row[column] for column in CSV_COLUMNS})
    return rows


def to_csv(measurements: "Measurements", *, image: str | None = None) -> str:
    """The CSV text (header + one row per vertebra; ``\\n`` line ends)."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(measurements_rows(measurements, image=image))
    return buffer.getvalue()


__all__ = ["CSV_COLUMNS", "measurements_rows", "measurements_values", "to_csv"]
