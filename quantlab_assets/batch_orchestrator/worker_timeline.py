"""Which worker ran each step of a run, and when: read from the run's event log.

With the Celery executor (``quantlab_assets.celery_definitions``) each step's worker records an
engine event "Executing steps <key> in celery worker" naming its host (``Celery worker``), then
the step's STEP_START and STEP_SUCCESS / STEP_FAILURE. :func:`step_timeline` pairs them;
:func:`overlaps` lists the pairs of steps that ran at the same time on different workers, the
evidence that independent branches of one run execute in parallel.
"""

from __future__ import annotations

from dataclasses import dataclass

import dagster as dg

_ENDS = (dg.DagsterEventType.STEP_SUCCESS, dg.DagsterEventType.STEP_FAILURE)


@dataclass(frozen=True)
class StepSpan:
    step: str
    worker: str
    start: float  # epoch seconds, from the event log
    end: float
    succeeded: bool


def step_timeline(instance: dg.DagsterInstance, run_id: str) -> list[StepSpan]:
    """Every step of the run that started, with its worker and start/end times, by start time.

    A step whose worker is not recorded (the in-process or multiprocess executor) gets worker "";
    a step that never ended (a dead worker) is left out."""
    workers: dict[str, str] = {}
    starts: dict[str, float] = {}
    spans: list[StepSpan] = []
    for entry in instance.all_logs(run_id):
        event = entry.dagster_event
        if event is None or entry.step_key is None:
            continue
        if event.event_type == dg.DagsterEventType.ENGINE_EVENT:
            data = event.engine_event_data
            worker = data.metadata.get("Celery worker") if data and data.metadata else None
            if worker is not None:
                workers[entry.step_key] = str(worker.value)
        elif event.event_type == dg.DagsterEventType.STEP_START:
            starts[entry.step_key] = entry.timestamp
        elif event.event_type in _ENDS and entry.step_key in starts:
            spans.append(
                StepSpan(
                    entry.step_key,
                    workers.get(entry.step_key, ""),
                    starts[entry.step_key],
                    entry.timestamp,
                    event.event_type == dg.DagsterEventType.STEP_SUCCESS,
                )
            )
    return sorted(spans, key=lambda s: (s.start, s.step))


def overlaps(spans: list[StepSpan]) -> list[tuple[StepSpan, StepSpan]]:
    """Pairs of steps that ran at the same time on different (known) workers."""
    return [
        (a, b)
        for i, a in enumerate(spans)
        for b in spans[i + 1 :]
        if a.worker and b.worker and a.worker != b.worker and a.start < b.end and b.start < a.end
    ]


def render(spans: list[StepSpan]) -> str:
    """A plain table: step, worker, start offset and duration in seconds."""
    if not spans:
        return "no steps recorded"
    t0 = min(s.start for s in spans)
    width = max(len(s.step) for s in spans)
    lines = [f"{'step':<{width}}  {'worker':<16} {'start s':>8} {'secs':>7}"]
    for s in spans:
        mark = "" if s.succeeded else "  FAILED"
        lines.append(f"{s.step:<{width}}  {s.worker:<16} {s.start - t0:8.1f} {s.end - s.start:7.1f}{mark}")
    return "\n".join(lines)
