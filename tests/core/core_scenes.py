"""Realistic synthetic network outputs for the geometry core: vertebral-body outlines and scenes.

A vertebral body seen on a lateral film is a rounded quadrilateral with slightly concave
endplates. A scene stacks 8-12 of them along a gently curved spine and derives what the two
networks would report: Mask R-CNN outlines (with class and score; misses), U-Net outlines
(contour-traced, so pixel staircases; two touching vertebrae fused into one blob) and small
false-positive blobs. Used by the core tests and by benchmarks/bench_core.py.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np


def vertebra_outline(cx: float, cy: float, width: float, height: float, *, angle: float = 0.0,
                     concavity: float = 0.06, roundness: float = 5.0, wedge: float = 0.0,
                     vertices: int = 120, jitter: float = 0.0,
                     rng: np.random.Generator | None = None) -> np.ndarray:
    """A vertebral body: superellipse (exponent `roundness`) with concave endplates.

    `concavity` pushes the endplates inward by that fraction of the height at mid-width,
    `wedge` makes the anterior (left) edge shorter than the posterior one, `jitter` adds
    smooth radial noise (fraction of the size). Returns (vertices, 2) float64, counter-clockwise
    in image coordinates.
    """
    t = np.linspace(0.0, 2.0 * np.pi, vertices, endpoint=False)
    c, s = np.cos(t), np.sin(t)
    e = 2.0 / roundness
    u = np.sign(c) * np.abs(c) ** e  # in [-1, 1]
    v = np.sign(s) * np.abs(s) ** e
    v = v * (1.0 - wedge * (1.0 - u) / 2.0)
    v = v - np.sign(v) * concavity * 2.0 * (1.0 - u**2) * np.abs(v) ** 4
    x = u * width / 2.0
    y = v * height / 2.0
    if jitter > 0.0:
        rng = rng or np.random.default_rng()
        phases = rng.uniform(0, 2 * np.pi, 3)
        radial = 1.0 + jitter * sum(np.sin(k * t + p) / k for k, p in zip((2, 3, 5), phases))
        x, y = x * radial, y * radial
    ca, sa = np.cos(angle), np.sin(angle)
    return np.column_stack([cx + ca * x - sa * y, cy + sa * x + ca * y])


def traced_outline(polygons: list[np.ndarray], shape: tuple[int, int]) -> np.ndarray:
    """What a segmentation network's contour looks like: rasterise the polygons into one mask
    and trace the largest connected outline (pixel-centre coordinates, staircase vertices)."""
    mask = np.zeros(shape, np.uint8)
    cv2.fillPoly(mask, [np.round(p * 4).astype(np.int32) for p in polygons], 1, shift=2)
    contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    largest = max(contours, key=cv2.contourArea)
    return largest[:, 0, :].astype(np.float64) + 0.5


@dataclass
class Scene:
    """Network outputs for one image plus the truth they were drawn from (top to bottom)."""

    truth: list[np.ndarray]
    unet: list[np.ndarray] = field(default_factory=list)
    mrcnn: list[np.ndarray] = field(default_factory=list)
    mrcnn_classes: list[str] = field(default_factory=list)
    mrcnn_scores: list[float] = field(default_factory=list)

    @property
    def detections(self) -> list:
        """The Mask R-CNN outlines as :class:`vertxnet.core.Detection` records."""
        from vertxnet.core import Detection

        return [Detection(p, c, s) for p, c, s in zip(self.mrcnn, self.mrcnn_classes, self.mrcnn_scores, strict=True)]


def make_scene(rng: np.random.Generator, *, count: int | None = None, view: str | None = None,
               fuse: bool = True, misses: int | None = None, false_positives: int | None = None,
               traced: bool = True, traced_mrcnn: bool = False, vertices: int = 160) -> Scene:
    """A random lateral-film scene of `count` (8-12) vertebrae in a `view` ('cervical' puts a
    C2 on top, 'lumbar' an S1 at the bottom, 'none' neither). U-Net outlines are contour-traced
    when `traced`; Mask R-CNN outlines are smooth `vertices`-gons, or traced like the pipeline's
    pasted instance masks when `traced_mrcnn`."""
    count = count if count is not None else int(rng.integers(8, 13))
    view = view or str(rng.choice(["cervical", "lumbar", "none"]))
    height = rng.uniform(28, 45)
    spacing = height * rng.uniform(1.25, 1.45)
    width = height * rng.uniform(1.3, 1.7)
    shape = (int(spacing * (count + 2) + 40), int(width * 4 + 80))
    curve = rng.uniform(-0.25, 0.25)
    truth = []
    for i in range(count):
        cy = 40 + spacing * (i + 1)
        phase = (i - count / 2) / count
        cx = shape[1] / 2 + curve * width * 4 * phase**2
        angle = float(2 * curve * phase + rng.normal(0, 0.05))
        truth.append(vertebra_outline(cx, cy, width * rng.uniform(0.92, 1.08), height * rng.uniform(0.92, 1.08),
                                      angle=angle, concavity=rng.uniform(0.03, 0.09), wedge=rng.uniform(0, 0.12),
                                      vertices=vertices, jitter=0.01, rng=rng))

    def perturbed(p: np.ndarray, scale: float) -> np.ndarray:
        centre = p.mean(axis=0)
        grown = centre + (p - centre) * rng.uniform(1 - scale, 1 + scale)
        return grown + rng.normal(0, scale * height * 0.2, 2)

    scene = Scene(truth=truth)
    # Mask R-CNN: every vertebra but a few misses, each with its class and a score.
    misses = misses if misses is not None else int(rng.integers(0, 3))
    missed = set(rng.choice(np.arange(1, count - 1), size=min(misses, count - 2), replace=False).tolist())
    for i, p in enumerate(truth):
        if i in missed:
            continue
        cls = "C2" if (view == "cervical" and i == 0) else "S1" if (view == "lumbar" and i == count - 1) else "vertebra"
        outline = perturbed(p, 0.04)
        scene.mrcnn.append(traced_outline([outline], shape) if traced_mrcnn else outline)
        scene.mrcnn_classes.append(cls)
        scene.mrcnn_scores.append(float(rng.uniform(0.55, 0.99)))
    # U-Net: contour-traced outlines; one pair of touching neighbours fused into one blob.
    fused_at = int(rng.integers(1, count - 2)) if fuse else -1
    i = 0
    while i < count:
        if i == fused_at:
            a, b = perturbed(truth[i], 0.03), perturbed(truth[i + 1], 0.03)
            bridge = np.vstack([a[np.argmax(a[:, 1])], b[np.argmin(b[:, 1])]])
            bridge = np.vstack([bridge - [width * 0.3, 0], bridge[::-1] + [width * 0.3, 0]])
            polys = [a, b, bridge]
            i += 2
        else:
            polys = [perturbed(truth[i], 0.03)]
            i += 1
        scene.unet.append(traced_outline(polys, shape) if traced else polys[0])
    # Small false-positive blobs (bowel gas, implants) from either network.
    false_positives = false_positives if false_positives is not None else int(rng.integers(0, 3))
    for _ in range(false_positives):
        blob = vertebra_outline(rng.uniform(20, shape[1] - 20), rng.uniform(20, shape[0] - 20), height * 0.5,
                                height * 0.35, roundness=2.5, vertices=vertices // 3, jitter=0.05, rng=rng)
        if rng.random() < 0.5:
            scene.unet.append(traced_outline([blob], shape) if traced else blob)
        else:
            scene.mrcnn.append(traced_outline([blob], shape) if traced_mrcnn else blob)
            scene.mrcnn_classes.append("vertebra")
            scene.mrcnn_scores.append(float(rng.uniform(0.5, 0.7)))
    return scene


def make_heavy_scene(rng: np.random.Generator, *, traced_mrcnn: bool = True) -> Scene:
    """A heavy outline set, as on held-out films at full resolution: 9 vertebrae of 110-140 px
    height (outlines of 400-600 vertices), all found by Mask R-CNN (C2 on top or S1 at the
    bottom), and 7 U-Net outlines of which two are blobs of two fused vertebrae. Mask R-CNN
    outlines are contour-traced like the pipeline's pasted instance masks (`traced_mrcnn`) or
    smooth 400-600-gons (every vertex its own, no straight runs: the harder case)."""
    count = 9
    height = rng.uniform(110, 140)
    spacing = height * rng.uniform(1.25, 1.4)
    width = height * rng.uniform(1.3, 1.5)
    shape = (int(spacing * (count + 2) + 80), int(width * 3 + 160))
    curve = rng.uniform(-0.25, 0.25)
    view = str(rng.choice(["cervical", "lumbar"]))
    truth = []
    for i in range(count):
        phase = (i - count / 2) / count
        truth.append(vertebra_outline(
            shape[1] / 2 + curve * width * 3 * phase**2, 80 + spacing * (i + 1),
            width * rng.uniform(0.95, 1.05), height * rng.uniform(0.95, 1.05),
            angle=float(2 * curve * phase + rng.normal(0, 0.05)), concavity=rng.uniform(0.03, 0.09),
            wedge=rng.uniform(0, 0.12), vertices=int(rng.integers(400, 601)), jitter=0.01, rng=rng))

    def perturbed(p: np.ndarray, scale: float) -> np.ndarray:
        centre = p.mean(axis=0)
        return centre + (p - centre) * rng.uniform(1 - scale, 1 + scale) + rng.normal(0, scale * height * 0.2, 2)

    scene = Scene(truth=truth)
    for i, p in enumerate(truth):
        cls = "C2" if (view == "cervical" and i == 0) else "S1" if (view == "lumbar" and i == count - 1) else "vertebra"
        outline = perturbed(p, 0.03)
        scene.mrcnn.append(traced_outline([outline], shape) if traced_mrcnn else outline)
        scene.mrcnn_classes.append(cls)
        scene.mrcnn_scores.append(float(rng.uniform(0.6, 0.99)))
    # Two fused pairs, apart from each other: 9 vertebrae give 7 U-Net outlines.
    first = int(rng.integers(1, 3))
    second = int(rng.integers(first + 3, count - 1))
    i = 0
    while i < count:
        if i in (first, second):
            a, b = perturbed(truth[i], 0.03), perturbed(truth[i + 1], 0.03)
            bridge = np.vstack([a[np.argmax(a[:, 1])], b[np.argmin(b[:, 1])]])
            bridge = np.vstack([bridge - [width * 0.3, 0], bridge[::-1] + [width * 0.3, 0]])
            scene.unet.append(traced_outline([a, b, bridge], shape))
            i += 2
        else:
            scene.unet.append(traced_outline([perturbed(truth[i], 0.03)], shape))
            i += 1
    return scene
