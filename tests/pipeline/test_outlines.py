"""Pipeline.outlines: the raw network outlines that predict() merges."""

from pathlib import Path

import numpy as np
import pytest

from vertxnet import Pipeline
from vertxnet.core import ensemble, zip_labels

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "lumbar_phantom.png"


@pytest.fixture(scope="module")
def pipe():
    from vertxnet.pipeline import PipelineConfig

    # the zipper, so that predict's names can be compared with zip_labels on the same outlines
    with Pipeline(config=PipelineConfig(labelling="zipper")) as p:
        yield p


def test_predict_is_the_ensemble_of_the_outlines(pipe):
    raw = pipe.outlines(EXAMPLE)
    assert raw.unet and raw.detections
    assert [d.score for d in raw.detections] == sorted((d.score for d in raw.detections), reverse=True)
    view_model = "view" in pipe.bundle.manifest["models"]
    assert set(raw.timings_ms) == {"preprocess", "unet", "maskrcnn", "trace", *(["view"] if view_model else [])}
    assert (raw.view_probabilities is not None) == view_model
    cfg = pipe.config
    masks = ensemble(raw.unet, raw.detections,
                     eta=cfg.eta, lam=cfg.lam, tau=cfg.tau, ref_score=cfg.ref_score, min_area=cfg.min_area)
    labelling = zip_labels(masks, gap_factor=cfg.gap_factor)
    kept = [i for i in range(len(masks)) if i not in labelling.excluded]
    result = pipe.predict(EXAMPLE)
    assert [v.label for v in result.vertebrae] == [labelling.labels[i] for i in kept]
    for vertebra, i in zip(result.vertebrae, kept, strict=True):
        np.testing.assert_allclose(vertebra.polygon, masks[i].polygon)


def test_sequential_and_concurrent_runs_give_the_same_outlines(pipe):
    a = pipe.outlines(EXAMPLE, concurrent=True)
    b = pipe.outlines(EXAMPLE, concurrent=False)
    assert [(d.cls, d.score) for d in a.detections] == [(d.cls, d.score) for d in b.detections]
    for p, q in zip(a.unet + [d.polygon for d in a.detections], b.unet + [d.polygon for d in b.detections], strict=True):
        np.testing.assert_array_equal(p, q)
