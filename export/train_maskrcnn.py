"""Train the VertXNet Mask R-CNN (classes background / vertebra / C2 / S1) from scratch.

torchvision's Mask R-CNN with a single-channel stem (the network sees the same preprocessed
grayscale tensor as the U-Net). Its GeneralizedRCNNTransform neither resizes nor renormalises
(min_size = max_size = input size, mean 0, std 1): preprocessing lives outside the model, in
``vertxnet.preprocess``. No pretrained weights are used, so every BatchNorm is trainable.

Presets:
  ``paper``  ResNet-50-FPN (256 FPN channels), torchvision's default heads and anchors.
  ``edge``   ResNet-18 without layer4 (FPN on layers 1-3), 64-channel FPN and mask head,
             box head of 256, anchors 16-128 px: a few MB, for 256-384 px inputs.

Validation each epoch, on the outlines the pipeline traces from the exported graph's outputs
(export/validation.py): detection rate (share of ground-truth vertebrae matched one-to-one by a
detection with IoU > 0.5 and score >= the score threshold) and reference-class accuracy (share
of images with a C2/S1 whose best-scoring C2/S1 detection matches it with the right class).
The run folder holds ``last.pt`` (``--resume``), ``best.pt`` and ``history.json``.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402
import training as T  # noqa: E402
import validation as V  # noqa: E402


from vertxnet.levels import MRCNN_CLASSES  # noqa: E402
from vertxnet.preprocess import PreprocessConfig  # noqa: E402

PRESETS = ("paper", "edge")


# ---------------------------------------------------------------------------------------------
# Model


def _one_channel_stem(resnet: nn.Module) -> None:
    old = resnet.conv1
    resnet.conv1 = nn.Conv2d(1, old.out_channels, old.kernel_size, old.stride, old.padding, bias=False)


def build_maskrcnn(preset: str = "edge", input_size: int = 256, *, fpn_channels: int | None = None) -> nn.Module:
    """A randomly initialised Mask R-CNN taking (N, 1, S, S) preprocessed images."""
    from torchvision.models import resnet18, resnet50
    from torchvision.models.detection import MaskRCNN
    from torchvision.models.detection.anchor_utils import AnchorGenerator
    from torchvision.models.detection.backbone_utils import _resnet_fpn_extractor
    from torchvision.models.detection.faster_rcnn import FastRCNNPredictor, TwoMLPHead
    from torchvision.models.detection.mask_rcnn import MaskRCNNHeads, MaskRCNNPredictor
    from torchvision.ops import MultiScaleRoIAlign

    if preset not in PRESETS:
        raise ValueError(f"unknown Mask R-CNN preset {preset!r}; expected one of {list(PRESETS)}")
    common = dict(
        min_size=input_size,
        max_size=input_size,
        image_mean=[0.0],
        image_std=[1.0],
        box_detections_per_img=50,
    )
    if preset == "paper":
        body = resnet50(weights=None, norm_layer=nn.BatchNorm2d)
        _one_channel_stem(body)
        backbone = _resnet_fpn_extractor(body, trainable_layers=5, norm_layer=None)
        return MaskRCNN(backbone, num_classes=len(MRCNN_CLASSES), **common)

    body = resnet18(weights=None, norm_layer=nn.BatchNorm2d)
    _one_channel_stem(body)
    channels = fpn_channels or 64
    from torchvision.models.detection.backbone_utils import BackboneWithFPN
    from torchvision.ops.feature_pyramid_network import LastLevelMaxPool

    backbone = BackboneWithFPN(
        body,
        return_layers={"layer1": "0", "layer2": "1", "layer3": "2"},
        in_channels_list=[64, 128, 256],
        out_channels=channels,
        extra_blocks=LastLevelMaxPool(),
    )
    anchors = AnchorGenerator(sizes=((16,), (32,), (64,), (128,)), aspect_ratios=((0.5, 1.0, 2.0),) * 4)
    levels = ["0", "1", "2"]
    representation = 256
    return MaskRCNN(
        backbone,
        rpn_anchor_generator=anchors,
        rpn_pre_nms_top_n_train=1000,
        rpn_post_nms_top_n_train=500,
        rpn_pre_nms_top_n_test=500,
        rpn_post_nms_top_n_test=200,
        rpn_batch_size_per_image=128,
        box_batch_size_per_image=128,
        box_roi_pool=MultiScaleRoIAlign(levels, output_size=7, sampling_ratio=2),
        box_head=TwoMLPHead(channels * 7 * 7, representation),
        box_predictor=FastRCNNPredictor(representation, len(MRCNN_CLASSES)),
        mask_roi_pool=MultiScaleRoIAlign(levels, output_size=14, sampling_ratio=2),
        mask_head=MaskRCNNHeads(channels, [channels] * 4, 1),
        mask_predictor=MaskRCNNPredictor(channels, channels, len(MRCNN_CLASSES)),
        **common,
    )


class MaskRCNNForExport(nn.Module):
    """backbone → RPN → RoI heads on one preprocessed image; 28×28 mask probabilities, unpasted.

    Skips GeneralizedRCNNTransform (preprocessing happens outside the graph) and
    ``transform.postprocess`` / ``paste_masks_in_image`` (the pipeline pastes each mask inside its
    box itself), so boxes are in model-input pixels. Outputs boxes, scores, labels, mask_probs and
    class_probs (K, 4: background, vertebra, C2, S1).
    """

    def __init__(self, model: nn.Module, input_size: int):
        super().__init__()
        self.model = model.eval()
        self.input_size = input_size

    def forward(self, image: torch.Tensor):
        from torchvision.models.detection.image_list import ImageList

        features = self.model.backbone(image)
        images = ImageList(image, [(self.input_size, self.input_size)])
        proposals, _ = self.model.rpn(images, features)
        heads = self.model.roi_heads
        detections, _ = heads(features, proposals, images.image_sizes)
        det = detections[0]
        # The full class softmax at each final box (torchvision keeps only the winning class's
        # score): the box head run once more on the detected boxes. The labelling decoder weighs
        # a detection's C2 / S1 / vertebra probabilities instead of trusting its argmax.
        pooled = heads.box_roi_pool(features, [det["boxes"]], images.image_sizes)
        class_logits, _ = heads.box_predictor(heads.box_head(pooled))
        return det["boxes"], det["scores"], det["labels"], det["masks"][:, 0], torch.softmax(class_logits, dim=-1)


# ---------------------------------------------------------------------------------------------
# Training


@dataclass
class MaskRCNNTrainConfig(T.TrainConfig):
    preset: str = "edge"
    fpn_channels: int | None = None
    score_threshold: float = 0.5


def to_model_inputs(samples: Sequence[C.Sample], pre: PreprocessConfig, device) -> tuple[list, list]:
    images, targets = [], []
    for s in samples:
        images.append(torch.from_numpy(C.normalise(s.canvas, pre))[None].to(device))
        boxes, labels, masks = C.instance_targets(s)
        targets.append(
            {
                "boxes": torch.from_numpy(boxes).to(device),
                "labels": torch.from_numpy(labels).to(device),
                "masks": torch.from_numpy(masks).to(device),
            }
        )
    return images, targets


@torch.no_grad()
def evaluate_detection(model, samples: Sequence[C.Sample], pre: PreprocessConfig, device, tracing: V.Tracing, *, min_pixels: int = 16) -> dict[str, float]:
    """Validation figures (export/validation.py) of the detections the pipeline would trace from
    this model's raw outputs (the graph that is exported), on the validation samples."""
    raw = MaskRCNNForExport(model, pre.input_size).eval()
    truth, predicted = [], []
    for n, s in enumerate(samples, start=1):
        x = torch.from_numpy(C.normalise(s.canvas, pre))[None, None].to(device)
        outputs = [t.cpu().numpy() for t in raw(x)]
        truth.append(V.truth_record(s.polygons, s.labels, s.content, n, min_pixels=min_pixels))
        predicted.append(V.detection_record(outputs, pre.input_size, n, tracing))
    return V.detection_figures(truth, predicted)


