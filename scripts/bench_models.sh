#!/usr/bin/env bash
# Times an eval-mode forward pass of each network (8×3×256×128 float32 on the
# CPU) in Go (BenchmarkForwardEval in models/bench_test.go) and in PyTorch
# (scripts/bench_models.py, on the reference networks of
# models/testdata/reference_models.py), alternating the two for ROUNDS rounds
# so that both see the same machine load. Prints, per network, the best wall
# and CPU time of each, the ratio Go / PyTorch of the bests and the median of
# the per-round ratios. Results are in docs/BENCHMARKS.md ("Models").
#
# Environment:
#   ROUNDS               rounds (default 6)
#   EDEMA_BENCH_THREADS  libtorch intra-op threads for both (default: nproc)
#   EDEMA_BENCH_MALLOC, EDEMA_BENCH_HOST_CACHE: memory settings, see
#                        scripts/bench_env.sh
#   EDEMA_PYTHON         the Python with PyTorch (default /usr/bin/python3)
#   MODELS_TEST          a prebuilt `go test -c` binary of ./models; without
#                        it the script builds one (and needs Go)
set -euo pipefail
cd "$(dirname "$0")/.."

rounds=${ROUNDS:-6}
threads=${EDEMA_BENCH_THREADS:-$(nproc)}
python=${EDEMA_PYTHON:-/usr/bin/python3}
export EDEMA_BENCH_THREADS=$threads
. scripts/bench_env.sh

test_bin=$(go_test_binary models "${MODELS_TEST:-}")

# Each round appends lines "<round> <impl> <network> <wall ms> <cpu ms>".
for ((r = 1; r <= rounds; r++)); do
  echo "round $r/$rounds (load average $(cut -d' ' -f1 /proc/loadavg))" >&2
  (cd models && "$test_bin" -test.run '^$' -test.bench '^BenchmarkForwardEval$' -test.benchtime 1x) |
    awk -v r="$r" '/^BenchmarkForwardEval\// {
      name = $1; sub(/^BenchmarkForwardEval\//, "", name); sub(/-[0-9]+$/, "", name)
      for (i = 3; i < NF; i++) { if ($(i+1) == "ns/op") w = $i / 1e6; if ($(i+1) == "cpu-ms/op") c = $i }
      print r, "go", name, w, c }' >>"$work/results"
  "$python" scripts/bench_models.py --threads "$threads" --repeat 1 |
    awk -v r="$r" '!/^#/ { split($2, w, "="); split($4, c, "="); print r, "pytorch", $1, w[2], c[2] }' >>"$work/results"
done

echo
echo "machine: $(lscpu | sed -n 's/^Model name: *//p' | head -1), $(nproc) cores; $threads intra-op threads; $bench_memory"
"$python" -c 'import torch; print("PyTorch", torch.__version__)'
echo "input 8x3x256x128 float32, eval mode, inference mode; $rounds rounds; ratio = Go / PyTorch (lower is better)"
sort -k1,1n -k3,3 -k2,2 "$work/results" | awk '
  function median(a, n,   i, j, t) {
    for (i = 2; i <= n; i++) for (j = i; j > 1 && a[j-1] > a[j]; j--) { t = a[j]; a[j] = a[j-1]; a[j-1] = t }
    return n % 2 ? a[(n+1)/2] : (a[n/2] + a[n/2+1]) / 2
  }
  { k = $2 " " $3; if (!(k in w) || $4 < w[k]) w[k] = $4; if (!(k in c) || $5 < c[k]) c[k] = $5
    rw[$1 " " k] = $4; rc[$1 " " k] = $5; if ($1 > rounds) rounds = $1 }
  END {
    printf "%-20s %9s %9s %7s %7s   %9s %9s %7s %7s\n", "network", "go ms", "py ms", "ratio", "median", "go cpu", "py cpu", "ratio", "median"
    n = split("unet unet_nested unet_nested_dilated", names, " ")
    for (i = 1; i <= n; i++) {
      b = names[i]; m = 0
      if (!(("go " b) in w) || !(("pytorch " b) in w)) continue
      for (r = 1; r <= rounds; r++)
        if (((r " go " b) in rw) && ((r " pytorch " b) in rw)) {
          m++; qw[m] = rw[r " go " b] / rw[r " pytorch " b]; qc[m] = rc[r " go " b] / rc[r " pytorch " b]
        }
      printf "%-20s %9.0f %9.0f %7.3f %7.3f   %9.0f %9.0f %7.3f %7.3f\n", b, w["go " b], w["pytorch " b],
        w["go " b] / w["pytorch " b], median(qw, m), c["go " b], c["pytorch " b], c["go " b] / c["pytorch " b], median(qc, m)
    }
  }'
