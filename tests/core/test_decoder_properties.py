"""Properties of the labelling decoder on random chains, and the C++ core against its numpy oracle
(tests/oracle/decoder.py): labels exactly, confidences to 1e-9 relative."""

from __future__ import annotations

import importlib.util
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import vertxnet.core as core

_spec = importlib.util.spec_from_file_location("vertx_oracle_decoder",
                                               Path(__file__).resolve().parents[1] / "oracle" / "decoder.py")
oracle = importlib.util.module_from_spec(_spec)
sys.modules["vertx_oracle_decoder"] = oracle
_spec.loader.exec_module(oracle)

LEVEL_INDEX = {name: i + 1 for i, name in enumerate(oracle.LEVELS)}


@st.composite
def chains(draw, max_masks: int = 14):
    """Masks along a spine: steps of about one median with missed vertebrae (2x, 3x steps),
    sizes growing or not, extents, classes with scores, optional softmax rows, view prior and
    exclusions."""
    n = draw(st.integers(0, max_masks))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    steps = rng.uniform(0.85, 1.15, max(n - 1, 0)) * 40.0
    for k in range(len(steps)):
        if rng.random() < 0.12:
            steps[k] *= draw(st.sampled_from([1.55, 1.65, 2.0, 3.0]))
    ys = 50.0 + np.concatenate([[0.0], np.cumsum(steps)]) if n else np.zeros(0)
    if n and draw(st.booleans()):
        rng.shuffle(ys)  # input order need not be top to bottom
    centroids = np.column_stack([200.0 + rng.normal(0, 4, n), ys])
    growth = draw(st.sampled_from([0.0, 0.05, 0.1]))
    areas = 900.0 * np.exp(growth * np.argsort(np.argsort(ys)) + rng.normal(0, 0.1, n))
    extents = np.column_stack([rng.uniform(18, 40, n), rng.uniform(30, 50, n)])
    if n and draw(st.booleans()):
        extents[rng.random(n) < 0.3] = 0.0  # shape unknown
    classes, scores = [], []
    for _ in range(n):
        cls = draw(st.sampled_from(["vertebra"] * 5 + ["C2", "S1"]))
        classes.append(cls)
        scores.append(draw(st.sampled_from([0.0, 0.3, 0.49, 0.5, 0.6, 0.9, 1.0])))
    class_probs = None
    if n and draw(st.booleans()):
        rows = rng.dirichlet([4.0, 0.5, 0.5], n)
        class_probs = [None if rng.random() < 0.2 else row for row in rows]
    view_prior = None if draw(st.booleans()) else rng.dirichlet(np.ones(5))
    excluded = None if not n or draw(st.booleans()) else list(rng.random(n) < 0.15)
    threshold = draw(st.sampled_from([0.0, 0.3, 0.5, 0.8]))
    return dict(centroids=centroids, areas=areas, classes=classes, scores=np.array(scores, float),
                extents=extents, class_probs=class_probs, view_prior=view_prior, excluded=excluded,
                confidence_threshold=threshold)


def decode(impl, chain, **overrides):
    c = {**chain, **overrides}
    return impl.decode_chain(c["centroids"], c["areas"], c["classes"], c["scores"], extents=c["extents"],
                             class_probs=c["class_probs"], view_prior=c["view_prior"], excluded=c["excluded"],
                             confidence_threshold=c["confidence_threshold"])


def chain_order(chain) -> list[int]:
    excluded = chain["excluded"] or [False] * len(chain["classes"])
    keep = [i for i in range(len(chain["classes"])) if not excluded[i]]
    return sorted(keep, key=lambda i: chain["centroids"][i][1])


PROPERTY_SETTINGS = settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])


@PROPERTY_SETTINGS
@given(chains())
def test_cpp_equals_oracle(chain):
    got, want = decode(core, chain), decode(oracle, chain)
    assert got.labels == want.labels
    assert (got.view, got.reference, got.flags, got.excluded, got.method) == (
        want.view, want.reference, want.flags, want.excluded, want.method)
    np.testing.assert_allclose(got.confidence, want.confidence, rtol=1e-9, atol=0)
    np.testing.assert_allclose(list(got.view_posterior.values()), list(want.view_posterior.values()),
                               rtol=1e-9, atol=1e-14)
    if got.view_probability is None:
        assert want.view_probability is None
    else:
        assert got.view_probability == pytest.approx(want.view_probability, rel=1e-9)


@PROPERTY_SETTINGS
@given(chains())
def test_confidences_lie_in_unit_interval(chain):
    result = decode(core, chain)
    confidence = np.asarray(result.confidence)
    named = np.array([label is not None for label in result.labels], dtype=bool)
    assert confidence.shape == (len(chain["classes"]),)
    assert np.all((confidence >= 0.0) & (confidence <= 1.0))
    assert np.all(confidence[~named] == 0.0)
    assert np.all(confidence[named] >= chain["confidence_threshold"] - 1e-9)
    assert sum(result.view_posterior.values()) == pytest.approx(1.0)
    if result.view is not None:
        assert 0.0 <= result.view_probability <= 1.0


