"""The view model learns the film's region from the levels annotated on it."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("torch")

pytestmark = pytest.mark.train


def test_view_targets_come_from_the_annotated_levels(phantoms):
    import _common as C
    from train_view import view_targets

    from vertxnet.levels import VIEWS

    records = C.load_records(phantoms)
    kept, targets = view_targets(records)
    assert len(kept) == len(records)
    regions = {"cervical": ("cervical", "cervicothoracic"), "lumbar": ("lumbar", "thoracolumbar")}
    for record, target in zip(kept, targets):
        # A lumbar phantom reaching up to T10 is a thoracolumbar film, as on the annotated real films.
        assert VIEWS[target] in regions[record.view]


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
