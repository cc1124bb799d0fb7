"""Tiny versions of both networks learn on phantoms, keep their best checkpoint and resume."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("torchvision")

pytestmark = pytest.mark.train


def _history(run):
    return json.loads((run / "history.json").read_text())["epochs"]


def test_unet_training_lowers_the_loss_and_resumes(phantoms, tmp_path):
    import _common as C
    from train_unet import UNetTrainConfig, load_unet, train_unet

    run = tmp_path / "unet"
    config = UNetTrainConfig(
        train=[phantoms], run_dir=run, val_fraction=0.25, base_channels=4, input_size=128,
        epochs=8, batch_size=2, lr=1e-2, threads=2, augment=C.AugmentConfig(enabled=False),
    )
    best = train_unet(config)
    history = _history(run)
    assert [e["epoch"] for e in history] == list(range(1, 9))
    assert history[-1]["train_loss"] < 0.85 * history[0]["train_loss"]
    model, state = load_unet(best)
    assert state["metrics"]["val_dice"] == max(e["val_dice"] for e in history)
    assert state["preprocess"]["input_size"] == 128

    config.epochs, config.resume = 9, True
    train_unet(config)
    assert [e["epoch"] for e in _history(run)] == list(range(1, 10))


def test_maskrcnn_training_lowers_the_loss(phantoms, tmp_path):
    import _common as C
    from train_maskrcnn import MaskRCNNTrainConfig, load_maskrcnn, train_maskrcnn

    run = tmp_path / "mrcnn"
    config = MaskRCNNTrainConfig(
        train=[phantoms], run_dir=run, val_fraction=0.25, fpn_channels=16, input_size=128,
        epochs=5, batch_size=2, lr=3e-3, threads=2, augment=C.AugmentConfig(enabled=False),
    )
    best = train_maskrcnn(config)
    history = _history(run)
    assert len(history) == 5
    assert history[-1]["train_loss"] < 0.8 * history[0]["train_loss"]
    assert all(0.0 <= e["val_detection_rate_iou50"] <= 1.0 for e in history)
    model, state = load_maskrcnn(best)
    assert state["fpn_channels"] == 16 and not model.training


def test_augmentation_moves_image_and_polygons_together(phantoms):
    import cv2

    import _common as C
    from vertxnet.preprocess import PreprocessConfig

    sample = C.prepare_sample(C.load_records(phantoms)[0], PreprocessConfig(input_size=128))
    rng = np.random.default_rng(3)
    # Geometry only: a bright vertebra must stay under its transformed polygon.
    cfg = C.AugmentConfig(gamma_range=(1, 1), contrast_range=(1, 1), brightness=0.0, noise_std_max=0.0, hflip_probability=1.0)
    out = C.augment(sample, rng, cfg)
    before = C.foreground_mask(sample.polygons, 128)
    after = C.foreground_mask(out.polygons, 128)
    assert abs(int(after.sum()) - int(before.sum())) < 0.4 * before.sum()  # scale range 0.85-1.15

    def contrast(canvas, mask):
        inner = cv2.erode(mask, np.ones((3, 3), np.uint8)) > 0
        ring = (cv2.dilate(mask, np.ones((7, 7), np.uint8)) > 0) & ~(cv2.dilate(mask, np.ones((3, 3), np.uint8)) > 0)
        return canvas[inner].mean() - canvas[ring].mean()

    # The vertebra-vs-surroundings contrast survives only if the polygons followed the pixels.
    assert contrast(out.canvas, after) > 0.5 * contrast(sample.canvas, before)
    assert contrast(out.canvas, after) > 2 * abs(contrast(out.canvas, before))
    assert np.all(out.canvas[out.content == 0] == 0)  # letterbox padding stays 0 as at inference


def test_paper_presets_match_the_paper_and_train_every_batchnorm():
    import torch
    from torch import nn
    from torchvision.ops.misc import FrozenBatchNorm2d

    from train_maskrcnn import build_maskrcnn
    from train_unet import build_unet

    unet = build_unet("paper")
    assert unet.encoders[0][0].out_channels == 64 and unet.encoders[-1][3].out_channels == 1024
    assert unet(torch.zeros(1, 1, 32, 32)).shape == (1, 1, 32, 32)

    model = build_maskrcnn("paper", 128).eval()
    assert model.backbone.body.conv1.in_channels == 1  # single-channel stem
    assert not any(isinstance(m, FrozenBatchNorm2d) for m in model.modules())
    assert any(isinstance(m, nn.BatchNorm2d) for m in model.modules())
    assert all(p.requires_grad for p in model.parameters())  # nothing pretrained, nothing frozen
    transform = model.transform
    assert (transform.min_size, transform.max_size) == ((128,), 128)
    assert transform.image_mean == [0.0] and transform.image_std == [1.0]
    with torch.no_grad():
        (out,) = model([torch.zeros(1, 128, 128)])
    assert set(out) == {"boxes", "labels", "scores", "masks"}
