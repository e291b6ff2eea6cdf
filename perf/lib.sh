# Shared helpers of the perf/ scripts (sourced, not run): process trees, RSS, readiness, medians.

# All descendants of PID (children, grandchildren, ...), one per line.
descendants() {
  local p c
  for p in "$@"; do
    for c in $(cat /proc/"$p"/task/*/children 2>/dev/null); do
      echo "$c"
      descendants "$c"
    done
  done
}

# "VMRSS_KB VMHWM_KB" summed over the process trees of the given PIDs, leaving out every process
# below them whose command line matches $RSS_EXCLUDE (the upstream server) and its own subtree
# (the given PIDs themselves are always counted: a proxy names its server in its arguments).
# VmHWM is each process's own peak, so the sum is an upper bound of the tree's peak.
tree_rss() {
  local p all=() skip=() rss=0 hwm=0 r h
  for p in "$@"; do all+=("$p"); while read -r c; do all+=("$c"); done < <(descendants "$p"); done
  if [ -n "${RSS_EXCLUDE:-}" ]; then
    for p in "${all[@]}"; do
      [[ " $* " == *" $p "* ]] && continue
      if tr '\0' ' ' </proc/"$p"/cmdline 2>/dev/null | grep -Eq -- "$RSS_EXCLUDE"; then
        skip+=("$p"); while read -r c; do skip+=("$c"); done < <(descendants "$p")
      fi
    done
  fi
  for p in "${all[@]}"; do
    [[ " ${skip[*]} " == *" $p "* ]] && continue
    r=$(awk '/^VmRSS:/{print $2}' /proc/"$p"/status 2>/dev/null); h=$(awk '/^VmHWM:/{print $2}' /proc/"$p"/status 2>/dev/null)
    rss=$((rss + ${r:-0})); hwm=$((hwm + ${h:-0}))
  done
  echo "$rss $hwm"
}

# Stops what `start_bg` started: the whole process group, TERM then KILL.
stop_group() {
  local pid=$1 i
  kill -TERM -- -"$pid" 2>/dev/null || return 0
  for i in $(seq 50); do kill -0 -- -"$pid" 2>/dev/null || return 0; sleep 0.1; done
  kill -KILL -- -"$pid" 2>/dev/null || true
}

# Starts a command in its own session (so its children can be stopped with it); prints its PID.
start_bg() {
  local log=$1; shift
  setsid "$@" >"$log" 2>&1 </dev/null 9>&- &
  echo $!
}

# Waits until `loadtest run` gets one correct tools/call through URL (1 agent, 300 ms).
#   wait_mcp SECONDS URL ERA TOOL ARGS [API_KEY]
wait_mcp() {
  local secs=$1 url=$2 era=$3 tool=$4 args=$5 key=${6:-} i out
  local extra=(); [ -n "$key" ] && extra=(--api-key "$key")
  for i in $(seq $((secs * 2))); do
    out=$("$LT" run --url "$url" --era "$era" --agents 1 --duration 300ms --warmup 0s --timeout 5s \
      --tool "$tool" --args "$args" "${extra[@]}" --quiet --json 2>/dev/null) || out=
    if [ -n "$out" ] && python3 -c 'import json,sys; r=json.loads(sys.argv[1]); sys.exit(0 if r["ok"]>0 and r["errors"]==0 else 1)' "$out"; then
      return 0
    fi
    sleep 0.5
  done
  return 1
}

machine_line() {
  echo "nproc $(nproc), cpu $(awk -F': ' '/model name/{print $2; exit}' /proc/cpuinfo), kernel $(uname -r), $(awk '/MemTotal/{printf "%.0f GiB", $2/1048576}' /proc/meminfo)"
}
