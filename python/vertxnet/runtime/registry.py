"""The inference-backend interface and the registry backends add themselves to.

A backend opens one model of a bundle as a :class:`ModelSession`: a callable that takes the
preprocessed image tensor ``image`` (1, 1, S, S) float32 and returns the named outputs of the
ONNX model contract (docs/DESIGN.md) as numpy arrays. Sessions are created once and reused.

Each backend module (``onnxrt``, ``tensorrt``) describes itself as a :class:`Backend` and calls
:func:`register` with its place in the ``auto`` order; nothing here knows a concrete backend.
Nothing here imports torch.

Fail-safe rules (:func:`select_backend`):

- ``auto`` takes the fastest backend that can run here *and is verified* (has run the test suite
  on real hardware). Unverified backends are taken by ``auto`` only when the user opts in with
  ``allow_unverified=True`` or the environment variable ``VERTX_ALLOW_UNVERIFIED=1``; naming a
  backend explicitly is an opt-in for that backend.
- A precision is honoured or refused, never swapped: the backend must declare it
  (:attr:`BackendInfo.precisions`) and the bundle must have that variant of every model asked to
  run in it, else ValueError saying what there is.
- :func:`fallback_selection` is what a pipeline runs when the chosen backend fails to load:
  ONNX Runtime CPU, verified, always present.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Union

import numpy as np

from ..errors import VertxError

if TYPE_CHECKING:
    from ..bundle import Bundle

#: Model names of a bundle, and the outputs each must produce (docs/DESIGN.md, ONNX contract).
MODEL_OUTPUTS: dict[str, tuple[str, ...]] = {
    "unet": ("logits",),
    "maskrcnn": ("boxes", "scores", "labels", "mask_probs"),
}
#: Outputs a model may have beyond those (newer bundles): fetched when the graph has them.
OPTIONAL_OUTPUTS: dict[str, tuple[str, ...]] = {"maskrcnn": ("class_probs",)}
INPUT_NAME = "image"
#: Model precisions a bundle may offer (manifest ``models.<name>.variants``).
PRECISIONS = ("fp32", "fp16", "int8")
#: Environment variable that lets ``auto`` choose unverified backends ("1", "true", "yes", "on").
ALLOW_UNVERIFIED_ENV = "VERTX_ALLOW_UNVERIFIED"
#: The backend every bundle runs on, verified, and the one a failed load falls back to.
FALLBACK_BACKEND = "onnxruntime-cpu"

#: A precision for every model ("int8"), or one per model ({"unet": "int8"}; unnamed models fp32).
Precision = Union[str, Mapping[str, str]]


class BackendUnavailable(VertxError):
    """The requested backend cannot run here (library missing, no GPU, no engine in the bundle)."""


@dataclass(frozen=True)
class BackendInfo:
    """What one backend is and supports."""

    name: str
    engine: str
    providers: tuple[str, ...]
    precisions: tuple[str, ...]
    platforms: str
    verified: bool
    note: str


class ModelSession(ABC):
    """One loaded model, ready to run repeatedly (thread-compatible: one call at a time per session)."""

    #: Name of the backend that runs this session.
    backend: str
    #: The model file this session was created from (named in error messages).
    path: Path

    @abstractmethod
    def run(self, image: np.ndarray) -> dict[str, np.ndarray]:
        """Run on the preprocessed ``image`` (1, 1, S, S) float32; return the named outputs."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release device resources early (garbage collection does it otherwise)."""


class Backend(ABC):
    """One way of running a bundle's models. The defaults describe backends that run the
    bundle's ONNX files (and their fp16/int8 variants)."""

    info: BackendInfo

    @abstractmethod
    def unavailable_reason(self) -> str | None:
        """Why this backend cannot run on this machine, or None when it can."""

    def bundle_problem(self, bundle: "Bundle") -> str | None:
        """What ``bundle`` lacks for this backend (e.g. engines), or None."""
        return None

    @abstractmethod
    def open(self, bundle: "Bundle", model: str, *, threads: int | None, variant: str | None) -> ModelSession:
        """Open ``model`` of ``bundle``; ``variant`` as :func:`open_model` describes."""

    def model_variants(self, bundle: "Bundle", precisions: Mapping[str, str]) -> dict[str, str | None]:
        """The variant each model runs at ``precisions`` (model → precision): None for the fp32
        file, else the bundle's variant of that name; ValueError naming the manifest and what it
        has when a model lacks the variant (never a silent fp32)."""
        variants: dict[str, str | None] = {}
        for model, precision in precisions.items():
            if precision == "fp32":
                variants[model] = None
            elif precision in bundle.variants(model):
                variants[model] = precision
            else:
                raise ValueError(_missing_variant(bundle, model, precision, ["fp32", *(v for v in bundle.variants(model) if v in PRECISIONS)]))
        return variants

    def ran_precision(self, bundle: "Bundle", model: str, variant: str | None) -> str:
        """What a result reports as the precision ``model`` ran in."""
        return variant or "fp32"


