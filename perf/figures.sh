#!/usr/bin/env bash
# Issue 7's gateway figures, native upstream (`loadtest upstream`, HTTP, 1 thread) on loopback,
# switchyard with `shards = 1`, for the io_uring and the epoll driver, same run:
#   1. saturated tools/call throughput (closed loop, 8 agents) direct and through each gateway,
#      and p50 at one agent — interleaved rounds, medians;
#   2. gateway-added latency at 50% of saturation: open loop at half the gateway's own median
#      saturated rate, against the gateway and against the upstream directly at the same rate
#      (p50/p99 through minus direct);
#   3. user-space instructions per proxied tools/call: the gateway under callgrind, counters
#      zeroed, N1 calls, dump, zeroed, N2 calls, dump: (Ir2 - Ir1) / (N2 - N1) removes whatever
#      a run costs once; at a fixed low rate (every call wakes the shard) and in closed loop;
#   4. RSS with 1,000 open legacy sessions (1,000 agents, one connection each, 2 s after setup).
# Each measurement takes /work/build.lock only for itself.
#   perf/figures.sh [ROUNDS] [DURATION]
# Env: OUT, LOADTEST, SWITCHYARD, DRIVERS ("io_uring epoll"), CALLGRIND=0 to skip step 3.
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
cd "$REPO"
ROUNDS=${1:-3}; DUR=${2:-5s}
LT=${LOADTEST:-$REPO/target/release/loadtest}; SY=${SWITCHYARD:-$REPO/target/release/switchyard}
OUT=${OUT:-$(mktemp -d /tmp/figures.XXXXXX)}; LOCK=${LOCK:-/work/build.lock}
DRIVERS=${DRIVERS:-io_uring epoll}
. perf/lib.sh
mkdir -p "$OUT"
UP=3530; pids=()
cleanup() { for p in "${pids[@]}"; do stop_group "$p"; done; }
trap cleanup EXIT
locked() { ( flock 9; "$@" ) 9>"$LOCK"; }
ARGS='{"message":"hello ${seq}"}'

gw_config() { # NAME PORT DRIVER
  printf '[gateway]\nlisten = "127.0.0.1:%s"\nshards = 1\ndriver = "%s"\n[[servers]]\nname = "up"\nurl = "http://127.0.0.1:%s/mcp"\n' \
    "$2" "$3" "$UP" >"$OUT/$1.toml"
}

{
  echo "# perf/figures.sh $ROUNDS $DUR: native upstream (HTTP, 1 thread), switchyard shards = 1"
  echo "date $(date -u +%Y-%m-%dT%H:%M:%SZ), $(machine_line), switchyard $(git rev-parse --short HEAD)"
} | tee "$OUT/header.txt"
pids+=("$(start_bg "$OUT/upstream.log" "$LT" upstream --listen 127.0.0.1:$UP)")
port=3533; declare -A URL GWPID
for d in $DRIVERS; do
  gw_config "gw-$d" "$port" "$d"
  GWPID[$d]=$(start_bg "$OUT/gw-$d.log" "$SY" run --config "$OUT/gw-$d.toml"); pids+=("${GWPID[$d]}")
  URL[$d]=http://127.0.0.1:$port/mcp; port=$((port + 1))
done
wait_mcp 20 "http://127.0.0.1:$UP/mcp" 2026-07-28 echo "$ARGS" || { echo "upstream did not start" >&2; exit 1; }
for d in $DRIVERS; do wait_mcp 30 "${URL[$d]}" 2026-07-28 up__echo "$ARGS" || { echo "gateway $d did not start" >&2; exit 1; }; done

