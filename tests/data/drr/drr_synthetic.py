"""Small synthetic labelled CTs for the DRR tests: vertebrae (an elliptic body with a cortical
shell, pedicles, a lamina ring round the canal and a spinous process) stacked in a soft-tissue
cylinder lying on a CT table, written as NIfTI (RAS, 2 mm voxels)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np

SPACING = 2.0
SHAPE = (90, 80, 100)  # x (left-right), y (posterior-anterior), z (inferior-superior)
BODY_AP_HALF = 14.0  # mm
BODY_LAT_HALF = 18.0
BODY_HALF_HEIGHT = 11.0
LEVEL_STEP = 30.0  # mm between vertebra centres
CANAL_RADIUS = 8.0
BODY_Y = 10.0  # body centre, mm anterior of the volume centre


@dataclass
class Phantom:
    ct: Path
    labels: Path
    levels: list[str]
    values: list[int]
    body_truth: np.ndarray  # int16, the value of each vertebra on its body voxels only


def _grid():
    idx = np.indices(SHAPE, dtype=np.float32)
    centre = (np.array(SHAPE, np.float32) - 1) / 2
    x, y, z = ((idx[i] - centre[i]) * SPACING for i in range(3))
    return x, y, z


def make_phantom(folder: Path, levels=("T12", "L1", "L2", "L3"), values=(19, 20, 21, 22), *, sacrum_value: int | None = None,
                 affine_shift=(0.0, 0.0, 0.0)) -> Phantom:
    folder.mkdir(parents=True, exist_ok=True)
    x, y, z = _grid()
    hu = np.full(SHAPE, -1000.0, np.float32)
    trunk = (x / 80.0) ** 2 + (y / 62.0) ** 2 <= 1.0
    hu[trunk] = 30.0
    hu[trunk & ((x / 40.0) ** 2 + ((y - 35) / 15.0) ** 2 <= 1.0) & (np.abs(z) < 60)] = -700.0  # bowel gas
    hu[(y < -72) & (y > -78)] = 250.0  # the CT table, apart from the patient
    labels = np.zeros(SHAPE, np.int16)
    truth = np.zeros(SHAPE, np.int16)
    n = len(levels)
    for i, value in enumerate(values):
        zc = (n - 1) / 2 * LEVEL_STEP - i * LEVEL_STEP  # top to bottom
        dz = z - zc
        slab = np.abs(dz) <= BODY_HALF_HEIGHT
        r_body = np.sqrt((x / BODY_LAT_HALF) ** 2 + ((y - BODY_Y) / BODY_AP_HALF) ** 2)
        body = slab & (r_body <= 1.0)
        canal_y = BODY_Y - BODY_AP_HALF - CANAL_RADIUS - 1.0
        rc = np.sqrt(x**2 + (y - canal_y) ** 2)
        arch_slab = np.abs(dz - 2.0) <= 7.0
        ring = arch_slab & (rc >= CANAL_RADIUS) & (rc <= CANAL_RADIUS + 5.0) & (y <= BODY_Y - BODY_AP_HALF + 1.0)
        spinous = arch_slab & (np.abs(x) <= 3.0) & (y < canal_y - CANAL_RADIUS) & (y >= canal_y - CANAL_RADIUS - 22.0)
        arch = (ring | spinous) & ~body
        hu[body] = 220.0
        hu[body & (r_body > 0.8)] = 900.0  # cortical shell
        hu[body & (np.abs(dz) > BODY_HALF_HEIGHT - 2)] = 900.0  # endplates
        hu[arch] = 700.0
        labels[body | arch] = value
        truth[body] = value
    if sacrum_value is not None:
        zc = (n - 1) / 2 * LEVEL_STEP - n * LEVEL_STEP
        sac = (np.abs(z - zc + 8.0) <= 19.0) & (np.sqrt((x / BODY_LAT_HALF) ** 2 + ((y - BODY_Y) / BODY_AP_HALF) ** 2) <= 1.0)
        sac &= z > -SHAPE[2] * SPACING / 2 + 4
        hu[sac] = 400.0
        labels[sac] = sacrum_value
    affine = np.diag([SPACING, SPACING, SPACING, 1.0])
    affine[:3, 3] = -(np.array(SHAPE) - 1) / 2 * SPACING
    ct_path, labels_path = folder / "ct.nii.gz", folder / "labels.nii.gz"
    nib.save(nib.Nifti1Image(hu.astype(np.int16), affine), ct_path)
    shifted = affine.copy()
    shifted[:3, 3] += np.asarray(affine_shift)
    nib.save(nib.Nifti1Image(labels, shifted), labels_path)
    return Phantom(ct=ct_path, labels=labels_path, levels=list(levels), values=list(values), body_truth=truth)
