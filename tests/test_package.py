"""The package's lazy top-level attributes work in a fresh interpreter."""

import subprocess
import sys

import pytest


@pytest.mark.parametrize(
    "snippet",
    [
        "from vertxnet import core; print(core.ensemble, core.zip_labels)",
        "import vertxnet; print(vertxnet.core.polygon_area)",
        "import vertxnet; print(vertxnet.Pipeline)",
    ],
)
def test_lazy_attributes_import_without_recursion(snippet):
    done = subprocess.run([sys.executable, "-c", snippet], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


def test_unknown_attribute_is_an_attribute_error():
    import vertxnet

    with pytest.raises(AttributeError):
        vertxnet.no_such_thing  # noqa: B018
