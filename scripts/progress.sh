# Sourced by demo.sh: run a command with its output in a log, printing a progress line every
# QUANTLAB_PROGRESS_SECS seconds (15): the time so far and how many of its steps finished.
# run_logged LOG TOTAL COMMAND...   (TOTAL: the planned steps, or "" when unknown)
run_logged() {
  local log="$1" total="$2"
  shift 2
  "$@" > "$log" 2>&1 &
  local pid=$! secs=0 every="${QUANTLAB_PROGRESS_SECS:-15}" finished
  while kill -0 "$pid" 2>/dev/null; do
    sleep 1
    secs=$((secs + 1))
    if [ $((secs % every)) -eq 0 ]; then
      finished="$(grep -c 'STEP_SUCCESS' "$log" || true)"
      echo "  ... ${secs}s, ${finished}${total:+ of $total} steps done"
    fi
  done
  wait "$pid"
}

# The number of steps `quantlab plan` plans for a selection and range ("" if it cannot say).
planned_steps() {
  python -m quantlab_assets.batch_orchestrator.cli plan --select "$1" --partition-range "$2" 2>/dev/null \
    | sed -n 's/^[0-9]* assets, \([0-9]*\) steps.*/\1/p' | head -n 1 || true
}
