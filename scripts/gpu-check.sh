#!/usr/bin/env bash
# Runs the CUDA tests and benchmarks on a GPU machine that has PyTorch with
# CUDA (pip's torch 2.x, say) but no Go toolchain.
#
# On a machine with Go, build the test binaries first:
#
#   make gpu-binaries        # writes .gpu/*.test and .gpu/manifest
#
# then copy the repository, .gpu/ included, to the GPU machine and run
#
#   scripts/gpu-check.sh [OUT]
#
# It builds the shim against that machine's PyTorch into .gpu/build (CMake
# with torch.utils.cmake_prefix_path; a direct g++ build when CMake cannot
# configure, e.g. without a CUDA toolkit), runs every test binary with
# LD_LIBRARY_PATH at the new shim and torch/lib and EDEMA_EXPECT_CUDA=1 (a
# GPU test fails rather than skips if CUDA is unavailable), then the
# benchmarks on CUDA and on the CPU. Logs go to OUT (default: $OUT, or
# out/gpu-check); the exit status is non-zero when a build or test failed.
#
# Environment: EDEMA_PYTHON (default python3), JOBS (build jobs, nproc).
set -uo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

out=${1:-${OUT:-out/gpu-check}}
mkdir -p "$out"
out=$(cd "$out" && pwd)
py=${EDEMA_PYTHON:-python3}
jobs=${JOBS:-$(nproc)}
build=$root/.gpu/build
status=0

log() { echo "== $*" | tee -a "$out/summary.log"; }
fail() { log "FAILED: $*"; status=1; }

log "gpu-check $(date -u +%FT%TZ) on $(hostname)"
{ nvidia-smi || true; } >"$out/nvidia-smi.log" 2>&1
if ! "$py" - >"$out/python.log" 2>&1 <<'EOF'; then
import torch
print("torch", torch.__version__, "cuda", torch.version.cuda, "available", torch.cuda.is_available(),
      "devices", torch.cuda.device_count())
print("cmake_prefix_path", torch.utils.cmake_prefix_path)
EOF
  fail "$py cannot import torch (see python.log)"
  exit 1
fi
cat "$out/python.log" | tee -a "$out/summary.log"
prefix=$("$py" -c 'import torch; print(torch.utils.cmake_prefix_path)')
torchlib=$("$py" -c 'import os, torch; print(os.path.join(os.path.dirname(torch.__file__), "lib"))')
abi=$("$py" -c 'import torch; print(int(torch._C._GLIBCXX_USE_CXX11_ABI))')

# The shim, against this PyTorch.
log "building the shim in $build"
rm -rf "$build"
if cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH="$prefix" >"$out/cmake.log" 2>&1 &&
  cmake --build "$build" -j "$jobs" >>"$out/cmake.log" 2>&1; then
  cmake --build "$build" -j "$jobs" --target bench_libtorch >>"$out/cmake.log" 2>&1 ||
    log "bench_libtorch did not build (see cmake.log)"
else
  log "CMake failed (see cmake.log); building the shim with g++ directly"
  mkdir -p "$build"
  inc=$("$py" -c 'from torch.utils.cpp_extension import include_paths; print(" ".join("-I" + p for p in include_paths()))')
  cuda_lib=""
  [ -e "$torchlib/libtorch_cuda.so" ] && cuda_lib="-ltorch_cuda"
  # shellcheck disable=SC2086
  if ! g++ -O3 -DNDEBUG -std=c++17 -fPIC -shared -D_GLIBCXX_USE_CXX11_ABI="$abi" -Itorch $inc \
    torch/shim/*.cpp -o "$build/libedema_torch.so" -Wl,-soname,libedema_torch.so \
    -L"$torchlib" -Wl,--no-as-needed $cuda_lib -ltorch -ltorch_cpu -lc10 -Wl,--as-needed \
    -Wl,-rpath,"$torchlib" >>"$out/cmake.log" 2>&1; then
    fail "the shim did not build (see cmake.log)"
    exit 1
  fi
fi
ldd "$build/libedema_torch.so" >"$out/ldd.log" 2>&1
grep -q libtorch_cuda "$out/ldd.log" || log "warning: the shim does not link libtorch_cuda (see ldd.log)"

export LD_LIBRARY_PATH="$build:$torchlib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export EDEMA_EXPECT_CUDA=1 EDEMA_PYTHON="$py"

# The tests, each binary in its package's folder (tests read testdata).
if [ ! -s .gpu/manifest ]; then
  fail "no .gpu/manifest: run 'make gpu-binaries' on a machine with Go first"
  exit 1
fi
while read -r dir bin; do
  [ -n "$dir" ] || continue
  name=${bin%.test}
  log "test $dir"
  if (cd "$dir" && "$root/.gpu/$bin" -test.v -test.count=1 -test.timeout 10m) >"$out/test-$name.log" 2>&1; then
    log "   $(grep -c -- '--- PASS' "$out/test-$name.log") passed, $(grep -c -- '--- SKIP' "$out/test-$name.log") skipped"
  else
    fail "tests of $dir (see test-$name.log)"
    grep -E '^\s*--- FAIL' "$out/test-$name.log" | head -20 | tee -a "$out/summary.log"
  fi
done <.gpu/manifest

# Benchmarks, Go against PyTorch eager, on the GPU and on the CPU.
torch_test=$(awk '$1 == "torch" { print $2 }' .gpu/manifest)
if [ -n "$torch_test" ]; then
  for dev in cuda cpu; do
    log "benchmarks on $dev"
    if TORCH_TEST="$root/.gpu/$torch_test" BUILD="$build" EDEMA_BENCH_DEVICE=$dev ROUNDS=${ROUNDS:-3} \
      scripts/bench.sh >"$out/bench-$dev.log" 2>&1; then
      tail -6 "$out/bench-$dev.log" | tee -a "$out/summary.log"
    else
      fail "benchmarks on $dev (see bench-$dev.log)"
    fi
  done
fi

log "done, status $status; logs in $out"
exit $status
