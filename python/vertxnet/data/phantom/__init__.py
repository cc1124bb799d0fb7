"""Synthetic lateral spine radiographs with exact vertebral-body truth.

Each film is a Beer-Lambert projection of layered anatomy with scatter, quantum noise, detector
blur and the processing digital radiography applies (exposure recognition, large-area
equalisation, local-contrast and edge enhancement, a film-like tone curve). Vertebral bodies are
hollow cortical shells around faint trabecular bone; behind them the posterior elements form a busy
column of bone and dark foramina; ribs, lungs and diaphragm, bowel gas and stool, pelvis and sacrum,
or skull base, mandible, C1 and shoulders overlap them as on real films. Left and right sides are
offset by the beam's divergence and the patient's roll (the ``obliquity`` knob), which doubles
endplates, ribs and the pelvis. The field frames one region: ``cervical``, ``cervicothoracic``,
``thoracic``, ``thoracolumbar`` or ``lumbar`` (``mixed`` draws one per image). See
:class:`PhantomConfig` for the knobs and :func:`generate` / :func:`generate_dataset`.

Truth: one polygon per vertebral body (posterior elements excluded) in continuous pixel
coordinates, top to bottom, clipped to the field; a body less than a third inside the field is
not annotated. ``Record.view`` is the region the annotated levels span
(:func:`vertxnet.levels.view_of_levels`). ``Record.extra["phantom"]`` (kept in the COCO image entry
as ``extra``) records what was drawn: ``fractures`` (level, type, nominal/anterior/middle/posterior
heights in mm and px), ``implants`` (pedicle screws and rods, cages, cement, anterior plates, disc
prostheses, with their levels), ``osteophytes``, ``narrowed_discs``, ``touching_discs``,
``rotation_deg``, ``axial_rotation_deg``, ``facing``, ``visible_fraction`` per annotated level and
``unannotated_partial`` levels.

``PhantomConfig(style="classic")`` renders with the first generator (format version 1: isolated,
uniformly bright bodies on a plain background), unchanged, so that data made with it can be
reproduced.
"""

from __future__ import annotations

from .config import DIFFICULTIES, KNOB_NAMES, MIXED_WEIGHTS, PRESETS, STYLES, VIEWS, Knobs, PhantomConfig
from .generator import MIN_VISIBLE_FRACTION, generate, generate_dataset, image_name
from .preview import contact_sheet

__all__ = [
    "DIFFICULTIES",
    "KNOB_NAMES",
    "MIN_VISIBLE_FRACTION",
    "MIXED_WEIGHTS",
    "PRESETS",
    "STYLES",
    "VIEWS",
    "Knobs",
    "PhantomConfig",
    "contact_sheet",
    "generate",
    "generate_dataset",
    "image_name",
]
