# Sourced by the other scripts: a project venv with Quant Lab installed, and DAGSTER_HOME.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PY="${PYTHON:-python3}"
VENV="${QUANTLAB_VENV:-$ROOT/.venv}"
if [ ! -x "$VENV/bin/python" ]; then
  "$PY" -m venv "$VENV"
fi
# Reinstalling is a fast no-op when nothing changed; it picks up dependency edits. The install
# runs in the background with a progress line every 15 s (packages collected so far), bounded by pip.
echo "installing Quant Lab into $VENV (log: $VENV/pip-install.log; a first install takes a few minutes)" >&2
"$VENV/bin/python" -m pip install --disable-pip-version-check -e "$ROOT[dev]" > "$VENV/pip-install.log" 2>&1 &
PIP_PID=$!
PIP_SECS=0
while kill -0 "$PIP_PID" 2>/dev/null; do
  sleep 1
  PIP_SECS=$((PIP_SECS + 1))
  if [ $((PIP_SECS % 15)) -eq 0 ]; then
    echo "  ... ${PIP_SECS}s, $(grep -cE '^(Collecting|Requirement already satisfied)' "$VENV/pip-install.log" || true) packages checked" >&2
  fi
done
wait "$PIP_PID" || { tail -40 "$VENV/pip-install.log"; exit 1; }
echo "  installed (${PIP_SECS}s)" >&2
export PATH="$VENV/bin:$PATH"
# Without DAGSTER_HOME the CLI uses a temporary home deleted on exit (run history lost).
export DAGSTER_HOME="${DAGSTER_HOME:-$ROOT/.dagster_home}"
mkdir -p "$DAGSTER_HOME"
[ -e "$DAGSTER_HOME/dagster.yaml" ] || ln -s "$ROOT/dagster.yaml" "$DAGSTER_HOME/dagster.yaml"
