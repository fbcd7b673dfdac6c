#!/usr/bin/env python3
"""Times PyTorch's DistributedDataParallel training of UNet++, the
baseline of scripts/bench_distributed.sh.

Alone, it trains the reference UNet++ (models/testdata/reference_models.py)
with mix_33 and Adam as scripts/bench_train.py does, on a batch of 8
slices of 3x256x128; under torchrun, each of the WORLD_SIZE ranks takes its
8/WORLD_SIZE slices of that batch in a DDP module over Gloo (default
buckets of 25 MB, buffers broadcast). Rank 0 prints the median slices per
second of the job (8 slices a step in all).

Usage (Debian's python3-torch):
    /usr/bin/python3 scripts/bench_ddp.py [--steps 6] [--threads 1]
    USE_LIBUV=0 /usr/bin/python3 -m torch.distributed.run --standalone --nproc_per_node 2 \\
        --redirects 1 --tee 1 scripts/bench_ddp.py [--steps 6]
"""

import argparse
import os
import statistics
import sys
import time

import torch
import torch.distributed as dist

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from bench_train import NETWORKS, batch, loss_fn  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=6, help="timed steps")
    ap.add_argument("--warmup", type=int, default=2, help="untimed steps first")
    ap.add_argument("--threads", type=int, default=1, help="torch.set_num_threads")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    world, rank = int(os.environ.get("WORLD_SIZE", "1")), int(os.environ.get("RANK", "0"))
    images, labels, targets = batch()
    share = images.shape[0] // world
    part = slice(rank * share, (rank + 1) * share)
    images, labels, targets = images[part], labels[part], targets[part]
    torch.manual_seed(1234)
    net = NETWORKS["unet_nested"]()
    net.train()
    if world > 1:
        dist.init_process_group("gloo")
        net = torch.nn.parallel.DistributedDataParallel(net)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3, betas=(0.9, 0.99), weight_decay=1e-4)

    def step():
        seg, det = net(images)
        loss = loss_fn("mix_33", seg, labels, det, targets)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    for _ in range(args.warmup):
        step()
    times = []
    for _ in range(args.steps):
        if world > 1:
            dist.barrier()
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    if rank == 0:
        med = statistics.median(times)
        print(f"pytorch {world}x{args.threads}: {share * world / med:.2f} slices/s ({med:.3f} s/step)", flush=True)
    if world > 1:
        dist.destroy_process_group()


if __name__ == "__main__":
    main()
