"""Issue 22 point 8: the demo is never silent for minutes. ``scripts/progress.sh`` runs a step
with its output in a log and prints a progress line every few seconds (steps finished of the
planned ones); the step's exit status is the demo's, and the plan gives the number of steps."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from quantlab_assets_tests.conftest import PROJECT_ROOT

PROGRESS = PROJECT_ROOT / "scripts" / "progress.sh"


def _bash(script: str, tmp_path: Path, **env) -> subprocess.CompletedProcess:
    path = f"{Path(sys.executable).parent}:{os.environ['PATH']}"
    return subprocess.run(
        ["bash", "-c", f"set -euo pipefail; source {PROGRESS}; {script}"],
        cwd=PROJECT_ROOT,
        env={**os.environ, "PATH": path, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_a_long_step_prints_progress_and_keeps_its_exit_status(tmp_path):
    log = tmp_path / "step.log"
    step = "echo STEP_SUCCESS one; sleep 2.5; echo STEP_SUCCESS two; sleep 1.5; exit 3"
    done = _bash(f"run_logged {log} 4 bash -c '{step}' || echo failed $?", tmp_path, QUANTLAB_PROGRESS_SECS="1")
    lines = done.stdout.splitlines()
    progress = [line for line in lines if line.startswith("  ... ")]
    assert len(progress) >= 3, done.stdout
    assert all(re.fullmatch(r"  \.\.\. \d+s, [0-2] of 4 steps done", line) for line in progress), progress
    assert progress[0].endswith("1 of 4 steps done") and progress[-1].endswith("2 of 4 steps done"), progress
    assert lines[-1] == "failed 3"  # the step's own status: the demo stops and shows the log's tail
    assert log.read_text().count("STEP_SUCCESS") == 2  # the step's output went to the log
    # Without a planned total: the count alone.
    done = _bash(f"run_logged {log} '' bash -c 'echo STEP_SUCCESS; sleep 1.5'", tmp_path, QUANTLAB_PROGRESS_SECS="1")
    assert done.returncode == 0 and re.search(r"^  \.\.\. 1s, 1 steps done$", done.stdout, re.M), done.stdout


def test_the_plan_gives_the_number_of_steps(lab_env, tmp_path):
    done = _bash("planned_steps ohlcv 2024-04-01...2024-04-05", tmp_path)
    assert done.returncode == 0 and done.stdout.strip() == "2", (done.stdout, done.stderr[-2000:])
