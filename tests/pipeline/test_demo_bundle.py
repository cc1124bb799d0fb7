"""The shipped bundle end to end on fresh realistic phantoms it was never trained on (seed 900000+)."""

from __future__ import annotations

import jsonschema
import pytest

from vertxnet.result import result_schema

SCHEMA = result_schema()
N_IMAGES = 20
TEST_SEED = 900000


@pytest.mark.slow
def test_demo_bundle_segments_and_names_fresh_phantoms():
    from vertxnet.errors import InputError
    from vertxnet.evaluation.metrics import EvalConfig, evaluate
    from vertxnet.data.phantom import PhantomConfig, generate
    from vertxnet.pipeline import Pipeline

    config = PhantomConfig(view="mixed", size=512, seed=TEST_SEED, difficulty="normal")  # the realistic renderer it trained on
    truth, pred, views = [], [], set()
    with Pipeline() as pipe:  # the shipped demo bundle, default backend
        for index in range(N_IMAGES):
            image, record = generate(config, index)
            views.add(record.view)
            truth.append(record)
            try:
                result = pipe.predict(image, pixel_spacing_mm=record.pixel_spacing_mm)
            except InputError:
                continue  # nothing found: every vertebra of this film counts as missed
            jsonschema.validate(result.to_dict(), SCHEMA)
            predicted = result.to_record()
            predicted.image_id = record.image_id
            pred.append(predicted)
    assert len(views) >= 3  # cervical, thoracic and lumbar regions all seen
    report = evaluate(truth, pred, config=EvalConfig(pair_by="id"))
    print(report.table())
    print("detection", report.detection_rate, "identification", report.identification_accuracy, "dice", report.dice_mean)
    # Floors a little under what the shipped bundle measures on these films (RESULTS.md): it is
    # trained for real films, so on phantoms it finds nearly every body but withholds names it
    # is unsure of (they count as not identified here).
    assert report.detection_rate >= 0.90
    assert report.dice_mean >= 0.55
    assert report.identification_accuracy >= 0.60
