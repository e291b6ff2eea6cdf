#!/usr/bin/env bash
# The one command for CI and for local runs (.ci/run calls it):
#
#   1. installs the test dependencies into tests/.venv (Python 3.11, tests/requirements.txt)
#      and tests/node_modules (npm ci from tests/package-lock.json), skipping either when its
#      stamp (a hash of the lock/requirements file and the interpreter version) is unchanged;
#   2. builds the workspace in release: cargo build --release --workspace;
#   3. cargo fmt --all -- --check, cargo clippy --workspace --all-targets -- -D warnings,
#      cargo test --release --workspace (same profile as the build, so dependencies are shared);
#   4. runs the Python e2e suite (pytest tests/e2e) and the TypeScript one
#      (node --test tests/e2e-ts) against target/release/switchyard (exported as SWITCHYARD_BIN);
#   5. runs the official MCP conformance suite (tests/conformance.sh: direct, and through the
#      gateway with a stdio and an HTTP upstream, for 2025-11-25 and 2026-07-28), which passes
#      when exactly the scenarios listed in tests/conformance-expected.txt fail;
#   6. prints "N passed, N failed" counting those suites, and exits non-zero if any failed.
#
# Options (for local iteration):
#   --e2e-only     skip fmt/clippy/cargo test (still builds)
#   -k PATTERN     passed to pytest (-k) for the Python suite
#   --py-only      run only the Python e2e suite (of the e2e and conformance suites)
#   --ts-only      run only the TypeScript e2e suite
#   --conformance-only  run only the conformance suite
# Environment: PYTHON (default python3.11), CARGO (default cargo), CARGO_TARGET_DIR.
set -euo pipefail

TESTS_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$TESTS_DIR/.." && pwd)"
cd "$REPO"

E2E_ONLY=0
PYTEST_K=()
RUN_PY=1
RUN_TS=1
RUN_CONFORMANCE=1
while (($#)); do
  case "$1" in
    --e2e-only) E2E_ONLY=1 ;;
    -k) [[ $# -ge 2 ]] || { echo "run.sh: -k needs a pattern" >&2; exit 2; }; PYTEST_K=(-k "$2"); shift ;;
    -k*) PYTEST_K=(-k "${1#-k}") ;;
    --py-only) RUN_TS=0; RUN_CONFORMANCE=0 ;;
    --ts-only) RUN_PY=0; RUN_CONFORMANCE=0 ;;
    --conformance-only) RUN_PY=0; RUN_TS=0 ;;
    -h|--help) sed -n '2,23p' "$TESTS_DIR/run.sh" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "run.sh: unknown argument: $1" >&2; exit 2 ;;
  esac
  shift
done

PYTHON="${PYTHON:-python3.11}"
CARGO="${CARGO:-cargo}"
VENV="$TESTS_DIR/.venv"
NODE_MODULES="$TESTS_DIR/node_modules"
TARGET_DIR="${CARGO_TARGET_DIR:-$REPO/target}"
case "$TARGET_DIR" in /*) ;; *) TARGET_DIR="$REPO/$TARGET_DIR" ;; esac
export SWITCHYARD_BIN="$TARGET_DIR/release/switchyard"

PASSED=()
FAILED=()

section() { printf '\n==== %s ====\n' "$*"; }

# run_suite NAME COMMAND...: run it, remember whether it passed; never aborts the script.
run_suite() {
  local name="$1"; shift
  section "$name"
  local start=$SECONDS rc=0
  "$@" || rc=$?
  if ((rc == 0)); then
    PASSED+=("$name")
    echo "---- $name: passed ($((SECONDS - start)) s)"
  else
    FAILED+=("$name")
    echo "---- $name: FAILED (exit $rc, $((SECONDS - start)) s)"
  fi
  return 0
}

hash_of() { cat "$@" | sha256sum | cut -d' ' -f1; }

install_python() {
  command -v "$PYTHON" >/dev/null || { echo "run.sh: $PYTHON not found" >&2; return 1; }
  local want stamp="$VENV/.switchyard-install-stamp"
  want="$(hash_of "$TESTS_DIR/requirements.txt") $("$PYTHON" -c 'import sys; print(sys.version.split()[0])')"
  if [[ -x "$VENV/bin/python" && -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
    echo "tests/.venv is up to date"
    return 0
  fi
  echo "creating tests/.venv from tests/requirements.txt"
  rm -rf "$VENV"
  "$PYTHON" -m venv "$VENV"
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r "$TESTS_DIR/requirements.txt"
  echo "$want" >"$stamp"
}

install_node() {
  command -v node >/dev/null && command -v npm >/dev/null || { echo "run.sh: node/npm not found" >&2; return 1; }
  local want stamp="$NODE_MODULES/.switchyard-install-stamp"
  want="$(hash_of "$TESTS_DIR/package-lock.json") $(node --version)"
  if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
    echo "tests/node_modules is up to date"
    return 0
  fi
  echo "npm ci in tests/"
  (cd "$TESTS_DIR" && npm ci --no-audit --no-fund --loglevel=error)
  echo "$want" >"$stamp"
}

section "install test dependencies"
install_python
install_node

run_suite "cargo build --release" "$CARGO" build --release --workspace
if ((!E2E_ONLY)); then
  run_suite "cargo fmt --check" "$CARGO" fmt --all -- --check
  run_suite "cargo clippy" "$CARGO" clippy --workspace --all-targets -- -D warnings
  run_suite "cargo test --release" "$CARGO" test --release --workspace
fi

python_e2e() {
  local rc=0
  (cd "$TESTS_DIR" && "$VENV/bin/python" -m pytest -c pytest.ini e2e "${PYTEST_K[@]}") || rc=$?
  if ((rc == 5 && ${#PYTEST_K[@]})); then
    echo "(no Python test matched ${PYTEST_K[*]})"
    return 0
  fi
  return "$rc"
}

ts_e2e() {
  (cd "$TESTS_DIR" && node --test --test-concurrency=1 --test-timeout=300000 e2e-ts/)
}

conformance() {
  "$TESTS_DIR/conformance.sh" --expected "$TESTS_DIR/conformance-expected.txt"
}

have_binary() {
  [[ -x "$SWITCHYARD_BIN" ]] || { echo "no gateway binary at $SWITCHYARD_BIN (the build failed?)"; return 1; }
}

if ((RUN_PY)); then
  if have_binary; then run_suite "e2e (python, pytest)" python_e2e; else FAILED+=("e2e (python, pytest)"); fi
fi
if ((RUN_TS)); then
  if have_binary; then run_suite "e2e (typescript, node --test)" ts_e2e; else FAILED+=("e2e (typescript, node --test)"); fi
fi

if ((RUN_CONFORMANCE)); then
  if have_binary; then run_suite "conformance (official MCP suite)" conformance; else FAILED+=("conformance (official MCP suite)"); fi
fi

section "summary"
for s in "${PASSED[@]}"; do echo "  passed: $s"; done
for s in "${FAILED[@]}"; do echo "  FAILED: $s"; done
echo "suites: ${#PASSED[@]} passed, ${#FAILED[@]} failed"
((${#FAILED[@]} == 0))
