"""Time one training step of both edge networks: one after the other with T threads, or both at once.

Answers "train the two networks sequentially with all cores, or concurrently with one thread
each?" on the machine at hand. Each measurement is the median of ``--repeats`` steps after one
warm-up step, on fixed random inputs at the demo bundle's input size (U-Net batch 8, Mask R-CNN
batch 4 with 6 instances per image, as in the demo training).

    python export/bench_train_step.py --threads 2 --repeats 5
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import statistics
import sys
import time
from pathlib import Path
from typing import Sequence

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as C  # noqa: E402


def _step_fn(which: str, size: int):
    import torch

    from train_maskrcnn import build_maskrcnn
    from train_unet import build_unet, dice_bce_loss

    torch.manual_seed(0)
    if which == "unet":
        model = build_unet("edge").train()
        x = torch.randn(8, 1, size, size)
        y = (torch.rand(8, 1, size, size) > 0.8).float()

        def loss():
            return dice_bce_loss(model(x), y)

    else:
        model = build_maskrcnn("edge", size).train()
        images = [torch.randn(1, size, size) for _ in range(4)]
        masks = torch.zeros(6, size, size, dtype=torch.uint8)
        boxes = []
        for i in range(6):
            y0 = size // 10 + i * size // 7
            masks[i, y0 : y0 + size // 9, size // 3 : size // 2] = 1
            boxes.append([size // 3, y0, size // 2, y0 + size // 9])
        target = {"boxes": torch.tensor(boxes, dtype=torch.float32), "labels": torch.tensor([2, 1, 1, 1, 1, 1]), "masks": masks}

        def loss():
            return sum(model(images, [target] * 4).values())

    optimizer = torch.optim.AdamW(model.parameters(), 1e-3)

    def step() -> None:
        value = loss()
        optimizer.zero_grad()
        value.backward()
        optimizer.step()

    return step


def time_steps(which: str, threads: int, repeats: int, size: int) -> float:
    import torch

    torch.set_num_threads(threads)
    step = _step_fn(which, size)
    step()  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def _worker(args, queue) -> None:
    queue.put((args[0], time_steps(*args)))


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--threads", type=int, default=2, help="threads for the sequential runs")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--size", type=int, default=256)
    args = C.parse_args(p, argv)
    if isinstance(args, int):
        return args
    seq = {w: time_steps(w, args.threads, args.repeats, args.size) for w in ("unet", "maskrcnn")}
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    procs = [ctx.Process(target=_worker, args=((w, 1, args.repeats, args.size), queue)) for w in ("unet", "maskrcnn")]
    for proc in procs:
        proc.start()
    conc = dict(queue.get() for _ in procs)
    for proc in procs:
        proc.join()
    # Throughput of one step of each network: sequential = sum; concurrent = the slower of the two.
    report = {
        "input_size": args.size,
        "repeats": args.repeats,
        f"sequential_{args.threads}_threads_s": seq,
        "concurrent_1_thread_each_s": conc,
        "sequential_pair_s": sum(seq.values()),
        "concurrent_pair_s": max(conc.values()),
    }
    report["concurrent_speedup"] = report["sequential_pair_s"] / report["concurrent_pair_s"]
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