def train_maskrcnn(config: MaskRCNNTrainConfig) -> Path:
    """Train (or resume) and return the path of the best checkpoint."""
    device, train_samples, val_samples = T.start(config)
    pre = config.preprocess
    model = build_maskrcnn(config.preset, pre.input_size, fpn_channels=config.fpn_channels).to(device)
    target_masks = T.target_masks(config.resume, config.run_dir)
    tracing = V.Tracing(mrcnn_score=config.score_threshold, outline=V.outline_for(target_masks))
    meta = T.checkpoint_meta("maskrcnn", config, train_samples, val_samples, preset=config.preset, fpn_channels=config.fpn_channels,
                             input_size=pre.input_size, target_masks=target_masks)

    def loss(batch: list[C.Sample], _indices: np.ndarray) -> tuple[torch.Tensor, dict[str, str]]:
        images, targets = to_model_inputs(batch, pre, device)
        loss_dict = model(images, targets)
        return sum(loss_dict.values()), {"mask": f"{loss_dict['loss_mask'].item():.3f}"}

    def score(figures: dict[str, float]) -> float:
        # One number to keep the best checkpoint by: both figures matter equally to the pipeline.
        return 0.5 * (np.nan_to_num(figures["val_detection_rate_iou50"]) + np.nan_to_num(figures["val_reference_accuracy"]))

    network = T.Network(
        kind="maskrcnn", model=model, meta=meta, loss=loss,
        validate=lambda: V.prefixed(evaluate_detection(model, val_samples, pre, device, tracing), "val_"),
        score=score, warmup_fraction=0.1, clip_grad_norm=10.0, loss_format=".3f",
    )  # fmt: skip
    return T.fit(network, train_samples, config.schedule)


def load_maskrcnn(checkpoint: str | Path) -> tuple[nn.Module, dict]:
    return T.load_trained(checkpoint, "maskrcnn", "Mask R-CNN",
                          lambda state: build_maskrcnn(state["preset"], state["input_size"], fpn_channels=state.get("fpn_channels")))


# ---------------------------------------------------------------------------------------------
# CLI


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="train_maskrcnn.py", description=__doc__.split("\n\n")[0])
    T.add_arguments(p, input_size=256, epochs=20, batch_size=4, lr=1e-3, threads=2)
    p.add_argument("--preset", choices=PRESETS, default="edge")
    p.add_argument("--fpn-channels", type=int, help="override the edge preset's FPN width (64)")
    p.add_argument("--score-threshold", type=float, default=0.5, help="detections below it do not count in validation")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    return T.main("train_maskrcnn.py", build_parser(), argv, lambda args, fields: MaskRCNNTrainConfig(**fields, preset=args.preset, fpn_channels=args.fpn_channels, score_threshold=args.score_threshold), train_maskrcnn)


if __name__ == "__main__":
    sys.exit(main())
