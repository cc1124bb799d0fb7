"""Shared pieces of the batch-engine tests: one local Ray for the session (2 inference workers
and room for the read tasks), phantom films, the plain vertx-infer outputs to compare with, and a
time limit per test so that a hung job fails instead of stalling CI.

Ray is a test requirement (the ``scale`` extra): these files import it at the top, so a missing
Ray fails the run rather than skipping the engine's tests.
"""

from __future__ import annotations

import signal
from pathlib import Path

import pytest
from batch_films import FORMATS, N_FILMS

#: Seconds any one batch test may take, Ray start included, on a busy 2-core machine.
TEST_LIMIT_S = 300


def pytest_configure(config):
    config.addinivalue_line("markers", "ray: runs a batch job on a local Ray (the scale extra)")


@pytest.fixture(autouse=True)
def time_limit(request):
    """Fail a ray test that runs past TEST_LIMIT_S (SIGALRM interrupts the waiting driver)."""
    if request.node.get_closest_marker("ray") is None:
        yield
        return

    def expire(signum, frame):
        raise TimeoutError(f"{request.node.name} ran past {TEST_LIMIT_S} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(TEST_LIMIT_S)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


@pytest.fixture(scope="session")
def local_ray():
    """A local Ray with 3 logical CPUs: two one-thread inference workers plus the read tasks.
    Batch jobs run in this process use it rather than starting their own."""
    import logging

    import ray

    for attempt in range(3):  # a loaded machine can miss Ray's 30 s node start window
        try:
            ray.init(num_cpus=3, include_dashboard=False, log_to_driver=False, logging_level=logging.WARNING)
            break
        except Exception:  # noqa: BLE001
            ray.shutdown()
            if attempt == 2:
                raise
    yield ray
    ray.shutdown()


@pytest.fixture(scope="session")
def films(tmp_path_factory) -> Path:
    """40 small phantom films (256 px), the folder of their PNGs."""
    from vertxnet.cli.phantom import main as phantom

    out = tmp_path_factory.mktemp("batch-films")
    assert phantom(["-o", str(out), "--n", str(N_FILMS), "--size", "256", "--seed", "7", "--view", "mixed"]) == 0
    return out / "images"


@pytest.fixture(scope="session")
def plain_outputs(films, tmp_path_factory) -> Path:
    """What the plain vertx-infer writes for the films (no timings, so files are comparable)."""
    from vertxnet.cli.infer import InferConfig, run_inference

    out = tmp_path_factory.mktemp("batch-plain")
    summary = run_inference(InferConfig(inputs=(str(films),), outdir=out, formats=FORMATS, timings=False, progress=False))
    assert summary.written == N_FILMS and not summary.failures
    return out
