#!/usr/bin/env bash
# Throughput and latency of edema serve against a Python baseline
# (scripts/serve_baseline.py: PyTorch eager behind ThreadingHTTPServer), on
# the same machine, the same network and weights, and the same B-scan
# (512×1024, the challenge's size): 1 and 8 concurrent clients, edema with
# batching (--max-batch 8) and without (--max-batch 1), with one forward pass
# at a time (--workers 1) and two (--workers 2). The five servers run
# side by side and take turns, ROUNDS times, so that all see the same
# machine; each figure is the median of its rounds. Results are in
# docs/BENCHMARKS.md.
#
# Environment:
#   ROUNDS        rounds (default 3)
#   REQUESTS      timed requests per client count and server (default 16)
#   NETWORK       unet (default), unet_nested or unet_nested_dilated
#   SERVERS       edema servers as NAME:MAX_BATCH:WORKERS:THREADS, an empty field
#                 meaning edema serve's default (default "auto::: auto_batch8:8:: one_pass:1:1:N
#                 one_pass_batch8:8:1:N", N the number of cores: edema's defaults, a pass per core
#                 on one thread each without batching; with batches of up to 8; one pass at a time
#                 on all cores, without and with batching)
#   CLIENTS       client counts (default "1 8")
#   EDEMA_PYTHON  the Python with PyTorch (default /usr/bin/python3)
set -euo pipefail
cd "$(dirname "$0")/.."

rounds=${ROUNDS:-3}
servers=${SERVERS:-"auto::: auto_batch8:8:: one_pass:1:1:$(nproc) one_pass_batch8:8:1:$(nproc)"}
client_counts=${CLIENTS:-"1 8"}
requests=${REQUESTS:-16}
network=${NETWORK:-unet}
python=${EDEMA_PYTHON:-/usr/bin/python3}
work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

make -s build >&2
go build -o "$work/loadgen" ./internal/loadgen
"$python" scripts/serve_baseline.py --network "$network" --write-checkpoint "$work/model.pth" \
  --write-info "$work/info.json" --write-slice "$work/slice.bmp"

# wait_for URL: until the server answers.
wait_for() {
  for _ in $(seq 600); do
    if curl -s -o /dev/null "$1"; then return 0; fi
    sleep 0.5
  done
  echo "no server at $1" >&2
  exit 1
}

start_edema() { # NAME PORT MAX_BATCH WORKERS THREADS (empty: the default)
  local flags=()
  [ -n "$3" ] && flags+=(--max-batch "$3")
  [ -n "$4" ] && flags+=(--workers "$4")
  [ -n "$5" ] && flags+=(--threads "$5")
  bin/edema serve --checkpoint "$work/model.pth" --info "$work/info.json" --addr "127.0.0.1:$2" \
    "${flags[@]}" --max-queue 64 --log-format json 2>"$work/$1.log" &
  pids+=($!)
  wait_for "http://127.0.0.1:$2/v2/health/ready"
}
declare -A port
sides=""
p=18081
for spec in $servers; do
  IFS=: read -r name batch workers threads <<<"$spec"
  start_edema "$name" $p "$batch" "$workers" "$threads"
  port[$name]=$p
  sides="$sides $name"
  p=$((p + 1))
done
"$python" scripts/serve_baseline.py --port $p --network "$network" >"$work/python.log" 2>&1 &
pids+=($!)
wait_for "http://127.0.0.1:$p/"
port[python]=$p
sides="${sides# } python"

for ((r = 1; r <= rounds; r++)); do
  for clients in $client_counts; do
    for side in $sides; do
      echo "round $r/$rounds: $side, $clients clients" >&2
      n=$requests
      "$work/loadgen" -url "http://127.0.0.1:${port[$side]}/v1/segment" -body "$work/slice.bmp" \
        -clients "$clients" -requests "$n" -warmup 1 | sed "s/^/$side /" >>"$work/results"
    done
  done
done

echo
echo "machine: $(lscpu | sed -n 's/^Model name: *//p' | head -1), $(nproc) cores; network $network; slice 512×1024; $rounds rounds of $requests requests"
echo "edema: $servers; PyTorch $("$python" -c 'import torch; print(torch.__version__)'), torch.set_num_threads($(nproc)) in the baseline"
awk -v sides="$sides" -v clients="$client_counts" '
  { side = $1; for (i = 2; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
    k = side " " v["clients"]; n[k]++; rps[k, n[k]] = v["rps"]; p50[k, n[k]] = v["p50_ms"]; p99[k, n[k]] = v["p99_ms"] }
  function median(a, k, m,   i, j, t, x) {
    for (i = 1; i <= m; i++) x[i] = a[k, i]
    for (i = 1; i <= m; i++) for (j = i + 1; j <= m; j++) if (x[j] + 0 < x[i] + 0) { t = x[i]; x[i] = x[j]; x[j] = t }
    return (m % 2) ? x[(m + 1) / 2] : (x[m / 2] + x[m / 2 + 1]) / 2
  }
  END {
    printf "%-13s %7s %9s %9s %9s %12s\n", "server", "clients", "req/s", "p50 ms", "p99 ms", "vs python"
    nc = split(clients, cs, " ")
    ns = split(sides, ss, " ")
    for (c = 1; c <= nc; c++) {
      base = median(rps, "python " cs[c], n["python " cs[c]])
      for (s = 1; s <= ns; s++) {
        k = ss[s] " " cs[c]
        r = median(rps, k, n[k])
        printf "%-13s %7s %9.3f %9.0f %9.0f %11.2fx\n", ss[s], cs[c], r, median(p50, k, n[k]), median(p99, k, n[k]), r / base
      }
    }
  }' "$work/results"
