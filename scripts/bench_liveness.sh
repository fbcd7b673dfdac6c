#!/usr/bin/env bash
# What freeing intermediate results at their last use saves: an evaluation
# forward pass and a training step of each network on one 1024×512 slice,
# with the networks freeing early (as shipped) and keeping every
# intermediate result until the pass ends (EDEMA_BENCH_KEEP_INTERMEDIATES=1),
# each in a process of its own so that its peak memory is its own; ROUNDS
# rounds, alternating. Prints the median time and the peak resident memory
# of each. Results are in docs/BENCHMARKS.md ("Freeing early").
#
# Environment: ROUNDS (default 2), EDEMA_BENCH_THREADS (default: nproc),
# EDEMA_BENCH_HOST_CACHE (see scripts/bench_env.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${ROUNDS:-2}
export EDEMA_BENCH_THREADS=${EDEMA_BENCH_THREADS:-$(nproc)}
build=${BUILD:-build}
. scripts/bench_env.sh
test_bin=$(go_test_binary models "${MODELS_TEST:-}")

for ((r = 1; r <= rounds; r++)); do
  for bench in unet/forward unet/train unet_nested/forward unet_nested/train unet_nested_dilated/forward unet_nested_dilated/train; do
    for keep in 0 1; do
      echo "round $r/$rounds: $bench keep=$keep" >&2
      EDEMA_BENCH_KEEP_INTERMEDIATES=$keep "$test_bin" -test.run '^$' -test.bench "^BenchmarkLiveness/${bench%/*}/${bench#*/}\$" \
        -test.benchtime 2x | awk -v keep=$keep '/^BenchmarkLiveness/ {
          for (i = 3; i < NF; i++) { if ($(i+1) == "ns/op") t = $i; if ($(i+1) == "peak-MiB") m = $i }
          name = $1; sub(/^BenchmarkLiveness\//, "", name); sub(/-[0-9]+$/, "", name)
          print name, keep, t, m }' >>"$work/results"
    done
  done
done

echo
echo "machine: $(lscpu | sed -n 's/^Model name: *//p' | head -1), $(nproc) cores; $EDEMA_BENCH_THREADS threads; $bench_memory; input 1×3×1024×512"
awk '
  { k = $1 " " $2; n[k]++; t[k, n[k]] = $3 / 1e9; m[k, n[k]] = $4; names[$1] = 1 }
  function median(a, k,   i, j, c, x, tmp) {
    c = n[k]; for (i = 1; i <= c; i++) x[i] = a[k, i]
    for (i = 1; i <= c; i++) for (j = i + 1; j <= c; j++) if (x[j] + 0 < x[i] + 0) { tmp = x[i]; x[i] = x[j]; x[j] = tmp }
    return (c % 2) ? x[(c + 1) / 2] : (x[c / 2] + x[c / 2 + 1]) / 2
  }
  END {
    printf "%-28s %10s %10s %12s %12s\n", "pass", "early s", "kept s", "early MiB", "kept MiB"
    for (name in names) printf "%-28s %10.2f %10.2f %12.0f %12.0f\n", name, median(t, name " 0"), median(t, name " 1"), median(m, name " 0"), median(m, name " 1")
  }' "$work/results" | sort
