"""The batch engine refuses a backend or precision by the plain CLI's rules, before Ray starts."""

from __future__ import annotations

from pathlib import Path

import pytest

from vertxnet.batch.job import BatchConfig, _check_bundle
from vertxnet.bundle import load_bundle
from vertxnet.cli.infer import InferConfig, UsageError


def _config(precision, **kw) -> BatchConfig:
    return BatchConfig(infer=InferConfig(inputs=("x",), outdir=Path("out"), precision=precision), **kw)


def test_a_per_model_precision_the_bundle_has_is_accepted():
    bundle = load_bundle()  # the shipped bundle: an int8 U-Net, no Mask R-CNN variants
    assert "int8" in bundle.variants("unet")
    _check_bundle(_config({"unet": "int8"}), bundle)
    _check_bundle(_config({"unet": "int8"}, address="auto"), bundle)


@pytest.mark.parametrize("address", [None, "auto"])
def test_a_precision_one_model_lacks_is_refused_naming_it(address):
    with pytest.raises(UsageError, match="maskrcnn|Mask R-CNN|int8"):
        _check_bundle(_config("int8", address=address), load_bundle())
