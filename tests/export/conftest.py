"""Fixtures for the training/export tests: the export scripts on sys.path and a few phantoms."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

EXPORT_DIR = Path(__file__).resolve().parents[2] / "export"
sys.path.insert(0, str(EXPORT_DIR))


@pytest.fixture(scope="session")
def phantoms(tmp_path_factory) -> Path:
    """COCO file of 8 small mixed-view phantoms (seeds reserved for tests)."""
    from vertxnet.data.phantom import PhantomConfig, generate_dataset

    out = tmp_path_factory.mktemp("phantoms")
    return generate_dataset(PhantomConfig(view="mixed", size=192, seed=900_100, difficulty="easy"), out, 8)


@pytest.fixture(scope="session")
def check_phantoms(tmp_path_factory) -> Path:
    """Two further phantoms, unseen by the tiny trainings, for export verification."""
    from vertxnet.data.phantom import PhantomConfig, generate_dataset

    out = tmp_path_factory.mktemp("check_phantoms")
    return generate_dataset(PhantomConfig(view="mixed", size=192, seed=900_101, difficulty="normal"), out, 2)
