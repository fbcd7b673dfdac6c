#!/usr/bin/env python3
"""PyTorch eager's side of the torch package's benchmarks (torch/bench_test.go).

It times the same two things as the Go benchmarks, on the same device and
with the same intra-op thread count:

  tiny_add  x + y on two one-element float32 tensors: the per-call overhead
  conv2d    F.conv2d forward, 16->16 channels, 3x3, padding 1, bias, on a
            float32 batch 8x16x256x128

and prints one line per benchmark, with the best (lowest) of --repeat runs:

  <name> wall_ns=<wall ns per op> cpu_ns=<process CPU ns per op>

scripts/bench.sh runs it beside `go test -bench` and prints the ratios.
"""
import argparse
import time

import torch
import torch.nn.functional as F


def timed(fn, n, sync):
    """Runs fn n times; returns (wall, cpu) nanoseconds per call."""
    c0, w0 = time.process_time_ns(), time.perf_counter_ns()
    fn(n)
    sync()
    return (time.perf_counter_ns() - w0) / n, (time.process_time_ns() - c0) / n


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=0, help="intra-op threads (0: libtorch's default)")
    ap.add_argument("--device", default="cpu", help="cpu or cuda")
    ap.add_argument("--repeat", type=int, default=5, help="runs of each benchmark; the best counts")
    ap.add_argument("--tiny-n", type=int, default=200_000, help="tiny adds per run")
    ap.add_argument("--conv-n", type=int, default=0, help="convolutions per run (0: about 1 s worth)")
    ap.add_argument("--only", choices=["tiny_add", "conv2d"], help="run one benchmark")
    args = ap.parse_args()

    if args.threads > 0:
        torch.set_num_threads(args.threads)
    dev = torch.device(args.device)
    sync = (lambda: torch.cuda.synchronize(dev)) if dev.type == "cuda" else (lambda: None)

    if args.only in (None, "tiny_add"):
        x = torch.ones(1, device=dev)
        y = torch.full((1,), 2.0, device=dev)

        def tiny(n):
            for _ in range(n):
                x + y

        tiny(1000)
        runs = [timed(tiny, args.tiny_n, sync) for _ in range(args.repeat)]
        print("tiny_add wall_ns=%.1f cpu_ns=%.1f" % (min(r[0] for r in runs), min(r[1] for r in runs)), flush=True)

    if args.only in (None, "conv2d"):
        torch.manual_seed(0)
        x = torch.randn(8, 16, 256, 128, device=dev)
        w = torch.randn(16, 16, 3, 3, device=dev)
        b = torch.randn(16, device=dev)

        def conv(n):
            for _ in range(n):
                F.conv2d(x, w, b, padding=1)
                sync()

        conv(2)
        n = args.conv_n
        if n <= 0:
            wall, _ = timed(conv, 3, sync)
            n = max(3, int(1e9 / wall))
        runs = [timed(conv, n, sync) for _ in range(args.repeat)]
        print("conv2d wall_ns=%.1f cpu_ns=%.1f" % (min(r[0] for r in runs), min(r[1] for r in runs)), flush=True)

    print("# torch %s, %d intra-op threads, device %s" % (torch.__version__, torch.get_num_threads(), dev))


if __name__ == "__main__":
    main()
