#!/usr/bin/env bash
# Peer gateways for the headline table, installed OUTSIDE this repository (nothing of them is
# committed), each put in front of the same stdio upstream:
#   pymcp     Python mcp-proxy 0.13.0 (PyPI), its own venv          legacy Streamable HTTP, sessions
#   npmmcp    npm mcp-proxy 6.7.19, its own folder                  legacy Streamable HTTP, sessions
#   mcplex    MCPlex (Rust, ModernOps888/mcplex @ ac44aa6), cargo build --release
#                                                                   plain JSON POST, no sessions
#   cforge    IBM ContextForge mcp-contextforge-gateway 1.0.7.post20260921 (PyPI), own venv,
#             SQLite, in-memory cache, rate limiting off, JWT auth; the stdio server is bridged
#             by its own `mcpgateway.translate` and registered as a gateway
#                                                                   legacy Streamable HTTP, no sessions
#
#   perf/peers.sh install [NAME...]     install (all by default); a failure is reported, not fatal
#   perf/peers.sh start NAME [UPSTREAM] start one in front of UPSTREAM (everything | native),
#                                       wait until a tools/call answers, print how to reach it
#   perf/peers.sh stop NAME             stop it (its whole process group, upstream included)
#   perf/peers.sh status                what is installed
#
# `start` prints shell assignments (PEER_URL, PEER_ERA, PEER_TOOL, PEER_ARGS, PEER_KEY, PEER_PIDS)
# on stdout for perf/headline.sh and a human line on stderr. Upstreams: `everything` is
# @modelcontextprotocol/server-everything over stdio (tests/node_modules), `native` is
# `loadtest upstream --stdio`. Env: PEERS_DIR (default /work/peers), MCPLEX_SRC (a git clone or
# mirror of MCPlex to check out when $PEERS_DIR/mcplex is missing), LOADTEST.
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PEERS_DIR=${PEERS_DIR:-/work/peers}
LT=${LOADTEST:-$REPO/target/release/loadtest}
# shellcheck source=perf/lib.sh
. "$REPO/perf/lib.sh"
MCPLEX_COMMIT=ac44aa6ff558758b2eb2108ea6813167ce516ffb
RUN=$PEERS_DIR/run
ALL_PEERS="pymcp npmmcp mcplex cforge"

upstream_cmd() {
  case "${1:-everything}" in
    everything)
      local p
      p=$(readlink -f "$REPO/tests/node_modules/.bin/mcp-server-everything") && [ -e "$p" ] ||
        { echo "server-everything not found under tests/node_modules (tests/run.sh installs it)" >&2; return 1; }
      echo "$p" ;;
    native) echo "$LT upstream --stdio" ;;
    *) echo "unknown upstream $1 (everything | native)" >&2; return 1 ;;
  esac
}

# The upstream's process, to leave out of a gateway's RSS.
upstream_pattern() { case "${1:-everything}" in everything) echo "server-everything" ;; native) echo "loadtest upstream" ;; esac; }

install_one() {
  local name=$1
  mkdir -p "$PEERS_DIR"
  case "$name" in
    pymcp)
      python3 -m venv "$PEERS_DIR/pymcp" && "$PEERS_DIR/pymcp/bin/pip" install -q mcp-proxy==0.13.0 ;;
    npmmcp)
      mkdir -p "$PEERS_DIR/npmmcp" && (cd "$PEERS_DIR/npmmcp" && { [ -f package.json ] || npm init -y >/dev/null; } &&
        npm install --no-fund --no-audit mcp-proxy@6.7.19 >/dev/null) ;;
    mcplex)
      if [ ! -f "$PEERS_DIR/mcplex/Cargo.toml" ]; then
        [ -n "${MCPLEX_SRC:-}" ] || { echo "mcplex: no source; set MCPLEX_SRC to a clone of ModernOps888/mcplex" >&2; return 1; }
        git clone -q "$MCPLEX_SRC" "$PEERS_DIR/mcplex"
      fi
      (cd "$PEERS_DIR/mcplex" && git checkout -q "$MCPLEX_COMMIT" &&
        CARGO_TARGET_DIR="$PEERS_DIR/mcplex/target" flock /work/build.lock cargo build --release -q) ;;
    cforge)
      python3 -m venv "$PEERS_DIR/cforge" &&
        "$PEERS_DIR/cforge/bin/pip" install -q "mcp-contextforge-gateway==1.0.7.post20260921" ;;
    *) echo "unknown peer $name ($ALL_PEERS)" >&2; return 1 ;;
  esac
}

