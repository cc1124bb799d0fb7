#!/usr/bin/env python3
"""Build the unlabelled self-training pool from limsungjoo/Vertebra_classification
Binary_clf/pytorch_grad_cam/original/ (bare mirror), leaving out exact pixel duplicates and
near-duplicates of the limsungjoo dev films.

    python3 export/build_unlabelled_pool.py --mirror /work/.mirror/limsungjoo+Vertebra_classification/repo \
        --dev data/real/dev --truth /work/shared/real-films/dev.coco.json --out data/real/unlabelled
"""
import argparse, hashlib, json, subprocess, sys
from pathlib import Path

import cv2
import numpy as np

REPO_ROOT = Path(__file__).resolve().parent.parent
if not any(Path(p, "vertxnet").is_dir() for p in sys.path if p):
    sys.path.insert(0, str(REPO_ROOT / "python"))  # a source checkout without `pip install -e .`

from vertxnet.files import atomic_write  # noqa: E402

FOLDER = "Binary_clf/pytorch_grad_cam/original/"
REPO = "limsungjoo/Vertebra_classification"


def decode(data: bytes, where: str) -> np.ndarray:
    img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if img is None:
        raise ValueError(f"{where}: not a decodable image")
    return img


def grey(img: np.ndarray) -> np.ndarray:
    if img.ndim == 3:
        img = cv2.cvtColor(img[:, :, :3], cv2.COLOR_BGR2GRAY)
    return img.astype(np.float32)


def _unit(t: np.ndarray) -> np.ndarray:
    v = t.ravel() - t.mean()
    n = np.linalg.norm(v)
    return v / n if n > 0 else v


def thumbs(img: np.ndarray) -> list[np.ndarray]:
    """Two small grey thumbnails, zero-mean and unit-norm:
    - the whole frame at 64x64, high-passed (minus a Gaussian blur of sigma 4 px): a plain
      whole-frame thumbnail is dominated by the letterbox bars and shading, so different patients
      with the same layout correlate up to 0.97; structure alone separates them (measured: copies
      of a dev film >= 0.994, other films <= 0.75);
    - the frame cropped to its content (rows/columns brighter than the black bars) at 32x64, so a
      re-letterboxed or re-cropped copy is still recognised (copies >= 0.99, other films <= 0.93)."""
    g = grey(img)
    t = cv2.resize(g, (64, 64), interpolation=cv2.INTER_AREA)
    out = [_unit(t - cv2.GaussianBlur(t, (0, 0), 4))]
    cols = np.nonzero(g.mean(axis=0) > 20)[0]
    rows = np.nonzero(g.mean(axis=1) > 20)[0]
    c = g[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1] if cols.size > 8 and rows.size > 8 else g
    out.append(_unit(cv2.resize(c, (32, 64), interpolation=cv2.INTER_AREA)))
    return out


def correlation(a: list[np.ndarray], b: list[np.ndarray]) -> float:
    return max(float(x @ y) for x, y in zip(a, b))


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mirror", required=True)
    ap.add_argument("--dev", required=True)
    ap.add_argument("--truth", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--near", type=float, default=0.95)
    a = ap.parse_args()
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    truth = json.load(open(a.truth))
    dev = []
    for im in truth["images"]:
        if im["source"]["repo"] != REPO:
            continue
        data = Path(a.dev, im["file_name"]).read_bytes()
        dev.append((im["file_name"], im["source"]["path"], thumbs(decode(data, im["file_name"]))))
    dev_paths = {p for _, p, _ in dev}
    listing = subprocess.run(["git", "-C", a.mirror, "ls-tree", "HEAD", FOLDER], check=True, capture_output=True, text=True).stdout
    commit = subprocess.run(["git", "-C", a.mirror, "rev-parse", "HEAD"], check=True, capture_output=True, text=True).stdout.strip()
    entries = []
    for line in listing.splitlines():
        meta, path = line.split("\t", 1)
        if path.lower().endswith((".jpg", ".jpeg")):
            entries.append((meta.split()[2], path))
    entries.sort(key=lambda e: (len(Path(e[1]).stem), Path(e[1]).stem))  # 1, 2, ..., 10, ...
    seen: dict[str, str] = {}
    kept, dropped = [], []
    for blob, path in entries:
        data = subprocess.run(["git", "-C", a.mirror, "cat-file", "blob", blob], check=True, capture_output=True).stdout
        try:
            img = decode(data, path)
        except ValueError as exc:
            dropped.append({"path": path, "reason": "undecodable", "detail": str(exc)})
            continue
        digest = hashlib.sha256(np.ascontiguousarray(img).tobytes() + repr(img.shape).encode()).hexdigest()
        if path in dev_paths:
            dropped.append({"path": path, "reason": "dev_film", "detail": "source path of a dev film"})
            seen.setdefault(digest, path)
            continue
        if digest in seen:
            dropped.append({"path": path, "reason": "pixel_duplicate", "detail": f"same decoded pixels as {seen[digest]}"})
            continue
        seen[digest] = path
        t = thumbs(img)
        best = max(((correlation(t, d), name) for name, _, d in dev), default=(0.0, None))
        if best[0] > a.near:
            dropped.append({"path": path, "reason": "near_dev_film", "detail": f"thumbnail correlation {best[0]:.3f} with dev film {best[1]}"})
            continue
        twin = next((k for k in kept if correlation(t, k["_thumbs"]) > a.near), None)
        if twin is not None:
            if img.shape[0] * img.shape[1] <= twin["width"] * twin["height"]:
                dropped.append({"path": path, "reason": "near_duplicate", "detail": f"near-duplicate of kept {twin['path']}"})
                continue
            # the larger copy replaces the smaller one
            (out / twin["file"]).unlink()
            kept.remove(twin)
            dropped.append({"path": twin["path"], "reason": "near_duplicate", "detail": f"smaller near-duplicate of {path}"})
        name = Path(path).name
        dest = out / name
        atomic_write(dest, data)
        kept.append({"file": name, "path": path, "width": int(img.shape[1]), "height": int(img.shape[0]),
                     "pixel_sha256": digest, "max_dev_correlation": round(best[0], 4), "nearest_dev_film": best[1], "_thumbs": t})
    for k in kept:
        del k["_thumbs"]
    counts = {"listed": len(entries), "kept": len(kept)}
    for d in dropped:
        counts[d["reason"]] = counts.get(d["reason"], 0) + 1
    manifest = {"source": {"repo": REPO, "commit": commit, "folder": FOLDER},
                "rule": f"exact duplicates by sha256 of decoded pixels; dev films (by source path) and any file whose "
                        f"high-passed whole-frame 64x64 or content-cropped 32x64 grey thumbnail correlates > {a.near} with a dev film "
                        f"is dropped; of near-duplicates within the pool (same test) the larger copy is kept",
                "counts": counts, "kept": kept, "dropped": dropped}
    atomic_write(out / "manifest.json", json.dumps(manifest, indent=1))
    print(json.dumps(counts))
    return 0


if __name__ == "__main__":
    sys.exit(main())
