"""One Pipeline shared by 8 threads gives the results of calls made one after the other."""

from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

N_THREADS = 8
N_FILMS = 8
ROUNDS = 2  # every film is predicted by two different threads


def _doc(result) -> str:
    return json.dumps(result.to_dict(timings=False), sort_keys=True)


@pytest.mark.slow
def test_eight_threads_give_the_sequential_results_on_phantoms():
    from vertxnet.data.phantom import PhantomConfig, generate
    from vertxnet.errors import InputError
    from vertxnet.pipeline import Pipeline

    films = [generate(PhantomConfig(view="mixed", size=320, seed=7100, difficulty="normal", style="classic"), i) for i in range(N_FILMS)]

    def predict(pipe, index):
        image, record = films[index]
        try:
            return _doc(pipe.predict(image, pixel_spacing_mm=record.pixel_spacing_mm))
        except InputError as exc:  # nothing found is an outcome too, and must repeat
            return f"InputError: {exc}"

    with Pipeline(threads=1) as pipe:  # the shipped demo bundle
        sequential = [predict(pipe, i) for i in range(N_FILMS)]
        assert sum(not s.startswith("InputError") for s in sequential) >= N_FILMS // 2  # real results to compare
        barrier = threading.Barrier(N_THREADS)
        order = [i % N_FILMS for i in range(N_FILMS * ROUNDS)]

        def job(k):
            if k < N_THREADS:
                barrier.wait(timeout=60)  # the first eight calls start together
            return order[k], predict(pipe, order[k])

        with ThreadPoolExecutor(max_workers=N_THREADS) as pool:
            threaded = list(pool.map(job, range(len(order))))
        again = [predict(pipe, i) for i in range(N_FILMS)]

    assert again == sequential
    for index, doc in threaded:
        assert doc == sequential[index], f"film {index} differs when predicted from {N_THREADS} threads"


@pytest.mark.train  # the hand-built ONNX models need the onnx package
def test_eight_threads_on_the_hand_built_bundle_match_exactly(pipeline, scene):
    import numpy as np

    rng = np.random.default_rng(3)
    images = []
    for _ in range(N_THREADS):
        shift = rng.integers(0, 20, 2)
        images.append(np.roll(scene.image, tuple(int(s) for s in shift), axis=(0, 1)))
    sequential = [_doc(pipeline.predict(im)) for im in images]
    with ThreadPoolExecutor(max_workers=N_THREADS) as pool:
        threaded = list(pool.map(lambda im: _doc(pipeline.predict(im)), images * 4))
    assert threaded == sequential * 4
