"""The measurements CSV: documented columns, one row per vertebra, values as in the JSON."""

from __future__ import annotations

import csv
import io

import pytest
from measure_film import LEVELS, measured_result

from vertxnet import radiomics
from vertxnet.formats import csv_table as csv_format


def read(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def test_header_is_the_documented_columns_and_every_column_is_documented():
    result, m = measured_result()
    text = csv_format.to_csv(m, image=result.input.path)
    assert text.splitlines()[0].split(",") == list(csv_format.CSV_COLUMNS)
    doc = csv_format.__doc__
    for column in csv_format.CSV_COLUMNS:
        if column.startswith("radiomics_"):
            assert column.removeprefix("radiomics_") in radiomics.FIRST_ORDER_FEATURES + (radiomics.MEAN_OF_POSITIVE_PIXELS,)
        else:
            assert f"``{column}``" in doc, column


def test_one_row_per_vertebra_with_the_json_values():
    result, m = measured_result()
    rows = read(csv_format.to_csv(m, image=result.input.path))
    assert [r["label"] for r in rows] == [label or "" for label in LEVELS]
    for row, v in zip(rows, m.vertebrae):
        d = v.to_dict()
        for key in ("height_anterior_px", "height_posterior_px", "height_anterior_mm", "ratio_anterior_posterior"):
            assert float(row[key]) == pytest.approx(d[key], abs=1e-4)
        assert row["genant_grade"] == ("" if d["genant_grade"] is None else str(d["genant_grade"]))
        assert float(row["radiomics_Skewness"]) == pytest.approx(d["radiomics"]["Skewness"], rel=1e-3, abs=1e-4)
        assert float(row["anterior_superior_x"]) == pytest.approx(d["corners"]["anterior_superior"][0], abs=1e-4)
    assert rows[1]["deformity"] == "wedge" and rows[1]["genant_grade"] == "2"
    assert "unnamed" in rows[3]["flags"].split(";")
    # the segment below each vertebra; none below the lowest
    segments = m.spine.to_dict()["segments"]
    for row, seg in zip(rows, segments):
        assert float(row["disc_below_height_posterior_px"]) == pytest.approx(seg["disc_height_posterior_px"], abs=1e-4)
        assert int(row["disc_below_meyerding_grade"]) == seg["meyerding_grade"]
    assert rows[-1]["disc_below_height_anterior_px"] == "" and rows[-1]["disc_below_listhesis"] == ""
    assert {r["lumbar_lordosis_deg"] for r in rows} == {repr(round(m.spine.lumbar_lordosis_deg, 4))}


def test_without_spacing_the_mm_cells_are_empty():
    _, m = measured_result(spacing=None)
    rows = read(csv_format.to_csv(m))
    assert all(r["height_anterior_mm"] == "" and r["height_anterior_px"] != "" for r in rows)
    assert all(r["image"] == "" for r in rows)
