#!/usr/bin/env bash
# First requests/second figure: tools/call echo on @modelcontextprotocol/server-everything in
# Streamable HTTP mode, directly (legacy session) and through switchyard (2026-07-28, no session),
# interleaved for ROUNDS rounds; prints each run and the medians. Needs wrk and tests/node_modules
# (tests/run.sh installs them) and a release build.
#   perf/first-figures.sh [ROUNDS] [DURATION] [CONNECTIONS]
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${1:-5}; DUR=${2:-5s}; CONNS=${3:-8}
UP=3411; GW=3412
EVERYTHING=tests/node_modules/@modelcontextprotocol/server-everything/dist/index.js
BIN=target/release/switchyard
tmp=$(mktemp -d); trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$tmp"' EXIT
PORT=$UP node "$EVERYTHING" streamableHttp >"$tmp/up.log" 2>&1 &
cat >"$tmp/gw.toml" <<TOML
[gateway]
listen = "127.0.0.1:$GW"
shards = ${SHARDS:-1}
[[servers]]
name = "web"
url = "http://127.0.0.1:$UP/mcp"
TOML
sleep 1.5
$BIN run --config "$tmp/gw.toml" >"$tmp/gw.log" 2>&1 &
for _ in $(seq 100); do curl -sf "127.0.0.1:$GW/health" | grep -q '"status":"ok"' && break; sleep 0.1; done
INIT='{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"wrk","version":"1"}}}'
SID=$(curl -s -D - -o /dev/null "127.0.0.1:$UP/mcp" -H 'Content-Type: application/json' -H 'Accept: application/json, text/event-stream' -d "$INIT" | tr -d '\r' | awk -F': ' 'tolower($1)=="mcp-session-id"{print $2}')
curl -s -o /dev/null "127.0.0.1:$UP/mcp" -H 'Content-Type: application/json' -H 'Accept: application/json, text/event-stream' -H "Mcp-Session-Id: $SID" -H 'MCP-Protocol-Version: 2025-11-25' -d '{"jsonrpc":"2.0","method":"notifications/initialized"}'
DIRECT='{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"echo","arguments":{"message":"hello"}}}'
META='"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}'
VIA='{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"web__echo","arguments":{"message":"hello"},'"$META"'}}'
run() { wrk -t1 -c"$CONNS" -d"$DUR" -s perf/wrk/mcp-post.lua "$1" 2>&1 | awk '/Requests\/sec/{print $2} /^requests/{print}' | tr '\n' ' '; echo; }
for r in $(seq "$ROUNDS"); do
  echo "round $r direct:  $(BODY=$DIRECT SESSION=$SID PROTO=2025-11-25 run "http://127.0.0.1:$UP/mcp")" | tee -a "$tmp/out"
  echo "round $r gateway: $(BODY=$VIA PROTO=2026-07-28 METHOD=tools/call NAME=web__echo run "http://127.0.0.1:$GW/mcp")" | tee -a "$tmp/out"
done
python3 - "$tmp/out" <<'PY'
import re, statistics, sys
rows = {"direct": [], "gateway": []}
for line in open(sys.argv[1]):
    m = re.match(r"round \d+ (\w+):\s+([\d.]+)", line)
    if m: rows[m.group(1)].append(float(m.group(2)))
d, g = statistics.median(rows["direct"]), statistics.median(rows["gateway"])
print(f"median req/s: direct {d:.0f}, through switchyard {g:.0f}, ratio {g/d:.2f}")
PY
