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


def test_ctrl_c_stops_the_step_with_the_demo(tmp_path):
    """Ctrl-C (SIGINT to the terminal's process group) must not leave the step running on its own,
    still writing the warehouse: the step runs in the foreground, the progress loop in the back."""
    import signal
    import time

    pidfile = tmp_path / "step.pid"
    step = f"import os, time; open({str(pidfile)!r}, 'w').write(str(os.getpid())); time.sleep(60)"
    path = f"{Path(sys.executable).parent}:{os.environ['PATH']}"
    demo = subprocess.Popen(
        ["bash", "-c", f'source {PROGRESS}; run_logged {tmp_path / "step.log"} "" python -c "{step}"'],
        env={**os.environ, "PATH": path, "QUANTLAB_PROGRESS_SECS": "1"},
        start_new_session=True,  # its own process group, as a terminal's foreground job
        stdout=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while not (pidfile.exists() and pidfile.read_text()) and time.monotonic() < deadline:
            time.sleep(0.1)
        step_pid = int(pidfile.read_text())
        os.killpg(demo.pid, signal.SIGINT)
        demo.wait(timeout=30)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                os.kill(step_pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.1)
        else:
            os.kill(step_pid, signal.SIGKILL)
            raise AssertionError("the step survived Ctrl-C")
    finally:
        if demo.poll() is None:
            os.killpg(demo.pid, signal.SIGKILL)


def test_a_progress_interval_that_is_not_a_positive_number_falls_back_to_15_s(tmp_path):
    log = tmp_path / "step.log"
    for every in ("0", "abc", "-3"):
        done = _bash(f"run_logged {log} '' bash -c 'echo STEP_SUCCESS; exit 0'", tmp_path, QUANTLAB_PROGRESS_SECS=every)
        assert done.returncode == 0 and "division" not in done.stderr, (every, done.stderr)
        assert log.read_text().strip() == "STEP_SUCCESS"
