#!/usr/bin/env bash
# Runs the tests several times while every core is busy with other work: the tests must not depend
# on how fast the machine is.
#
#   tests/run_under_load.sh [COMMAND ...]          default command: .venv/bin/pytest (the whole suite)
#   RUNS=1 tests/run_under_load.sh .venv/bin/pytest tests/api -q
#
# RUNS (default 3) is how many times the command runs; BUSY (default: the number of cores, nproc)
# how many busy processes (`yes > /dev/null`) run beside it. The busy processes are started by this
# script and stopped by their process ids when it ends, however it ends (Ctrl-C included). Each
# run's output goes to its own log file; one line per run tells pass or fail, and the exit status
# is 0 only if every run passed.
set -u

cd "$(dirname "$0")/.."
runs=${RUNS:-3}
busy=${BUSY:-$(nproc)}
logs=${LOGS:-$(mktemp -d "${TMPDIR:-/tmp}/aidline-under-load.XXXXXX")}
mkdir -p "$logs"
if [ $# -eq 0 ]; then
  set -- "${VENV:-.venv}/bin/pytest"
fi

busy_pids=()

stop_busy() {
  if [ ${#busy_pids[@]} -gt 0 ]; then
    kill "${busy_pids[@]}" 2>/dev/null
    wait "${busy_pids[@]}" 2>/dev/null
    echo "stopped the busy processes ${busy_pids[*]}"
    busy_pids=()
  fi
}

trap stop_busy EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

for ((i = 0; i < busy; i++)); do
  yes >/dev/null &
  busy_pids+=("$!")
done
echo "under load: ${busy} busy processes (pids ${busy_pids[*]}), ${runs} runs of: $*"
echo "logs: ${logs}"

failed=0
for ((run = 1; run <= runs; run++)); do
  log="${logs}/run-${run}.log"
  started=$SECONDS
  if "$@" >"$log" 2>&1; then
    outcome=pass
  else
    outcome=FAIL
    failed=$((failed + 1))
  fi
  summary=$(grep -E '[0-9]+ (passed|failed|errors?)|no tests ran' "$log" | tail -n 1 | tr -d '=' | xargs)
  printf 'run %d/%d: %s after %ds: %s\n' "$run" "$runs" "$outcome" $((SECONDS - started)) "${summary:-see $log}"
  if [ "$outcome" = FAIL ]; then
    grep -E '^(FAILED|ERROR) ' "$log" | sed 's/^/    /'
  fi
done

stop_busy
if [ "$failed" -gt 0 ]; then
  echo "under load: ${failed} of ${runs} runs failed (logs: ${logs})"
  exit 1
fi
echo "under load: all ${runs} runs passed"
