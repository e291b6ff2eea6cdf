#!/usr/bin/env bash
# The headline table: one stdio upstream (server-everything's echo by default), reached
#   - directly (the stdio floor: `loadtest stdio-floor`, no gateway),
#   - through switchyard (1 shard and one per core; io_uring and epoll drivers),
#   - through each peer gateway perf/peers.sh installed,
# in interleaved rounds (the order rotates each round), medians at the end. Per target and round:
# closed loop with 8 in flight (throughput, p50, p99), closed loop with 1 in flight (p50), and
# the gateway's RSS (its process tree less the upstream server: VmRSS after the load, VmHWM peak).
# Every answer is checked (id and the echoed sequence number): a wrong answer is an error.
# Each measurement takes /work/build.lock only for itself, so others can build in between.
#
#   perf/headline.sh [ROUNDS] [DURATION]        e.g. perf/headline.sh 3 5s
# Env: UPSTREAM (everything | native), PEERS (default: every installed peer), SY_TARGETS,
#      OUT (folder for the raw JSON; default a new temporary one), LOADTEST, SWITCHYARD,
#      WRK=0 to skip the wrk cross-check. Needs: cargo build --release -p switchyard -p loadtest.
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
cd "$REPO"
ROUNDS=${1:-3}; DUR=${2:-5s}
UPSTREAM=${UPSTREAM:-everything}
LT=${LOADTEST:-$REPO/target/release/loadtest}; SY=${SWITCHYARD:-$REPO/target/release/switchyard}
OUT=${OUT:-$(mktemp -d /tmp/headline.XXXXXX)}
LOCK=${LOCK:-/work/build.lock}
. perf/lib.sh
for bin in "$LT" "$SY"; do [ -x "$bin" ] || { echo "missing $bin: cargo build --release -p switchyard -p loadtest" >&2; exit 1; }; done
mkdir -p "$OUT"
case "$UPSTREAM" in
  everything) UP_CMD=$(readlink -f tests/node_modules/.bin/mcp-server-everything); UP_ARGS=(); UP_PAT=server-everything ;;
  native) UP_CMD=$LT; UP_ARGS=(upstream --stdio); UP_PAT="loadtest upstream" ;;
  *) echo "UPSTREAM: everything | native" >&2; exit 2 ;;
esac
SY_TARGETS=${SY_TARGETS:-sy1-io_uring sy1-epoll syN-io_uring syN-epoll sy1-io_uring-2026}
if [ -z "${PEERS+x}" ]; then
  PEERS=""; for p in pymcp npmmcp mcplex cforge; do perf/peers.sh status | grep -q "^$p installed" && PEERS="$PEERS $p"; done
fi
TARGETS="floor $SY_TARGETS $PEERS"
ARGS='{"message":"hello ${seq}"}'
GW_PORT=3520

# Starts switchyard for target NAME (sy<1|N>-<driver>[-2026]); sets T_URL T_ERA T_TOOL T_PIDS.
start_switchyard() {
  local name=$1 shards driver
  case "$name" in sy1-*) shards=1 ;; *) shards=0 ;; esac
  driver=${name#sy?-}; driver=${driver%-2026}
  {
    echo "[gateway]"; echo "listen = \"127.0.0.1:$GW_PORT\""; echo "shards = $shards"; echo "driver = \"$driver\""
    echo "[[servers]]"; echo 'name = "up"'; echo "command = \"$UP_CMD\""
    printf 'args = [%s]\n' "$(for a in "${UP_ARGS[@]}"; do printf '"%s",' "$a"; done)"
  } >"$OUT/$name.toml"
  T_PIDS=$(start_bg "$OUT/$name.log" "$SY" run --config "$OUT/$name.toml")
  T_URL=http://127.0.0.1:$GW_PORT/mcp; T_TOOL=up__echo; T_KEY=""
  case "$name" in *-2026) T_ERA=2026-07-28 ;; *) T_ERA=legacy ;; esac
  wait_mcp 30 "$T_URL" "$T_ERA" "$T_TOOL" "$ARGS" || { echo "switchyard $name did not start:" >&2; tail -5 "$OUT/$name.log" >&2; stop_group "$T_PIDS"; return 1; }
}

