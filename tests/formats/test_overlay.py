"""The overlay draws the measurements: heights on every measured body and an angle at every disc."""

from __future__ import annotations

import dataclasses

import numpy as np
from measure_film import measured_result

from vertxnet.formats.overlay import overlay


def _without(result, **spine):
    m = result.measurements
    return dataclasses.replace(result, measurements=dataclasses.replace(m, spine=dataclasses.replace(m.spine, **spine)))


def test_every_disc_gets_its_angle_written_behind_it():
    result, measurements = measured_result()
    result = dataclasses.replace(result, measurements=measurements)
    segments = result.measurements.spine.segments
    assert len(segments) >= 3
    drawn = overlay(result).astype(int)
    bare = overlay(_without(result, segments=())).astype(int)
    changed = np.argwhere(np.abs(drawn - bare).sum(-1) > 0)  # (y, x)
    assert len(changed) > 0
    # facing right: each angle stands left of (behind) its disc's posterior end
    for s in segments:
        upper, lower = result.measurements.vertebrae[s.upper], result.measurements.vertebrae[s.lower]
        x, y = (np.asarray(upper.corners)[3] + np.asarray(lower.corners)[0]) / 2
        near = changed[(np.abs(changed[:, 0] - y) < 12) & (changed[:, 1] < x) & (changed[:, 1] > x - 80)]
        assert len(near) > 20, s.name
    # nothing else moved: every changed pixel is beside one of the discs
    ys = np.array([(np.asarray(result.measurements.vertebrae[s.upper].corners)[3][1] + np.asarray(result.measurements.vertebrae[s.lower].corners)[0][1]) / 2 for s in segments])
    assert np.all(np.min(np.abs(changed[:, :1] - ys[None, :]), axis=1) < 14)
