#!/usr/bin/env bash
# Data-parallel training throughput: UNet++ trained on synthetic 256×128
# slices (one epoch of 64 slices, then a one-cube validation) by
#   1×1: one process, one libtorch thread, batches of 8;
#   1×2: one process, two threads, batches of 8;
#   2×1: two processes over c10d/Gloo on loopback, one thread each,
#        batches of 4 each (the same 8 slices a step in all);
# and PyTorch's DistributedDataParallel on the same 1×1 and 2×1 set-ups
# (scripts/bench_ddp.py: the reference UNet++ on an in-memory batch, under
# Debian's torchrun), ROUNDS rounds (default 2), alternating. Prints the
# median training throughput (slices/s; for edema the training part of the
# epoch only, slices read and decoded included), the ratio of each to its
# side's 1×1, and edema's rank 0's share of the training time spent in
# collectives. Results are in docs/BENCHMARKS.md ("Data-parallel training").
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${ROUNDS:-2}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
make -s shim
go build -o "$work/edema" ./cmd/edema
"$work/edema" synth -o "$work/data" --train 2 --val 1 --test 1 --slices 32 --width 128 --height 256 >/dev/null

run() { # label, then edema train flags
  local label=$1
  shift
  echo "round $r/$rounds: $label" >&2
  "$work/edema" train --name unet_nested -d "$work/data" -l "$work/data/data_path" --out "$work/run" --overwrite \
    --epochs 1 --lr 0.001 -j 2 "$@" 2>/dev/null | awk -v label="$label" '/^epoch 1\/1: lr/ {
      rate = comm = 0
      for (i = 1; i < NF; i++) {
        if ($(i+1) == "slices/s") rate = $i
        if ($i == "communication") { comm = $(i+1); sub(/%/, "", comm) }
      }
      print label, rate, comm }' >>"$work/results"
}

pytorch() { # label, then how to start bench_ddp.py
  local label=$1
  shift
  echo "round $r/$rounds: pytorch $label" >&2
  USE_LIBUV=0 "$@" 2>/dev/null | awk -v label="pytorch-$label" '/slices\/s/ {
      for (i = 1; i < NF; i++) if ($(i+1) == "slices/s") print label, $i, 0 }' >>"$work/results"
}

py=/usr/bin/python3
for ((r = 1; r <= rounds; r++)); do
  run 1x1 --threads 1 --batch-size 8
  pytorch 1x1 $py scripts/bench_ddp.py --threads 1
  run 1x2 --threads 2 --batch-size 8
  run 2x1 --threads 1 --batch-size 4 --nproc-per-node 2
  pytorch 2x1 $py -m torch.distributed.run --standalone --nproc_per_node 2 --redirects 1 --tee 1 scripts/bench_ddp.py --threads 1
done

echo
echo "machine: $(lscpu | sed -n 's/^Model name: *//p' | head -1), $(nproc) cores; UNet++ training at 256×128, 8 slices a step"
awk '
  { n[$1]++; rate[$1, n[$1]] = $2; comm[$1, n[$1]] = $3 }
  function median(a, k,   i, j, c, x, tmp) {
    c = n[k]; for (i = 1; i <= c; i++) x[i] = a[k, i]
    for (i = 1; i <= c; i++) for (j = i + 1; j <= c; j++) if (x[j] + 0 < x[i] + 0) { tmp = x[i]; x[i] = x[j]; x[j] = tmp }
    return (c % 2) ? x[(c + 1) / 2] : (x[c / 2] + x[c / 2 + 1]) / 2
  }
  END {
    printf "%-12s %12s %14s %16s\n", "run", "slices/s", "× its 1x1", "communication"
    split("1x1 1x2 2x1 pytorch-1x1 pytorch-2x1", order, " ")
    for (i = 1; i <= 5; i++) {
      k = order[i]
      base = median(rate, (k ~ /^pytorch/) ? "pytorch-1x1" : "1x1")
      printf "%-12s %12.2f %14.2f %15.1f%%\n", k, median(rate, k), median(rate, k) / base, median(comm, k)
    }
  }' "$work/results"
