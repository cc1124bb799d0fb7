"""The VertXNet inference pipeline: load → preprocess → U-Net ‖ Mask R-CNN → trace → ensemble → label.

Usage::

    from vertxnet import Pipeline
    pipe = Pipeline()                      # shipped demo bundle, fastest backend available
    result = pipe.predict("film.dcm")      # vertxnet.result.Result
    print(result.to_json())

A :class:`Pipeline` opens its two model sessions once and reuses them; the U-Net and the Mask
R-CNN run at the same time on a two-thread executor (ONNX Runtime releases the GIL while it
computes). Outlines are traced in model-input coordinates and mapped back to original pixels
through :meth:`vertxnet.preprocess.Letterbox.to_original`, so the ensemble, the labels and every
reported figure are in original pixels.

One pipeline serves one caller at a time; use one pipeline per thread for parallel callers.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, fields, replace
from typing import Any, Union

import cv2
import numpy as np

from .core import ensemble, intersection_area, polygon_area, zip_labels
from .bundle import Bundle, load_bundle
from .errors import InputError, VertxError
from .io import LoadedImage, from_array, load_image
from .levels import MRCNN_CLASSES
from .preprocess import Letterbox, prepare
from .result import InputInfo, ModelInfo, Result, Vertebra
from .runtime import ModelSession, open_model, resolve_backend

#: What :meth:`Pipeline.predict` accepts: a file path, an image array, or an already loaded image.
ImageSource = Union[str, os.PathLike, np.ndarray, LoadedImage]

#: Model precisions a bundle may offer as ONNX variants (manifest ``models.<name>.variants``).
PRECISIONS = ("fp32", "fp16", "int8")

#: Ways of turning traced pixels into a polygon (see PipelineConfig.outline); the first is the default.
OUTLINES = ("centres", "edges")

#: Defaults for thresholds a bundle's manifest may leave out.
FALLBACK_THRESHOLDS = {"gap_factor": 1.6, "min_area": 1.0, "duplicate_overlap": 0.5}


@dataclass(frozen=True)
class NetworkOutlines:
    """Both networks' outlines of one image in original pixels, before the ensemble: the sets
    ``Cu`` (U-Net components) and ``Cm`` (Mask R-CNN instances, with class and score) of SPEC §2.

    ``timings_ms`` has the stages that produced them: preprocess, unet, maskrcnn, trace.
    """

    unet: list[np.ndarray]
    mrcnn: list[np.ndarray]
    mrcnn_classes: list[str]
    mrcnn_scores: list[float]
    timings_ms: dict[str, float]


@dataclass(frozen=True)
class PipelineConfig:
    """Thresholds of the pipeline. ``None`` means "take the bundle manifest's value".

    unet_threshold   U-Net probability above which a pixel is vertebra (manifest ``thresholds.unet``).
    score_threshold  Mask R-CNN detections below this score are dropped (``mrcnn_score``).
    mask_threshold   Mask R-CNN mask probability threshold inside each box (``mask``).
    eta, lam, tau, ref_score   ensemble rules (SPEC §3).
    gap_factor       zipper gap awareness (SPEC §4).
    min_area         smallest U-Net component / fallback mask kept, in ORIGINAL pixels².
    duplicate_overlap  two Mask R-CNN detections whose masks overlap by more than this share of
                     the smaller one are one vertebra detected twice (often once as "vertebra" and
                     once as "C2"/"S1"); only the higher-scoring outline is kept (it takes the
                     reference class of a dropped twin). 1 keeps every detection.
    outline          how traced masks become polygons (manifest ``postprocess.outline``, default
                     "centres"): "centres" runs through the centres of the boundary pixels (the
                     docs/DESIGN.md convention), "edges" runs around the pixels (see
                     :func:`pixel_outline`). It must match how the bundle's training masks were
                     drawn from polygons: pixels touched by the outline → "centres", pixels whose
                     centre is inside → "edges".
    require_vertebrae  raise InputError when nothing is found (a non-spine image) instead of
                     returning an empty result.
    """

    unet_threshold: float | None = None
    score_threshold: float | None = None
    mask_threshold: float | None = None
    eta: float | None = None
    lam: float | None = None
    tau: float | None = None
    ref_score: float | None = None
    gap_factor: float | None = None
    min_area: float | None = None
    duplicate_overlap: float | None = None
    outline: str | None = None
    require_vertebrae: bool = True

    _MANIFEST_KEYS = {"unet_threshold": "unet", "score_threshold": "mrcnn_score", "mask_threshold": "mask"}

    def resolved(self, thresholds: Mapping[str, float], *, outline: str | None = None) -> "PipelineConfig":
        """A copy with every ``None`` filled from ``thresholds`` (a manifest's) and the manifest's
        ``outline`` (default "centres"), validated."""
        values: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "outline":
                values[f.name] = value or outline or OUTLINES[0]
                continue
            if value is None:
                key = self._MANIFEST_KEYS.get(f.name, f.name)
                value = thresholds.get(key, FALLBACK_THRESHOLDS.get(key))
                if value is None:
                    raise ValueError(f"no value for {f.name}: the bundle manifest has no thresholds.{key}")
            values[f.name] = value
        config = replace(self, **values)
        config.validate()
        return config

    def validate(self) -> None:
        """ValueError naming the first threshold out of its range."""
        unit = ("unet_threshold", "score_threshold", "mask_threshold", "eta", "tau", "ref_score", "duplicate_overlap")
        for name in unit:
            value = getattr(self, name)
            if value is not None and not (isinstance(value, (int, float)) and 0.0 <= value <= 1.0):
                raise ValueError(f"{name} must be a number in [0, 1], got {value!r}")
        checks = {
            "lam": lambda v: v > 0,
            "gap_factor": lambda v: v > 1,
            "min_area": lambda v: v >= 0,
        }
        for name, ok in checks.items():
            value = getattr(self, name)
            if value is not None and not (isinstance(value, (int, float)) and math.isfinite(value) and ok(value)):
                raise ValueError(f"{name} has an invalid value {value!r}")
        if self.outline is not None and self.outline not in OUTLINES:
            raise ValueError(f"outline must be one of {', '.join(OUTLINES)}, got {self.outline!r}")


class Pipeline:
    """Segment and name the vertebrae of lateral spine radiographs with one model bundle.

    Parameters
    ----------
    bundle : path, :class:`~vertxnet.bundle.Bundle` or None
        Model bundle folder (default: the shipped demo bundle). A bundle that fails its manifest
        check raises BundleError naming the file.
    backend : "auto" or a name in :data:`vertxnet.runtime.BACKENDS`
        "auto" takes the fastest available (native TensorRT engine → ORT TensorRT → ORT CUDA → ORT CPU).
    threads : int or None
        Intra-op threads per model session (default: half the cores, as both models run at once).
    config : PipelineConfig or None
        Threshold overrides; unset values come from the bundle manifest.
    precision : "fp32", "fp16" or "int8"
        ONNX Runtime backends run the bundle's variant of that precision for each model that has
        one (e.g. an INT8 U-Net) and the fp32 file otherwise; ``Result.model.precision`` says
        which ran. ValueError if no model of the bundle has the variant. The native TensorRT
        backend runs the precision its engines were built with.
    """

    def __init__(
        self,
        bundle: str | os.PathLike | Bundle | None = None,
        backend: str = "auto",
        threads: int | None = None,
        config: PipelineConfig | None = None,
        precision: str = "fp32",
    ):
        self.bundle = bundle if isinstance(bundle, Bundle) else load_bundle(bundle)
        postprocess = self.bundle.manifest.get("postprocess", {})
        outline = postprocess.get("outline") if isinstance(postprocess, dict) else None
        self.config = (config or PipelineConfig()).resolved(self.bundle.thresholds, outline=outline)
        self.backend = resolve_backend(backend, self.bundle)
        variants = self._variants(precision)
        self._unet: ModelSession = open_model(self.backend, self.bundle, "unet", threads=threads, variant=variants["unet"])
        self._mrcnn: ModelSession = open_model(self.backend, self.bundle, "maskrcnn", threads=threads, variant=variants["maskrcnn"])
        self._executor = ThreadPoolExecutor(max_workers=2, thread_name_prefix="vertxnet-model")
        ran = {m: self._ran_precision(m, v) for m, v in variants.items()}
        self._model_info = ModelInfo(self.bundle.name, self.bundle.version, self.bundle.manifest_sha256, self.backend, ran)

    def _ran_precision(self, model: str, variant: str | None) -> str:
        """What the result reports as the precision of ``model``'s file."""
        if self.backend != "tensorrt":
            return variant or "fp32"
        from .runtime.tensorrt import engine_variant

        name = (engine_variant(self.bundle, model, variant) or "").removeprefix("trt-")
        return name if name in PRECISIONS else "engine"

    def _variants(self, precision: str) -> dict[str, str | None]:
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
        if self.backend == "tensorrt":
            return {"unet": precision, "maskrcnn": precision}
        if precision == "fp32":
            return {"unet": None, "maskrcnn": None}
        variants = {m: precision if precision in self.bundle.variants(m) else None for m in ("unet", "maskrcnn")}
        if not any(variants.values()):
            raise ValueError(f"bundle {self.bundle.path} has no {precision} variant of either model")
        return variants

    # ---- public API ------------------------------------------------------------------------

    def predict(self, image: ImageSource, *, pixel_spacing_mm: tuple[float, float] | None = None) -> Result:
        """Vertebrae of one image (a path, an array, or a LoadedImage).

        Raises InputError (naming the file) for an unusable image file, ValueError for an
        unusable array, and InputError when no vertebra is found and ``require_vertebrae``.
        """
        t0 = time.perf_counter()
        loaded = self._load(image, pixel_spacing_mm)
        return self._predict_loaded(loaded, _ms_since(t0))

    def predict_many(self, images: Iterable[ImageSource]) -> Iterator[tuple[ImageSource, Result | VertxError | ValueError]]:
        """Yield ``(source, outcome)`` for each input, in order.

        ``outcome`` is the :class:`Result`, or the InputError / ValueError that made this input
        fail; one bad input never stops the others. Errors of the pipeline itself (a model that
        fails to run) are raised. The next file is decoded while the current one is inferred.
        """
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="vertxnet-decode") as decoder:
            iterator = iter(images)
            pending = None
            source = next(iterator, _END)
            if source is not _END:
                pending = (source, decoder.submit(self._timed_load, source))
            while pending is not None:
                source, future = pending
                following = next(iterator, _END)
                pending = None if following is _END else (following, decoder.submit(self._timed_load, following))
                try:
                    loaded, decode_ms = future.result()
                    yield source, self._predict_loaded(loaded, decode_ms)
                except (InputError, ValueError) as exc:
                    yield source, exc

    def close(self) -> None:
        """Stop the worker threads and release the model sessions."""
        self._executor.shutdown(wait=True)
        self._unet.close()
        self._mrcnn.close()

    def __enter__(self) -> "Pipeline":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- stages ----------------------------------------------------------------------------

    @staticmethod
    def _load(image: ImageSource, pixel_spacing_mm: tuple[float, float] | None = None) -> LoadedImage:
        if isinstance(image, LoadedImage):
            return image
        if isinstance(image, np.ndarray):
            return from_array(image, pixel_spacing_mm=pixel_spacing_mm)
        if isinstance(image, (str, os.PathLike)):
            return load_image(image)
        raise TypeError(f"expected a path, a numpy array or a LoadedImage, got {type(image).__name__}")

    def _timed_load(self, image: ImageSource) -> tuple[LoadedImage, float]:
        t0 = time.perf_counter()
        loaded = self._load(image)
        return loaded, _ms_since(t0)

    def outlines(self, image: ImageSource, *, concurrent: bool = True) -> NetworkOutlines:
        """Run both networks on one image and return their outlines before the ensemble.

        For ablations and benchmarks that re-run the ensemble or evaluate each network alone
        without running the networks again. ``concurrent=False`` runs them one after the other.
        """
        return self._network_outlines(self._load(image), concurrent=concurrent)

    def _network_outlines(self, loaded: LoadedImage, *, concurrent: bool = True) -> NetworkOutlines:
        t = time.perf_counter()
        try:
            tensor, box = prepare(loaded.pixels, self.bundle.preprocess)
        except ValueError as exc:
            raise InputError(loaded.path, str(exc)) from None
        preprocess_ms = _ms_since(t)
        if concurrent:
            unet_job = self._executor.submit(self._segment_unet, tensor, box)
            mrcnn_job = self._executor.submit(self._detect_instances, tensor, box)
            unet_polys, unet_ms, unet_trace_ms = unet_job.result()
            mrcnn_polys, classes, scores, mrcnn_ms, mrcnn_trace_ms = mrcnn_job.result()
        else:
            unet_polys, unet_ms, unet_trace_ms = self._segment_unet(tensor, box)
            mrcnn_polys, classes, scores, mrcnn_ms, mrcnn_trace_ms = self._detect_instances(tensor, box)
        timings = {"preprocess": preprocess_ms, "unet": unet_ms, "maskrcnn": mrcnn_ms, "trace": unet_trace_ms + mrcnn_trace_ms}
        return NetworkOutlines(unet_polys, mrcnn_polys, list(classes), [float(v) for v in scores], timings)

    def _predict_loaded(self, loaded: LoadedImage, decode_ms: float) -> Result:
        # total = decode + the rest; in predict_many the decode overlapped the previous image.
        t_start = time.perf_counter()
        cfg = self.config
        raw = self._network_outlines(loaded)
        timings = {"decode": decode_ms, **raw.timings_ms}

        t = time.perf_counter()
        masks = ensemble(
            raw.unet, raw.mrcnn, raw.mrcnn_classes, raw.mrcnn_scores,
            eta=cfg.eta, lam=cfg.lam, tau=cfg.tau, ref_score=cfg.ref_score, min_area=cfg.min_area,
        )  # fmt: skip
        timings["ensemble"] = _ms_since(t)

        t = time.perf_counter()
        labelling = zip_labels(masks, gap_factor=cfg.gap_factor)
        timings["label"] = _ms_since(t)

        spacing = loaded.pixel_spacing_mm
        vertebrae, excluded = [], []
        for i, mask in enumerate(masks):
            vertebra = _vertebra(mask, labelling.labels[i], spacing, labelling.excluded.get(i))
            (excluded if i in labelling.excluded else vertebrae).append(vertebra)
        if cfg.require_vertebrae and not vertebrae:
            raise InputError(loaded.path, "no vertebra found: not a lateral spine radiograph, or not one this model bundle can read")
        flags = list(dict.fromkeys([*loaded.flags, *labelling.flags]))
        timings["total"] = decode_ms + _ms_since(t_start)
        return Result(
            input=InputInfo(loaded.path, loaded.width, loaded.height, spacing, loaded.sha256),
            view=labelling.view,
            reference=None if labelling.reference == "none" else labelling.reference,
            vertebrae=vertebrae,
            excluded=excluded,
            flags=flags,
            timings_ms=timings,
            model=self._model_info,
            pixels=loaded.pixels,
            dicom=loaded.dicom,
        )

    def _segment_unet(self, tensor: np.ndarray, box: Letterbox) -> tuple[list[np.ndarray], float, float]:
        t = time.perf_counter()
        logits = _checked(self._unet, self._unet.run(tensor), "logits", (1, 1, tensor.shape[2], tensor.shape[3]))
        unet_ms = _ms_since(t)
        t = time.perf_counter()
        # Model-space pixels² per original pixel² (the letterbox scales both axes almost equally).
        min_area_model = self.config.min_area * box.scale_x * box.scale_y
        polygons = trace_components(logits[0, 0], self.config.unet_threshold, box, min_area_model, outline=self.config.outline)
        return polygons, unet_ms, _ms_since(t)

    def _detect_instances(self, tensor: np.ndarray, box: Letterbox):
        t = time.perf_counter()
        out = self._mrcnn.run(tensor)
        mrcnn_ms = _ms_since(t)
        t = time.perf_counter()
        boxes = _checked(self._mrcnn, out, "boxes", (None, 4))
        k = boxes.shape[0]
        scores = _checked(self._mrcnn, out, "scores", (k,))
        labels = _checked(self._mrcnn, out, "labels", (k,))
        probs = _checked(self._mrcnn, out, "mask_probs", (k, None, None))
        polygons, classes, kept_scores = [], [], []
        for i in np.argsort(-scores, kind="stable"):
            label = int(labels[i])
            if scores[i] < self.config.score_threshold or not 1 <= label < len(MRCNN_CLASSES):
                continue
            polygon = trace_instance(probs[i], boxes[i], self.config.mask_threshold, box.size, outline=self.config.outline)
            if polygon is None:
                continue
            polygons.append(box.to_original(polygon))
            classes.append(MRCNN_CLASSES[label])
            kept_scores.append(float(scores[i]))
        polygons, classes, kept_scores = suppress_duplicates(polygons, classes, kept_scores, self.config.duplicate_overlap)
        return polygons, classes, kept_scores, mrcnn_ms, _ms_since(t)


