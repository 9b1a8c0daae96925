#!/usr/bin/env bash
# The inner loop: the static gates and the unit tier, in parallel over 2 workers (pytest-xdist).
# No Dagster run, no PostgreSQL, no Chromium: those are the e2e and system tiers, which
# scripts/test.sh (CI: .ci/run) runs with everything else. Extra arguments go to pytest.
source "$(dirname "${BASH_SOURCE[0]}")/_env.sh"
echo "test_fast.sh: ruff check, ruff format --check, mypy, lint-imports"
ruff check --quiet .
ruff format --check --quiet .
mypy
lint-imports --no-cache
python -m pytest -m unit -n "${QUANTLAB_TEST_WORKERS:-2}" --durations=15 -q "$@"
