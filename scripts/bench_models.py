#!/usr/bin/python3
"""Times eval-mode forward passes of the PyTorch reference networks.

The counterpart of `go test -bench ForwardEval ./models`: the networks of
models/testdata/reference_models.py, a batch of 8x3x256x128 float32 on the
CPU, under torch.inference_mode(), with the given thread count. Prints one
line per network with the best and the median wall time of the repeats and
the least CPU time (user + system, all threads) of a pass.

    /usr/bin/python3 scripts/bench_models.py [--threads N] [--repeat R] [NAME...]
"""

import argparse
import os
import statistics
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "models", "testdata"))
import reference_models  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=os.cpu_count(), help="intra-op threads (default: all CPUs)")
    ap.add_argument("--repeat", type=int, default=5, help="timed passes per network")
    ap.add_argument("--batch", type=int, nargs=4, default=[8, 3, 256, 128], metavar=("N", "C", "H", "W"))
    ap.add_argument("names", nargs="*", choices=[[]] + list(reference_models.NETWORKS), help="networks (default: all)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    print("# torch %s, %d threads, input %s" % (torch.__version__, torch.get_num_threads(), "x".join(map(str, args.batch))))
    for name, build in reference_models.NETWORKS.items():
        if args.names and name not in args.names:
            continue
        torch.manual_seed(0)
        net = build().eval()
        x = torch.randn(*args.batch)
        times, cpu = [], []
        with torch.inference_mode():
            net(x)  # warm-up
            for _ in range(args.repeat):
                start, start_cpu = time.perf_counter(), time.process_time()
                net(x)
                times.append(time.perf_counter() - start)
                cpu.append(time.process_time() - start_cpu)
        print("%-20s best_ms=%.1f median_ms=%.1f cpu_ms=%.1f" % (
            name, 1e3 * min(times), 1e3 * statistics.median(times), 1e3 * min(cpu)))

if __name__ == "__main__":
    main()
