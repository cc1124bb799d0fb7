"""Model bundles: a folder with manifest.json and the ONNX files it lists, checked by sha256."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import BundleError
from .files import atomic_write
from .preprocess import PreprocessConfig

MANIFEST = "manifest.json"
FORMAT = "vertxnet-bundle"
FORMAT_VERSION = 1
#: JSON Schema of manifest.json, shipped inside the package.
MANIFEST_SCHEMA_PATH = Path(__file__).resolve().parent / "schemas" / "manifest.schema.json"
DEFAULT_THRESHOLDS = {"unet": 0.5, "mrcnn_score": 0.5, "mask": 0.5, "eta": 0.6, "lam": 2.0, "tau": 0.3, "ref_score": 0.5}


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


@dataclass(frozen=True)
class Bundle:
    """A verified model bundle."""

    path: Path
    manifest: dict[str, Any]
    preprocess: PreprocessConfig
    thresholds: dict[str, float]
    manifest_sha256: str
    files: dict[str, Path] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return str(self.manifest["name"])

    @property
    def version(self) -> str:
        return str(self.manifest["version"])

    def model_path(self, model: str, variant: str | None = None) -> Path:
        """Path of ``model`` ("unet" | "maskrcnn"), optionally a variant such as "int8" or "fp16"."""
        entry = self.manifest["models"].get(model)
        if entry is None:
            raise BundleError(self.path / MANIFEST, f"no model {model!r} in the manifest")
        name = entry["file"] if variant is None else entry.get("variants", {}).get(variant)
        if name is None:
            raise BundleError(self.path / MANIFEST, f"model {model!r} has no {variant!r} variant")
        return self.files[name]

    def variants(self, model: str) -> list[str]:
        return sorted(self.manifest["models"].get(model, {}).get("variants", {}))


def manifest_schema() -> dict[str, Any]:
    """The manifest JSON Schema (draft 2020-12) shipped in ``schemas/manifest.schema.json``."""
    return json.loads(MANIFEST_SCHEMA_PATH.read_text(encoding="utf-8"))


def validate_manifest(manifest: Any, where: str | Path) -> None:
    """Raise BundleError naming ``where`` unless ``manifest`` has the bundle format's shape.

    The shape is ``schemas/manifest.schema.json`` (checked with jsonschema; its ``x-messages``
    give the one-line reasons); that every model file is listed under ``files`` is checked here.
    """
    error = _first_schema_error(manifest)
    if error is not None:
        raise BundleError(where, error)
    files = manifest["files"]
    for key, entry in manifest["models"].items():
        for name in [entry["file"], *entry.get("variants", {}).values()]:
            if name not in files:
                raise BundleError(where, f"model {key!r} refers to {name!r}, which is not listed under files")


def _first_schema_error(manifest: Any) -> str | None:
    import jsonschema

    validator = jsonschema.Draft202012Validator(_schema())
    errors = sorted(validator.iter_errors(manifest), key=lambda e: (len(e.absolute_path), list(map(str, e.absolute_path))))
    if not errors:
        return None
    error = errors[0]
    messages = error.schema.get("x-messages", {}) if isinstance(error.schema, dict) else {}
    template = messages.get(error.validator, messages.get("*"))
    if error.validator == "required" and template is None:
        missing = [k for k in error.validator_value if k not in error.instance]
        return f"manifest lacks {', '.join(missing)}"
    if template is None:
        place = ".".join(str(k) for k in error.absolute_path) or "manifest"
        return f"{place}: {error.message}"
    path = list(error.absolute_path)
    key = path[1] if len(path) >= 2 else (path[-1] if path else "")  # e.g. the file in files[<key>].sha256
    return template.format(value=error.instance, key=key)


_SCHEMA: dict[str, Any] | None = None


def _schema() -> dict[str, Any]:
    global _SCHEMA
    if _SCHEMA is None:
        _SCHEMA = manifest_schema()
    return _SCHEMA


def load_bundle(path: str | Path | None = None) -> Bundle:
    """Load and verify a bundle folder (default: the shipped demo bundle).

    Every listed file must exist and match its sha256; anything else raises BundleError
    naming the offending file.
    """
    root = Path(path) if path is not None else default_bundle_path()
    manifest_path = root / MANIFEST
    if not root.is_dir():
        raise BundleError(root, "model bundle folder not found")
    if not manifest_path.is_file():
        raise BundleError(manifest_path, "bundle has no manifest.json")
    raw = manifest_path.read_bytes()
    try:
        manifest = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BundleError(manifest_path, f"manifest is not valid JSON ({exc})") from None
    validate_manifest(manifest, manifest_path)
    files: dict[str, Path] = {}
    for name, entry in manifest["files"].items():
        fp = root / name
        if not fp.is_file():
            raise BundleError(fp, "file listed in the manifest is missing")
        if sha256_file(fp) != entry["sha256"].lower():
            raise BundleError(fp, "sha256 does not match the manifest: the file is corrupt or was modified")
        files[name] = fp
    thresholds = {**DEFAULT_THRESHOLDS, **manifest.get("thresholds", {})}
    return Bundle(
        path=root,
        manifest=manifest,
        preprocess=PreprocessConfig.from_manifest(manifest["preprocess"]),
        thresholds={k: float(v) for k, v in thresholds.items()},
        manifest_sha256=hashlib.sha256(raw).hexdigest(),
        files=files,
    )


def default_bundle_path() -> Path:
    """The demo bundle shipped inside the package (trained on synthetic phantoms only)."""
    return Path(__file__).resolve().parent / "models" / "demo"


def write_manifest(root: str | Path, manifest: dict[str, Any]) -> Path:
    """Fill in ``files`` with the sha256 and size of every listed file, then write manifest.json atomically."""
    root = Path(root)
    for name in list(manifest["files"]):
        fp = root / name
        manifest["files"][name] = {"sha256": sha256_file(fp), "bytes": fp.stat().st_size}
    validate_manifest(manifest, root / MANIFEST)
    return atomic_write(root / MANIFEST, json.dumps(manifest, indent=2, sort_keys=False) + "\n")
