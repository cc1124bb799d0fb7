"""Decode and preprocessing against the two networks, before and after decoding at the model's scale.

Two films made here from phantoms rendered at the size asked for (classic renderer, what the
demo bundle was trained on): a 12-bit JPEG 2000 lossless DICOM of about 1168 x 2874 (pydicom's
encoder, i.e. pylibjpeg-openjpeg / OpenJPEG) and an 8-bit PNG of 2500 x 3000. For each film, in
one process, after a warm-up, ``--repeats`` rounds (medians reported):

- before: ``load_image(path)`` (full-resolution decode) and the full-scale preprocessing
  (window, CLAHE and resize at the film's size: ``preprocess.letterboxed_full_scale``);
- after: ``load_image(path, model_size=S)`` (JPEG 2000 resolution levels where the format has
  them) and ``preprocess.prepare`` at the model's scale; the deferred work (the full-resolution
  decode of a reduced film, the pixel hash of any film: the result and full-size outputs need
  them; the pipeline runs them beside the networks) is timed on its own;
- the networks: the shipped demo bundle's U-Net and Mask R-CNN sessions, one after the other;
- the target ratio (decode + preprocess) / (U-Net + Mask R-CNN), before and after: the median
  over rounds, each round timing every stage once (the machine's load moves all alike);
- ``Pipeline.predict`` end to end (``timings_ms.total``) before and after.

With ``--outlines N``, also the outlines of N more JPEG 2000 DICOMs of the same size (lumbar and
cervical phantoms, seeds 0..N-1) through ``Pipeline.predict`` (reduced decode, model-scale
preprocessing) against the full decode preprocessed at the film's scale: whether the same
vertebrae come out with the same names, and the minimum and median polygon IoU.

    python3 benchmarks/bench_decode.py --repeats 5 --cache data/bench_films --json data/bench_decode.json
    python3 benchmarks/bench_decode.py --repeats 1 --outlines 10 --cache data/bench_films --json data/bench_outlines.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "io"))  # dicom_factory: the test suite's DICOM writer

from vertxnet.files import atomic_write, write_json_atomic  # noqa: E402


@dataclass
class BenchConfig:
    repeats: int = 5
    cache: str | None = None  # folder keeping the rendered films between runs
    dicom_size: tuple[int, int] = (1168, 2874)  # width, height
    png_size: tuple[int, int] = (2500, 3000)
    threads: int | None = None
    json: str | None = None
    outlines: int = 0  # J2K films whose outlines are compared with the full-scale path


@dataclass
class FilmFigures:
    film: str
    size: str
    before_ms: dict[str, float] = field(default_factory=dict)
    after_ms: dict[str, float] = field(default_factory=dict)
    networks_ms: dict[str, float] = field(default_factory=dict)
    ratio_before: float = 0.0
    ratio_after: float = 0.0
    reduced_factor: int = 1
    predict_total_ms: dict[str, float] = field(default_factory=dict)


def _phantom(width: int, height: int, seed: int, view: str = "lumbar") -> np.ndarray:
    """A phantom rendered with ``height`` as its long side, cropped or padded to ``width``
    around the spine (uint16)."""
    from vertxnet.data.phantom import PhantomConfig, generate

    image, record = generate(PhantomConfig(view=view, size=height, seed=seed, style="classic"), 0)
    xs = np.concatenate([a.polygon[:, 0] for a in record.annotations]) if record.annotations else np.array([image.shape[1] / 2])
    centre = int(np.clip(np.median(xs), 0, image.shape[1]))
    if image.shape[1] >= width:
        x0 = int(np.clip(centre - width // 2, 0, image.shape[1] - width))
        return np.ascontiguousarray(image[:height, x0 : x0 + width])
    pad = width - image.shape[1]
    return np.pad(image[:height], ((0, 0), (pad // 2, pad - pad // 2)), mode="edge")


def make_films(cfg: BenchConfig, folder: Path) -> dict[str, Path]:
    from dicom_factory import compressed, make_dataset, write
    from pydicom.uid import JPEG2000Lossless

    folder.mkdir(parents=True, exist_ok=True)
    dicom = folder / "lumbar_j2k_12bit.dcm"
    png = folder / "lumbar_8bit.png"
    if not dicom.exists():
        w, h = cfg.dicom_size
        stored = (_phantom(w, h, seed=7) >> 4).astype(np.uint16)
        ds = make_dataset(stored, bits_stored=12, pixel_spacing=(0.14, 0.14))
        tmp = folder / "tmp.dcm"
        write(compressed(ds, JPEG2000Lossless), tmp)
        os.replace(tmp, dicom)
    if not png.exists():
        w, h = cfg.png_size
        image = (_phantom(w, h, seed=8) >> 8).astype(np.uint8)
        ok, buf = cv2.imencode(".png", image, [cv2.IMWRITE_PNG_COMPRESSION, 3])
        assert ok
        atomic_write(png, buf.tobytes())
    return {"dicom_j2k_12bit": dicom, "png_8bit": png}


def bench_film(name: str, path: Path, pipe, cfg: BenchConfig) -> FilmFigures:
    import vertxnet.pipeline as pipeline_module
    from vertxnet.io import load_image
    from vertxnet.preprocess import prepare, prepare_full_scale

    pre = pipe.bundle.preprocess
    size = pre.input_size

    # Every stage once per round, rounds repeated: a load that changes during the run (this
    # machine is shared) weighs on all stages of a round alike, and each round gives a ratio.
    eager = load_image(path)
    tensor, _ = prepare_full_scale(eager.pixels, pre)
    lazy = load_image(path, model_size=size)
    stages = {
        "decode_before": lambda: load_image(path),
        "preprocess_before": lambda: prepare_full_scale(eager.pixels, pre),
        "decode_after": lambda: load_image(path, model_size=size),
        "preprocess_after": lambda: prepare(lazy.model_input(), pre),
        "decode_and_full_after": lambda: load_image(path, model_size=size).sha256,
        "unet": lambda: pipe._unet.run(tensor),
        "maskrcnn": lambda: pipe._mrcnn.run(tensor),
    }
    for fn in stages.values():
        fn()  # warm-up
    rounds: list[dict[str, float]] = []
    for _ in range(cfg.repeats):
        times = {}
        for key, fn in stages.items():
            t = time.perf_counter()
            fn()
            times[key] = (time.perf_counter() - t) * 1e3
        rounds.append(times)
    med = {key: statistics.median(r[key] for r in rounds) for key in stages}
    ratio = {
        when: statistics.median((r[f"decode_{when}"] + r[f"preprocess_{when}"]) / (r["unet"] + r["maskrcnn"]) for r in rounds)
        for when in ("before", "after")
    }
    decode_before, pre_before = med["decode_before"], med["preprocess_before"]
    decode_after, pre_after = med["decode_after"], med["preprocess_after"]
    # What waits until after the networks' input: the full-resolution decode of a reduced film,
    # the pixel hash of every film.
    full_after = max(0.0, med["decode_and_full_after"] - decode_after)
    unet_ms, mrcnn_ms = med["unet"], med["maskrcnn"]

    def predict_before():
        saved = pipeline_module.prepare
        pipeline_module.prepare = prepare_full_scale
        try:
            t = time.perf_counter()
            loaded = load_image(path)
            return pipe._predict_loaded(loaded, (time.perf_counter() - t) * 1e3).timings_ms["total"]
        finally:
            pipeline_module.prepare = saved

    total_before = statistics.median(predict_before() for _ in range(cfg.repeats))
    total_after = statistics.median(pipe.predict(path).timings_ms["total"] for _ in range(cfg.repeats))
    return FilmFigures(
        film=name,
        size=f"{eager.width}x{eager.height}",
        before_ms={"decode": decode_before, "preprocess": pre_before},
        after_ms={"decode": decode_after, "preprocess": pre_after, "full_resolution_decode_deferred": full_after},
        networks_ms={"unet": unet_ms, "maskrcnn": mrcnn_ms},
        ratio_before=ratio["before"],
        ratio_after=ratio["after"],
        reduced_factor=lazy.reduced.factor if lazy.reduced is not None else 1,
        predict_total_ms={"before": total_before, "after": total_after},
    )


def compare_outlines(cfg: BenchConfig, folder: Path, pipe) -> list[dict]:
    """Per film: the reduction factor, whether both paths give the same named vertebrae, and
    the min / median IoU of corresponding outlines (top to bottom)."""
    from dicom_factory import compressed, make_dataset, write
    from pydicom.uid import JPEG2000Lossless

    import vertxnet.pipeline as pipeline_module
    from vertxnet.evaluation.metrics import polygon_iou
    from vertxnet.io import load_image
    from vertxnet.preprocess import prepare_full_scale

    w, h = cfg.dicom_size
    rows = []
    for seed in range(cfg.outlines):
        view = ("lumbar", "cervical")[seed % 2]
        path = folder / f"outlines_{view}{seed}_{w}x{h}.dcm"
        if not path.exists():
            stored = (_phantom(w, h, seed=1000 + seed, view=view) >> 4).astype(np.uint16)
            ds = make_dataset(stored, bits_stored=12, pixel_spacing=(0.14, 0.14))
            write(compressed(ds, JPEG2000Lossless), folder / "tmp.dcm")
            os.replace(folder / "tmp.dcm", path)
        saved = pipeline_module.prepare
        pipeline_module.prepare = prepare_full_scale
        try:
            slow = pipe.predict(load_image(path))
        finally:
            pipeline_module.prepare = saved
        fast = pipe.predict(path)
        lazy = load_image(path, model_size=pipe.bundle.preprocess.input_size)
        same = [v.label for v in fast.vertebrae] == [v.label for v in slow.vertebrae]
        ious = [polygon_iou(a.polygon, b.polygon, slow.input.height, slow.input.width) for a, b in zip(fast.vertebrae, slow.vertebrae)]
        rows.append({
            "film": path.name, "reduced_factor": lazy.reduced.factor if lazy.reduced is not None else 1,
            "vertebrae": [len(slow.vertebrae), len(fast.vertebrae)], "same_vertebrae": same,
            "min_iou": min(ious) if same and ious else None, "median_iou": float(np.median(ious)) if same and ious else None,
        })  # fmt: skip
    return rows


def run(cfg: BenchConfig) -> dict:
    import tempfile

    from vertxnet.pipeline import Pipeline

    with tempfile.TemporaryDirectory() as tmp:
        films = make_films(cfg, Path(cfg.cache) if cfg.cache else Path(tmp))
        with Pipeline(threads=cfg.threads) as pipe:
            figures = [bench_film(name, path, pipe, cfg) for name, path in films.items()]
            outlines = compare_outlines(cfg, films["dicom_j2k_12bit"].parent, pipe) if cfg.outlines else []
    return {
        "config": asdict(cfg),
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "load_average": os.getloadavg()},
        "films": [asdict(f) for f in figures],
        "outlines": outlines,
    }


def _print(report: dict) -> None:
    for f in report["films"]:
        b, a, n = f["before_ms"], f["after_ms"], f["networks_ms"]
        print(f"{f['film']} {f['size']} (reduced x{f['reduced_factor']})")
        print(f"  before: decode {b['decode']:.1f} ms, preprocess {b['preprocess']:.1f} ms")
        print(f"  after:  decode {a['decode']:.1f} ms, preprocess {a['preprocess']:.1f} ms "
              f"(deferred beside the networks - full-resolution decode, hash: {a['full_resolution_decode_deferred']:.1f} ms)")  # fmt: skip
        print(f"  networks: U-Net {n['unet']:.1f} ms, Mask R-CNN {n['maskrcnn']:.1f} ms")
        print(f"  (decode + preprocess) / networks: before {f['ratio_before']:.2f}, after {f['ratio_after']:.2f} (target <= 0.5)")
        t = f["predict_total_ms"]
        print(f"  Pipeline.predict total: before {t['before']:.1f} ms, after {t['after']:.1f} ms")
    rows = report.get("outlines") or []
    if rows:
        print("outlines, model-scale path against the full-scale path:")
    for r in rows:
        detail = f"min IoU {r['min_iou']:.3f}, median {r['median_iou']:.3f}" if r["same_vertebrae"] else "different vertebrae"
        print(f"  {r['film']} (reduced x{r['reduced_factor']}): {r['vertebrae'][0]} / {r['vertebrae'][1]} vertebrae, {detail}")
    same = [r for r in rows if r["same_vertebrae"]]
    if rows:
        mins = [r["min_iou"] for r in same if r["min_iou"] is not None]
        meds = [r["median_iou"] for r in same if r["median_iou"] is not None]
        print(f"  same vertebrae on {len(same)}/{len(rows)} films; over them: median of the film minima "
              f"{np.median(mins) if mins else float('nan'):.3f}, median of the film medians {np.median(meds) if meds else float('nan'):.3f}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--cache", help="folder keeping the rendered films between runs")
    parser.add_argument("--threads", type=int, help="intra-op threads per model session")
    parser.add_argument("--json", help="write the figures here")
    parser.add_argument("--outlines", type=int, default=0, help="compare the outlines of this many more J2K films with the full-scale path")
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")
    if args.outlines < 0:
        parser.error("--outlines must be 0 or more")
    report = run(BenchConfig(repeats=args.repeats, cache=args.cache, threads=args.threads, json=args.json, outlines=args.outlines))
    _print(report)
    if args.json:
        write_json_atomic(report, args.json, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