# 1. Saturation and one-agent p50, interleaved.
targets=(direct $DRIVERS); n=${#targets[@]}
url_of() { if [ "$1" = direct ]; then echo "http://127.0.0.1:$UP/mcp echo"; else echo "${URL[$1]} up__echo"; fi; }
sat() {
  local t=$1 r=$2 url tool
  read -r url tool <<<"$(url_of "$t")"
  "$LT" run --url "$url" --tool "$tool" --args "$ARGS" --closed --agents 8 --duration "$DUR" --warmup 1s --json --quiet >"$OUT/sat-$t.r$r.json"
  "$LT" run --url "$url" --tool "$tool" --args "$ARGS" --closed --agents 1 --duration 3s --warmup 500ms --json --quiet >"$OUT/one-$t.r$r.json"
}
for r in $(seq "$ROUNDS"); do
  for i in $(seq 0 $((n - 1))); do t=${targets[$(( (i + r - 1) % n ))]}; echo "saturation round $r: $t" >&2; locked sat "$t" "$r"; done
done
median_rps() { python3 -c 'import json,sys,statistics; print(statistics.median(json.load(open(f))["throughput_rps"] for f in sys.argv[1:]))' "$@"; }

# 2. Half of each gateway's saturated rate, open loop, gateway and direct at that rate.
half() {
  local d=$1 r=$2 rate=$3
  "$LT" run --url "http://127.0.0.1:$UP/mcp" --tool echo --args "$ARGS" --rate "$rate" --agents 8 --duration "$DUR" --warmup 1s --json --quiet >"$OUT/half-$d-direct.r$r.json"
  "$LT" run --url "${URL[$d]}" --tool up__echo --args "$ARGS" --rate "$rate" --agents 8 --duration "$DUR" --warmup 1s --json --quiet >"$OUT/half-$d-gw.r$r.json"
}
for d in $DRIVERS; do
  rate=$(python3 -c "print(round(0.5 * $(median_rps "$OUT"/sat-"$d".r*.json)))"); echo "$rate" >"$OUT/half-$d.rate"
  for r in $(seq "$ROUNDS"); do echo "half load round $r: $d at $rate/s" >&2; locked half "$d" "$r" "$rate"; done
done

# 3. Instructions per call under callgrind.
cg_total() { awk '/^totals:/{print $2}' "$1"; }
# callgrind acts on a command only when the program runs code: an idle shard is woken by a
# /health request (one in every phase, so it cancels out in the difference).
cg_control() {
  local pid=$1 c
  callgrind_control "$2" "$pid" >/dev/null 2>&1 & c=$!
  while kill -0 "$c" 2>/dev/null; do curl -s -m 1 -o /dev/null http://127.0.0.1:3540/health || true; sleep 0.2; done
  wait "$c"
}
cg_run() { # DRIVER PID LABEL LOADARGS...
  local d=$1 pid=$2 label=$3; shift 3
  cg_control "$pid" --zero
  "$LT" run --url http://127.0.0.1:3540/mcp --tool up__echo --args "$ARGS" --warmup 0s --json --quiet "$@" >"$OUT/cg-$d-$label.json"
  cg_control "$pid" --dump="cg-$d-$label"
}
if [ "${CALLGRIND:-1}" != 0 ]; then
  for d in $DRIVERS; do
    gw_config "cg-$d" 3540 "$d"
    cgpid=$(start_bg "$OUT/cg-$d.log" valgrind --tool=callgrind --compress-strings=no --compress-pos=no --callgrind-out-file="$OUT/callgrind-$d.out" "$SY" run --config "$OUT/cg-$d.toml")
    pids+=("$cgpid")
    wait_mcp 60 http://127.0.0.1:3540/mcp 2026-07-28 up__echo "$ARGS" || { echo "callgrind gateway $d did not start" >&2; exit 1; }
    vpid=$cgpid # valgrind runs the gateway in its own process
    echo "callgrind: $d" >&2
    locked cg_run "$d" "$vpid" rate-n1 --rate 200 --agents 1 --duration 3s
    locked cg_run "$d" "$vpid" rate-n2 --rate 200 --agents 1 --duration 9s
    locked cg_run "$d" "$vpid" closed-n1 --closed --agents 8 --duration 3s
    locked cg_run "$d" "$vpid" closed-n2 --closed --agents 8 --duration 9s
    stop_group "$cgpid"
    # Dumps are numbered in order: .1 rate-n1, .2 rate-n2, .3 closed-n1, .4 closed-n2.
    for part in 2 4; do
      callgrind_annotate --inclusive=no --threshold=90 "$OUT/callgrind-$d.out.$part" 2>/dev/null | head -70 >"$OUT/callgrind-$d.out.$part.top.txt" || true
    done
  done
fi

# 4. RSS with 1,000 open legacy sessions (a fresh gateway per driver).
sessions() {
  local d=$1 gpid idle peak=0 after lpid rss
  gw_config "rss-$d" 3541 "$d"
  gpid=$(start_bg "$OUT/rss-$d.log" "$SY" run --config "$OUT/rss-$d.toml")
  wait_mcp 30 http://127.0.0.1:3541/mcp 2026-07-28 up__echo "$ARGS"
  idle=$(tree_rss "$gpid" | cut -d' ' -f1)
  "$LT" run --url http://127.0.0.1:3541/mcp --era legacy --agents 1000 --rate 500 --tool up__echo --args "$ARGS" \
    --duration 6s --warmup 0s --json --quiet >"$OUT/rss-$d.json" & lpid=$!
  while kill -0 "$lpid" 2>/dev/null; do
    rss=$(tree_rss "$gpid" | cut -d' ' -f1); [ "$rss" -gt "$peak" ] && peak=$rss; sleep 0.25
  done
  wait "$lpid" || true
  after=$(tree_rss "$gpid" | cut -d' ' -f1)
  stop_group "$gpid"
  echo "{\"driver\":\"$d\",\"idle_kb\":$idle,\"with_1000_sessions_kb\":$peak,\"after_sessions_closed_kb\":$after}" >"$OUT/rss-$d.sessions.json"
}
for d in $DRIVERS; do echo "1000 sessions: $d" >&2; locked sessions "$d"; done

python3 perf/figures_table.py "$OUT" "$DRIVERS" | tee "$OUT/table.md"
echo "raw results: $OUT" >&2
