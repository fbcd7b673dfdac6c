#!/usr/bin/env bash
# Runs the torch package's benchmarks in Go (torch/bench_test.go), in
# PyTorch eager (scripts/bench_torch.py) and, for the tiny op, in plain
# libtorch C++ (scripts/bench_libtorch.cpp), alternating them for ROUNDS
# rounds so that all see the same machine load, and prints the best time of
# each with the ratio Go / PyTorch. Results are in docs/BENCHMARKS.md.
#
# Environment:
#   ROUNDS               rounds (default 5)
#   EDEMA_BENCH_THREADS  libtorch intra-op threads for all three (default: nproc)
#   EDEMA_BENCH_DEVICE   cpu (default), cuda or cuda:N
#   EDEMA_PYTHON         the Python with PyTorch (default /usr/bin/python3)
#   BUILD                the shim's CMake build folder (default build)
#   TORCH_TEST           a prebuilt `go test -c` binary of ./torch; without it
#                        the script builds one (and needs Go)
#   EDEMA_BENCH_MALLOC, EDEMA_BENCH_HOST_CACHE: memory settings, see
#                        scripts/bench_env.sh
set -euo pipefail
cd "$(dirname "$0")/.."

rounds=${ROUNDS:-5}
threads=${EDEMA_BENCH_THREADS:-$(nproc)}
device=${EDEMA_BENCH_DEVICE:-cpu}
python=${EDEMA_PYTHON:-/usr/bin/python3}
build=${BUILD:-build}
export EDEMA_BENCH_THREADS=$threads EDEMA_BENCH_DEVICE=$device
. scripts/bench_env.sh

test_bin=$(go_test_binary torch "${TORCH_TEST:-}")
floor=""
if flock "$build/.lock" cmake --build "$build" --target bench_libtorch >"$work/cmake.log" 2>&1; then
  floor=$build/bench_libtorch
else
  echo "bench_libtorch did not build (see below); skipping the C++ floor" >&2
  tail -5 "$work/cmake.log" >&2
fi

# Each round appends lines "<impl> <bench> <wall ns> <cpu ns>" to results:
# one sample of each side per round, so that neither gets more chances at a
# quiet moment.
for ((r = 1; r <= rounds; r++)); do
  echo "round $r/$rounds" >&2
  "$test_bin" -test.run '^$' -test.bench '^Benchmark(TinyAdd|Conv2d)$' -test.benchtime 1s |
    awk '/^Benchmark/ {
      name = $1; sub(/^Benchmark/, "", name); sub(/-[0-9]+$/, "", name)
      name = (name == "TinyAdd") ? "tiny_add" : "conv2d"
      for (i = 3; i < NF; i++) { if ($(i+1) == "ns/op") w = $i; if ($(i+1) == "cpu-ns/op") c = $i }
      print "go", name, w, c }' >>"$work/results"
  "$python" scripts/bench_torch.py --threads "$threads" --device "$device" --repeat 1 |
    awk '!/^#/ { split($2, w, "="); split($3, c, "="); print "pytorch", $1, w[2], c[2] }' >>"$work/results"
  if [ -n "$floor" ]; then
    "$floor" "$threads" "$device" |
      awk '{ split($2, w, "="); split($3, c, "="); print "libtorch", $1, w[2], c[2] }' >>"$work/results"
  fi
done

echo
echo "machine: $(lscpu | sed -n 's/^Model name: *//p' | head -1), $(nproc) cores; device $device; $threads intra-op threads; $bench_memory"
case $device in cuda*) nvidia-smi --query-gpu=name,driver_version --format=csv,noheader 2>/dev/null | sed 's/^/GPU: /' ;; esac
"$python" -c 'import torch; print("PyTorch", torch.__version__)'
echo "best of $rounds rounds; ratio = Go / PyTorch (lower is better)"
awk '
  { k = $1 " " $2; if (!(k in w) || $3 < w[k]) w[k] = $3; if (!(k in c) || $4 < c[k]) c[k] = $4 }
  END {
    printf "%-9s %12s %12s %12s %8s   %12s %12s %8s\n", "bench", "go ns", "pytorch ns", "libtorch ns", "ratio", "go cpu-ns", "py cpu-ns", "ratio"
    n = split("tiny_add conv2d", names, " ")
    for (i = 1; i <= n; i++) {
      b = names[i]
      if (!(("go " b) in w) || !(("pytorch " b) in w)) continue
      lt = (("libtorch " b) in w) ? sprintf("%.1f", w["libtorch " b]) : "-"
      printf "%-9s %12.1f %12.1f %12s %8.3f   %12.1f %12.1f %8.3f\n", b, w["go " b], w["pytorch " b], lt,
        w["go " b] / w["pytorch " b], c["go " b], c["pytorch " b], c["go " b] / c["pytorch " b]
    }
    if (("libtorch tiny_add" in w) && ("pytorch tiny_add" in w))
      printf "libtorch C++ floor for tiny_add: %.3f of PyTorch (wall), %.3f (cpu)\n",
        w["libtorch tiny_add"] / w["pytorch tiny_add"], c["libtorch tiny_add"] / c["pytorch tiny_add"]
  }' "$work/results"
