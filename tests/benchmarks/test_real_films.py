"""benchmarks/real_films.py: the real-film figures on hand-made truth and predictions with known
answers, and the script end to end on phantoms laid out as a folder of films with a COCO truth."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from vertxnet.records import Annotation, Record
from vertxnet.levels import LEVELS, level_index
from vertxnet.data.phantom import PhantomConfig, generate

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

import real_films  # noqa: E402
from real_films import film_figures, total_figures  # noqa: E402


def box(x0: float, y0: float, w: float = 40.0, h: float = 40.0) -> np.ndarray:
    return np.array([[x0, y0], [x0 + w, y0], [x0 + w, y0 + h], [x0, y0 + h]], dtype=np.float64)


def u_shape(x0: float, y0: float) -> np.ndarray:
    """A 40x40 U open at the top: its centroid (x0+20, y0+~24) lies in the opening, outside it."""
    return np.array(
        [[x0, y0], [x0 + 10, y0], [x0 + 10, y0 + 30], [x0 + 30, y0 + 30], [x0 + 30, y0], [x0 + 40, y0], [x0 + 40, y0 + 40], [x0, y0 + 40]],
        dtype=np.float64,
    )


def film(*bodies: tuple[np.ndarray, str | None], view: str | None = "lumbar", width: int = 200, height: int = 400) -> Record:
    return Record(image_path=None, width=width, height=height, annotations=[Annotation(p, lv) for p, lv in bodies], view=view)


# ---------------------------------------------------------------------------------------------
# The figures on hand-made sets


def test_identical_bodies_score_perfectly():
    truth = film((box(50, 40), "L1"), (box(50, 100), "L2"), (box(50, 160), "L3"))
    f = film_figures(truth, film((box(50, 40), "L1"), (box(50, 100), "L2"), (box(50, 160), "L3")))
    assert (f.detection, f.identification, f.dice, f.false_positives) == (1.0, 1.0, 1.0, 0)
    assert f.view_correct is True and f.shift is None and f.name_offsets == [0, 0, 0]
    assert [(m.truth, m.prediction) for m in f.matches] == [(0, 0), (1, 1), (2, 2)]


def test_iou_of_exactly_0_3_matches_and_just_below_does_not():
    truth = film((box(50, 40), "L1"))  # 1600 px
    at = film_figures(truth, film((box(50, 40, 40, 12), "L1")))  # 480 px inside it: IoU 0.3
    assert at.matched == 1 and at.matches[0].iou == pytest.approx(0.3)
    below = film_figures(truth, film((box(50, 40, 40, 11), "L1")))  # 440 px: IoU 0.275
    assert below.matched == 0 and below.detection == 0.0
    # unmatched but lying on the truth body (its whole area overlaps it): not a false positive
    assert below.false_positives == 0


def test_a_match_needs_one_centroid_inside_the_other():
    # Identical U shapes: IoU 1, but both centroids lie in the U's opening, outside both shapes.
    truth = film((u_shape(50, 40), "L1"))
    f = film_figures(truth, film((u_shape(50, 40), "L1")))
    assert f.matched == 0 and f.identification == 0.0
    # The Dice of the level does not need a match: the L1 outline covers the L1 body exactly.
    assert f.dice == pytest.approx(1.0)
    # One centroid inside is enough: the truth's centre is not in this thin strip, the strip's is in the truth.
    g = film_figures(film((box(50, 40), "L1")), film((box(50, 40, 40, 12), "L1")))
    assert g.matched == 1


def test_matching_is_greedy_by_descending_iou_and_one_to_one():
    truth = film((box(50, 40), "L1"), (box(50, 80), "L2"))  # rows 40-80 and 80-120
    spanning = (box(50, 60, 40, 44), "L2")  # rows 60-104: IoU 0.3125 with L1, 0.4 with L2, a candidate for both
    f = film_figures(truth, film(spanning))
    assert [(m.truth, m.prediction) for m in f.matches] == [(1, 0)]  # the larger IoU wins, not the first truth body
    assert f.matches[0].iou == pytest.approx(0.4) and f.detection == 0.5
    inside_l1 = (box(50, 40, 40, 14), "L1")  # IoU 0.35 with L1
    g = film_figures(truth, film(spanning, inside_l1))
    assert [(m.truth, m.prediction) for m in g.matches] == [(0, 1), (1, 0)] and g.identification == 1.0
    # two outlines of one body: the better one is matched, the other is unmatched but no false positive
    h = film_figures(film((box(50, 40), "L1")), film((box(50, 40, 40, 20), "L1"), (box(50, 40, 40, 36), "L1")))
    assert [(m.truth, m.prediction) for m in h.matches] == [(0, 1)] and h.false_positives == 0


def test_unnamed_truth_bodies_count_for_detection_only():
    truth = film((box(50, 40), "L1"), (box(50, 100), None), (box(50, 160), None))
    preds = film((box(50, 40), "L1"), (box(50, 100), "L2"), (box(50, 160), None))
    f = film_figures(truth, preds)
    assert f.truth_bodies == 3 and f.named_truth_bodies == 1
    assert f.detection == 1.0 and f.identification == 1.0 and f.dice == 1.0
    nameless = film_figures(film((box(50, 40), None)), film((box(50, 40), "L1")))
    assert nameless.identification is None and nameless.dice is None and nameless.detection == 1.0


def test_false_positive_needs_more_than_ten_percent_of_its_area_off_truth():
    truth = film((box(50, 40), "L1"))  # pixel columns 50..89
    ten = film_figures(truth, film((box(89, 40, 10, 10), None)))  # 100 px, 10 of them on the body
    assert ten.matched == 0 and ten.false_positives == 1 and ten.false_positive_indices == [0]
    eleven = film_figures(truth, film((box(89, 40, 9, 10), None)))  # 90 px, 10 on the body: 11 %
    assert eleven.matched == 0 and eleven.false_positives == 0
    twenty = film_figures(truth, film((box(88, 40, 10, 10), None)))  # 20 px on the body
    assert twenty.false_positives == 0
    far = film_figures(truth, film((box(50, 40), "L1"), (box(120, 300, 20, 20), None), (box(10, 350, 20, 20), "S1")))
    assert far.false_positives == 2 and far.detection == 1.0
    nothing = film_figures(film(), film((box(10, 10), None)))  # a film with no truth body
    assert nothing.false_positives == 1 and nothing.detection is None


def test_dice_per_level_takes_the_union_of_the_predictions_of_that_name():
    truth = film((box(50, 40), "L1"), (box(50, 100), "L2"))
    # two halves of L1 both named L1; L2 outlined perfectly but named L3
    preds = film((box(50, 40, 40, 20), "L1"), (box(50, 60, 40, 20), "L1"), (box(50, 100), "L3"))
    f = film_figures(truth, preds)
    assert f.dice_by_level == {"L1": pytest.approx(1.0), "L2": 0.0}
    assert f.dice == pytest.approx(0.5)
    assert f.detection == 1.0 and f.identification == pytest.approx(0.5)  # L1 matched by one half, right name
    # a level outlined by half: Dice 2*800/(1600+800)
    half = film_figures(film((box(50, 40), "L1")), film((box(50, 40, 40, 20), "L1")))
    assert half.dice == pytest.approx(2 / 3)


def test_view_accuracy_counts_only_films_annotated_cervical_or_lumbar():
    body = (box(50, 40), "C3")
    films = [
        film_figures(film(body, view="cervical"), film(body, view="cervical")),  # right
        film_figures(film(body, view="lumbar"), film(body, view="whole")),  # wrong
        film_figures(film(body, view="thoracolumbar"), film(body, view="lumbar")),  # not scored
        film_figures(film(body, view="thoracic"), film(body, view=None)),  # not scored
        film_figures(film(body, view="lumbar"), None, error="no vertebra found"),  # failed: wrong
    ]
    assert [f.view_correct for f in films] == [True, False, None, None, False]
    t = total_figures(films)
    assert (t.view_films, t.view_correct) == (3, 1) and t.view_accuracy == pytest.approx(1 / 3)
    assert t.failed_films == [films[-1].name]


def test_a_failed_film_counts_with_no_predictions():
    truth = film((box(50, 40), "L1"), (box(50, 100), "L2"))
    f = film_figures(truth, None, name="broken.png", error="no vertebra found")
    assert (f.name, f.predictions, f.matched, f.detection, f.identification, f.dice, f.false_positives) == ("broken.png", 0, 0, 0.0, 0.0, 0.0, 0)
    assert f.predicted_view is None and f.view_correct is False


def shifted_film(name: str, offset_per_body: list[int | None]) -> real_films.FilmFigures:
    """Truth L1, L2, ... top to bottom; each prediction on its body named ``offset`` levels off
    (None: unnamed)."""
    truth, preds = [], []
    for k, off in enumerate(offset_per_body):
        level = LEVELS[level_index("L1") - 1 + k]
        truth.append((box(50, 40 + 60 * k), level))
        preds.append((box(50, 40 + 60 * k), None if off is None else LEVELS[level_index(level) - 1 + off]))
    return film_figures(film(*truth, height=500), film(*preds, height=500), name=name)


def test_films_with_every_name_shifted_by_the_same_offset_are_counted():
    up = shifted_film("up", [-1, -1, -1, -1])  # every name one level too high (L1 called T12, ...)
    assert up.shift == -1 and up.identification == 0.0
    down2 = shifted_film("down2", [2, 2, None])  # unnamed predictions are not compared
    assert down2.shift == 2 and down2.name_offsets == [2, 2]
    mixed = shifted_film("mixed", [1, 1, 0, 1])
    assert mixed.shift is None and mixed.identification == 0.25
    right = shifted_film("right", [0, 0, 0])
    unnamed = shifted_film("unnamed", [None, None])
    assert right.shift is None and unnamed.shift is None and unnamed.name_offsets == []
    t = total_figures([up, down2, mixed, right, unnamed])
    assert t.shifted_films == 2 and t.shifted == {"up": -1, "down2": 2}


def test_totals_pool_bodies_and_average_false_positives_over_films():
    a = film_figures(film((box(50, 40), "L1")), film((box(50, 40), "L1"), (box(120, 300, 20, 20), None)))
    b = film_figures(film((box(50, 40), "L1"), (box(50, 100), "L2"), (box(50, 160), None)), film((box(50, 40), "L2")))
    t = total_figures([a, b])
    assert (t.truth_bodies, t.matched, t.named_truth_bodies, t.identified) == (4, 2, 3, 1)
    assert t.detection == 0.5  # pooled 2/4, not the mean of 1 and 1/3
    assert t.identification == pytest.approx(1 / 3)
    assert t.dice == pytest.approx((1.0 + 0.0 + 0.0) / 3)
    assert t.dice_by_level == {"L1": pytest.approx(0.5), "L2": 0.0}
    assert t.false_positives == 1 and t.false_positives_per_film == 0.5
    assert t.view_accuracy == 1.0  # both lumbar, predicted lumbar
    assert t.shifted_films == 1  # film b: its one compared name (L1 called L2) is off by +1


def test_outlines_reaching_past_the_film_are_clipped_and_empty_ones_counted_apart():
    truth = film((box(-20, -20), "L1"))  # only its 20x20 lower-right quarter lies on the film
    f = film_figures(truth, film((box(0, 0, 20, 20), "L1"), (np.array([[5.2, 5.2], [5.4, 5.2], [5.3, 5.4]]), None)))
    assert f.matched == 1 and f.dice == pytest.approx(1.0)
    assert f.predictions == 2 and f.empty_predictions == 1 and f.false_positives == 0


# ---------------------------------------------------------------------------------------------
# The script end to end on phantoms laid out as a folder of films


def write_truth(path: Path, films: list[tuple[str, Record]]) -> None:
    """A COCO truth in the style of the real-film annotations: a category per level plus
    'vertebra' (27) for unnamed bodies, a 'view' on every image."""
    images, annotations = [], []
    for image_id, (name, rec) in enumerate(films, start=1):
        images.append({"id": image_id, "file_name": name, "width": rec.width, "height": rec.height, "view": rec.view, "faces": "left"})
        for ann in rec.annotations:
            x0, y0 = ann.polygon.min(axis=0)
            x1, y1 = ann.polygon.max(axis=0)
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": image_id,
                    "category_id": 27 if ann.level is None else level_index(ann.level),
                    "segmentation": [ann.polygon.reshape(-1).tolist()],
                    "area": float((x1 - x0) * (y1 - y0)),
                    "bbox": [float(x0), float(y0), float(x1 - x0), float(y1 - y0)],
                    "iscrowd": 0,
                }
            )
    categories = [{"id": level_index(n), "name": n, "supercategory": "vertebra"} for n in LEVELS]
    categories.append({"id": 27, "name": "vertebra", "supercategory": "vertebra"})
    path.write_text(json.dumps({"images": images, "annotations": annotations, "categories": categories}))


def test_script_on_a_folder_of_phantom_films(tmp_path, capsys):
    folder = tmp_path / "films"
    folder.mkdir()
    films = []
    for k, view in enumerate(("cervical", "lumbar", "lumbar")):
        image, rec = generate(PhantomConfig(view=view, size=384, seed=900321, difficulty="easy"), k)
        name = f"p{k}_{view}.png"
        assert cv2.imwrite(str(folder / name), image)
        films.append((name, rec))
    films[2][1].annotations[0].level = None  # one body the annotator could not name
    # a film the pipeline cannot read (constant), and one listed in the truth but not in the folder
    blank = Record(image_path=None, width=200, height=300, annotations=[Annotation(box(80, 100), "L3")], view="lumbar")
    assert cv2.imwrite(str(folder / "blank.png"), np.full((300, 200), 128, np.uint8))
    absent = Record(image_path=None, width=200, height=300, annotations=[Annotation(box(80, 100), "L3")], view="lumbar")
    truth = tmp_path / "truth.coco.json"
    write_truth(truth, [*films, ("blank.png", blank), ("absent.png", absent)])

    out, sheet = tmp_path / "new" / "figures.json", tmp_path / "other" / "sheet.png"  # folders made as needed
    rc = real_films.main(["--films", str(folder), "--truth", str(truth), "--json", str(out), "--sheet", str(sheet), "--backend", "onnxruntime-cpu"])
    assert rc == 0
    printed = capsys.readouterr().out
    assert "| p0_cervical.png |" in printed and "missing: not in the films folder" in printed

    report = json.loads(out.read_text())
    totals = report["totals"]
    for key in ("detection", "identification", "dice", "view_accuracy"):
        assert 0.0 <= totals[key] <= 1.0, key
    assert totals["films"] == 4 and totals["false_positives_per_film"] >= 0.0
    assert report["missing"] == {"absent.png": "not in the films folder"}
    assert totals["failed_films"] == ["blank.png"]
    by_name = {f["name"]: f for f in report["films"]}
    assert by_name["blank.png"]["predictions"] == 0 and by_name["blank.png"]["error"]
    assert by_name["p2_lumbar.png"]["named_truth_bodies"] == by_name["p2_lumbar.png"]["truth_bodies"] - 1
    phantoms = [by_name[name] for name, _ in films]
    detection = sum(f["matched"] for f in phantoms) / sum(f["truth_bodies"] for f in phantoms)
    assert detection > 0.8  # the demo bundle was trained on such phantoms
    assert set(report["predictions"]) == {name for name, _ in films}

    picture = cv2.imread(str(sheet))
    assert picture is not None and picture.shape[0] > 100 and picture.shape[1] > 100


def test_script_reports_a_missing_folder_and_bad_arguments(tmp_path, capsys):
    assert real_films.main(["--films", str(tmp_path / "nowhere"), "--truth", str(tmp_path / "t.json")]) == 2
    assert "films folder not found" in capsys.readouterr().err
    assert real_films.main(["--truth", "x.json"]) == 2  # --films is required


def test_script_runs_with_the_thresholds_and_decoder_settings_it_is_given(tmp_path, capsys):
    folder = tmp_path / "films"
    folder.mkdir()
    image, rec = generate(PhantomConfig(view="lumbar", size=384, seed=900321, difficulty="easy"), 1)
    assert cv2.imwrite(str(folder / "p.png"), image)
    truth = tmp_path / "truth.coco.json"
    write_truth(truth, [("p.png", rec)])

    def figures(*options):
        out = tmp_path / f"f{len(list(tmp_path.glob('f*.json')))}.json"
        assert real_films.main(["--films", str(folder), "--truth", str(truth), "--json", str(out), "--backend", "onnxruntime-cpu", *options]) == 0
        return json.loads(out.read_text())

    default = figures()
    assert default["thresholds"] == {} and default["decoder"] is None and default["totals"]["identified"] > 0
    # every name below a confidence of 1 withheld: nothing is identified, the bodies are still found
    strict = figures("--label-confidence", "1.0", "--decoder", "end_hazard=0.2")
    assert strict["thresholds"] == {"label_confidence": 1.0} and strict["decoder"]["end_hazard"] == 0.2
    assert strict["totals"]["identified"] < default["totals"]["identified"]
    assert strict["totals"]["matched"] == default["totals"]["matched"]
    assert real_films.main(["--films", str(folder), "--truth", str(truth), "--score-threshold", "2"]) == 2
    assert "score_threshold must be a number in [0, 1]" in capsys.readouterr().err


def test_naming_diagnostics_measure_size_residuals_and_scores_of_a_folder(tmp_path, capsys):
    import naming_diagnostics

    folder = tmp_path / "films"
    folder.mkdir()
    films = []
    for k in range(2):
        image, rec = generate(PhantomConfig(view="lumbar", size=384, seed=900321, difficulty="easy"), k)
        assert cv2.imwrite(str(folder / f"p{k}.png"), image)
        films.append((f"p{k}.png", rec))
    truth = tmp_path / "truth.coco.json"
    write_truth(truth, films)
    assert naming_diagnostics.main(["--films", str(folder), "--truth", str(truth)]) == 0
    report = json.loads(capsys.readouterr().out)
    named_pairs = sum(len(rec.annotations) - 1 for _, rec in films)  # consecutive levels C..S1 on each film
    assert report["truth_size"]["n"] == named_pairs and report["truth_size"]["sd"] >= 0.0
    assert 0 < report["predicted_size"]["n"] <= named_pairs
    assert report["scores"]["matched"]["n"] > 0 and 0.0 <= report["scores"]["matched"]["median"] <= 1.0
    assert naming_diagnostics.main(["--films", str(tmp_path / "nowhere"), "--truth", str(truth)]) == 2
