"""Body separation of vertx-drr checked against reference body maps.

    python benchmarks/drr_bodies.py --ct-dir data/ct [--json out.json]

References (fetched by export/get_example_cts.py): TPTBox sample ``reference_subregions``
(labels 49 + 50 = vertebral body, the rest posterior elements) and TotalSegmentator
``reference_vertebrae_body`` (label 1 = bodies, 2 = discs). Per vertebra: Dice in 3D between our
body and the reference body within that vertebra, and IoU of their lateral silhouettes (projected
along the left-right axis), which is what a lateral film's truth depends on.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import nibabel as nib
import numpy as np

from vertxnet.files import atomic_write
from vertxnet.data.drr import load_ct, vertebrae_of

REFERENCES = {
    "tptbox-sample": ("verse", "reference_subregions.nii.gz", (49, 50)),
    "totalseg-abdomen": ("totalsegmentator", "reference_vertebrae_body.nii.gz", (1,)),
}


def check(ct_dir: Path) -> dict:
    out = {}
    for case, (numbering, reference, values) in REFERENCES.items():
        folder = ct_dir / case
        if not (folder / reference).is_file():
            out[case] = "missing (run export/get_example_cts.py)"
            continue
        vol = load_ct(folder / "ct.nii.gz", folder / "labels.nii.gz", numbering)
        ref = np.isin(np.asarray(nib.as_closest_canonical(nib.load(folder / reference)).dataobj), values)
        rows = {}
        for v in vertebrae_of(vol.labels, vol.affine, vol.vertebrae):
            whole = vol.labels == v.value
            truth = ref & whole
            if truth.sum() < 50:  # the reference leaves this (cut) vertebra out
                continue
            ours = np.zeros(whole.shape, bool)
            i0, i1, j0, j1, k0, k1 = v.body_box
            ours[i0:i1, j0:j1, k0:k1] = v.body
            dice = 2 * (ours & truth).sum() / (ours.sum() + truth.sum())
            a, b = ours.any(axis=0), truth.any(axis=0)
            rows[v.name] = {"dice_3d": round(float(dice), 3), "lateral_iou": round(float((a & b).sum() / (a | b).sum()), 3),
                            "cut": v.cut_method}
        out[case] = {"levels": rows,
                     "mean_dice_3d": round(float(np.mean([r["dice_3d"] for r in rows.values()])), 3),
                     "mean_lateral_iou": round(float(np.mean([r["lateral_iou"] for r in rows.values()])), 3)}
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--ct-dir", type=Path, default=Path("data/ct"))
    p.add_argument("--json", type=Path)
    args = p.parse_args(argv)
    result = check(args.ct_dir)
    text = json.dumps(result, indent=2)
    print(text)
    if args.json:
        atomic_write(args.json, text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