def suppress_duplicates(
    polygons: list[np.ndarray], classes: list[str], scores: list[float], max_overlap: float
) -> tuple[list[np.ndarray], list[str], list[float]]:
    """Drop Mask R-CNN outlines that repeat a higher-scoring one.

    Inputs are in descending score order. An outline overlapping a kept one by more than
    ``max_overlap`` of the smaller area (true polygon intersection, C++ core) is the same
    vertebra again; if it was classed as a reference (C2/S1) and the kept one as a plain
    "vertebra", the kept outline takes its class and score, so a reference is never lost to
    its own twin. ``max_overlap >= 1`` keeps everything.
    """
    if max_overlap >= 1.0 or len(polygons) < 2:
        return polygons, classes, scores
    areas = [polygon_area(p) for p in polygons]
    kept: list[int] = []
    out_classes, out_scores = list(classes), list(scores)
    for i, polygon in enumerate(polygons):
        twin = next((j for j in kept if intersection_area(polygon, polygons[j]) > max_overlap * min(areas[i], areas[j])), None)
        if twin is None:
            kept.append(i)
        elif classes[i] != "vertebra" and out_classes[twin] == "vertebra":
            out_classes[twin], out_scores[twin] = classes[i], scores[i]
    return [polygons[i] for i in kept], [out_classes[i] for i in kept], [out_scores[i] for i in kept]


