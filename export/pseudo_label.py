"""Self-training: pseudo-labels for unlabelled real films from a bundle's own ensemble.

For each film the pipeline runs twice — on the film and on its mirror image — and a vertebra
becomes a pseudo-label only when both networks back it — an *agreement* mask, or a *split*
mask (a Mask R-CNN instance inside a U-Net blob of several bodies, SPEC §3) — with a Mask R-CNN
score of at least ``--min-score``, and is found again, IoU >= ``--min-flip-iou``, on the mirrored
film. A film is kept only when its confident masks are most of what the
ensemble found (``--min-share``) and at least ``--min-masks`` of them: a film with many doubtful
bodies would otherwise teach the networks that those bodies are background. Pseudo-labels carry
no level name (COCO category 27, trained as the plain "vertebra" class), except a C2 or S1
reference that is confident on both passes and sits at the end of the chain where it belongs.

Never point this at the dev films that measure the product; ``--exclude`` takes their COCO file
and refuses any film of the same name.

    python export/pseudo_label.py --films data/real/unlabelled --model runs/r0/bundle \\
        --out data/pseudo/r1 --exclude ../shared/real-films/dev.coco.json
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402

from vertxnet.data.datasets import write_coco  # noqa: E402
from vertxnet.files import write_json_atomic  # noqa: E402
from vertxnet.raster import polygon_mask, polygon_window  # noqa: E402
from vertxnet.records import Annotation, Record  # noqa: E402
from vertxnet.errors import VertxError  # noqa: E402

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".dcm")


@dataclass(frozen=True)
class PseudoLabelConfig:
    films: Path
    model: Path
    out: Path
    exclude: Sequence[Path] = ()
    min_score: float = 0.7
    min_flip_iou: float = 0.6
    min_masks: int = 4
    min_share: float = 0.75
    reference_score: float = 0.85
    backend: str = "auto"
    threads: int | None = None


def mask_iou(a: np.ndarray, b: np.ndarray, height: int, width: int) -> float:
    """IoU of two polygons rasterised by pixel centres in a window around both."""
    x0a, y0a, x1a, y1a = polygon_window(a, height, width)
    x0b, y0b, x1b, y1b = polygon_window(b, height, width)
    x0, y0, x1, y1 = min(x0a, x0b), min(y0a, y0b), max(x1a, x1b), max(y1a, y1b)
    if x1 <= x0 or y1 <= y0:
        return 0.0
    ma = polygon_mask(a, x0, y0, x1 - x0, y1 - y0)
    mb = polygon_mask(b, x0, y0, x1 - x0, y1 - y0)
    union = int((ma | mb).sum())
    return float((ma & mb).sum()) / union if union else 0.0


def pseudo_labels(pipe, path: Path, cfg: PseudoLabelConfig) -> tuple[Record | None, dict]:
    """The film's pseudo-labelled Record (None when it is not confident enough) and its stats."""
    from vertxnet.io import load_image

    loaded = load_image(path)
    width, height = loaded.width, loaded.height
    result = pipe.predict(loaded)
    mirrored = pipe.predict(np.ascontiguousarray(loaded.pixels[:, ::-1]))
    back = [np.column_stack([width - v.polygon[:, 0], v.polygon[:, 1]]) for v in mirrored.vertebrae]
    stats = {"film": path.name, "found": len(result.vertebrae)}
    kept: list[Annotation] = []
    for v in result.vertebrae:
        if v.source not in ("agreement", "split") or v.score < cfg.min_score:
            continue
        best = max((mask_iou(v.polygon, p, height, width) for p in back), default=0.0)
        if best < cfg.min_flip_iou:
            continue
        level = None
        if v.label in ("C2", "S1") and v.score >= cfg.reference_score:
            twin = [m for m, p in zip(mirrored.vertebrae, back) if m.label == v.label and mask_iou(v.polygon, p, height, width) >= cfg.min_flip_iou]
            level = v.label if twin else None
        kept.append(Annotation(polygon=v.polygon.copy(), level=level, score=v.score))
    stats["confident"] = len(kept)
    share = len(kept) / max(1, len(result.vertebrae))
    stats["kept"] = bool(len(kept) >= cfg.min_masks and share >= cfg.min_share)
    if not stats["kept"]:
        return None, stats
    return Record(image_path=path.resolve(), width=width, height=height, annotations=kept), stats


def run(cfg: PseudoLabelConfig) -> Path:
    from tqdm import tqdm

    from vertxnet import Pipeline
    from vertxnet.data.datasets import read_coco

    refused = set()
    for coco in cfg.exclude:
        refused |= {Path(r.image_path).name for r in read_coco(coco, image_root=Path(coco).parent) if r.image_path is not None}
    films = sorted(p for p in Path(cfg.films).rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    clash = [p.name for p in films if p.name in refused]
    if clash:
        raise ValueError(f"{cfg.films}: holds films of the excluded set ({', '.join(clash[:5])}); never pseudo-label the films that measure the product")
    if not films:
        raise ValueError(f"{cfg.films}: no film (PNG, JPEG, TIFF or DICOM) found")
    records, all_stats = [], []
    with Pipeline(cfg.model, backend=cfg.backend, threads=cfg.threads) as pipe:
        for path in tqdm(films, desc="pseudo-label", file=sys.stderr):
            try:
                record, stats = pseudo_labels(pipe, path, cfg)
            except (VertxError, ValueError) as exc:
                record, stats = None, {"film": path.name, "error": str(exc), "kept": False}
            all_stats.append(stats)
            if record is not None:
                records.append(record)
    cfg.out.mkdir(parents=True, exist_ok=True)
    if not records:
        raise ValueError(f"no film of {cfg.films} gave confident pseudo-labels")
    out = write_coco(records, cfg.out / "annotations.json")
    summary = {
        "model": str(cfg.model),
        "films": len(films),
        "kept_films": len(records),
        "pseudo_labels": sum(len(r.annotations) for r in records),
        "references": sum(1 for r in records for a in r.annotations if a.level),
        "config": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(cfg).items() if k != "exclude"},
        "per_film": all_stats,
    }
    write_json_atomic(summary, cfg.out / "pseudo_labels.json", indent=1)
    print(json.dumps({k: summary[k] for k in ("films", "kept_films", "pseudo_labels", "references")}), file=sys.stderr)
    return out


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="pseudo_label.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--films", type=Path, required=True, help="folder of UNLABELLED real films")
    p.add_argument("--model", type=Path, required=True, help="bundle folder whose ensemble makes the pseudo-labels")
    p.add_argument("--out", type=Path, required=True, help="folder for annotations.json and pseudo_labels.json")
    p.add_argument("--exclude", type=Path, action="append", default=[], help="COCO file of films that must never be pseudo-labelled (the dev films)")
    p.add_argument("--min-score", type=float, default=0.7)
    p.add_argument("--min-flip-iou", type=float, default=0.6)
    p.add_argument("--min-masks", type=int, default=4)
    p.add_argument("--min-share", type=float, default=0.75)
    p.add_argument("--backend", default="auto")
    p.add_argument("--threads", type=int)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = C.parse_args(build_parser(), argv)
    if isinstance(args, int):
        return args
    cfg = PseudoLabelConfig(
        films=args.films, model=args.model, out=args.out, exclude=tuple(args.exclude), min_score=args.min_score,
        min_flip_iou=args.min_flip_iou, min_masks=args.min_masks, min_share=args.min_share,
        backend=args.backend, threads=args.threads,
    )  # fmt: skip
    return C.run_cli(lambda: run(cfg), (VertxError, ValueError))


if __name__ == "__main__":
    sys.exit(main())
