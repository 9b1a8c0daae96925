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
# One planned event per asset for a single-run backfill instead of one per partition: minutes
# saved on multi-year backfills (docs/scaling.md section 5).
export DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS="${DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS:-true}"
[ -e "$DAGSTER_HOME/dagster.yaml" ] || ln -s "$ROOT/dagster.yaml" "$DAGSTER_HOME/dagster.yaml"
