#!/usr/bin/env bash
# The CPU inference benchmark of docs/BENCHMARKS.md ("Inference at both
# sizes"): an eval-mode forward pass of each network on a batch of 8 slices
# at the synthetic default's size (8x3x256x128) and at the challenge's
# (8x3x1024x512, a sixteenth of a 128-slice cube), on each side:
#
#   edema        BenchmarkForwardEval (models/bench_test.go) as the edema
#                command runs on the CPU: host cache on, evaluation fast
#                path, channels last (EDEMA_BENCH_CHANNELS_LAST=0 runs it
#                contiguous)
#   eager        PyTorch eager mode, glibc malloc, as users run it
#   eager+tc     PyTorch eager mode with tcmalloc preloaded
#   script+tc    PyTorch traced, frozen and optimize_for_inference'd, with
#                tcmalloc: PyTorch's fastest CPU path
#
# Each side, network, size and thread count runs in a process of its own, so
# that peak memory is its own; the sides alternate within a round. The
# float32 GEMM ceiling (4096x4096 matrices, see gemm_gflops) is measured in
# the same run at each thread count, and each pass's achieved GFLOP/s (its
# convolutions' operations, counted by scripts/bench_models.py --gflops) is
# set against it. Prints one table per size and thread count: ms per pass
# (median of the rounds), edema's time over the side's (below 1: edema is
# faster), peak resident memory, minor page faults per timed pass, GFLOP/s
# and the fraction of the ceiling.
#
# Environment:
#   ROUNDS      rounds (default 1)
#   SIZES       inputs (default "8x3x256x128 8x3x1024x512")
#   THREADS     intra-op thread counts (default "1 2")
#   NAMES       networks (default: unet unet_nested unet_nested_dilated)
#   PASSES      timed passes per process at 256x128 (default 3; one at
#               1024x512, after one warm-up pass)
#   TCMALLOC    the tcmalloc library (default: Debian's libtcmalloc-minimal4;
#               without it the +tc sides are left out)
#   EDEMA_PYTHON  the Python with PyTorch (default /usr/bin/python3)
#   MODELS_TEST   a prebuilt `go test -c` binary of ./models
set -euo pipefail
cd "$(dirname "$0")/.."

rounds=${ROUNDS:-1}
sizes=${SIZES:-8x3x256x128 8x3x1024x512}
thread_counts=${THREADS:-1 2}
names=${NAMES:-unet unet_nested unet_nested_dilated}
passes=${PASSES:-3}
python=${EDEMA_PYTHON:-/usr/bin/python3}
tcmalloc=${TCMALLOC:-/usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4}
[ -e "$tcmalloc" ] || { echo "no $tcmalloc (apt install libtcmalloc-minimal4): leaving out the +tc sides" >&2; tcmalloc=; }
export EDEMA_BENCH_HOST_CACHE=1
export EDEMA_BENCH_CHANNELS_LAST=${EDEMA_BENCH_CHANNELS_LAST:-1}
. scripts/bench_env.sh
test_bin=$(go_test_binary models "${MODELS_TEST:-}")
sides="edema eager"
[ -n "$tcmalloc" ] && sides="$sides eager+tc script+tc"

# GFLOP per slice of each size, counted on the reference networks'
# convolutions (scripts/bench_models.py --gflops): "<size> <network> <gflop>".
for size in $sizes; do
  read -r _ _ h w <<<"${size//x/ }"
  "$python" scripts/bench_models.py --gflops --batch 1 3 "$h" "$w" $names |
    awk -v s="$size" '!/^#/ { split($2, kv, "="); print s, $1, kv[2] }' >>"$work/gflop"
done

# run_side SIDE NAME SIZE THREADS prints "<ms> <peak MiB> <faults per pass>".
run_side() {
  local side=$1 name=$2 size=$3 threads=$4 n
  n=$passes
  [ "${size#*x*x}" = "1024x512" ] && n=1
  case $side in
  edema)
    (cd models && EDEMA_BENCH_THREADS=$threads EDEMA_BENCH_INPUT=$size "$test_bin" -test.run '^$' \
      -test.bench "^BenchmarkForwardEval/${name}\$" -test.benchtime "${n}x") |
      awk '/^BenchmarkForwardEval/ { for (i = 3; i < NF; i++) { if ($(i+1) == "ns/op") t = $i / 1e6
        if ($(i+1) == "peak-MiB") m = $i; if ($(i+1) == "faults/op") f = $i }; print t, m, f }' ;;
  *)
    local mode=eager preload=
    [ "${side%+tc}" = script ] && mode=script
    [ "${side%+tc}" != "$side" ] && preload=$tcmalloc
    # shellcheck disable=SC2086
    LD_PRELOAD=$preload OMP_NUM_THREADS=$threads "$python" scripts/bench_models.py --threads "$threads" \
      --repeat "$n" --mode "$mode" --batch ${size//x/ } "$name" |
      awk '!/^#/ { for (i = 2; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
        print v["median_ms"], v["peak_mib"], v["faults"] }' ;;
  esac
}

