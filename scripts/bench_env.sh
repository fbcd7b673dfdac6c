# Sourced by scripts/bench.sh, bench_models.sh and bench_train.sh, from the
# repository root: a scratch folder, the Go test binary, and the memory
# settings that the Go and the PyTorch side run under.
#
#   EDEMA_BENCH_MALLOC      glibc's allocator settings for both processes:
#                           "default" (glibc as shipped, as PyTorch users run
#                           it; the default) or "tuned" (one arena, no
#                           trimming, 32 MiB mmap threshold)
#   EDEMA_BENCH_HOST_CACHE  1 (default): the Go side uses the host cache, as
#                           the edema command does (torch.EnableHostCache);
#                           0: it allocates as PyTorch does
#
# glibc maps large blocks freshly from the kernel and unmaps them when they
# are freed, so a process that makes and frees the same big tensors over and
# over page-faults them in each time; on virtual machines that can cost more
# than the arithmetic. The host cache keeps such blocks; "tuned" makes glibc
# keep more of them, for both sides.
malloc=${EDEMA_BENCH_MALLOC:-default}
case $malloc in
tuned) export MALLOC_ARENA_MAX=1 MALLOC_MMAP_THRESHOLD_=33554432 MALLOC_TRIM_THRESHOLD_=4294967296 ;;
default) ;;
*) echo "EDEMA_BENCH_MALLOC=$malloc: want tuned or default" >&2; exit 2 ;;
esac
export EDEMA_BENCH_HOST_CACHE=${EDEMA_BENCH_HOST_CACHE:-1}
case $EDEMA_BENCH_HOST_CACHE in
0) bench_memory="malloc $malloc for both; Go without the host cache" ;;
1) bench_memory="malloc $malloc for both; Go with the host cache" ;;
*) echo "EDEMA_BENCH_HOST_CACHE=$EDEMA_BENCH_HOST_CACHE: want 0 or 1" >&2; exit 2 ;;
esac

# A scratch folder for the run, removed at exit.
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# go_test_binary PKG PREBUILT prints the path of a `go test -c` binary of
# ./PKG: PREBUILT when it is set (for machines without Go), else one built
# into $work against the shim in ${build:-build}.
go_test_binary() {
  if [ -n "$2" ]; then
    echo "$2"
    return
  fi
  make -s shim BUILD="${build:-build}" >&2
  go test -c -o "$work/$1.test" "./$1" >&2
  echo "$work/$1.test"
}
