# Sourced by demo.sh: run a command with its output in a log, printing a progress line every
# QUANTLAB_PROGRESS_SECS seconds (a positive whole number, else 15): the time so far and how many
# of its steps finished.
# run_logged LOG TOTAL COMMAND...   (TOTAL: the planned steps, or "" when unknown)
# The command runs in the foreground, so Ctrl-C stops it with the script (a background job of a
# non-interactive shell ignores SIGINT and would go on writing the warehouse); the progress loop is
# the background job, and it stops when the command ends or the script is gone.
run_logged() {
  local log="$1" total="$2" every="${QUANTLAB_PROGRESS_SECS:-15}" rc=0 monitor
  shift 2
  case "$every" in '' | *[!0-9]* | 0) every=15 ;; esac
  : > "$log"
  (
    secs=0
    while sleep "$every" > /dev/null 2>&1 && kill -0 "$$" 2>/dev/null; do  # sleep holds no pipe open
      secs=$((secs + every))
      echo "  ... ${secs}s, $(grep -c 'STEP_SUCCESS' "$log" || true)${total:+ of $total} steps done"
    done
  ) &
  monitor=$!
  "$@" > "$log" 2>&1 || rc=$?
  kill "$monitor" 2>/dev/null || true
  wait "$monitor" 2>/dev/null || true
  return "$rc"
}

# The number of steps `quantlab plan` plans for a selection and range ("" if it cannot say).
planned_steps() {
  python -m quantlab_assets.batch_orchestrator.cli plan --select "$1" --partition-range "$2" 2>/dev/null \
    | sed -n 's/^[0-9]* assets, \([0-9]*\) steps.*/\1/p' | head -n 1 || true
}
