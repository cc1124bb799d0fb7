"""predict_many overlaps stages: the next film decodes while the networks run on this one,
at most one film ahead, results in input order."""

from __future__ import annotations

import threading
import time

import cv2


def test_next_film_decodes_while_this_one_is_inferred(pipeline, scene, tmp_path, monkeypatch):
    paths = []
    for i in range(4):
        path = tmp_path / f"film{i}.png"
        cv2.imwrite(str(path), scene.image)
        paths.append(str(path))
    events: list[tuple[str, str]] = []
    lock = threading.Lock()
    real_load, real_predict = pipeline._timed_load, pipeline._predict_loaded

    def load(source):
        with lock:
            events.append(("decode-start", source))
        out = real_load(source)
        time.sleep(0.05)
        with lock:
            events.append(("decode-end", source))
        return out

    def predict(loaded, decode_ms):
        with lock:
            events.append(("infer-start", loaded.path))
        time.sleep(0.2)  # long enough for the next decode to finish meanwhile
        out = real_predict(loaded, decode_ms)
        with lock:
            events.append(("infer-end", loaded.path))
        return out

    monkeypatch.setattr(pipeline, "_timed_load", load)
    monkeypatch.setattr(pipeline, "_predict_loaded", predict)
    outcomes = list(pipeline.predict_many(paths))
    assert [source for source, _ in outcomes] == paths
    assert [o.input.path for _, o in outcomes] == paths
    for i in range(len(paths) - 1):
        # film i+1 is decoded while film i is inferred ...
        assert events.index(("decode-start", paths[i + 1])) < events.index(("infer-end", paths[i]))
        assert events.index(("decode-end", paths[i + 1])) < events.index(("infer-end", paths[i]))
    for i in range(len(paths) - 2):
        # ... and never more than one film ahead (a bounded queue: memory stays flat on a folder).
        assert events.index(("decode-start", paths[i + 2])) > events.index(("infer-start", paths[i]))