installed() {
  case "$1" in
    pymcp) [ -x "$PEERS_DIR/pymcp/bin/mcp-proxy" ] ;;
    npmmcp) [ -x "$PEERS_DIR/npmmcp/node_modules/.bin/mcp-proxy" ] ;;
    mcplex) [ -x "$PEERS_DIR/mcplex/target/release/mcplex" ] ;;
    cforge) [ -x "$PEERS_DIR/cforge/bin/mcpgateway" ] ;;
    *) return 1 ;;
  esac
}

# ContextForge reads its settings from the environment; secrets are made once per PEERS_DIR.
cforge_env() {
  local f=$PEERS_DIR/cforge-run/env
  mkdir -p "$PEERS_DIR/cforge-run"
  if [ ! -f "$f" ]; then
    cat >"$f" <<ENV
DATABASE_URL=sqlite:///$PEERS_DIR/cforge-run/mcp.db
JWT_SECRET_KEY=$(head -c 32 /dev/urandom | base64 | tr -d '=+/')
AUTH_ENCRYPTION_SECRET=$(head -c 32 /dev/urandom | base64 | tr -d '=+/')
PLATFORM_ADMIN_PASSWORD=Bench-$(head -c 9 /dev/urandom | base64 | tr -d '=+/')-1
BASIC_AUTH_PASSWORD=Bench-$(head -c 9 /dev/urandom | base64 | tr -d '=+/')-1
MCPGATEWAY_UI_ENABLED=false
MCPGATEWAY_ADMIN_API_ENABLED=true
CACHE_TYPE=memory
LOG_LEVEL=WARNING
SSRF_ALLOW_LOCALHOST=true
RATE_LIMITING_ENABLED=false
TOOL_RATE_LIMIT=1000000
ENV
  fi
  set -a; . "$f"; set +a
}

start_one() {
  local name=$1 up=${2:-everything} cmd pid pid2 url era tool args key=""
  cmd=$(upstream_cmd "$up") || return 1
  installed "$name" || { echo "$name is not installed (perf/peers.sh install $name)" >&2; return 1; }
  mkdir -p "$RUN"
  era=legacy; args='{"message":"hello ${seq}"}'; tool=echo
  case "$name" in
    pymcp)
      url=http://127.0.0.1:3501/mcp
      # shellcheck disable=SC2086
      pid=$(start_bg "$RUN/pymcp.log" "$PEERS_DIR/pymcp/bin/mcp-proxy" --port 3501 --host 127.0.0.1 -- $cmd) ;;
    npmmcp)
      url=http://127.0.0.1:3502/mcp
      # shellcheck disable=SC2086
      pid=$(start_bg "$RUN/npmmcp.log" "$PEERS_DIR/npmmcp/node_modules/.bin/mcp-proxy" --port 3502 --host 127.0.0.1 --server stream -- $cmd) ;;
    mcplex)
      url=http://127.0.0.1:3503/mcp
      mkdir -p "$RUN/mcplex"
      local prog rest
      read -r prog rest <<<"$cmd"
      cat >"$RUN/mcplex/mcplex.toml" <<TOML