# ---- tracing (model-input coordinates) -------------------------------------------------------


def trace_components(
    probability_or_logits: np.ndarray, threshold: float, box: Letterbox, min_area: float, *, logits: bool = True, outline: str = "centres"
) -> list[np.ndarray]:
    """One outline per connected component of the U-Net output above ``threshold``, in ORIGINAL pixels.

    ``probability_or_logits`` is the (S, S) model output (logits unless ``logits=False``). Pixels
    in the letterbox padding are ignored; components smaller than ``min_area`` model pixels are
    dropped. Components are returned in raster order of their first pixel.
    """
    values = np.asarray(probability_or_logits, dtype=np.float32)
    if logits:
        # sigmoid(x) > t  ⇔  x > log(t / (1 - t)), without computing the exponential per pixel.
        t = min(max(threshold, 1e-7), 1 - 1e-7)
        cut = math.log(t / (1.0 - t))
    else:
        cut = threshold
    foreground = np.zeros(values.shape, dtype=np.uint8)
    x0, y0, x1, y1 = box.content_box
    foreground[y0:y1, x0:x1] = values[y0:y1, x0:x1] > cut
    count, labels, stats, _ = cv2.connectedComponentsWithStats(foreground, connectivity=8)
    polygons = []
    for k in range(1, count):
        left, top, width, height, area = (int(v) for v in stats[k])
        if area < max(min_area, 1):
            continue
        component = (labels[top : top + height, left : left + width] == k).astype(np.uint8)
        contours, _ = cv2.findContours(component, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE, offset=(left, top))
        contour = max(contours, key=cv2.contourArea)
        if len(contour) < 3 or cv2.contourArea(contour) <= 0:
            continue  # a one-pixel-wide line has no interior once traced through pixel centres
        polygons.append(box.to_original(contour_polygon(contour, outline)))
    return polygons