# gemm_gflops THREADS prints the best float32 4096² GEMM rate of 5, over
# torch.mm (OpenBLAS) and oneDNN's inner product (mkldnn_linear), and on a
# CPU with AVX-512 also over torch.mm with OpenBLAS's SkylakeX kernels:
# OpenBLAS 0.3.21 falls back to its generic Prescott kernels on CPUs it
# does not know, which would make the ceiling a fraction of the machine's.
gemm_gflops() {
  local cores=("")
  grep -qw avx512f /proc/cpuinfo && cores+=(SkylakeX)
  for core in "${cores[@]}"; do
    OPENBLAS_CORETYPE=$core OMP_NUM_THREADS=$1 "$python" -c '
import sys, time, torch
torch.set_num_threads(int(sys.argv[1]))
a, b = torch.randn(4096, 4096), torch.randn(4096, 4096)
am, bm = a.to_mkldnn(), b.to_mkldnn()
for f in (lambda: torch.mm(a, b), lambda: torch._C._nn.mkldnn_linear(am, bm, None)):
    f()
    best = min((lambda s: (f(), time.perf_counter() - s)[1])(time.perf_counter()) for _ in range(5))
    print("%.1f" % (2 * 4096 ** 3 / best / 1e9))' "$1"
  done | sort -g | tail -1
}

for ((r = 1; r <= rounds; r++)); do
  for threads in $thread_counts; do
    echo "round $r/$rounds, $threads threads: GEMM ceiling" >&2
    echo "$r gemm $threads $(gemm_gflops "$threads")" >>"$work/gemm"
    for size in $sizes; do
      for name in $names; do
        for side in $sides; do
          echo "round $r/$rounds: $side $name $size, $threads threads (load $(cut -d' ' -f1 /proc/loadavg))" >&2
          echo "$r $side $name $size $threads $(run_side "$side" "$name" "$size" "$threads")" >>"$work/results"
        done
      done
    done
  done
done

echo "machine: $(lscpu | sed -n 's/^Model name: *//p' | head -1), $(nproc) cores, $(free -g | awk '/^Mem:/ { print $2 }') GiB"
echo "PyTorch $("$python" -c "import torch; print(torch.__version__)"); edema on libtorch-dev $(dpkg-query -W -f "\${Version}" libtorch-dev 2>/dev/null || echo "(not from Debian)")"
echo "eval mode, inference mode, float32; edema channels last: $EDEMA_BENCH_CHANNELS_LAST; $rounds round(s); ms = median over rounds"
for threads in $thread_counts; do
  ceiling=$(awk -v t="$threads" '$3 == t { s += $4; n++ } END { printf "%.1f", s / n }' "$work/gemm")
  for size in $sizes; do
    echo
    echo "== $size, $threads thread(s); float32 GEMM ceiling $ceiling GFLOP/s =="
    printf '%-20s %-10s %10s %7s %9s %11s %8s %7s\n' network side "ms/pass" edema/x "peak MiB" faults/pass GFLOP/s ceiling
    for name in $names; do
      g=$(awk -v s="$size" -v n="$name" '$1 == s && $2 == n { print $3 }' "$work/gflop")
      awk -v n="$name" -v s="$size" -v t="$threads" -v g="$g" -v c="$ceiling" -v sides="$sides" '
        function median(a, k,   i, j, x) {
          for (i = 2; i <= k; i++) for (j = i; j > 1 && a[j-1] > a[j]; j--) { x = a[j]; a[j] = a[j-1]; a[j-1] = x }
          return k % 2 ? a[(k+1)/2] : (a[k/2] + a[k/2+1]) / 2
        }
        $3 == n && $4 == s && $5 == t { k = ++cnt[$2]; ms[$2, k] = $6; peak[$2] = $7 > peak[$2] ? $7 : peak[$2]; f[$2] = $8 }
        END {
          split(s, d, "x"); gf = g * d[1]
          m = split(sides, list, " ")
          for (i = 1; i <= m; i++) {
            x = list[i]; if (!(x in cnt)) continue
            delete a; for (k = 1; k <= cnt[x]; k++) a[k] = ms[x, k]; med[x] = median(a, cnt[x])
          }
          for (i = 1; i <= m; i++) {
            x = list[i]; if (!(x in med)) continue
            rate = gf / (med[x] / 1e3)
            printf "%-20s %-10s %10.0f %7.2f %9.0f %11.0f %8.1f %6.0f%%\n", n, x, med[x], med["edema"] / med[x], peak[x], f[x], rate, 100 * rate / c
          }
        }' "$work/results"
    done
  done
done
