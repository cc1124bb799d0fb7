"""Evaluation metrics on hand-computed cases."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from vertxnet.records import Annotation, Record
from vertxnet.evaluation.metrics import EvalConfig, evaluate


def _rect(x0, y0, x1, y1):
    return np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], dtype=np.float64)


def _record(name: str, annotations, width=60, height=100) -> Record:
    return Record(image_path=Path("/films") / name, width=width, height=height, annotations=list(annotations))


def _stack(levels, dx=0.0):
    """Vertebrae as 20 x 10 px rectangles, one below the other, 5 px apart."""
    return [Annotation(_rect(10 + dx, 5 + 15 * i, 30 + dx, 15 + 15 * i), lv) for i, lv in enumerate(levels)]


LUMBAR = ["L1", "L2", "L3", "L4", "L5"]


def _all_values(report) -> list[float]:
    d = report.to_dict()
    values = [*d["dice"].values(), *d["identification_accuracy"].values(), *d["detection_rate"].values(), *d["merged_mask"].values()]
    values += [c["pq"] for per_t in d["panoptic_quality"].values() for c in per_t.values()]
    return values


def test_identical_predictions_score_one_everywhere():
    truth = [_record("a.png", _stack(LUMBAR + ["S1"])), _record("b.png", _stack(["C2", "C3", "C4"]))]
    pred = [_record("b.png", _stack(["C2", "C3", "C4"])), _record("a.png", _stack(LUMBAR + ["S1"]))]
    report = evaluate(truth, pred)
    assert report.levels == ["C2", "C3", "C4", "L1", "L2", "L3", "L4", "L5", "S1"]
    assert (report.n_images, report.n_truth, report.n_pred) == (2, 9, 9)
    assert _all_values(report) == [1.0] * len(_all_values(report))


def test_disjoint_predictions_score_zero():
    truth = [_record("a.png", _stack(["L1", "L2"]))]
    pred = [_record("a.png", _stack(["L1", "L2"], dx=25))]
    report = evaluate(truth, pred)
    assert report.dice == {"L1": 0.0, "L2": 0.0} and report.dice_mean == 0.0
    assert report.identification_accuracy == 0.0 and report.detection_rate == 0.0
    assert all(report.pq[t]["all"].pq == 0.0 for t in (0.7, 0.8))
    assert report.pq[0.7]["all"].fp == 2 and report.pq[0.7]["all"].fn == 2


def test_half_overlap_gives_exact_dice_and_iou():
    truth = [_record("a.png", [Annotation(_rect(0, 0, 10, 10), "L1")])]
    pred = [_record("a.png", [Annotation(_rect(5, 0, 15, 10), "L1")])]
    report = evaluate(truth, pred, config=EvalConfig(pq_thresholds=(0.3, 0.7)))
    assert report.dice["L1"] == 0.5
    assert report.pq[0.3]["L1"].sq == pytest.approx(1 / 3, abs=1e-12)  # IoU of the matched pair
    assert report.pq[0.3]["L1"].pq == pytest.approx(1 / 3, abs=1e-12)
    assert report.pq[0.7]["L1"].pq == 0.0  # IoU 1/3 is no match at 0.7
    assert report.identification_accuracy == 0.0 and report.detection_rate == 0.0


def test_names_shifted_by_one_level_fail_identification_but_not_detection():
    truth = [_record("a.png", _stack(LUMBAR))]
    pred = [_record("a.png", _stack(["T12", *LUMBAR[:-1]]))]
    report = evaluate(truth, pred)
    assert report.identification_accuracy == 0.0
    assert report.detection_rate == 1.0
    assert all(report.detection[lv].recall == 1.0 for lv in LUMBAR)
    assert report.pq[0.7]["all"].pq == 0.0
    assert report.dice == {lv: 0.0 for lv in LUMBAR}  # each name sits on the neighbouring vertebra


def test_missing_prediction_gives_dice_zero_for_that_level():
    truth = [_record("a.png", _stack(LUMBAR)), _record("b.png", _stack(LUMBAR))]
    pred = [_record("a.png", [a for a in _stack(LUMBAR) if a.level != "L3"]), _record("b.png", _stack(LUMBAR))]
    report = evaluate(truth, pred)
    assert report.dice["L3"] == 0.5  # 0 on image a, 1 on image b
    assert all(report.dice[lv] == 1.0 for lv in LUMBAR if lv != "L3")
    assert report.dice_mean == pytest.approx(9 / 10)
    assert report.identification["L3"].recall == 0.5 and report.identification_accuracy == pytest.approx(9 / 10)
    counts = report.pq[0.7]["all"]
    assert (counts.tp, counts.fp, counts.fn) == (9, 0, 1)
    assert counts.pq == pytest.approx(9 / 9.5)


def test_false_positive_lowers_recognition_quality_only():
    truth = [_record("a.png", _stack(["L1"]))]
    pred = [_record("a.png", _stack(["L1"]) + [Annotation(_rect(10, 60, 30, 70), "L2"), Annotation(_rect(10, 80, 30, 90), None)])]
    report = evaluate(truth, pred)
    counts = report.pq[0.8]["all"]
    assert (counts.tp, counts.fp, counts.fn) == (1, 2, 0)
    assert counts.sq == 1.0 and counts.pq == pytest.approx(1 / 2)
    assert report.pq[0.8]["L1"].pq == 1.0
    assert report.dice == {"L1": 1.0} and report.levels == ["L1"]


def test_merged_mask_metrics_on_a_tiny_image():
    # 4 x 4 image; truth vertebra covers 2 x 2 pixels, the prediction 2 x 3 (including them).
    truth = [_record("a.png", [Annotation(_rect(0, 0, 2, 2), "L1")], width=4, height=4)]
    pred = [_record("a.png", [Annotation(_rect(0, 0, 2, 3), "L1")], width=4, height=4)]
    merged = evaluate(truth, pred).merged
    # Background: 12 truth px, 10 predicted, 10 agree; vertebra: 4 truth px, 6 predicted, 4 agree.
    assert merged["pixel_accuracy"] == pytest.approx(14 / 16)
    assert merged["mean_accuracy"] == pytest.approx((10 / 12 + 4 / 4) / 2)
    assert merged["mean_iou"] == pytest.approx((10 / 12 + 4 / 6) / 2)
    assert merged["frequency_weighted_iou"] == pytest.approx((12 * 10 / 12 + 4 * 4 / 6) / 16)


def test_merged_mask_metrics_average_over_images():
    truth = [_record("a.png", _stack(["L1"])), _record("b.png", _stack(["L1"]))]
    pred = [_record("a.png", _stack(["L1"])), _record("b.png", [])]
    merged = evaluate(truth, pred).merged
    vertebra, total = 20 * 10, 60 * 100
    # Image b: every vertebra pixel missed, background all right.
    assert merged["pixel_accuracy"] == pytest.approx((1 + (total - vertebra) / total) / 2)
    assert merged["mean_accuracy"] == pytest.approx((1 + 0.5) / 2)


def test_truth_image_without_prediction_counts_as_missed_and_extra_predictions_are_ignored():
    truth = [_record("a.png", _stack(["L1", "L2"])), _record("b.png", _stack(["L1", "L2"]))]
    pred = [_record("a.png", _stack(["L1", "L2"])), _record("zzz.png", _stack(["L1"]))]
    report = evaluate(truth, pred)
    assert report.unpaired_truth == ["b.png"] and report.unpaired_pred == ["zzz.png"]
    assert report.detection_rate == 0.5 and report.dice["L1"] == 0.5
    assert report.n_pred == 2


def test_several_predictions_with_one_name_are_compared_as_their_union():
    truth = [_record("a.png", [Annotation(_rect(0, 0, 10, 10), "L1")])]
    pred = [_record("a.png", [Annotation(_rect(0, 0, 5, 10), "L1"), Annotation(_rect(5, 0, 10, 10), "L1")])]
    assert evaluate(truth, pred).dice["L1"] == 1.0


def test_pairing_by_id_and_pairing_errors():
    truth = [Record(image_path=None, width=60, height=100, annotations=_stack(["L1"]), image_id=4)]
    pred = [Record(image_path=None, width=60, height=100, annotations=_stack(["L1"]), image_id=4)]
    assert evaluate(truth, pred, config=EvalConfig(pair_by="id")).dice["L1"] == 1.0
    with pytest.raises(ValueError, match="no image path to pair by name"):
        evaluate(truth, pred)
    with pytest.raises(ValueError, match="prediction is for 50x100 pixels, truth for 60x100"):
        evaluate([_record("a.png", [])], [_record("a.png", [], width=50)])
    with pytest.raises(ValueError, match="two truth images share the file name 'a.png'"):
        evaluate([_record("a.png", []), Record(Path("/other/a.png"), 60, 100)], [])
    with pytest.raises(ValueError, match="IoU thresholds"):
        EvalConfig(detection_iou=1.5)


def test_table_lists_truth_levels_in_anatomical_order():
    truth = [_record("a.png", _stack(["S1", "L5", "C2", "T1"]))]
    table = evaluate(truth, truth).table()
    header = table.splitlines()[1].split()
    assert header == ["C2", "T1", "L5", "S1", "all"]
    rows = {line.split()[0]: line.split()[1:] for line in table.splitlines()[2:6]}
    assert set(rows) == {"Dice", "PQ@0.7", "PQ@0.8", "identified@0.5"}
    assert "merged mask: pixel accuracy 1.0000" in table


def test_reference_accuracy_takes_the_best_scoring_predicted_reference():
    truth = [_record("a.png", _stack(["C2", "C3", "C4"])), _record("b.png", _stack(["L4", "L5", "S1"])), _record("c.png", _stack(["L1", "L2"]))]
    right = _stack(["C2", "C3", "C4"])
    right[0].score = 0.9
    wrong = _stack(["L4", "L5", "S1"])
    wrong[2].score = 0.4
    wrong[0] = Annotation(wrong[0].polygon, "S1", 0.8)  # a better-scoring S1 on the wrong body
    report = evaluate(truth, [_record("a.png", right), _record("b.png", wrong), _record("c.png", _stack(["L1", "L2"]))])
    assert report.reference.images == 2 and report.reference.correct == 1  # the film without C2/S1 does not count
    assert report.reference_accuracy == 0.5
    assert report.to_dict()["reference_accuracy"] == 0.5
    empty = evaluate(truth[2:], truth[2:])
    assert np.isnan(empty.reference_accuracy) and empty.to_dict()["reference_accuracy"] is None


def test_mask_dice():
    from vertxnet.evaluation.metrics import mask_dice

    a = np.zeros((4, 4), bool)
    b = np.zeros((4, 4), bool)
    assert mask_dice(a, b) == 1.0
    a[:2] = True
    b[1:3] = True
    assert mask_dice(a, b) == pytest.approx(0.5)