def contour_polygon(contour: np.ndarray, outline: str = "centres") -> np.ndarray:
    """(N, 2) float64 polygon in continuous coordinates from a ``cv2.findContours`` contour."""
    if outline == "edges":
        return pixel_outline(contour)
    if outline != "centres":
        raise ValueError(f"outline must be one of {', '.join(OUTLINES)}, got {outline!r}")
    return contour.reshape(-1, 2).astype(np.float64) + 0.5  # pixel index → pixel centre


def pixel_outline(contour: np.ndarray) -> np.ndarray:
    """Polygon around the pixels of a ``cv2.findContours`` contour, in continuous coordinates.

    The contour runs through the centres of the boundary pixels (index + 0.5), which cuts half a
    pixel off every side of the traced pixel set. Here each vertex is moved outwards by half a
    pixel (mitred, so straight and 45° runs stay straight; the shift is capped at one pixel on
    sharp corners). For axis-aligned pixel runs this is exactly the boundary of the pixel squares,
    so re-rasterising the polygon by pixel centres gives back the traced pixels. Right for models
    trained on centre-sampled masks; models trained on masks that include every pixel an outline
    touches (cv2.fillPoly) already grow by about half a pixel and want "centres".
    """
    p = contour.reshape(-1, 2).astype(np.float64) + 0.5
    edges = np.roll(p, -1, axis=0) - p
    keep = np.hypot(edges[:, 0], edges[:, 1]) > 0
    p = p[keep]
    edges = np.roll(p, -1, axis=0) - p
    length = np.hypot(edges[:, 0], edges[:, 1])[:, None]
    signed_area = 0.5 * float(np.sum(p[:, 0] * np.roll(p[:, 1], -1) - np.roll(p[:, 0], -1) * p[:, 1]))
    # Right-hand normals point outwards when the signed area is positive (interior on the left).
    normals = np.sign(signed_area) * np.stack([edges[:, 1], -edges[:, 0]], axis=1) / length
    before, after = np.roll(normals, 1, axis=0), normals  # normals of the edges into and out of each vertex
    cos_turn = np.sum(before * after, axis=1, keepdims=True)
    shift = 0.5 * (before + after) / np.maximum(1.0 + cos_turn, 1e-9)
    norm = np.hypot(shift[:, 0], shift[:, 1])[:, None]
    shift = np.where(norm > 1.0, shift / np.maximum(norm, 1e-12), shift)
    return p + shift


