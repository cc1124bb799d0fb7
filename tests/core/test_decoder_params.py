"""DecoderParams behaves as a value: it compares, copies and pickles by its fields."""

from __future__ import annotations

import copy
import pickle

import pytest

from vertxnet.core import DecoderParams


def test_equal_fields_mean_equal_params_and_any_field_tells_them_apart():
    assert DecoderParams() == DecoderParams()
    assert DecoderParams(size_sigma=0.2) == DecoderParams(size_sigma=0.2)
    assert DecoderParams(size_sigma=0.2) != DecoderParams()
    changed_area = DecoderParams()
    areas = changed_area.level_area
    areas[-1] *= 2
    changed_area.level_area = areas
    assert changed_area != DecoderParams()
    assert DecoderParams() != object()


def test_pickle_and_copy_keep_every_field():
    params = DecoderParams(size_sigma=0.2, outside_weight=0.3, end_hazard=0.1)
    params.view_windows = [(1, 3), (4, 7), (6, 10), (13, 18), (18, 24)]
    for twin in (pickle.loads(pickle.dumps(params)), copy.deepcopy(params)):
        assert twin == params and twin is not params
        assert twin._asdict() == params._asdict()
        assert twin.view_windows == [(1, 3), (4, 7), (6, 10), (13, 18), (18, 24)]
    assert DecoderParams(**params._asdict()) == params


def test_fields_are_validated_when_built_from_keywords():
    with pytest.raises(ValueError, match="size_sigma"):
        DecoderParams(size_sigma=0.0)
    with pytest.raises(TypeError, match="unknown parameter 'sigma'"):
        DecoderParams(sigma=0.1)
    with pytest.raises(TypeError):
        hash(DecoderParams())
