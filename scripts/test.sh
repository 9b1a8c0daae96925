#!/usr/bin/env bash
# Install Quant Lab with its test dependencies and run the test suite.
source "$(dirname "${BASH_SOURCE[0]}")/_env.sh"
# Static gates first (config in pyproject.toml): lint, format, types, import contracts. A finding fails the run.
echo "test.sh: ruff check, ruff format --check, mypy, lint-imports"
ruff check --quiet .
ruff format --check --quiet .
mypy
lint-imports --no-cache  # layers, pure cores, no cycles ([tool.importlinter], docs/contributing.md)
# The scale-out tests (Delta warehouse, steps on Celery workers; docs/scaling.md section 7) need the
# `scale` extra and Debian's redis-server (the system test starts a private one with scripts/redis.sh).
python -m pip install --quiet --disable-pip-version-check -e "$ROOT[dev,scale]" > "$VENV/pip-install-scale.log" 2>&1 \
  || { tail -40 "$VENV/pip-install-scale.log"; exit 1; }
bash "$ROOT/scripts/redis.sh" install || [ $? -eq 2 ]  # 2: not root / no apt-get: the system test skips
# Debian's chromium for the UI browser test (no-op when present; without root the test skips).
bash "$ROOT/scripts/install_browser.sh"

# A private PostgreSQL server for the tests that run Dagster on Postgres (each test creates its own
# throwaway database on it). DAGSTER_PG_HOST already set: that server is used instead. Without
# PostgreSQL (not root, no apt-get) those tests skip; under CI=true as root they fail instead.
fail_in_ci() {
  if [ "${CI:-}" = "true" ] && [ "$(id -u)" -eq 0 ]; then
    echo "test.sh: ERROR: CI must run the Postgres tests: $1" >&2
    exit 1
  fi
  echo "test.sh: NOTE: $1; the Postgres tests will be skipped."
}
if [ -n "${DAGSTER_PG_HOST:-}" ]; then
  echo "test.sh: using the PostgreSQL server at $DAGSTER_PG_HOST:${DAGSTER_PG_PORT:-5432}"
else
  pg_rc=0
  bash "$ROOT/scripts/postgres.sh" install || pg_rc=$?
  if [ "$pg_rc" -eq 1 ]; then
    exit 1  # root with apt-get, and the install failed: postgres.sh said why
  elif [ "$pg_rc" -ne 0 ]; then
    fail_in_ci "PostgreSQL is not installed"
  else
    PG_DIR="$(mktemp -d "${TMPDIR:-/tmp}/quantlab-pg.XXXXXX")"
    trap 'bash "$ROOT/scripts/postgres.sh" stop "$PG_DIR"; rm -rf "$PG_DIR"' EXIT
    if bash "$ROOT/scripts/postgres.sh" start "$PG_DIR"; then
      source "$PG_DIR/env"
    else
      fail_in_ci "the PostgreSQL server did not start"
    fi
  fi
fi

# Every tier (unit, e2e, system); the 30 slowest tests are listed at the end.
python -m pytest --durations=30 "$@"
