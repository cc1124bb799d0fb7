"""Reference cases of the labelling decoder (tests/data/decoding) and SPEC 4's labelling cases
(tests/data/labelling, tests/data/ensemble) run through the C++ decoder and its numpy oracle.

The SPEC 4 cases must come out exactly as zip_labels gives them: labels, view, reference, flags
and exclusions (every one of them has a confident reference that the chain agrees with, or none).
"""

from __future__ import annotations

import importlib.util
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from core_cases import read_case
from decoder_cases import DecoderCase, read_decoder_case

import vertxnet.core as core

TESTS = Path(__file__).resolve().parents[1]
DATA = TESTS / "data"
DECODING_CASES = sorted((DATA / "decoding").glob("*.txt"))
LABELLING_CASES = sorted((DATA / "labelling").glob("*.txt"))
ENSEMBLE_CASES = sorted((DATA / "ensemble").glob("*.txt"))


def _load(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


oracle = _load("vertx_oracle_decoder", TESTS / "oracle" / "decoder.py")
zipper = _load("vertx_oracle_reference", TESTS / "oracle" / "reference.py")


def decode_cpp(case: DecoderCase):
    params = core.DecoderParams(**case.model_params()) if case.model_params() else None
    return core.decode_labels(case.masks, params=params, **case.decoder_kwargs())


def decode_oracle(case: DecoderCase):
    params = oracle.Params(**case.model_params()) if case.model_params() else None
    return oracle.decode_labels(case.masks, params=params, **case.decoder_kwargs())


IMPLEMENTATIONS = [pytest.param(decode_cpp, id="cpp"), pytest.param(decode_oracle, id="oracle")]


def test_cases_exist():
    names = {p.stem for p in DECODING_CASES}
    assert {"wrong_low_score_s1", "two_candidate_references", "view_prior_cervical", "view_prior_lumbar",
            "gaps_both_sides_whole", "landmark_t1_gaps_both_sides", "thoracic_no_landmarks",
            "c2_on_thoracic_film", "excluded_mask_never_named"} <= names
    assert len(LABELLING_CASES) >= 13


@pytest.mark.parametrize("decode", IMPLEMENTATIONS)
@pytest.mark.parametrize("path", DECODING_CASES, ids=lambda p: p.stem)
def test_decoding_case(path: Path, decode):
    case = read_decoder_case(path)
    result = decode(case)
    assert list(result.labels) == case.expect_labels
    assert result.view == case.expect_view
    assert result.reference == case.expect_reference
    assert list(result.flags) == case.expect_flags
    assert result.method == case.expect_method
    if case.expect_excluded is not None:
        assert dict(result.excluded) == case.expect_excluded
    confidence = np.asarray(result.confidence)
    named = np.array([label is not None for label in result.labels], dtype=bool)
    assert np.all((confidence >= 0) & (confidence <= 1))
    assert np.all(confidence[~named] == 0.0)
    threshold = case.params.get("confidence_threshold", 0.5)
    assert np.all(confidence[named] >= threshold - 1e-9)
    if case.expect_min_confidence is not None:
        assert np.all(confidence[named] >= case.expect_min_confidence)
    for index, excluded in enumerate(case.excluded):
        if excluded:
            assert result.labels[index] is None and index not in result.excluded


@pytest.mark.parametrize("path", [p for p in DECODING_CASES if "expect_zip_labels" in p.read_text()],
                         ids=lambda p: p.stem)
def test_zipper_contrast(path: Path):
    """What SPEC 4 gives on the same masks, as each case's comment says (C++ and shapely twin)."""
    case = read_decoder_case(path)
    kept = [m for m, e in zip(case.masks, case.excluded) if not e]
    for impl in (core, zipper):
        labels = iter(impl.zip_labels(kept).labels)
        got = [None if e else next(labels) for e in case.excluded]
        assert got == case.expect_zip_labels


#: Flags only the decoder gives, on a film it names nothing on (docs/DESIGN.md, decisions 3-4).
DECODER_ONLY_FLAGS = ("relative_order_only", "labels_uncertain")


def spec_flags(result) -> list[str]:
    """The decoder's flags as SPEC 4 would give them: on a film with no name, the decoder also says
    the order is all there is (relative_order_only) and whether it withheld names."""
    if any(result.labels):
        return list(result.flags)
    assert ("relative_order_only" in result.flags) == bool(result.labels)  # no mask, no order
    return [f for f in result.flags if f not in DECODER_ONLY_FLAGS]


def assert_equals_zipper(result, expected) -> None:
    assert list(result.labels) == list(expected.labels)
    assert (result.view, result.reference) == (expected.view, expected.reference)
    assert spec_flags(result) == list(expected.flags)
    assert dict(result.excluded) == dict(expected.excluded)


@pytest.mark.parametrize("impl", [pytest.param(core, id="cpp"), pytest.param(oracle, id="oracle")])
@pytest.mark.parametrize("path", LABELLING_CASES, ids=lambda p: p.stem)
def test_labelling_case_through_decoder(path: Path, impl):
    """SPEC 4's labelling cases keep their exact results through the decoder."""
    case = read_case(path)
    kwargs = {k: v for k, v in case.params.items() if k == "gap_factor"}
    result = impl.decode_labels(case.masks, **kwargs)
    if case.expect_labels is not None:
        assert list(result.labels) == case.expect_labels
    if case.has_view:
        assert result.view == case.expect_view
    if case.expect_reference is not None:
        assert result.reference == case.expect_reference
    if case.expect_flags is not None:
        assert spec_flags(result) == case.expect_flags
    if case.expect_excluded is not None:
        assert dict(result.excluded) == case.expect_excluded
    assert_equals_zipper(result, core.zip_labels(case.masks, **kwargs))
    named = [label is not None for label in result.labels]
    assert all(c > 0.5 for c, n in zip(result.confidence, named) if n)


@pytest.mark.parametrize("path", [p for p in ENSEMBLE_CASES if "expect_labels" in p.read_text()],
                         ids=lambda p: p.stem)
def test_ensemble_case_through_decoder(path: Path):
    """The labelling expected of the ensemble cases, through the decoder of ensemble() output."""
    case = read_case(path)
    params = {k: v for k, v in case.params.items() if k in ("eta", "lam", "tau", "ref_score", "min_area")}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # degenerate outlines are that case's point
        masks = core.ensemble(case.unet, [core.Detection(p, c, s) for p, c, s in
                                          zip(case.mrcnn, case.mrcnn_classes, case.mrcnn_scores)], **params)
    result = core.decode_labels(masks)
    assert list(result.labels) == case.expect_labels
    assert_equals_zipper(result, core.zip_labels(masks))


@pytest.mark.parametrize("path", DECODING_CASES + LABELLING_CASES, ids=lambda p: p.stem)
def test_cpp_equals_oracle_on_cases(path: Path):
    """Same labels, confidences to 1e-9 (relative), same view posterior, on the same features."""
    case = read_decoder_case(path) if path.parent.name == "decoding" else None
    if case is None:
        plain = read_case(path)
        masks, kwargs, excluded = plain.masks, {k: v for k, v in plain.params.items() if k == "gap_factor"}, None
    else:
        masks, kwargs, excluded = case.masks, case.decoder_kwargs(), case.decoder_kwargs().get("excluded")
    centroids, areas, extents = core.chain_features(masks, excluded=excluded)
    classes, scores = [m[1] for m in masks], [m[2] for m in masks]
    kwargs = {k: v for k, v in kwargs.items() if k != "excluded"}
    got = core.decode_chain(centroids, areas, classes, scores, extents=extents, excluded=excluded, **kwargs)
    want = oracle.decode_chain(centroids, areas, classes, scores, extents=extents, excluded=excluded, **kwargs)
    assert got.labels == want.labels and got.flags == want.flags and got.view == want.view
    assert got.reference == want.reference and got.excluded == want.excluded and got.method == want.method
    np.testing.assert_allclose(got.confidence, want.confidence, rtol=1e-9, atol=0)
    np.testing.assert_allclose(list(got.view_posterior.values()), list(want.view_posterior.values()), rtol=1e-9,
                               atol=1e-15)
    # decode_labels is decode_chain of its own features
    assert core.decode_labels(masks, excluded=excluded, **kwargs).labels == got.labels
