"""Dead runs: a run whose process is gone (``kill -9``, OOM killer, a closed laptop lid) but is still
STARTED in Dagster's storage. Left alone it stays STARTED forever and holds one of the queue's
``max_concurrent_runs`` slots, and ``quantlab rerun`` refuses it.

Every run here executes in one process (``in_process_executor``), and that process records its pid
in the run's first engine event ("Executing steps in process (pid: N)"; a run launched by the
daemon also gets "Started process for run (pid: N)"). A run is dead when the process with the
latest recorded pid no longer exists, is a zombie, or is another process that reused the pid
(started after the event). Pids mean something only on the machine that ran the run; the SQLite
storage of ``dagster.yaml`` already implies one machine.

Two callers share :func:`worker_health`:

- ``QuantLabRunLauncher`` (``dagster.yaml: run_launcher``): Dagster's run monitoring daemon asks the
  run launcher about every STARTED run, CLI runs (``dagster asset materialize``) included, and fails
  the ones reported dead. The default launcher cannot answer (it implements no health check).
- :func:`fail_dead_runs`, which the ``quantlab`` CLI calls, for a machine without the daemon.

Its launcher types come from Dagster internals, through dagster_internals.py.
"""

from __future__ import annotations

import time
from typing import cast

import dagster as dg
import psutil

from quantlab_assets.dagster_internals import CheckRunHealthResult, WorkerStatus

# Between RUN_START and the executor's pid event there is only the run's set-up, milliseconds;
# a STARTED run without a pid after this long never reached its executor.
NO_PID_GRACE_S = 120.0


def worker_pid(instance: dg.DagsterInstance, run_id: str) -> tuple[int, float] | None:
    """The latest pid recorded by the run's engine events, and when it was recorded."""
    found = None
    for entry in instance.all_logs(run_id, of_type=dg.DagsterEventType.ENGINE_EVENT):
        data = entry.dagster_event.engine_event_data if entry.dagster_event else None
        pid = data.metadata.get("pid") if data and data.metadata else None
        if pid is not None:
            found = (int(cast(str | int, pid.value)), entry.timestamp)  # Dagster writes the pid as text
    return found


def worker_health(instance: dg.DagsterInstance, run: dg.DagsterRun) -> tuple[bool, str]:
    """(alive, why) for a STARTED run's worker process."""
    found = worker_pid(instance, run.run_id)
    if found is None:
        record = instance.get_run_record_by_id(run.run_id)
        started = record.start_time if record else None
        age = (time.time() - started) if started else 0.0
        if age > NO_PID_GRACE_S:
            return False, f"no worker process recorded {age:.0f} s after the run started"
        return True, "starting: no worker pid recorded yet"
    pid, recorded_at = found
    try:
        proc = psutil.Process(pid)
        status, created = proc.status(), proc.create_time()
    except psutil.NoSuchProcess:
        return False, f"worker process {pid} no longer exists (killed?)"
    except psutil.Error as exc:  # e.g. AccessDenied: it exists, so do not fail a live run
        return True, f"worker process {pid} exists ({type(exc).__name__})"
    if status == psutil.STATUS_ZOMBIE:
        return False, f"worker process {pid} has exited (zombie)"
    # 1 s of slack: create_time is rounded to clock ticks.
    if created > recorded_at + 1.0:
        return False, f"worker process {pid} no longer exists (the pid now belongs to a newer process)"
    return True, f"worker process {pid} is running"


def mark_failed(instance: dg.DagsterInstance, run: dg.DagsterRun, why: str) -> None:
    instance.report_run_failed(
        run,
        f"Run worker is dead: {why}. Marked as failed so the queue moves on; "
        "`quantlab rerun` re-executes it from its failure.",
    )


def fail_dead_runs(instance: dg.DagsterInstance) -> list[tuple[str, str]]:
    """Mark every STARTED run whose worker is dead as FAILURE; the (run id, reason) of each."""
    failed = []
    for run in instance.get_runs(filters=dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED])):
        alive, why = worker_health(instance, run)
        if not alive:
            mark_failed(instance, run, why)
            failed.append((run.run_id, why))
    return failed


class QuantLabRunLauncher(dg.DefaultRunLauncher):
    """The default launcher (a subprocess of the code server per run) that can tell run monitoring
    whether a run's process is still alive."""

    @property
    def supports_check_run_worker_health(self) -> bool:
        return True

    def check_run_worker_health(self, run: dg.DagsterRun) -> CheckRunHealthResult:
        alive, why = worker_health(self._instance, run)
        return CheckRunHealthResult(WorkerStatus.RUNNING if alive else WorkerStatus.FAILED, why)

    def get_run_worker_debug_info(self, run: dg.DagsterRun, include_container_logs: bool | None = True) -> str:
        # Appended by run monitoring to the failure message of a dead run.
        return f"`quantlab rerun {run.run_id[:8]}` re-executes it from its failure."