[gateway]
listen = "127.0.0.1:3503"
dashboard = "127.0.0.1:3509"
hot_reload = false
name = "bench"
[router]
strategy = "passthrough"
mode = "passthrough"
[security]
enable_rbac = false
enable_audit_log = false
[cache]
enabled = false
[[servers]]
name = "upstream"
command = "$prog"
args = [$(for a in $rest; do printf '"%s",' "$a"; done)]
TOML
      pid=$(cd "$RUN/mcplex" && start_bg "$RUN/mcplex.log" "$PEERS_DIR/mcplex/target/release/mcplex" --config mcplex.toml) ;;
    cforge)
      url=http://127.0.0.1:3504/mcp; tool=upstream-echo
      cforge_env
      rm -f "$PEERS_DIR"/cforge-run/mcp.db*
      # The stdio bridge ContextForge ships for stdio servers, then the gateway itself.
      pid2=$(cd "$PEERS_DIR/cforge-run" && DATABASE_URL="sqlite:///$PEERS_DIR/cforge-run/translate.db" \
        start_bg "$RUN/cforge-translate.log" "$PEERS_DIR/cforge/bin/python" -m mcpgateway.translate \
        --stdio "$cmd" --port 3505 --expose-streamable-http)
      pid=$(cd "$PEERS_DIR/cforge-run" && start_bg "$RUN/cforge.log" "$PEERS_DIR/cforge/bin/mcpgateway" --host 127.0.0.1 --port 3504)
      echo "$pid2" >"$RUN/cforge-translate.pid"
      local i
      for i in $(seq 120); do
        curl -sf -m 2 -o /dev/null 127.0.0.1:3504/health && ss -ltn | grep -q '127.0.0.1:3505 ' && break
        sleep 0.5
      done
      key=$("$PEERS_DIR/cforge/bin/python" -m mcpgateway.utils.create_jwt_token -u admin@example.com --admin -e 600 2>/dev/null | tail -1)
      curl -sf -m 60 -X POST 127.0.0.1:3504/gateways -H "Authorization: Bearer $key" -H 'Content-Type: application/json' \
        -d '{"name":"upstream","url":"http://127.0.0.1:3505/mcp","transport":"STREAMABLEHTTP"}' >"$RUN/cforge-register.json" ||
        { echo "cforge: registering the upstream failed (see $RUN/cforge.log)" >&2; stop_one cforge; return 1; } ;;
    *) echo "unknown peer $name" >&2; return 1 ;;
  esac
  echo "$pid" >"$RUN/$name.pid"
  if ! wait_mcp 90 "$url" "$era" "$tool" "$args" "$key"; then
    echo "$name: no correct tools/call answer within 90 s (log: $RUN/$name.log)" >&2
    stop_one "$name"
    return 1
  fi
  local pids=$pid; [ -n "${pid2:-}" ] && pids="$pid $pid2"
  echo "$name ready: $url (era $era, tool $tool, pids $pids, upstream $up)" >&2
  printf 'PEER_URL=%q PEER_ERA=%q PEER_TOOL=%q PEER_ARGS=%q PEER_KEY=%q PEER_PIDS=%q PEER_EXCLUDE=%q\n' \
    "$url" "$era" "$tool" "$args" "$key" "$pids" "$(upstream_pattern "$up")"
}

stop_one() {
  local f
  for f in "$RUN/$1.pid" "$RUN/$1-translate.pid"; do
    [ -f "$f" ] || continue
    stop_group "$(cat "$f")"
    rm -f "$f"
  done
}

case "${1:-}" in
  install)
    shift; names=${*:-$ALL_PEERS}
    for n in $names; do
      if install_one "$n"; then echo "$n: installed"; else echo "$n: INSTALL FAILED" >&2; fi
    done ;;
  start) start_one "${2:?peer name}" "${3:-everything}" ;;
  stop) stop_one "${2:?peer name}" ;;
  status) for n in $ALL_PEERS; do if installed "$n"; then echo "$n installed"; else echo "$n missing"; fi; done ;;
  *) sed -n '2,27p' "$0"; exit 2 ;;
esac
