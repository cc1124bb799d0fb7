"""CT volumes for DRRs: loading (NIfTI), grid checks, table removal, HU → material densities.

Volumes are brought to the closest canonical (RAS+) orientation with nibabel, so that voxel axis
0 runs to the patient's right, axis 1 anteriorly and axis 2 superiorly; the affine maps voxel
indices to millimetres.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ...errors import InputError
from .numbering import VERTEBRA_NAMES, check_values, resolve_numbering, soft_tissue_values, vertebra_name_of_structure

#: HU given to labelled soft tissue (organs, vessels) that is denser: unenhanced blood and
#: organs, since a radiograph's patient has no iodinated contrast agent in them.
UNENHANCED_HU = 45.0
#: HU below which a voxel is air for the patient mask (fat is about -100, lung -850 but enclosed).
BODY_THRESHOLD_HU = -400.0
#: HU of water-like soft tissue where the bone fraction starts (two-material decomposition).
SOFT_HU = 50.0
#: HU of compact cortical bone at the CT's effective energy (~70 keV): mu_bone/mu_water - 1 with
#: XCOM values (cortical bone 1.92 g/cm3, 0.262 cm2/g; water 0.193 cm2/g at 70 keV) gives ~1600.
CORTICAL_HU = 1600.0
SOFT_DENSITY = 1.05  # g/cm3 at SOFT_HU
CORTICAL_DENSITY = 1.92  # g/cm3 (ICRU-44 cortical bone)


@dataclass
class CTVolume:
    """A CT in HU and its vertebra label map on the same canonical grid."""

    hu: np.ndarray  # float32 (X, Y, Z) Hounsfield units
    labels: np.ndarray  # int16 (X, Y, Z) label values
    affine: np.ndarray  # (4, 4) voxel index → mm (RAS)
    vertebrae: dict[int, str]  # label value → vertebra name present in the map
    numbering: str
    enhanced_voxels: int  # labelled soft tissue above UNENHANCED_HU, set to it (contrast removed)
    ct_path: Path
    labels_path: Path

    @property
    def spacing(self) -> np.ndarray:
        return np.sqrt((self.affine[:3, :3] ** 2).sum(axis=0))


def _import_nibabel():
    try:
        import nibabel
    except ImportError:  # pragma: no cover - the drr extra installs it
        raise ImportError("vertx-drr needs nibabel: pip install 'vertxnet[drr]'") from None
    return nibabel


def _load_nifti(path: Path, what: str):
    nib = _import_nibabel()
    if not path.is_file():
        raise InputError(path, f"{what} file not found")
    try:
        image = nib.load(str(path))
    except Exception as exc:  # nibabel raises many types for corrupt or foreign files
        raise InputError(path, f"not a readable NIfTI {what} ({exc.__class__.__name__}: {exc})") from None
    if len(image.shape) != 3 and not (len(image.shape) == 4 and image.shape[3] == 1):
        raise InputError(path, f"{what} must be a 3D volume, has shape {tuple(image.shape)}")
    affine = np.asarray(image.affine, dtype=np.float64)
    if not np.all(np.isfinite(affine)) or abs(np.linalg.det(affine[:3, :3])) < 1e-9:
        raise InputError(path, f"{what} has a singular or non-finite affine")
    return image


def _same_grid(a, b) -> bool:
    if tuple(a.shape[:3]) != tuple(b.shape[:3]):
        return False
    aa, ba = np.asarray(a.affine), np.asarray(b.affine)
    spacing = np.sqrt((aa[:3, :3] ** 2).sum(axis=0))
    # 1 % of a voxel in position, 1e-4 in direction/spacing: stored float32 affines differ by less
    return bool(np.allclose(aa[:3, :3], ba[:3, :3], rtol=1e-4, atol=1e-4 * spacing.max())
                and np.allclose(aa[:3, 3], ba[:3, 3], atol=0.01 * spacing.min()))


def _grid_error(ct_image, other, path: Path) -> InputError:
    if tuple(ct_image.shape[:3]) != tuple(other.shape[:3]):
        reason = f"label map shape {tuple(other.shape[:3])} differs from the CT's {tuple(ct_image.shape[:3])}"
    else:
        reason = "label map affine (voxel → mm) differs from the CT's: not on the same grid"
    return InputError(path, f"{reason}; resample it onto the CT grid first")


def _canonical(image):
    return _import_nibabel().as_closest_canonical(image)


def _integer_labels(data: np.ndarray, path: Path) -> np.ndarray:
    if data.dtype.kind == "f":
        if not np.all(np.isfinite(data)):
            raise InputError(path, "label map has non-finite values")
        rounded = np.rint(data)
        if np.any(np.abs(rounded - data) > 1e-3):
            raise InputError(path, "label map holds non-integer values (is it a CT or a probability map?)")
        data = rounded
    if data.size and (data.min() < 0 or data.max() > 32767):
        raise InputError(path, f"label values must lie in 0..32767, found {data.min()}..{data.max()}")
    return data.astype(np.int16)


def _structure_folder(folder: Path, ct_image) -> tuple[np.ndarray, dict[int, str]]:
    """A TotalSegmentator-style folder of binary masks (``vertebrae_L1.nii.gz``, ``sacrum.nii.gz``)."""
    files = {}
    for f in sorted(folder.iterdir()):
        stem = f.name[:-7] if f.name.endswith(".nii.gz") else f.stem if f.suffix == ".nii" else None
        name = None if stem is None else vertebra_name_of_structure(stem)
        if name is not None:
            files[name] = f
    if not files:
        raise InputError(folder, "folder holds no vertebra masks (vertebrae_C1.nii.gz ... sacrum.nii.gz)")
    labels = None
    values = {}
    for value, name in enumerate(VERTEBRA_NAMES, start=1):
        if name not in files:
            continue
        image = _load_nifti(files[name], "mask")
        if not _same_grid(ct_image, image):
            raise _grid_error(ct_image, image, files[name])
        canon = _canonical(image)
        mask = np.asanyarray(canon.dataobj).reshape(canon.shape[:3]) > 0.5
        if labels is None:
            labels = np.zeros(mask.shape, np.int16)
        labels[mask] = value
        values[value] = name
    return labels, values


def load_ct(ct_path: str | Path, labels_path: str | Path, numbering: str = "auto") -> CTVolume:
    """CT (NIfTI, HU) and its vertebra labels: a label map (``numbering`` as in
    :func:`~vertxnet.data.drr.numbering.resolve_numbering`) or a folder of per-structure masks.

    InputError naming the file when a file is missing or unreadable, when the labels are not on the
    CT's grid (shape or affine), or when the numbering is unknown or does not fit the values.
    """
    ct_path, labels_path = Path(ct_path), Path(labels_path)
    ct_image = _load_nifti(ct_path, "CT")
    if labels_path.is_dir():
        canon_ct = _canonical(ct_image)
        labels, present = _structure_folder(labels_path, ct_image)
        numbering_name = "structure masks"
    else:
        label_image = _load_nifti(labels_path, "label map")
        if not _same_grid(ct_image, label_image):
            raise _grid_error(ct_image, label_image, labels_path)
        numbering_name, table = resolve_numbering(numbering, labels_path)
        canon_ct = _canonical(ct_image)
        canon_labels = _canonical(label_image)
        labels = _integer_labels(np.asanyarray(canon_labels.dataobj).reshape(canon_labels.shape[:3]), labels_path)
        present = check_values(np.nonzero(np.bincount(labels.ravel()))[0], numbering_name, table, labels_path)
    try:
        hu = np.asarray(canon_ct.dataobj, dtype=np.float32).reshape(canon_ct.shape[:3])
    except (OSError, ValueError, EOFError) as exc:
        raise InputError(ct_path, f"cannot read the CT voxels: {exc}") from None
    if not np.all(np.isfinite(hu)):
        raise InputError(ct_path, "CT has non-finite voxels")
    if hu.size and float(hu.min()) > -100.0:
        raise InputError(ct_path, "CT does not look like Hounsfield units (no voxel below -100 HU: stored values without their rescale?)")
    soft_values = soft_tissue_values(numbering_name)
    enhanced = 0
    if soft_values:
        lookup_soft = np.zeros(int(labels.max()) + 1, bool)
        lookup_soft[[v for v in soft_values if v <= labels.max()]] = True
        soft = lookup_soft[labels] & (hu > UNENHANCED_HU)
        enhanced = int(soft.sum())
        if not hu.flags.writeable:
            hu = hu.copy()
        hu[soft] = UNENHANCED_HU
    # keep only the labels of vertebrae; other structures (organs, ribs) play no part in the truth
    lookup = np.zeros(int(labels.max()) + 1, np.int16)
    for value in present:
        lookup[value] = value
    labels = lookup[labels]
    return CTVolume(hu=hu, labels=labels, affine=np.asarray(canon_ct.affine, np.float64), vertebrae=present,
                    numbering=numbering_name, enhanced_voxels=enhanced, ct_path=ct_path, labels_path=labels_path)


def patient_mask(hu: np.ndarray, labels: np.ndarray | None = None) -> np.ndarray:
    """The patient without the CT table, cushions or air: voxels above -400 HU, opened slice by
    slice to cut thin contacts, the largest 3D connected component, holes (lungs, bowel gas)
    filled slice by slice."""
    import cv2
    from scipy import ndimage

    solid = np.ascontiguousarray((hu > BODY_THRESHOLD_HU).astype(np.uint8).transpose(2, 0, 1))  # [z, x, y]
    kernel = np.ones((3, 3), np.uint8)
    for k in range(solid.shape[0]):
        if solid[k].any():
            solid[k] = cv2.morphologyEx(solid[k], cv2.MORPH_OPEN, kernel)
    lab, n = ndimage.label(solid)
    if n == 0:
        return np.zeros(hu.shape, bool)
    sizes = np.bincount(lab.ravel())
    sizes[0] = 0
    body = (lab == int(np.argmax(sizes))).astype(np.uint8)
    del lab
    # fill per axial slice: a hole is air the body encloses (lungs, trachea, bowel)
    for k in range(body.shape[0]):
        if body[k].any():
            outside = np.pad(1 - body[k], 1, constant_values=1)
            cv2.floodFill(outside, None, (0, 0), 2)
            body[k] = (outside[1:-1, 1:-1] != 2).astype(np.uint8)
    body = body.transpose(1, 2, 0).astype(bool)
    if labels is not None:
        body |= labels > 0
    return body


#: Contrast-agent range: enhanced blood and organs (arterial/portal phase) overlap trabecular bone.
ENHANCED_HU = (130.0, 450.0)
#: Compact bone (and calcification, dense contrast) from here up.
COMPACT_HU = 450.0


def _dilate(mask: np.ndarray, spacing: np.ndarray, mm: float) -> np.ndarray:
    """Box dilation by about ``mm`` of a (z, x, y) mask: per slice with OpenCV, then across slices."""
    import cv2

    rz = max(0, int(round(mm / float(spacing[0]))))
    rx = max(1, int(round(mm / float(spacing[1]))))
    ry = max(1, int(round(mm / float(spacing[2]))))
    kernel = np.ones((2 * rx + 1, 2 * ry + 1), np.uint8)
    grown = np.zeros(mask.shape, bool)
    for k in np.nonzero(mask.any(axis=(1, 2)))[0]:
        grown[k] = cv2.dilate(mask[k].astype(np.uint8), kernel).astype(bool)
    if rz:
        spread = grown.copy()
        for d in range(1, rz + 1):
            spread[d:] |= grown[:-d]
            spread[:-d] |= grown[d:]
        grown = spread
    return grown


def suppress_contrast(hu: np.ndarray, labels: np.ndarray, spacing: np.ndarray) -> int:
    """Set enhanced soft tissue (130-450 HU outside any bone) to unenhanced blood, in place;
    returns the number of voxels changed. Bone is what the vertebra labels cover plus, per axial
    slice, the inside of every closed ring of compact bone (cortex closed over 3 mm, holes
    filled): trabecular bone of ribs, sternum, pelvis and femora keeps its HU, a contrast-filled
    aorta or kidney (no cortex) does not. Compact islands (> 450 HU) shorter than 50 mm, under
    40 ml and apart from the labelled spine (contrast excreted into the kidneys, a bolus in a
    vein, small calcifications) go too; ribs, sternum, pelvis and femora are longer or larger."""
    import cv2
    from scipy import ndimage

    # work slice by slice on contiguous axial planes: (z, x, y)
    hz = np.ascontiguousarray(hu.transpose(2, 0, 1))
    lz = np.ascontiguousarray(labels.transpose(2, 0, 1))
    sz = np.array([spacing[2], spacing[0], spacing[1]], float)
    lo, hi = ENHANCED_HU
    radius = max(1, int(round(3.0 / float(min(spacing[0], spacing[1])))))
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
    changed = 0
    for k in range(hz.shape[0]):
        plane = hz[k]
        middle = (plane > lo) & (plane < hi) & (lz[k] == 0)
        if not middle.any():
            continue
        cortex = (plane >= COMPACT_HU).astype(np.uint8)
        closed = cv2.morphologyEx(cortex, cv2.MORPH_CLOSE, kernel)
        outside = np.pad(1 - closed, 1, constant_values=1)
        cv2.floodFill(outside, None, (0, 0), 2)
        soft = middle & (outside[1:-1, 1:-1] == 2)
        n = int(soft.sum())
        if n:
            plane[soft] = UNENHANCED_HU
            changed += n
    # dense contrast (excreted into the kidneys, a bolus in a vein) and small calcifications: compact
    # islands that are no bone: short, small and apart from the labelled spine
    dense = (hz >= COMPACT_HU) & (lz == 0)
    near_spine = _dilate(lz > 0, sz, 4.0)
    lab, n = ndimage.label(dense, structure=np.ones((3, 3, 3), bool))
    if n:
        sizes = np.bincount(lab.ravel())
        touching = np.zeros(n + 1, bool)
        touching[np.unique(lab[near_spine & dense])] = True
        voxel_ml = float(np.prod(spacing)) / 1000.0
        remove = np.zeros(n + 1, bool)
        for index, box in enumerate(ndimage.find_objects(lab), start=1):
            if box is None or touching[index]:
                continue
            extent = max((b.stop - b.start) * float(sp) for b, sp in zip(box, sz))
            remove[index] = extent < 50.0 and sizes[index] * voxel_ml < 40.0
        if remove.any():
            islands = _dilate(remove[lab], sz, float(sz.max()))
            islands &= (hz > lo) & (lz == 0)
            hz[islands] = UNENHANCED_HU
            changed += int(islands.sum())
    hu[...] = hz.transpose(1, 2, 0)
    return changed


def material_densities(hu: np.ndarray, body: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Two-material decomposition (soft tissue, cortical bone) in g/cm3 per voxel.

    Below 50 HU a voxel is soft tissue of density 1 + HU/1000 (lung, fat, water, muscle: air at
    -1000 HU weighs nothing); from 50 HU to 1600 HU it is a mix whose bone volume fraction rises
    linearly (trabecular bone at ~200 HU holds ~10 % compact bone); above, compact bone made
    denser in proportion. Outside ``body`` (when given) everything is air.
    """
    h = np.asarray(hu, dtype=np.float32)
    f = (h - np.float32(SOFT_HU)) * np.float32(1.0 / (CORTICAL_HU - SOFT_HU))
    np.clip(f, 0.0, 1.0, out=f)
    low = h < SOFT_HU
    soft = (1.0 - f) * np.float32(SOFT_DENSITY)
    soft_low = np.maximum(h[low] * np.float32(1e-3) + np.float32(1.0), 0.0) * np.float32(SOFT_DENSITY / (1.0 + SOFT_HU / 1000.0))
    soft[low] = soft_low
    dense = np.maximum(np.float32(1.0), (h + np.float32(1000.0)) * np.float32(1.0 / (1000.0 + CORTICAL_HU)))
    bone = f * dense * np.float32(CORTICAL_DENSITY)
    if body is not None:
        soft[~body] = 0.0
        bone[~body] = 0.0
    return soft, bone
