"""Reference cases (tests/data/ensemble, tests/data/labelling) run through both implementations:
the C++ core and the shapely reference must each give the expected result."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
from core_cases import Case, read_case

import vertxnet.core as core
import reference

DATA = Path(__file__).resolve().parents[1] / "data"
ENSEMBLE_CASES = sorted((DATA / "ensemble").glob("*.txt"))
LABELLING_CASES = sorted((DATA / "labelling").glob("*.txt"))
IMPLEMENTATIONS = [pytest.param(core, id="cpp"), pytest.param(reference, id="reference")]
ENSEMBLE_PARAMS = ("eta", "lam", "tau", "ref_score", "min_area")


def check_labelling(case: Case, result) -> None:
    if case.expect_labels is not None:
        assert list(result.labels) == case.expect_labels
    if case.has_view:
        assert result.view == case.expect_view
    if case.expect_reference is not None:
        assert result.reference == case.expect_reference
    if case.expect_flags is not None:
        assert list(result.flags) == case.expect_flags
    if case.expect_excluded is not None:
        assert dict(result.excluded) == case.expect_excluded


def test_cases_exist():
    names = {p.stem for p in ENSEMBLE_CASES}
    assert {"fig3a_partial_t1_rescued", "fig3b_fused_blob_split", "empty_inputs"} <= names
    assert len(LABELLING_CASES) >= 10


@pytest.mark.parametrize("impl", IMPLEMENTATIONS)
@pytest.mark.parametrize("path", ENSEMBLE_CASES, ids=lambda p: p.stem)
def test_ensemble_case(path: Path, impl):
    case = read_case(path)
    params = {k: v for k, v in case.params.items() if k in ENSEMBLE_PARAMS}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        masks = impl.ensemble(case.unet, case.detections, **params)
    dropped = [w for w in caught if issubclass(w.category, RuntimeWarning) and "degenerate" in str(w.message)]
    if case.expect_warnings:
        assert len(dropped) == 1
        assert f"dropped {case.expect_warnings} degenerate" in str(dropped[0].message)
    else:
        assert dropped == []
    got = [(m.source, m.cls, m.unet_index, m.mrcnn_index) for m in masks]
    assert got == case.expect_masks
    ys = [m.centroid[1] for m in masks]
    assert ys == sorted(ys), "masks must be ordered top to bottom"
    for m in masks:
        assert m.area > 0 and m.polygon.shape[1] == 2
    for position, (area, tolerance) in case.expect_areas.items():
        assert masks[position].area == pytest.approx(area, abs=tolerance), position
    labelling = impl.zip_labels(masks, **{k: v for k, v in case.params.items() if k == "gap_factor"})
    check_labelling(case, labelling)


@pytest.mark.parametrize("impl", IMPLEMENTATIONS)
@pytest.mark.parametrize("path", LABELLING_CASES, ids=lambda p: p.stem)
def test_labelling_case(path: Path, impl):
    case = read_case(path)
    result = impl.zip_labels(case.masks, **{k: v for k, v in case.params.items() if k == "gap_factor"})
    assert len(result.labels) == len(case.masks)
    check_labelling(case, result)
