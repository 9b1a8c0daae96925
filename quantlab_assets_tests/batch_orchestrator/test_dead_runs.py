"""Dead runs: a run whose process is killed with ``kill -9`` is detected and marked failed, by the
daemon's run monitoring (through ``QuantLabRunLauncher``) and by the ``quantlab`` CLI without a
daemon, so the queue never jams and ``quantlab rerun`` works.

The runs under test really hang: the CSV provider reads a symbol file that is a FIFO nobody writes,
so each run sits in its ohlcv step, STARTED, until the test kills its process.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import pytest

from quantlab_assets.batch_orchestrator.run_health import worker_health, worker_pid
from quantlab_assets_tests.batch_orchestrator.test_ui_browser import Server, _launch, _start, _wait
from quantlab_assets_tests.conftest import PROJECT_ROOT

BIN = Path(sys.executable).parent
PARTITION = "2024-03-28"
# The test's run monitoring polls every few seconds (the project's dagster.yaml: 30 s).
POLL_S = 3


@pytest.fixture
def hanging_csv(lab_env, tmp_path, monkeypatch):
    """A one-symbol registry whose CSV file is a FIFO: a run reading it blocks until killed. Returns
    a function that replaces the FIFO with a real file, so later runs succeed."""
    from quantlab_assets.data_curator.core.synthetic import SyntheticProvider

    registry = tmp_path / "symbols.yaml"
    registry.write_text("universe: one\nsymbols:\n  - {symbol: AAA, sector: Tech}\n")
    folder = tmp_path / "csv"
    folder.mkdir()
    os.mkfifo(folder / "AAA.csv")
    monkeypatch.setenv("QUANTLAB_SYMBOLS", str(registry))
    monkeypatch.setenv("QUANTLAB_DATA_PROVIDER", "csv")
    monkeypatch.setenv("QUANTLAB_CSV_DIR", str(folder))

    def unblock() -> None:
        bars = SyntheticProvider().fetch(["AAA"], "2024-03-01", PARTITION).bars
        (folder / "AAA.csv").unlink()
        (folder / "AAA.csv").write_text(
            bars[["date", "open", "high", "low", "close", "adj_close", "volume"]].to_csv(index=False)
        )

    return unblock


def _cli_run(log: Path) -> subprocess.Popen:
    with open(log, "wb") as out:
        return subprocess.Popen(
            [
                str(BIN / "dagster"),
                "asset",
                "materialize",
                "-m",
                "quantlab_assets.definitions",
                "--select",
                "ohlcv",
                "--partition",
                PARTITION,
            ],
            env=os.environ.copy(),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def _wait_for_pids(instance: dg.DagsterInstance, count: int, timeout: float = 240.0) -> dict[str, int]:
    """Wait until ``count`` STARTED runs have recorded their worker pid; {run id: pid}."""
    deadline = time.monotonic() + timeout
    found: dict[str, int] = {}
    while time.monotonic() < deadline:
        for run in instance.get_runs(filters=dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED])):
            pid = worker_pid(instance, run.run_id)
            if pid is not None:
                found[run.run_id] = pid[0]
        if len(found) >= count:
            return found
        time.sleep(0.5)
    pytest.fail(f"only {len(found)} of {count} runs STARTED with a worker pid after {timeout:.0f}s")


def test_a_killed_cli_run_is_failed_by_the_cli_and_rerun_by_its_prefix(hanging_csv, tmp_path, monkeypatch):
    instance = dg.DagsterInstance.get()
    proc = _cli_run(tmp_path / "victim.log")
    try:
        ((run_id, pid),) = _wait_for_pids(instance, 1).items()
        assert pid == proc.pid
        run = instance.get_run_by_id(run_id)
        assert worker_health(instance, run) == (True, f"worker process {pid} is running")
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=60)
    # The fault: the run stays STARTED, its process gone.
    run = instance.get_run_by_id(run_id)
    assert run.status == dg.DagsterRunStatus.STARTED
    assert worker_health(instance, run) == (False, f"worker process {pid} no longer exists (killed?)")

    hanging_csv()
    out = subprocess.run(
        [str(BIN / "quantlab"), "rerun", run_id[:8]], capture_output=True, text=True, timeout=600, env=os.environ.copy()
    )
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert (
        f"run {run_id[:8]} was STARTED but worker process {pid} no longer exists (killed?): marked FAILURE"
        in out.stdout.splitlines()
    )
    assert re.search(rf"^re-executed {run_id} from its failure .* as run [0-9a-f-]{{36}}: SUCCESS$", out.stdout, re.M)
    record = instance.get_run_record_by_id(run_id)
    assert record.dagster_run.status == dg.DagsterRunStatus.FAILURE
    (failure,) = instance.all_logs(run_id, of_type=dg.DagsterEventType.RUN_FAILURE)
    assert failure.dagster_event.message.startswith(f"Run worker is dead: worker process {pid} no longer exists")
    child = instance.get_runs(filters=dg.RunsFilter(tags={"dagster/parent_run_id": run_id}))
    assert [c.status for c in child] == [dg.DagsterRunStatus.SUCCESS]


def test_a_prefix_that_matches_no_run_or_several_is_refused(lab_env, capsys):
    from quantlab_assets.batch_orchestrator.cli import main

    instance = dg.DagsterInstance.get()
    for run_id in [
        "abcd1111-0000-0000-0000-000000000000",
        "abcd2222-0000-0000-0000-000000000000",
        "ef012345-0000-0000-0000-000000000000",
    ]:
        instance.add_run(dg.DagsterRun(job_name="j", run_id=run_id, status=dg.DagsterRunStatus.SUCCESS))
    cases = {
        "abcd": "quantlab rerun: run id prefix 'abcd' matches 2 runs: abcd1111-0000, abcd2222-0000; "
        "give more characters",
        "ffff": "quantlab rerun: no run 'ffff'",
        "ab": "quantlab rerun: no run 'ab' (give at least 4 characters)",
        "ef01": "quantlab rerun: run ef012345-0000-0000-0000-000000000000 is SUCCESS, not FAILURE: nothing to resume",
    }
    for prefix, message in cases.items():
        code = main(["rerun", prefix])
        captured = capsys.readouterr()
        assert (code, (captured.err + captured.out).strip()) == (2, message)


def test_dead_runs_do_not_jam_the_queue_while_the_daemon_runs(hanging_csv, lab_env, tmp_path):
    """Four dead runs fill max_concurrent_runs: 4. Two were launched from the UI and die with the
    daemon that ran them (kill -9 of its whole process group: daemon, code server, run workers), so
    no process of Dagster's own is left to notice; two are CLI runs killed with kill -9. A fifth
    run waits in the queue. The restarted daemon's run monitoring fails the four, naming each dead
    process, and the fifth then starts and succeeds."""
    config = lab_env["DAGSTER_HOME"] / "dagster.yaml"
    text = config.read_text()
    assert "poll_interval_seconds: 30" in text and "max_concurrent_runs: 4" in text
    config.write_text(text.replace("poll_interval_seconds: 30", f"poll_interval_seconds: {POLL_S}"))
    server = Server(tmp_path)
    clis: list[subprocess.Popen] = []
    try:
        server.location = server.start()
        ui_runs = [_launch(server, server.location, ["ohlcv"], PARTITION) for _ in range(2)]
        clis = [_cli_run(tmp_path / f"cli{i}.log") for i in range(2)]
        instance = dg.DagsterInstance.get()
        pids = _wait_for_pids(instance, 4)
        assert set(ui_runs) < set(pids) and {c.pid for c in clis} < set(pids.values())
        fifth = _launch(server, server.location, ["ohlcv"], PARTITION)
        time.sleep(2 * POLL_S)
        assert instance.get_run_by_id(fifth).status == dg.DagsterRunStatus.QUEUED  # the queue is full

        hanging_csv()  # runs started from now on can read their file
        os.killpg(server.procs["daemon"].pid, signal.SIGKILL)
        server.procs["daemon"].wait(timeout=60)
        for pid in pids.values():
            try:
                os.kill(pid, signal.SIGKILL)  # a worker outside the daemon's group, if any
            except ProcessLookupError:
                pass
        for proc in clis:
            proc.wait(timeout=60)
        time.sleep(2 * POLL_S)
        assert all(instance.get_run_by_id(r).status == dg.DagsterRunStatus.STARTED for r in pids)  # the fault

        server.procs["daemon"] = _start(
            [str(BIN / "dagster-daemon"), "run", "-w", str(PROJECT_ROOT / "workspace.yaml")], tmp_path / "daemon.log"
        )
        restarted = time.monotonic()
        deadline = restarted + 180  # daemon start-up plus a few monitoring intervals, with a wide margin
        while time.monotonic() < deadline:
            statuses = {r: instance.get_run_by_id(r).status for r in pids}
            if all(s == dg.DagsterRunStatus.FAILURE for s in statuses.values()):
                break
            time.sleep(1)
        else:
            pytest.fail(f"dead runs not failed within {deadline - restarted:.0f}s: {statuses}\n{server.logs()}")
        for run_id, pid in pids.items():
            (failure,) = instance.all_logs(run_id, of_type=dg.DagsterEventType.RUN_FAILURE)
            message = failure.dagster_event.message
            assert f"worker process {pid} no longer exists (killed?)" in message, message
            assert message.endswith(f"`quantlab rerun {run_id[:8]}` re-executes it from its failure."), message
        assert _wait(server, fifth, timeout=240)["status"] == "SUCCESS", server.logs()
    finally:
        for proc in clis:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
        server.stop()


# ----------------------------------------------------------------------------- worker_health by hand


def _started_run(instance: dg.DagsterInstance, pid: int | None) -> dg.DagsterRun:
    from dagster._core.events import EngineEventData  # test set-up: an engine event as the executor writes it

    run = instance.add_run(dg.DagsterRun(job_name="j", status=dg.DagsterRunStatus.NOT_STARTED))
    instance.handle_run_event(
        run.run_id,
        dg.DagsterEvent(event_type_value=dg.DagsterEventType.RUN_START.value, job_name="j", message="started"),
    )
    if pid is not None:
        instance.report_engine_event(f"Executing steps in process (pid: {pid})", run, EngineEventData.in_process(pid))
    return instance.get_run_by_id(run.run_id)


def test_worker_health_cases(lab_env, monkeypatch):
    from quantlab_assets.batch_orchestrator import run_health

    instance = dg.DagsterInstance.get()
    # A live process that existed before the event: alive.
    alive = _started_run(instance, os.getpid())
    assert alive.status == dg.DagsterRunStatus.STARTED
    assert worker_health(instance, alive) == (True, f"worker process {os.getpid()} is running")

    # An exited child nobody has reaped yet: a zombie is dead.
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    zombie = _started_run(instance, child.pid)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and worker_health(instance, zombie)[0]:
        time.sleep(0.1)
    assert worker_health(instance, zombie) == (False, f"worker process {child.pid} has exited (zombie)")
    child.wait()
    assert worker_health(instance, zombie) == (False, f"worker process {child.pid} no longer exists (killed?)")

    # The recorded pid now names a process created after the event (pid reuse): dead.
    reused = _started_run(instance, os.getpid())
    monkeypatch.setattr(run_health.psutil.Process, "create_time", lambda self: time.time() + 5)
    assert worker_health(instance, reused) == (
        False,
        f"worker process {os.getpid()} no longer exists (the pid now belongs to a newer process)",
    )
    monkeypatch.undo()

    # No pid yet: alive while the run is young, dead once past the grace period.
    no_pid = _started_run(instance, None)
    assert worker_health(instance, no_pid) == (True, "starting: no worker pid recorded yet")
    later = time.time() + run_health.NO_PID_GRACE_S + 10
    monkeypatch.setattr(run_health.time, "time", lambda: later)
    alive_now, why = worker_health(instance, no_pid)
    assert not alive_now and why.startswith("no worker process recorded") and why.endswith("s after the run started")

    # fail_dead_runs marks exactly the dead ones.
    monkeypatch.undo()
    failed = dict(run_health.fail_dead_runs(instance))
    assert set(failed) == {zombie.run_id}
    assert instance.get_run_by_id(alive.run_id).status == dg.DagsterRunStatus.STARTED
