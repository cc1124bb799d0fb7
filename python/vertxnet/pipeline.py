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

Tracing lives in :mod:`vertxnet.trace`, the geometry rules in :mod:`vertxnet.core`, the backends
in :mod:`vertxnet.runtime`; this module only orders them.

A pipeline may be shared by threads: its sessions and settings are fixed once it is made, each
call keeps its own state, and several callers give the same results as one after the other
(their model runs queue on the pipeline's two model threads).

The backend is chosen fail-safe (:func:`vertxnet.runtime.select_backend`): ``auto`` takes only
verified backends unless unverified ones are allowed, a precision is honoured or refused, and a
backend that fails to load falls back to ONNX Runtime CPU (results flagged ``backend_fallback``,
with the reason in ``model.fallback``).
"""

from __future__ import annotations

import math
import os
import time
import warnings
from collections.abc import Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, fields, replace
from typing import TYPE_CHECKING, Any, Union

import numpy as np

from .bundle import Bundle, load_bundle
from .core import DecoderParams, Detection, decode_labels, ensemble, zip_labels
from .errors import BundleError, InputError, VertxError
from .io import LoadedImage, from_array, load_image
from .levels import LABELLINGS, VIEWS
from .preprocess import Letterbox, prepare
from .result import InputInfo, ModelInfo, Result, Vertebra
from .runtime import ModelSession, open_model
from .runtime.onnxrt import OnnxRuntimeSession
from .runtime.registry import FALLBACK_BACKEND, Precision, Selection, fallback_selection, select_backend
from .trace import OUTLINES, trace_components, trace_detections

if TYPE_CHECKING:
    from .measure import MeasureConfig

#: What :meth:`Pipeline.predict` accepts: a file path, an image array, or an already loaded image.
ImageSource = Union[str, os.PathLike, np.ndarray, LoadedImage]

#: Flag on every result of a pipeline whose chosen backend failed to load and that runs on
#: ONNX Runtime CPU instead (the reason is in ``model.fallback``).
BACKEND_FALLBACK_FLAG = "backend_fallback"



class BackendFallbackWarning(UserWarning):
    """The chosen backend failed to load; the pipeline runs on ONNX Runtime CPU instead."""


#: Defaults for thresholds a bundle's manifest may leave out.
FALLBACK_THRESHOLDS = {"gap_factor": 1.6, "min_area": 1.0, "duplicate_overlap": 0.5, "label_confidence": 0.5}


#: DICOM BodyPartExamined values (PS3.16 CID 4031 code meanings as written in headers) → view.
BODY_PART_VIEWS = {
    "CSPINE": "cervical", "NECK": "cervical", "TSPINE": "thoracic", "CHEST": "thoracic",
    "LSPINE": "lumbar", "SSPINE": "lumbar", "LUMBAR": "lumbar", "TLSPINE": "thoracolumbar",
    "CTSPINE": "cervicothoracic",
}  # fmt: skip
#: Weight of a stated view (user or DICOM header) in the decoder's view prior; the rest is the
#: view model's (or uniform): a stated region is strong evidence, not a certainty.
STATED_VIEW_WEIGHT = 0.9


@dataclass(frozen=True)
class NetworkOutlines:
    """Both networks' outlines of one image in original pixels, before the ensemble: the sets
    ``Cu`` (U-Net components) and ``Cm`` (Mask R-CNN detections, with class and score, in
    descending score order) of SPEC §2.

    ``timings_ms`` has the stages that produced them: preprocess, unet, maskrcnn, trace.
    """

    unet: list[np.ndarray]
    detections: list[Detection]
    timings_ms: dict[str, float]
    #: The view model's probability of each of ``vertxnet.levels.VIEWS``; None without a view model.
    view_probabilities: dict[str, float] | None = None


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
                     :func:`vertxnet.trace.pixel_outline`). It must match how the bundle's training masks were
                     drawn from polygons: pixels touched by the outline → "centres", pixels whose
                     centre is inside → "edges".
    require_vertebrae  raise InputError when nothing is found (a non-spine image) instead of
                     returning an empty result.
    labelling        "decoder" (default): names from the sequence decoder (class probabilities,
                     sizes, shapes, the view's prior; a confidence per name; equal to SPEC §4
                     whenever a confident reference agrees with the chain); "zipper": SPEC §4 alone.
    label_confidence names whose confidence is below this stay null, flag ``labels_uncertain``
                     (manifest ``thresholds.label_confidence``, default 0.5).
    view             the film's region when the user knows it (one of ``vertxnet.levels.VIEWS``);
                     otherwise the DICOM BodyPartExamined when it names one, then the bundle's view
                     model. It weighs as the decoder's view prior.
    decoder          the decoder's model parameters (:class:`vertxnet.core.DecoderParams`: size and
                     shape terms, gap and end weights, level areas); None = its defaults. Its
                     threshold fields are always those above (label_confidence, ref_score, gap_factor).
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
    labelling: str = "decoder"
    label_confidence: float | None = None
    view: str | None = None
    decoder: DecoderParams | None = None

    #: Fields that are not manifest thresholds (never filled from one).
    _OWN = ("outline", "require_vertebrae", "labelling", "view", "decoder")

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
            if f.name in self._OWN:
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
        unit = ("unet_threshold", "score_threshold", "mask_threshold", "eta", "tau", "ref_score", "duplicate_overlap", "label_confidence")
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
        if self.labelling not in LABELLINGS:
            raise ValueError(f"labelling must be one of {', '.join(LABELLINGS)}, got {self.labelling!r}")
        if self.view is not None and self.view not in VIEWS:
            raise ValueError(f"view must be one of {', '.join(VIEWS)}, got {self.view!r}")
        if self.outline is not None and self.outline not in OUTLINES:
            raise ValueError(f"outline must be one of {', '.join(OUTLINES)}, got {self.outline!r}")
        if self.decoder is not None:
            if not isinstance(self.decoder, DecoderParams):
                raise ValueError(f"decoder must be a vertxnet.core.DecoderParams, got {type(self.decoder).__name__}")
            self.decoder.validate()  # ValueError naming the field


class Pipeline:
    """Segment and name the vertebrae of lateral spine radiographs with one model bundle.

    Parameters
    ----------
    bundle : path, :class:`~vertxnet.bundle.Bundle` or None
        Model bundle folder (default: the shipped demo bundle). A bundle that fails its manifest
        check raises BundleError naming the file.
    backend : "auto" or a name in :data:`vertxnet.runtime.BACKENDS`
        "auto" takes the fastest available backend that is verified (today ONNX Runtime CPU);
        unverified ones (native TensorRT → ORT TensorRT → ORT CUDA) only with
        ``allow_unverified`` or ``VERTX_ALLOW_UNVERIFIED=1``. A named backend runs as asked, or
        BackendUnavailable when it cannot run here.
    threads : int or None
        Intra-op threads per model session (default: half the cores, as both models run at once).
    config : PipelineConfig or None
        Threshold overrides; unset values come from the bundle manifest.
    precision : "fp32", "fp16", "int8", or a mapping model → precision
        Every model (or each model named; the others fp32) runs in that precision: the bundle's
        variant of it (ONNX Runtime) or its ``trt-<precision>`` engine (TensorRT). ValueError when
        the backend does not declare the precision or the bundle lacks the variant; nothing is
        swapped for another precision. ``Result.model.precision`` says what ran.
    measure : bool or :class:`vertxnet.measure.MeasureConfig`
        Also measure the named bodies (heights, Genant grades, lordosis, discs, listhesis,
        radiomics): ``Result.measurements``, written by the JSON, CSV, overlay and SR outputs.
    allow_unverified : bool or None
        Let ``auto`` choose unverified backends (None: the ``VERTX_ALLOW_UNVERIFIED`` variable).
    fallback : bool
        When the chosen backend fails to load its models (e.g. an engine built for another GPU),
        run on ONNX Runtime CPU instead and flag every result ``backend_fallback`` (default);
        False raises the load error.
    """

    def __init__(
        self,
        bundle: str | os.PathLike | Bundle | None = None,
        backend: str = "auto",
        threads: int | None = None,
        config: PipelineConfig | None = None,
        precision: Precision = "fp32",
        measure: "bool | MeasureConfig" = False,
        allow_unverified: bool | None = None,
        fallback: bool = True,
    ):
        self._measure = _measure_config(measure)
        self.bundle = bundle if isinstance(bundle, Bundle) else load_bundle(bundle)
        postprocess = self.bundle.manifest.get("postprocess", {})
        outline = postprocess.get("outline") if isinstance(postprocess, dict) else None
        self.config = (config or PipelineConfig()).resolved(self.bundle.thresholds, outline=outline)
        selection = select_backend(backend, self.bundle, precision, allow_unverified=allow_unverified)
        fallback_from: tuple[str, str] | None = None
        try:
            self._unet, self._mrcnn = self._open_models(selection, threads)
        except Exception as exc:  # every backend's load failure: library, device, engine, CUDA
            if not fallback or selection.backend == FALLBACK_BACKEND:
                raise
            text = " ".join(str(exc).split())
            reason = text if isinstance(exc, VertxError) and text else f"{type(exc).__name__}: {text}".rstrip(": ")
            warnings.warn(BackendFallbackWarning(f"backend {selection.backend!r} failed to load ({reason}); running on {FALLBACK_BACKEND}"), stacklevel=2)
            fallback_from = (selection.backend, reason)
            selection = fallback_selection(self.bundle, precision)
            self._unet, self._mrcnn = self._open_models(selection, threads)
        self.selection: Selection = selection
        self.backend = selection.backend
        self._flags: tuple[str, ...] = (BACKEND_FALLBACK_FLAG,) if fallback_from else ()
        self._view = self._open_view_model()
        self._executor = ThreadPoolExecutor(max_workers=2, thread_name_prefix="vertxnet-model")
        self._model_info = ModelInfo(
            self.bundle.name, self.bundle.version, self.bundle.manifest_sha256, self.backend, selection.ran_precisions(self.bundle),
            backend_verified=selection.verified,
            fallback_from=None if fallback_from is None else fallback_from[0],
            fallback_reason=None if fallback_from is None else fallback_from[1],
        )  # fmt: skip

    def _open_models(self, selection: Selection, threads: int | None) -> tuple[ModelSession, ModelSession]:
        """Both sessions on ``selection``'s backend; the first is closed when the second fails."""
        unet = open_model(selection.backend, self.bundle, "unet", threads=threads, variant=selection.variants["unet"])
        try:
            mrcnn = open_model(selection.backend, self.bundle, "maskrcnn", threads=threads, variant=selection.variants["maskrcnn"])
        except BaseException:
            unet.close()
            raise
        return unet, mrcnn

    # ---- public API ------------------------------------------------------------------------

    def predict(self, image: ImageSource, *, pixel_spacing_mm: tuple[float, float] | None = None) -> Result:
        """Vertebrae of one image (a path, an array, or a LoadedImage).

        Raises InputError (naming the file) for an unusable image file, ValueError for an
        unusable array, and InputError when no vertebra is found and ``require_vertebrae``.
        """
        t0 = time.perf_counter()
        loaded = self._load(image, pixel_spacing_mm, self.bundle.preprocess.input_size)
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
        if self._view is not None:
            self._view.close()

    def __enter__(self) -> "Pipeline":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- stages ----------------------------------------------------------------------------

    @staticmethod
    def _load(image: ImageSource, pixel_spacing_mm: tuple[float, float] | None = None, model_size: int | None = None) -> LoadedImage:
        """``model_size``: decode large JPEG 2000 DICOMs and JPEGs at the model's scale (the
        full-resolution pixels follow in the background, see :meth:`_network_outlines`)."""
        if isinstance(image, LoadedImage):
            return image
        if isinstance(image, np.ndarray):
            return from_array(image, pixel_spacing_mm=pixel_spacing_mm)
        if isinstance(image, (str, os.PathLike)):
            return load_image(image, model_size=model_size)
        raise TypeError(f"expected a path, a numpy array or a LoadedImage, got {type(image).__name__}")

    def _timed_load(self, image: ImageSource) -> tuple[LoadedImage, float]:
        t0 = time.perf_counter()
        loaded = self._load(image, model_size=self.bundle.preprocess.input_size)
        return loaded, _ms_since(t0)

    def outlines(self, image: ImageSource, *, concurrent: bool = True) -> NetworkOutlines:
        """Run both networks on one image and return their outlines before the ensemble.

        For ablations and benchmarks that re-run the ensemble or evaluate each network alone
        without running the networks again. ``concurrent=False`` runs them one after the other.
        """
        return self._network_outlines(self._load(image, model_size=self.bundle.preprocess.input_size), concurrent=concurrent)

    def _network_outlines(self, loaded: LoadedImage, *, concurrent: bool = True) -> NetworkOutlines:
        t = time.perf_counter()
        try:
            tensor, box = prepare(loaded.model_input(), self.bundle.preprocess)
        except ValueError as exc:
            raise InputError(loaded.path, str(exc)) from None
        preprocess_ms = _ms_since(t)
        if concurrent:
            unet_job = self._executor.submit(self._segment_unet, tensor, box)
            mrcnn_job = self._executor.submit(self._detect_instances, tensor, box)
            unet_polys, unet_ms, unet_trace_ms = unet_job.result()
            detections, mrcnn_ms, mrcnn_trace_ms = mrcnn_job.result()
        else:
            unet_polys, unet_ms, unet_trace_ms = self._segment_unet(tensor, box)
            detections, mrcnn_ms, mrcnn_trace_ms = self._detect_instances(tensor, box)
        timings = {"preprocess": preprocess_ms, "unet": unet_ms, "maskrcnn": mrcnn_ms, "trace": unet_trace_ms + mrcnn_trace_ms}
        view_probabilities = None
        if self._view is not None:
            t = time.perf_counter()
            view_probabilities = self._recognise_view(tensor)
            timings["view"] = _ms_since(t)
        return NetworkOutlines(unet_polys, detections, timings, view_probabilities)

    def _predict_loaded(self, loaded: LoadedImage, decode_ms: float) -> Result:
        # total = decode + the rest; in predict_many the decode overlapped the previous image.
        t_start = time.perf_counter()
        cfg = self.config
        # A film decoded at the model's scale: its full-resolution pixels (the result's hash and
        # the full-size outputs need them) decode in the background while the networks run.
        loaded.prefetch()
        raw = self._network_outlines(loaded)
        timings = {"decode": decode_ms, **raw.timings_ms}

        t = time.perf_counter()
        masks = ensemble(
            raw.unet, raw.detections,
            eta=cfg.eta, lam=cfg.lam, tau=cfg.tau, ref_score=cfg.ref_score, min_area=cfg.min_area,
        )  # fmt: skip
        timings["ensemble"] = _ms_since(t)

        t = time.perf_counter()
        stated = cfg.view or _dicom_view(loaded.dicom)
        if cfg.labelling == "zipper":
            labelling = zip_labels(masks, gap_factor=cfg.gap_factor)
            confidence = [None] * len(masks)
            view, view_probability = labelling.view, None
        else:
            prior = _view_prior(stated, raw.view_probabilities)
            labelling = decode_labels(
                masks, class_probs=[_mask_class_probs(m, raw.detections) for m in masks], view_prior=prior,
                params=cfg.decoder, ref_score=cfg.ref_score, gap_factor=cfg.gap_factor,
                confidence_threshold=cfg.label_confidence,
            )  # fmt: skip
            confidence = [float(c) if label is not None else None for c, label in zip(labelling.confidence, labelling.labels)]
            view, view_probability = _decoded_view(labelling, prior if raw.view_probabilities else None)
        if cfg.view is not None and view not in (cfg.view, "whole"):
            view, view_probability = cfg.view, None  # the user said so; the names still follow the evidence
        timings["label"] = _ms_since(t)

        spacing = loaded.pixel_spacing_mm
        vertebrae, excluded = [], []
        for i, mask in enumerate(masks):
            vertebra = _vertebra(mask, labelling.labels[i], spacing, labelling.excluded.get(i), confidence[i])
            (excluded if i in labelling.excluded else vertebrae).append(vertebra)
        if cfg.require_vertebrae and not vertebrae:
            raise InputError(loaded.path, "no vertebra found: not a lateral spine radiograph, or not one this model bundle can read")
        flags = list(dict.fromkeys([*loaded.flags, *labelling.flags, *self._flags]))
        measurements = None
        if self._measure is not None:
            from .measure import measure

            t = time.perf_counter()
            measurements = measure(
                [v.polygon for v in vertebrae], [v.label for v in vertebrae], config=self._measure,
                pixel_spacing_mm=spacing, image=loaded.pixels, dicom=loaded.dicom,
            )  # fmt: skip
            timings["measure"] = _ms_since(t)
        digest = loaded.sha256  # waits for a full-resolution decode still running beside the rest
        timings["total"] = decode_ms + _ms_since(t_start)
        return Result(
            input=InputInfo(loaded.path, loaded.width, loaded.height, spacing, digest),
            view=view,
            view_probability=view_probability,
            reference=None if labelling.reference == "none" else labelling.reference,
            vertebrae=vertebrae,
            excluded=excluded,
            flags=flags,
            timings_ms=timings,
            model=self._model_info,
            pixels=loaded.pixels,
            dicom=loaded.dicom,
            measurements=measurements,
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

    def _detect_instances(self, tensor: np.ndarray, box: Letterbox) -> tuple[list[Detection], float, float]:
        t = time.perf_counter()
        out = self._mrcnn.run(tensor)
        mrcnn_ms = _ms_since(t)
        t = time.perf_counter()
        boxes = _checked(self._mrcnn, out, "boxes", (None, 4))
        k = boxes.shape[0]
        scores = _checked(self._mrcnn, out, "scores", (k,))
        labels = _checked(self._mrcnn, out, "labels", (k,))
        probs = _checked(self._mrcnn, out, "mask_probs", (k, None, None))
        class_probs = _checked(self._mrcnn, out, "class_probs", (k, None)) if "class_probs" in out else None
        cfg = self.config
        detections = trace_detections(
            boxes, scores, labels, probs, size=box.size, score_threshold=cfg.score_threshold,
            mask_threshold=cfg.mask_threshold, duplicate_overlap=cfg.duplicate_overlap,
            outline=cfg.outline, to_original=box.to_original, class_probs=class_probs,
        )  # fmt: skip
        return detections, mrcnn_ms, _ms_since(t)

    def _open_view_model(self) -> OnnxRuntimeSession | None:
        """The bundle's view model, when it has one. It is tiny, so it always runs on ONNX
        Runtime's CPU provider, whichever backend runs the two networks."""
        entry = self.bundle.manifest["models"].get("view")
        if entry is None:
            return None
        views = tuple(entry.get("views", ()))
        if views != VIEWS:
            raise BundleError(self.bundle.path / "manifest.json", f"view model classes {list(views)} are not {list(VIEWS)}")
        return OnnxRuntimeSession(self.bundle.model_path("view"), threads=1, outputs=("view_logits",))

    def _recognise_view(self, tensor: np.ndarray) -> dict[str, float]:
        logits = _checked(self._view, self._view.run(tensor), "view_logits", (1, len(VIEWS)))[0].astype(np.float64)
        p = np.exp(logits - logits.max())
        p /= p.sum()
        return {v: float(x) for v, x in zip(VIEWS, p)}


# ---- helpers ----------------------------------------------------------------------------------

_END = object()


def _measure_config(measure: Any) -> Any:
    """None (no measurements), or the validated MeasureConfig for ``measure`` (True = defaults)."""
    if measure is None or measure is False:
        return None
    from .measure import MeasureConfig

    if measure is True:
        return MeasureConfig()
    if not isinstance(measure, MeasureConfig):
        raise TypeError(f"measure must be a bool or a vertxnet.measure.MeasureConfig, got {type(measure).__name__}")
    measure.validate()
    return measure


def _mask_class_probs(mask: Any, detections: list[Detection]) -> tuple[float, float, float] | None:
    """The (vertebra, C2, S1) probabilities of an ensemble mask: its Mask R-CNN detection's;
    None (derived by the decoder from class and score) for U-Net-only masks."""
    index = getattr(mask, "mrcnn_index", None)
    return detections[index].class_probs if index is not None and 0 <= index < len(detections) else None


def _view_prior(stated: str | None, model: dict[str, float] | None) -> dict[str, float] | None:
    """The decoder's view prior: the view model's probabilities, a stated view weighing
    STATED_VIEW_WEIGHT; None (uniform) when there is neither."""
    if stated is None:
        return model
    base = model or {v: 1.0 / len(VIEWS) for v in VIEWS}
    return {v: STATED_VIEW_WEIGHT * (v == stated) + (1.0 - STATED_VIEW_WEIGHT) * base[v] for v in VIEWS}


def _decoded_view(labelling: Any, prior: dict[str, float] | None) -> tuple[str | None, float | None]:
    """The film's region and its probability from a decoding: one of the five regions, not SPEC
    §4's cervical/lumbar for every film named from C2/S1 (a T8-S1 film is thoracolumbar), so the
    chain's view posterior, the evidence the names come from; "whole" as decoded; with no view
    decoded, the maximum of ``prior`` (the view model's, or the stated, region) when there is one."""
    view, probability = labelling.view, labelling.view_probability
    if labelling.method == "reference" and view in VIEWS:
        view, probability = _most_probable(labelling.view_posterior)
    if view is None and prior:
        view, probability = _most_probable(prior)
    return view, probability


def _most_probable(probabilities: Mapping[str, float]) -> tuple[str, float]:
    best = max(probabilities, key=probabilities.get)
    return best, probabilities[best]


def _dicom_view(dataset: Any) -> str | None:
    """The view a DICOM header states (BodyPartExamined), if it names a spine region."""
    if dataset is None:
        return None
    part = str(getattr(dataset, "BodyPartExamined", "") or "").strip().upper().replace(" ", "").replace("-", "")
    return BODY_PART_VIEWS.get(part)


def _ms_since(t: float) -> float:
    return (time.perf_counter() - t) * 1e3


def _checked(session: ModelSession, outputs: Mapping[str, np.ndarray], name: str, shape: tuple[int | None, ...]) -> np.ndarray:
    """Output ``name`` as an array of ``shape`` (None = any size); BundleError naming the model file otherwise."""
    value = outputs.get(name)
    if value is None:
        raise BundleError(session.path, f"model returned no {name!r} output")
    arr = np.asarray(value)
    if arr.ndim != len(shape) or any(want is not None and got != want for got, want in zip(arr.shape, shape)):
        raise BundleError(session.path, f"output {name!r} has shape {arr.shape}, expected {shape} (docs/DESIGN.md ONNX contract)")
    if arr.dtype.kind == "f" and not np.all(np.isfinite(arr)):
        raise BundleError(session.path, f"output {name!r} contains NaN or infinite values")
    return arr


def _vertebra(mask: Any, label: str | None, spacing: tuple[float, float] | None, reason: str | None, confidence: float | None = None) -> Vertebra:
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
        label_confidence=confidence,
    )