# One target, one round: load, RSS, stop. Writes $OUT/NAME.rROUND.json.
measure() {
  local name=$1 round=$2 a8 a1 rss="0 0" key=() wrk_line=""
  if [ "$name" = floor ]; then
    a8=$("$LT" stdio-floor --inflight 8 --duration "$DUR" --warmup 1s --json --quiet -- "$UP_CMD" "${UP_ARGS[@]}" 2>/dev/null)
    a1=$("$LT" stdio-floor --inflight 1 --duration 3s --warmup 500ms --json --quiet -- "$UP_CMD" "${UP_ARGS[@]}" 2>/dev/null)
  else
    case "$name" in
      sy*) start_switchyard "$name" || return 0 ;;
      *)
        local envs
        envs=$(perf/peers.sh start "$name" "$UPSTREAM" 2>>"$OUT/peers.err") || { echo "  $name did not start (see $OUT/peers.err)" >&2; return 0; }
        eval "$envs"
        T_URL=$PEER_URL; T_ERA=$PEER_ERA; T_TOOL=$PEER_TOOL; T_KEY=$PEER_KEY; T_PIDS=$PEER_PIDS ;;
    esac
    [ -n "$T_KEY" ] && key=(--api-key "$T_KEY")
    a8=$("$LT" run --url "$T_URL" --era "$T_ERA" --tool "$T_TOOL" --args "$ARGS" "${key[@]}" --closed --agents 8 \
      --duration "$DUR" --warmup 1s --timeout 30s --json --quiet)
    a1=$("$LT" run --url "$T_URL" --era "$T_ERA" --tool "$T_TOOL" --args "$ARGS" "${key[@]}" --closed --agents 1 \
      --duration 3s --warmup 500ms --timeout 30s --json --quiet)
    # shellcheck disable=SC2086
    rss=$(RSS_EXCLUDE=$UP_PAT tree_rss $T_PIDS)
    if [ "${WRK:-1}" != 0 ] && command -v wrk >/dev/null && { [ "$name" = sy1-io_uring-2026 ] || [ "$name" = mcplex ]; }; then
      wrk_line=$(wrk_check "$name")
    fi
    case "$name" in sy*) stop_group "$T_PIDS" ;; *) perf/peers.sh stop "$name" ;; esac
  fi
  python3 - "$name" "$round" "$rss" "$wrk_line" "$a8" "$a1" >"$OUT/$name.r$round.json" <<'PY'
import json, sys
name, rnd, rss, wrk, a8, a1 = sys.argv[1:7]
r, h = (int(x) for x in rss.split())
print(json.dumps({"target": name, "round": int(rnd), "rss_kb": r, "hwm_kb": h, "wrk": wrk,
                  "at8": json.loads(a8), "at1": json.loads(a1)}))
PY
}

# The independent cross-check: wrk, 1 thread, 8 connections, the same tools/call (no answer check
# beyond "has a result"; mcp-post.lua counts the rest as errors).
wrk_check() {
  local name=$1 body meta
  if [ "$name" = mcplex ]; then
    body='{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"echo","arguments":{"message":"hello 7"}}}'
    BODY=$body wrk -t1 -c8 -d"$DUR" -s perf/wrk/mcp-post.lua "$T_URL" 2>&1 | awk '/Requests\/sec/{r=$2} /^requests/{l=$0} END{print r " req/s; " l}'
  else
    meta='"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}'
    body='{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"up__echo","arguments":{"message":"hello 7"},'"$meta"'}}'
    BODY=$body PROTO=2026-07-28 METHOD=tools/call NAME=up__echo wrk -t1 -c8 -d"$DUR" -s perf/wrk/mcp-post.lua "$T_URL" 2>&1 |
      awk '/Requests\/sec/{r=$2} /^requests/{l=$0} END{print r " req/s; " l}'
  fi
}

{
  echo "# perf/headline.sh $ROUNDS $DUR, upstream $UPSTREAM ($UP_CMD ${UP_ARGS[*]})"
  echo "date $(date -u +%Y-%m-%dT%H:%M:%SZ), $(machine_line)"
  echo "switchyard $("$SY" --version 2>/dev/null) ($(git rev-parse --short HEAD)), targets: $TARGETS"
} | tee "$OUT/header.txt"
set -- $TARGETS; n=$#; list=("$@")
for round in $(seq "$ROUNDS"); do
  for i in $(seq 0 $((n - 1))); do
    t=${list[$(( (i + round - 1) % n ))]}
    echo "round $round: $t (load $(cut -d' ' -f1 /proc/loadavg))" >&2
    exec 9>"$LOCK"; flock 9
    measure "$t" "$round" || echo "  $t failed in round $round" >&2
    flock -u 9; exec 9>&-
  done
done
python3 perf/headline_table.py "$OUT" | tee "$OUT/table.md"
echo "raw results: $OUT" >&2
