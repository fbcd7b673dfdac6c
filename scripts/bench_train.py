#!/usr/bin/env python3
"""Times one training step of each edema network in PyTorch.

The PyTorch side of train/bench_test.go's BenchmarkTrainStep, step for step:
batch 8 of 3x256x128 with the same deterministic images and labels, the
reference networks of models/testdata/reference_models.py (the original's
module tree) in training mode, the loss of each network's published recipe
(mix_3 for unet, mix_33 for the UNet++ pair, written as the original
computes them), backward, Adam (betas 0.9, 0.99, weight decay 1e-4) and the
step's loss and argmax pixel counts brought to the host.

Usage (Debian's python3-torch):
    /usr/bin/python3 scripts/bench_train.py [--steps 5] [--threads N] [--names unet,...]
Prints one line per network: name, seconds per step (median), steps/s, and
the process's CPU seconds per step (median; all threads), which a machine
shared with other work disturbs less than the wall time.
"""

import argparse
import os
import resource
import statistics
import sys
import time

import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "models", "testdata"))
from reference_models import NETWORKS  # noqa: E402

WEIGHTS = torch.tensor([1.0, 5.0, 10.0, 20.0])
RECIPE_LOSS = {"unet": "mix_3", "unet_nested": "mix_33", "unet_nested_dilated": "mix_33"}


def batch(n, h, w):
    """The batch of train/bench_test.go's benchBatchData."""
    i = torch.arange(n * 3 * h * w, dtype=torch.int64)
    images = (((i * 2654435761) % 1000).float() / 500 - 1).reshape(n, 3, h, w)
    labels = torch.zeros(n, h, w, dtype=torch.int64)
    targets = torch.zeros(n, 3)
    for s in range(n):
        labels[s, 64:96, 16:64] = 1
        labels[s, 128:144, 32 + s:80 + s] = 2
        targets[s, 0] = targets[s, 1] = 1
        if s % 2 == 0:
            labels[s, 160:168, 40:72] = 3
            targets[s, 2] = 1
    return images, labels, targets


def class_dice(logp, labels):
    p = torch.exp(logp)
    dice = []
    for c in (1, 2, 3):
        t = (labels == c).float()
        if t.sum() == 0:
            dice.append(torch.ones(()))
        else:
            dice.append(2 * (p[:, c] * t).sum() / (p[:, c].sum() + t.sum()))
    return dice


def loss_fn(name, logp, labels, det, targets):
    wce = F.nll_loss(logp, labels, weight=WEIGHTS, ignore_index=255)
    dice = class_dice(logp, labels)
    if name == "mix_3":
        seg = 1 - sum(dice) / 3
    else:
        seg = sum((-torch.log(d)).clamp_min(1e-12) ** 0.5 for d in dice) / 3
    return wce + seg + F.binary_cross_entropy(det, targets)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=5, help="timed steps per network")
    ap.add_argument("--warmup", type=int, default=3, help="untimed steps first")
    ap.add_argument("--threads", type=int, default=os.cpu_count(), help="torch.set_num_threads")
    ap.add_argument("--names", default=",".join(NETWORKS), help="networks, comma-separated")
    ap.add_argument("--batch", type=int, nargs=4, default=[8, 3, 256, 128], metavar=("N", "C", "H", "W"),
                    help="the batch geometry (C must be 3)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    n, _, h, w = args.batch
    images, labels, targets = batch(n, h, w)
    for name in args.names.split(","):
        torch.manual_seed(1234)
        net = NETWORKS[name]()
        net.train()
        opt = torch.optim.Adam(net.parameters(), lr=1e-3, betas=(0.9, 0.99), weight_decay=1e-4)

        def step():
            seg, det = net(images)
            loss = loss_fn(RECIPE_LOSS[name], seg, labels, det, targets)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            with torch.no_grad():
                pred = seg.argmax(1)
                counts = []
                for c in (1, 2, 3):
                    p, g = pred == c, labels == c
                    counts += [(p & g).sum(), p.sum(), g.sum()]
                torch.stack([loss.double()] + [x.double() for x in counts]).tolist()

        # Untimed steps first: the first allocates Adam's state, and the
        # first few are slower while the allocator grows its pools.
        for _ in range(args.warmup):
            step()
        times, cpu = [], []
        for _ in range(args.steps):
            start, start_cpu = time.perf_counter(), time.process_time()
            step()
            times.append(time.perf_counter() - start)
            cpu.append(time.process_time() - start_cpu)
        med = statistics.median(times)
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"{name}\t{med:.3f} s/step\t{1 / med:.3f} steps/s\t{statistics.median(cpu):.3f} cpu-s/step"
              f"\t{peak:.0f} peak-MiB\t(threads {args.threads}, {args.steps} steps)", flush=True)


if __name__ == "__main__":
    main()