_REGISTRY: dict[str, tuple[int, Backend]] = {}


def register(backend: Backend, rank: int) -> None:
    """Add ``backend``; ``auto`` prefers lower ranks (the fastest backends)."""
    _REGISTRY[backend.info.name] = (rank, backend)


def registered() -> list[Backend]:
    """Every registered backend, in the order ``auto`` prefers them (fastest first)."""
    return [backend for _, backend in sorted(_REGISTRY.values(), key=lambda item: item[0])]


def backend(name: str) -> Backend:
    """The registered backend ``name``; ValueError for an unknown one."""
    if name not in _REGISTRY:
        names = ", ".join(b.info.name for b in registered())
        raise ValueError(f"unknown backend {name!r}; expected 'auto' or one of {names}")
    return _REGISTRY[name][1]


def backend_info(name: str) -> BackendInfo:
    """The description of backend ``name``; ValueError for an unknown backend."""
    return backend(name).info


def available_backends(bundle: "Bundle | None" = None) -> list[str]:
    """Backends that can run here (and, given a bundle, that have what they need in it), fastest first."""
    return [
        b.info.name for b in registered()
        if b.unavailable_reason() is None and (bundle is None or b.bundle_problem(bundle) is None)
    ]  # fmt: skip


def unverified_allowed(allow: bool | None = None) -> bool:
    """Whether ``auto`` may choose unverified backends: ``allow`` when given, else the
    environment variable :data:`ALLOW_UNVERIFIED_ENV`."""
    if allow is not None:
        return bool(allow)
    return os.environ.get(ALLOW_UNVERIFIED_ENV, "").strip().lower() in ("1", "true", "yes", "on")


def model_precisions(precision: Precision) -> dict[str, str]:
    """``precision`` as model → precision for every model: a string applies to both models; a
    mapping names some of them (the others run fp32). ValueError for unknown models or precisions."""
    if isinstance(precision, str):
        wanted = {model: precision for model in MODEL_OUTPUTS}
    elif isinstance(precision, Mapping):
        unknown = [m for m in precision if m not in MODEL_OUTPUTS]
        if unknown:
            raise ValueError(f"precision names unknown model(s) {unknown}; the models are {', '.join(MODEL_OUTPUTS)}")
        wanted = {model: precision.get(model, "fp32") for model in MODEL_OUTPUTS}
    else:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)} or a mapping model → precision, got {precision!r}")
    for value in wanted.values():
        if value not in PRECISIONS:
            raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {value!r}")
    return wanted


def parse_precision(text: str) -> Precision:
    """A command-line precision: ``int8`` (every model) or ``unet=int8[,maskrcnn=fp32]`` (per model)."""
    text = text.strip().lower()
    if "=" not in text:
        model_precisions(text)
        return text
    pairs: dict[str, str] = {}
    for item in (part.strip() for part in text.split(",") if part.strip()):
        model, sep, value = (s.strip() for s in item.partition("="))
        if not sep or not model or not value:
            raise ValueError(f"precision item {item!r} is not MODEL=PRECISION (e.g. unet=int8)")
        if model in pairs:
            raise ValueError(f"precision names {model!r} twice")
        pairs[model] = value
    model_precisions(pairs)
    return pairs


def describe_precision(precisions: Mapping[str, str]) -> str:
    """"int8", or "unet=int8, maskrcnn=fp32" when the models differ."""
    values = set(precisions.values())
    if len(values) == 1:
        return values.pop()
    return ", ".join(f"{m}={p}" for m, p in precisions.items())


@dataclass(frozen=True)
class Selection:
    """The backend a pipeline runs and what each model runs in."""

    #: The concrete backend.
    backend: str
    #: Model → variant passed to :func:`open_model` (None = the fp32 ONNX file).
    variants: dict[str, str | None]
    #: Model → precision asked for (each honoured: the backend declares it and the bundle has it).
    precisions: dict[str, str]
    #: Whether the backend has been verified (:attr:`BackendInfo.verified`).
    verified: bool
    #: Faster backends ``auto`` passed over, with the reason for each.
    skipped: tuple[tuple[str, str], ...] = field(default=())

    def ran_precisions(self, bundle: "Bundle") -> dict[str, str]:
        """What a result reports as the precision each model ran in."""
        chosen = backend(self.backend)
        return {model: chosen.ran_precision(bundle, model, variant) for model, variant in self.variants.items()}


def _refused_precision(info: BackendInfo, precisions: Mapping[str, str]) -> str | None:
    refused = sorted({p for p in precisions.values() if p not in info.precisions})
    if not refused:
        return None
    return (
        f"backend {info.name!r} runs {', '.join(info.precisions)}, not {', '.join(refused)} "
        f"(asked for --precision {describe_precision(precisions)})"
    )


