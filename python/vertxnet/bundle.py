"""Model bundles: a folder with manifest.json and the ONNX files it lists, checked by sha256."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import BundleError
from .levels import MRCNN_CLASSES
from .preprocess import PreprocessConfig

MANIFEST = "manifest.json"
FORMAT = "vertxnet-bundle"
FORMAT_VERSION = 1
REQUIRED_KEYS = ("format", "format_version", "name", "version", "preprocess", "classes", "thresholds", "models", "files")
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


def validate_manifest(manifest: Any, where: str | Path) -> None:
    """Raise BundleError naming ``where`` unless ``manifest`` has the bundle format's shape."""
    if not isinstance(manifest, dict):
        raise BundleError(where, "manifest is not a JSON object")
    missing = [k for k in REQUIRED_KEYS if k not in manifest]
    if missing:
        raise BundleError(where, f"manifest lacks {', '.join(missing)}")
    if manifest["format"] != FORMAT:
        raise BundleError(where, f"format is {manifest['format']!r}, expected {FORMAT!r}")
    if manifest["format_version"] != FORMAT_VERSION:
        raise BundleError(where, f"format_version {manifest['format_version']!r} is not supported (expected {FORMAT_VERSION})")
    if list(manifest["classes"]) != list(MRCNN_CLASSES):
        raise BundleError(where, f"classes must be {list(MRCNN_CLASSES)}, got {manifest['classes']!r}")
    pre = manifest["preprocess"]
    if not isinstance(pre, dict) or not isinstance(pre.get("input_size"), int) or not 32 <= pre["input_size"] <= 4096:
        raise BundleError(where, "preprocess.input_size must be an integer in 32…4096")
    if not isinstance(pre.get("std", 1.0), (int, float)) or pre.get("std", 1.0) <= 0:
        raise BundleError(where, "preprocess.std must be a positive number")
    models = manifest["models"]
    files = manifest["files"]
    if not isinstance(models, dict) or not {"unet", "maskrcnn"} <= set(models):
        raise BundleError(where, "models must name 'unet' and 'maskrcnn'")
    if not isinstance(files, dict):
        raise BundleError(where, "files must map file names to their sha256")
    for key, entry in models.items():
        names = [entry.get("file")] + list(entry.get("variants", {}).values()) if isinstance(entry, dict) else [None]
        for name in names:
            if not isinstance(name, str) or name not in files:
                raise BundleError(where, f"model {key!r} refers to {name!r}, which is not listed under files")
    for name, entry in files.items():
        if Path(name).name != name or name in ("", ".", ".."):
            raise BundleError(where, f"file name {name!r} must be a plain name inside the bundle")
        if not isinstance(entry, dict) or not isinstance(entry.get("sha256"), str) or len(entry["sha256"]) != 64:
            raise BundleError(where, f"files[{name!r}] needs a 64-hex-digit sha256")


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
    import os

    root = Path(root)
    for name in list(manifest["files"]):
        fp = root / name
        manifest["files"][name] = {"sha256": sha256_file(fp), "bytes": fp.stat().st_size}
    validate_manifest(manifest, root / MANIFEST)
    tmp = root / f"{MANIFEST}.tmp-{os.getpid()}"
    tmp.write_text(json.dumps(manifest, indent=2, sort_keys=False) + "\n")
    os.replace(tmp, root / MANIFEST)
    return root / MANIFEST
