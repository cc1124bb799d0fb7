"""Test-wide settings.

Property tests explore fresh random examples on every developer run; under CI (CI=true) they
replay a fixed derandomised sequence, so a rare counterexample shows up on a developer's machine
as a failing example to fix rather than as an intermittently red build.

tests/oracle holds the readable reference implementations the property tests compare against
(the shapely twin of the geometry core, ``reference``); it is importable from every test.
"""

import os
import sys
from pathlib import Path

from hypothesis import settings

sys.path.insert(0, str(Path(__file__).resolve().parent / "oracle"))

settings.register_profile("ci", derandomize=True, deadline=None, print_blob=True)
settings.register_profile("dev", deadline=None, print_blob=True)
settings.load_profile("ci" if os.environ.get("CI", "").lower() in ("1", "true", "yes") else "dev")
