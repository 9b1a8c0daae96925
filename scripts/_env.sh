# Sourced by the other scripts: a project venv with Quant Lab installed, and DAGSTER_HOME.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PY="${PYTHON:-python3}"
VENV="${QUANTLAB_VENV:-$ROOT/.venv}"
if [ ! -x "$VENV/bin/python" ]; then
  "$PY" -m venv "$VENV"
fi
# Reinstalling is a fast no-op when nothing changed; it picks up dependency edits.
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -e "$ROOT[dev]" > "$VENV/pip-install.log" 2>&1 \
  || { tail -40 "$VENV/pip-install.log"; exit 1; }
export PATH="$VENV/bin:$PATH"
# Without DAGSTER_HOME the CLI uses a temporary home deleted on exit (run history lost).
export DAGSTER_HOME="${DAGSTER_HOME:-$ROOT/.dagster_home}"
mkdir -p "$DAGSTER_HOME"
[ -e "$DAGSTER_HOME/dagster.yaml" ] || ln -s "$ROOT/dagster.yaml" "$DAGSTER_HOME/dagster.yaml"
