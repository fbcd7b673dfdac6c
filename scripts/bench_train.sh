#!/usr/bin/env bash
# Times one training step of each network in Go (BenchmarkTrainStep in
# train/bench_test.go) and in PyTorch (scripts/bench_train.py), alternating
# them for ROUNDS rounds so that both see the same machine load, and prints
# per network the best wall and CPU time per step of each and the ratios
# Go / PyTorch (lower is better). Results are in docs/BENCHMARKS.md.
#
# Environment:
#   ROUNDS               rounds (default 3)
#   STEPS                timed steps per network and round (default 3)
#   EDEMA_BENCH_THREADS  libtorch intra-op threads for both (default: nproc)
#   EDEMA_BENCH_MALLOC, EDEMA_BENCH_HOST_CACHE: memory settings, see
#                        scripts/bench_env.sh
#   EDEMA_PYTHON         the Python with PyTorch (default /usr/bin/python3)
#   NAMES                the networks (default: all three)
#   EDEMA_BENCH_FAST_PATH  1: the Go side trains with `edema train --fast-path`
#                        (transposed convolutions by phases; not bit for bit
#                        PyTorch's); default 0, as `edema train` runs
#   EDEMA_BENCH_INPUT    the batch, NxCxHxW (default 8x3x256x128; the
#                        challenge's slices are 8x3x1024x512)
#   PT_PRELOAD           a malloc for the PyTorch side, LD_PRELOAD'ed (for
#                        example /usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4,
#                        as PyTorch's performance guide advises)
#   TRAIN_TEST           a prebuilt `go test -c` binary of ./train; without
#                        it the script builds one (and needs Go)
set -euo pipefail
cd "$(dirname "$0")/.."

rounds=${ROUNDS:-3}
steps=${STEPS:-3}
threads=${EDEMA_BENCH_THREADS:-$(nproc)}
python=${EDEMA_PYTHON:-/usr/bin/python3}
export EDEMA_BENCH_THREADS=$threads OMP_NUM_THREADS=$threads
. scripts/bench_env.sh

test_bin=$(go_test_binary train "${TRAIN_TEST:-}")
names=${NAMES:-unet unet_nested unet_nested_dilated}

input=${EDEMA_BENCH_INPUT:-8x3x256x128}
export EDEMA_BENCH_INPUT=$input

# Lines "<impl> <network> <wall s> <cpu s> <peak MiB>" per step time measured.
results=$work/results
for round in $(seq "$rounds"); do
  for name in $names; do
    echo "round $round/$rounds: $name (load $(cut -d' ' -f1 /proc/loadavg))" >&2
    (cd train && "$test_bin" -test.run '^$' -test.bench "^BenchmarkTrainStep/${name}\$" -test.benchtime "${steps}x") |
      awk -v n="$name" '/^BenchmarkTrainStep/ { for (i = 1; i < NF; i++) { if ($(i+1) == "ns/op") w = $i / 1e9
        if ($(i+1) == "cpu-s/step") c = $i; if ($(i+1) == "peak-MiB") m = $i }; print "go", n, w, c, m }' >>"$results"
    # shellcheck disable=SC2086
    LD_PRELOAD=${PT_PRELOAD:-} "$python" scripts/bench_train.py --names "$name" --steps "$steps" --threads "$threads" --batch ${input//x/ } |
      awk '{ print "pytorch", $1, $2, $6, $8 }' >>"$results"
  done
done

echo "batch $input, threads $threads, Go fast path ${EDEMA_BENCH_FAST_PATH:-0}, $bench_memory${PT_PRELOAD:+, PyTorch with $PT_PRELOAD}, $rounds rounds of $steps steps; best of the rounds, seconds per step; peak resident MiB"
printf '%-22s %9s %9s %7s %9s %9s %7s %8s %8s\n' network "Go wall" "PT wall" ratio "Go CPU" "PT CPU" ratio "Go peak" "PT peak"
for name in $names; do
  awk -v n="$name" '
    $2 == n && (!(($1, "w") in best) || $3 < best[$1, "w"]) { best[$1, "w"] = $3 }
    $2 == n && (!(($1, "c") in best) || $4 < best[$1, "c"]) { best[$1, "c"] = $4 }
    $2 == n && $5 > peak[$1] { peak[$1] = $5 }
    END {
      printf "%-22s %9.3f %9.3f %7.2f %9.3f %9.3f %7.2f %8.0f %8.0f\n", n,
        best["go", "w"], best["pytorch", "w"], best["go", "w"] / best["pytorch", "w"],
        best["go", "c"], best["pytorch", "c"], best["go", "c"] / best["pytorch", "c"], peak["go"], peak["pytorch"]
    }' "$results"
done