def trace_instance(mask_probs: np.ndarray, xyxy: np.ndarray, threshold: float, size: int, *, outline: str = "centres") -> np.ndarray | None:
    """Outline of one Mask R-CNN instance in model-input coordinates, or None if it is empty.

    The (M, M) mask covers the continuous box ``xyxy`` exactly; it is resampled (bilinear) onto
    the model pixels the box touches — only inside the box, never a full-image mask — then
    thresholded and its largest external contour traced (see :func:`contour_polygon`).
    """
    x1, y1, x2, y2 = (float(v) for v in xyxy)
    if not all(math.isfinite(v) for v in (x1, y1, x2, y2)) or x2 <= x1 or y2 <= y1:
        return None
    ix0, iy0 = max(0, math.floor(x1)), max(0, math.floor(y1))
    ix1, iy1 = min(size, math.ceil(x2)), min(size, math.ceil(y2))
    if ix1 <= ix0 or iy1 <= iy0:
        return None
    probs = np.asarray(mask_probs, dtype=np.float32)
    mh, mw = probs.shape
    sx, sy = (x2 - x1) / mw, (y2 - y1) / mh
    # Mask pixel centre u + 0.5 lies at x1 + (u + 0.5) * sx; ROI pixel j has its centre at ix0 + j + 0.5.
    warp = np.array([[sx, 0.0, x1 - ix0 + 0.5 * sx - 0.5], [0.0, sy, y1 - iy0 + 0.5 * sy - 0.5]])
    roi = cv2.warpAffine(probs, warp, (ix1 - ix0, iy1 - iy0), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0.0)
    binary = (roi > threshold).astype(np.uint8)
    contours, _ = cv2.findContours(binary, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE, offset=(ix0, iy0))
    if not contours:
        return None
    contour = max(contours, key=cv2.contourArea)
    if len(contour) < 3 or cv2.contourArea(contour) <= 0:
        return None
    return contour_polygon(contour, outline)


