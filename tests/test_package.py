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
        "import vertxnet; print(vertxnet.PipelineConfig(label_confidence=0.7))",
    ],
)
def test_lazy_attributes_import_without_recursion(snippet):
    done = subprocess.run([sys.executable, "-c", snippet], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


def test_unknown_attribute_is_an_attribute_error():
    import vertxnet

    with pytest.raises(AttributeError):
        vertxnet.no_such_thing  # noqa: B018


def test_the_inference_path_imports_no_data_evaluation_or_training_code():
    code = (
        "import sys, vertxnet; vertxnet.Pipeline; import vertxnet.cli.infer; "
        "bad = sorted(m for m in sys.modules if m.startswith(('vertxnet.data', 'vertxnet.evaluation', 'torch', 'shapely')));"
        "print(bad); sys.exit(1 if bad else 0)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
