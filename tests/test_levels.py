"""Level names and the view a set of levels makes."""

import pytest

from vertxnet.levels import VIEWS, view_of_levels


@pytest.mark.parametrize(
    "levels, view",
    [
        (["C2", "C3", "C4", "C5", "C6", "C7"], "cervical"),
        (["C3", "C7", "T1"], "cervical"),
        (["C2", "C3", "C4", "C5", "C6", "C7", "T1", "T2"], "cervical"),
        (["C6", "C7", "T1", "T2", "T3"], "cervicothoracic"),
        (["T4", "T5", "T6", "T7", "T8", "T9"], "thoracic"),
        (["T9", "T10", "T11", "T12", "L1"], "thoracic"),
        (["T10", "T11", "T12", "L1", "L2", "L3", "L4", "L5", "S1"], "thoracolumbar"),
        (["T11", "T12", "L1", "L2", "L3", "L4", "L5", "S1"], "lumbar"),
        (["L2", "L3", "L4"], "lumbar"),
        ([], None),
    ],
)
def test_view_of_levels(levels, view):
    assert view_of_levels(levels) == view
    assert view is None or view in VIEWS


def test_unknown_level_is_a_value_error():
    with pytest.raises(ValueError, match="X9"):
        view_of_levels(["X9"])