# ---- helpers ----------------------------------------------------------------------------------

_END = object()


def _ms_since(t: float) -> float:
    return (time.perf_counter() - t) * 1e3


def _checked(session: ModelSession, outputs: Mapping[str, np.ndarray], name: str, shape: tuple[int | None, ...]) -> np.ndarray:
    """Output ``name`` as an array of ``shape`` (None = any size); BundleError naming the model file otherwise."""
    from .errors import BundleError

    value = outputs.get(name)
    if value is None:
        raise BundleError(session.path, f"model returned no {name!r} output")
    arr = np.asarray(value)
    if arr.ndim != len(shape) or any(want is not None and got != want for got, want in zip(arr.shape, shape)):
        raise BundleError(session.path, f"output {name!r} has shape {arr.shape}, expected {shape} (docs/DESIGN.md ONNX contract)")
    if arr.dtype.kind == "f" and not np.all(np.isfinite(arr)):
        raise BundleError(session.path, f"output {name!r} contains NaN or infinite values")
    return arr


def _vertebra(mask: Any, label: str | None, spacing: tuple[float, float] | None, reason: str | None) -> Vertebra:
    polygon = np.asarray(mask.polygon, dtype=np.float64)
    area = float(mask.area)
    cx, cy = (float(v) for v in mask.centroid)
    return Vertebra(
        label=label,
        polygon=polygon,
        area_px=area,
        area_mm2=None if spacing is None else area * spacing[0] * spacing[1],
        centroid=(cx, cy),
        bbox=(float(polygon[:, 0].min()), float(polygon[:, 1].min()), float(polygon[:, 0].max()), float(polygon[:, 1].max())),
        score=float(mask.score),
        source=str(mask.source),
        reason=reason,
    )

