"""The view model learns the film's region from the levels annotated on it."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("torch")

pytestmark = pytest.mark.train


def test_view_targets_come_from_the_annotated_levels():
    import numpy as np

    from train_view import view_targets

    from vertxnet.levels import VIEWS
    from vertxnet.records import Annotation, Record

    square = np.array([[0.0, 0.0], [4.0, 0.0], [4.0, 4.0], [0.0, 4.0]])

    def film(levels, view_field):
        return Record(None, 8, 8, [Annotation(square, level) for level in levels], view=view_field)

    records = [
        film(["C2", "C3", "C4", "C5"], "lumbar"),  # a wrong free-text view does not matter
        film(["T10", "T11", "T12", "L1", "L2", "L3", "L4", "L5", "S1"], None),
        film([None, None, None], "lumbar"),  # nothing named: no target, left out
    ]
    kept, targets = view_targets(records)
    assert kept == records[:2]
    assert [VIEWS[t] for t in targets] == ["cervical", "thoracolumbar"]


def test_view_model_training_lowers_the_loss_and_resumes(phantoms, tmp_path):
    import torch

    import _common as C
    from train_view import ViewTrainConfig, load_view, train_view

    from vertxnet.levels import VIEWS

    run = tmp_path / "view"
    config = ViewTrainConfig(
        train=[phantoms], val=phantoms, run_dir=run, input_size=128, width=8, epochs=6, batch_size=4,
        lr=5e-3, threads=2, augment=C.AugmentConfig(enabled=False),
    )
    best = train_view(config)
    history = json.loads((run / "history.json").read_text())["epochs"]
    assert history[-1]["train_loss"] < history[0]["train_loss"]
    model, state = load_view(best)
    assert state["views"] == list(VIEWS) and not model.training
    with torch.no_grad():
        logits = model(torch.zeros(2, 1, 128, 128))
    assert logits.shape == (2, len(VIEWS)) and np.all(np.isfinite(logits.numpy()))
    config.epochs, config.resume = 7, True
    train_view(config)
    assert len(json.loads((run / "history.json").read_text())["epochs"]) == 7


@pytest.mark.parametrize("size", [256, 320, 384])
def test_the_view_model_pools_exactly_and_exports_at_any_bundle_input_size(size, tmp_path):
    import onnxruntime as ort
    import torch
    import torch.nn.functional as F
    from train_view import VIEW_RESOLUTION, ViewNet, adaptive_pool

    x = torch.rand(2, 1, size, size)
    torch.testing.assert_close(adaptive_pool(x, VIEW_RESOLUTION), F.adaptive_avg_pool2d(x, VIEW_RESOLUTION))
    model = ViewNet(8).eval()
    path = tmp_path / "view.onnx"
    torch.onnx.export(model, (x[:1],), str(path), input_names=["image"], output_names=["view_logits"], dynamo=False)
    got = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"image": x[:1].numpy()})[0]
    with torch.no_grad():
        np.testing.assert_allclose(got, model(x[:1]).numpy(), rtol=1e-4, atol=1e-5)
