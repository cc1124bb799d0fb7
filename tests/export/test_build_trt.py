"""Without TensorRT the engine builder refuses with one clear line and exit code 1."""

from __future__ import annotations

import sys


def test_build_trt_refuses_without_tensorrt(monkeypatch, tmp_path, capsys):
    import build_trt

    monkeypatch.setitem(sys.modules, "tensorrt", None)  # makes `import tensorrt` fail even where it exists
    assert build_trt.main(["--bundle", str(tmp_path)]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: TensorRT is not installed") and "\n" not in err


def test_build_trt_usage_errors_exit_2(capsys):
    import build_trt

    assert build_trt.main([]) == 2
    assert build_trt.main(["--bundle", "b", "--precision", "int4"]) == 2
