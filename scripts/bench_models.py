#!/usr/bin/python3
"""Times eval-mode forward passes of the PyTorch reference networks.

The counterpart of `go test -bench ForwardEval ./models`: the networks of
models/testdata/reference_models.py, a batch of 8x3x256x128 float32 on the
CPU, under torch.inference_mode(), with the given thread count. Prints one
line per network with the best and the median wall time of the repeats, the
least CPU time (user + system, all threads) of a pass, the minor page
faults per timed pass and the process's peak resident memory (run one
network per process for its own peak).

--mode script runs PyTorch's fastest CPU path instead of eager mode: the
network traced, frozen and passed through torch.jit.optimize_for_inference,
which folds batch norm into the convolutions and hands them to oneDNN with
their ReLU fused.

    /usr/bin/python3 scripts/bench_models.py [--threads N] [--repeat R] [--mode eager|script] [NAME...]
"""

import argparse
import os
import resource
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
    ap.add_argument("--gflops", action="store_true", help="print each network's GFLOP per slice of the batch's size instead")
    ap.add_argument("--mode", choices=["eager", "script"], default="eager", help="eager, or traced, frozen and optimised")
    ap.add_argument("--amp", choices=["fp32", "bf16"], default="fp32", help="bf16: under torch.autocast('cpu', torch.bfloat16)")
    ap.add_argument("--channels-last", action="store_true", help="weights and input in torch.channels_last")
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
        if args.gflops:
            print("%-20s gflop=%.2f" % (name, gflop_per_slice(net, args.batch)))
            continue
        x = torch.randn(*args.batch)
        if args.channels_last:
            net = net.to(memory_format=torch.channels_last)
            x = x.contiguous(memory_format=torch.channels_last)
        times, cpu = [], []
        if args.mode == "script":
            with torch.no_grad():
                net = torch.jit.optimize_for_inference(torch.jit.freeze(torch.jit.trace(net, x)))
        amp = torch.autocast("cpu", dtype=torch.bfloat16, enabled=args.amp == "bf16")
        with torch.inference_mode(), amp:
            for _ in range(2 if args.mode == "script" else 1):
                net(x)  # warm-up; a script's first runs also profile and optimise it
            faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
            for _ in range(args.repeat):
                start, start_cpu = time.perf_counter(), time.process_time()
                net(x)
                times.append(time.perf_counter() - start)
                cpu.append(time.process_time() - start_cpu)
            usage = resource.getrusage(resource.RUSAGE_SELF)
        print("%-20s best_ms=%.1f median_ms=%.1f cpu_ms=%.1f faults=%.0f peak_mib=%.0f" % (
            name, 1e3 * min(times), 1e3 * statistics.median(times), 1e3 * min(cpu),
            (usage.ru_minflt - faults) / args.repeat, usage.ru_maxrss / 1024))

def gflop_per_slice(net, batch):
    """The floating-point operations of a pass per slice, in GFLOP: those
    of the convolutions and transposed convolutions (a multiply-add counts
    two), which are all but a fraction of a percent of the work."""
    total = [0]

    def count(module, inputs, output):
        w = module.weight
        if isinstance(module, torch.nn.ConvTranspose2d):
            # Every input pixel meets every weight of its group.
            total[0] += 2 * inputs[0].numel() * w.shape[1] * w.shape[2] * w.shape[3]
        else:
            total[0] += 2 * output.numel() * w.shape[1] * w.shape[2] * w.shape[3]

    hooks = [m.register_forward_hook(count) for m in net.modules()
             if isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d))]
    with torch.inference_mode():
        net(torch.zeros(1, *batch[1:]))
    for h in hooks:
        h.remove()
    return total[0] / 1e9


if __name__ == "__main__":
    main()