@PROPERTY_SETTINGS
@given(chains())
def test_names_are_consecutive_except_where_a_gap_is_flagged(chain):
    result = decode(core, chain)
    if "label_conflict" in result.flags and result.method == "reference":
        return  # SPEC 4: disagreeing references name each part from the nearer one
    named = [(k, LEVEL_INDEX[result.labels[i]]) for k, i in enumerate(chain_order(chain)) if result.labels[i]]
    for (p, a), (q, b) in zip(named, named[1:]):
        assert b - a >= q - p, "names increase by at least one per mask along the chain"
        if b - a > q - p:
            assert "gap_inferred" in result.flags
    assert len({label for label in result.labels if label}) == len(named), "no name twice"


@PROPERTY_SETTINGS
@given(chains())
def test_excluded_masks_are_never_named(chain):
    result = decode(core, chain)
    for i, excluded in enumerate(chain["excluded"] or []):
        if excluded:
            assert result.labels[i] is None and result.confidence[i] == 0.0 and i not in result.excluded
    for index in result.excluded:
        assert result.labels[index] is None


@PROPERTY_SETTINGS
@given(chains())
def test_a_higher_threshold_only_withholds(chain):
    low = decode(core, chain, confidence_threshold=0.0)
    high = decode(core, chain, confidence_threshold=0.7)
    for a, b in zip(low.labels, high.labels):
        assert b is None or a == b
    if any(a and not b for a, b in zip(low.labels, high.labels)) and any(high.labels):
        assert "labels_uncertain" in high.flags


@PROPERTY_SETTINGS
@given(chains())
def test_never_a_silent_guess(chain):
    """Named from a reference, every other mask is excluded with a reason or withheld under
    labels_uncertain; a film left without any name says why (no_reference)."""
    result = decode(core, chain)
    excluded = chain["excluded"] or [False] * len(chain["classes"])
    unexplained = [i for i, label in enumerate(result.labels)
                   if label is None and not excluded[i] and i not in result.excluded]
    if result.method == "reference" and unexplained:
        assert "labels_uncertain" in result.flags
    if not any(result.labels):
        assert "no_reference" in result.flags or "labels_uncertain" in result.flags
    # Order only exactly when the chain is decoded and nothing on it is named.
    on_chain = any(not e for e in excluded)
    nothing_named = result.method == "chain" and on_chain and not any(result.labels)
    assert ("relative_order_only" in result.flags) == nothing_named


@PROPERTY_SETTINGS
@given(chains(), st.floats(0.5, 1.0))
def test_one_confident_reference_the_chain_accepts_gives_spec_names(chain, score):
    """A single confident C2 (no S1 class): where the decoder keeps it, the names are SPEC 4's."""
    n = len(chain["classes"])
    if n < 2:
        return
    classes = ["vertebra"] * n
    order = chain_order(chain)
    if not order:
        return
    top = order[0]
    classes[top] = "C2"
    scores = chain["scores"].copy()
    scores[top] = score
    result = decode(core, chain, classes=classes, scores=scores, confidence_threshold=0.0)
    if result.method != "reference":
        assert "label_conflict" in result.flags  # the chain overruled it, and says so
        return
    kept = [i for i in range(n) if i in order]
    masks = [(chain_outline(chain, i), classes[i], scores[i]) for i in kept]
    zipped = core.zip_labels(masks)
    assert [result.labels[i] for i in kept] == zipped.labels
    assert (result.view, result.reference) == (zipped.view, zipped.reference)


def chain_outline(chain, i: int) -> np.ndarray:
    """A small square around mask i's centroid (zip_labels needs outlines; only centroids matter)."""
    x, y = chain["centroids"][i]
    return np.array([[x - 5, y - 5], [x + 5, y - 5], [x + 5, y + 5], [x - 5, y + 5]], float)


def test_decode_labels_is_decode_chain_of_its_features():
    rng = np.random.default_rng(5)
    masks = [(np.array([[0, 0], [44, 0], [44, 25], [0, 25]], float) + [rng.normal(0, 2), 40 * k],
              "C2" if k == 0 else "vertebra", 0.9) for k in range(6)]
    centroids, areas, extents = core.chain_features(masks)
    a = core.decode_labels(masks)
    b = core.decode_chain(centroids, areas, [m[1] for m in masks], [m[2] for m in masks], extents=extents)
    assert a.labels == b.labels and a.flags == b.flags
    np.testing.assert_array_equal(a.confidence, b.confidence)
    assert a.labels == ["C2", "C3", "C4", "C5", "C6", "C7"]


def test_same_results_from_many_threads():
    """The GIL is released and the core keeps no state: threads get what one thread gets."""
    rng = np.random.default_rng(11)
    n = 12
    args = (np.column_stack([200 + rng.normal(0, 3, n), 50 + 40 * np.arange(n)]),
            900 * np.exp(0.06 * np.arange(n)), ["vertebra"] * (n - 1) + ["S1"], np.full(n, 0.9))
    expected = core.decode_chain(*args)
    results, errors = [], []

    def work():
        try:
            for _ in range(50):
                results.append(core.decode_chain(*args).labels)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert all(labels == expected.labels for labels in results) and len(results) == 200