def _missing_variant(bundle: "Bundle", model: str, precision: str, have: list[str]) -> str:
    text = f"{bundle.path / 'manifest.json'}: model {model!r} has no {precision} variant (it has {', '.join(have) or 'none'})"
    others = [m for m in MODEL_OUTPUTS if m != model and precision in bundle.variants(m)]
    if others:
        text += f"; --precision {others[0]}={precision} runs only {others[0]} in {precision}"
    return text


def _select(chosen: Backend, bundle: "Bundle", precisions: dict[str, str], skipped=()) -> Selection:
    variants = chosen.model_variants(bundle, precisions)
    return Selection(chosen.info.name, variants, dict(precisions), chosen.info.verified, tuple(skipped))


def select_backend(
    requested: str, bundle: "Bundle", precision: Precision = "fp32", *, allow_unverified: bool | None = None
) -> Selection:
    """The backend and model variants for ``requested`` ("auto" or a name) at ``precision``.

    ``auto`` takes the first backend, fastest first, that runs here, is verified (or
    :func:`unverified_allowed`), declares the precision and whose files the bundle has.
    A named backend is taken as asked (an opt-in, verified or not) or refused:
    ValueError for an unknown name, a precision it does not declare, or a variant the bundle
    lacks; BackendUnavailable when it cannot run here or the bundle lacks its files.
    """
    precisions = model_precisions(precision)
    if requested != "auto":
        chosen = backend(requested)
        refused = _refused_precision(chosen.info, precisions)
        if refused is not None:
            raise ValueError(refused)
        why = chosen.unavailable_reason()
        if why is not None:
            raise BackendUnavailable(f"backend {requested!r} is not available here: {why}")
        problem = chosen.bundle_problem(bundle)
        if problem is not None:
            raise BackendUnavailable(problem)
        return _select(chosen, bundle, precisions)
    allow = unverified_allowed(allow_unverified)
    skipped: list[tuple[str, str]] = []
    variant_errors: list[ValueError] = []
    for candidate in registered():
        info = candidate.info
        if not info.verified and not allow:
            reason = f"unverified (choose it with --backend {info.name}, or set {ALLOW_UNVERIFIED_ENV}=1)"
        else:
            reason = _refused_precision(info, precisions) or candidate.unavailable_reason() or candidate.bundle_problem(bundle)
        if reason is None:
            try:
                return _select(candidate, bundle, precisions, skipped)
            except ValueError as exc:
                variant_errors.append(exc)
                reason = str(exc)
        skipped.append((info.name, reason))
    if variant_errors:
        raise variant_errors[-1]  # the bundle lacks the variant: say so, not "no backend"
    lines = "; ".join(f"{name}: {reason}" for name, reason in skipped)
    raise ValueError(f"no backend runs --precision {describe_precision(precisions)} here ({lines})")


def resolve_backend(requested: str, bundle: "Bundle", precision: Precision = "fp32", *, allow_unverified: bool | None = None) -> str:
    """Concrete backend for ``requested`` ("auto" or a name); see :func:`select_backend`."""
    return select_backend(requested, bundle, precision, allow_unverified=allow_unverified).backend


def fallback_selection(bundle: "Bundle", precision: Precision = "fp32") -> Selection:
    """What runs when the chosen backend fails to load: :data:`FALLBACK_BACKEND`, each model in
    the asked precision where that backend declares it and the bundle has it, fp32 otherwise
    (the result records what ran and is flagged ``backend_fallback``)."""
    chosen = backend(FALLBACK_BACKEND)
    wanted = model_precisions(precision)
    kept = {
        model: p if p in chosen.info.precisions and (p == "fp32" or p in bundle.variants(model)) else "fp32"
        for model, p in wanted.items()
    }  # fmt: skip
    return _select(chosen, bundle, kept)


def model_variants(name: str, bundle: "Bundle", precision: Precision) -> dict[str, str | None]:
    """The variant each model of ``bundle`` runs under backend ``name`` at ``precision``
    (ValueError when the backend does not declare it or the bundle lacks it)."""
    precisions = model_precisions(precision)
    chosen = backend(name)
    refused = _refused_precision(chosen.info, precisions)
    if refused is not None:
        raise ValueError(refused)
    return chosen.model_variants(bundle, precisions)


def open_model(name: str, bundle: "Bundle", model: str, *, threads: int | None = None, variant: str | None = None) -> ModelSession:
    """Open ``model`` ("unet" | "maskrcnn") of ``bundle`` on the concrete backend ``name``.

    ``variant`` picks an ONNX variant listed in the manifest (e.g. "int8", "fp16"); for the
    native TensorRT backend it is the wanted engine precision (engine variant ``trt-<precision>``,
    else the bundle's first engine for the model).
    """
    if model not in MODEL_OUTPUTS:
        raise ValueError(f"unknown model {model!r}; expected one of {sorted(MODEL_OUTPUTS)}")
    return backend(name).open(bundle, model, threads=threads, variant=variant)
