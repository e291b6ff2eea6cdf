#!/usr/bin/env bash
# The gateway's own cost: `loadtest upstream` (native, fast) directly vs through switchyard
# (shards = 1), in both protocol eras, with `loadtest compare` (interleaved rounds, medians, ratios
# against the direct run of the same era). Closed loop gives maximum throughput; open loop at a
# fixed rate gives latency under load without coordinated omission.
# Needs release builds of both binaries:
#   cargo build --release -p switchyard -p loadtest
#   perf/compare.sh [ROUNDS] [DURATION] [AGENTS] [RATE]
# Env: SHARDS (default 1), UP_PORT (3421), GW_PORT (3422), MODES ("closed open"),
#      LOADTEST / SWITCHYARD (the binaries; default target/release/...).
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${1:-3}; DUR=${2:-5s}; AGENTS=${3:-8}; RATE=${4:-5000}
UP=${UP_PORT:-3421}; GW=${GW_PORT:-3422}; MODES=${MODES:-closed open}
LT=${LOADTEST:-target/release/loadtest}; SY=${SWITCHYARD:-target/release/switchyard}
for bin in "$LT" "$SY"; do
  [ -x "$bin" ] || { echo "missing $bin: cargo build --release -p switchyard -p loadtest" >&2; exit 1; }
done
tmp=$(mktemp -d); pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$tmp"; }
trap cleanup EXIT

"$LT" upstream --listen "127.0.0.1:$UP" >"$tmp/up.log" 2>&1 & pids+=($!)
for _ in $(seq 50); do grep -qs listening "$tmp/up.log" && break; sleep 0.1; done
grep -q listening "$tmp/up.log" || { cat "$tmp/up.log" >&2; exit 1; }
cat >"$tmp/gw.toml" <<TOML
[gateway]
listen = "127.0.0.1:$GW"
shards = ${SHARDS:-1}
[[servers]]
name = "up"
url = "http://127.0.0.1:$UP/mcp"
TOML
"$SY" run --config "$tmp/gw.toml" >"$tmp/gw.log" 2>&1 & pids+=($!)
for _ in $(seq 100); do curl -sf "127.0.0.1:$GW/health" | grep -q '"status":"ok"' && break; sleep 0.1; done
curl -sf "127.0.0.1:$GW/health" | grep -q '"status":"ok"' || { cat "$tmp/gw.log" >&2; exit 1; }

echo "# loadtest compare: native upstream direct vs through switchyard"
echo "date $(date -u +%Y-%m-%dT%H:%M:%SZ), nproc $(nproc), cpu $(awk -F': ' '/model name/{print $2; exit}' /proc/cpuinfo)"
echo "load average $(cut -d" " -f1-3 /proc/loadavg), gateway $("$SY" --version 2>/dev/null || echo "?")"
echo "shards ${SHARDS:-1}, $ROUNDS rounds of $DUR after 1s warm-up, $AGENTS agents, tools/call echo"
for mode in $MODES; do
  if [ "$mode" = open ]; then load=(--rate "$RATE"); title="open loop at $RATE req/s"; else load=(--closed); title="closed loop"; fi
  for era in 2026-07-28 legacy; do
    echo
    echo "## $title, era $era"
    "$LT" compare --quiet --rounds "$ROUNDS" --duration "$DUR" --warmup 1s --agents "$AGENTS" \
      --era "$era" "${load[@]}" \
      --target "direct=http://127.0.0.1:$UP/mcp" \
      --target "gateway=http://127.0.0.1:$GW/mcp,prefix=up__"
  done
done
