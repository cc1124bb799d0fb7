#!/usr/bin/env bash
# Builds the C++ core with AddressSanitizer + UndefinedBehaviorSanitizer, then runs the native
# tests (ctest) and the core's Python tests (tests/core) against that build. Any sanitizer
# report fails the run. Usage: bash scripts/sanitize.sh [build-dir]   (default build/sanitize)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
build=${1:-build/sanitize}
python=${PYTHON:-python3}
jobs=$(nproc 2>/dev/null || echo 2)

"$python" -m pybind11 --cmakedir >/dev/null 2>&1 || { echo "error: sanitize.sh needs pybind11 (pip install pybind11)" >&2; exit 1; }
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DVERTX_SANITIZE=ON -DVERTX_BUILD_TESTS=ON \
  -DPython_EXECUTABLE="$(command -v "$python")" -Dpybind11_DIR="$("$python" -m pybind11 --cmakedir)" >/dev/null
cmake --build "$build" -j "$jobs"

export ASAN_OPTIONS=detect_leaks=0:abort_on_error=1:strict_string_checks=1:detect_stack_use_after_return=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
(cd "$build" && ctest --output-on-failure -j "$jobs")

# The package from python/ with the sanitized extension in place of any installed one. Python
# itself is not sanitized, so the ASan runtime is preloaded and leak checks are off (the
# interpreter keeps its memory until exit on purpose).
package="$build/python/vertxnet"
rm -rf "$build/python"
mkdir -p "$package"
for entry in python/vertxnet/*; do
  case "$(basename "$entry")" in _core*.so | __pycache__) ;; *) ln -s "$root/$entry" "$package/" ;; esac
done
ln -s "$root/$build"/_core*.so "$package/"
# libstdc++ is preloaded with it: ASan intercepts __cxa_throw only when the C++ runtime is there
# at start-up, and shapely's GEOS throws (and catches) exceptions inside its overlay code.
LD_PRELOAD="$(g++ -print-file-name=libasan.so) $(g++ -print-file-name=libstdc++.so)" \
  "$python" - "$root/$build/python" <<'PY'
import sys

# An editable install maps `vertxnet` to the source tree through a meta-path finder; drop it so
# that the copy with the sanitized extension is the one imported.
sys.meta_path[:] = [f for f in sys.meta_path if "_editable_" not in type(f).__module__]
sys.path.insert(0, sys.argv[1])
import pytest

import vertxnet._core

assert vertxnet._core.__file__.startswith(sys.argv[1]), vertxnet._core.__file__
sys.exit(pytest.main(["-q", "-p", "no:cacheprovider", "tests/core"]))
PY
