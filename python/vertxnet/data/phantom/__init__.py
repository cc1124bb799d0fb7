"""Synthetic lateral cervical and lumbar spine radiographs with exact vertebral-body truth.

Each film is a Beer-Lambert projection of layered anatomy (soft tissue, cortical and trabecular
bone, air, metal) with scatter, quantum noise, detector blur and a film-like display curve. See
:class:`PhantomConfig` for the knobs and :func:`generate` / :func:`generate_dataset`.

Truth: one polygon per vertebral body (posterior elements excluded) in continuous pixel
coordinates, top to bottom, clipped to the field; a body less than a third inside the field is
not annotated. ``Record.extra["phantom"]`` (kept in the COCO image entry as ``extra``) records
what was drawn: ``fractures`` (level, type, nominal/anterior/middle/posterior heights in mm and
px), ``implants``, ``osteophytes``, ``narrowed_discs``, ``touching_discs``, ``rotation_deg``,
``facing``, ``visible_fraction`` per annotated level and ``unannotated_partial`` levels.
"""

from __future__ import annotations

from .config import DIFFICULTIES, KNOB_NAMES, PRESETS, VIEWS, Knobs, PhantomConfig
from .generator import MIN_VISIBLE_FRACTION, generate, generate_dataset, image_name
from .preview import contact_sheet

__all__ = [
    "DIFFICULTIES",
    "KNOB_NAMES",
    "MIN_VISIBLE_FRACTION",
    "PRESETS",
    "VIEWS",
    "Knobs",
    "PhantomConfig",
    "contact_sheet",
    "generate",
    "generate_dataset",
    "image_name",
]
