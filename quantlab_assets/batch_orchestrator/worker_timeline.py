"""Which worker ran each step of a run, and when: read from the run's event log.

With the Celery executor (``quantlab_assets.celery_definitions``) each step's worker records an
engine event "Executing steps <key> in celery worker" naming its host (``Celery worker``), then
the step's STEP_START and STEP_SUCCESS / STEP_FAILURE; the run's own process records when it
submitted the step's task ("Submitting celery task for step"). :func:`step_timeline` pairs them,
so a step's time splits into its wait in the queue (submitted -> a worker took it: the broker, and
waiting for a free worker), its set-up in the worker (took it -> STEP_START: loading the code and
planning) and its run (STEP_START -> end);
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
    submitted: float | None = None  # the run's process put the step's task on the queue
    picked: float | None = None  # a worker took it

    @property
    def queued_s(self) -> float:
        return (self.picked - self.submitted) if self.picked is not None and self.submitted is not None else 0.0

    @property
    def setup_s(self) -> float:
        return (self.start - self.picked) if self.picked is not None else 0.0

    @property
    def run_s(self) -> float:
        return self.end - self.start


def step_timeline(instance: dg.DagsterInstance, run_id: str) -> list[StepSpan]:
    """Every step of the run that started, with its worker and start/end times, by start time.

    A step whose worker is not recorded (the in-process or multiprocess executor) gets worker "";
    a step that never ended (a dead worker) is left out."""
    workers: dict[str, str] = {}
    submitted: dict[str, float] = {}
    picked: dict[str, float] = {}
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
                picked[entry.step_key] = entry.timestamp
            elif "Submitting celery task" in (entry.message or ""):
                submitted[entry.step_key] = entry.timestamp
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
                    submitted.get(entry.step_key),
                    picked.get(entry.step_key),
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
    lines = [f"{'step':<{width}}  {'worker':<16} {'start s':>8} {'queued':>7} {'set-up':>7} {'run s':>7}"]
    for s in spans:
        mark = "" if s.succeeded else "  FAILED"
        times = f"{s.start - t0:8.1f} {s.queued_s:7.2f} {s.setup_s:7.2f} {s.run_s:7.2f}"
        lines.append(f"{s.step:<{width}}  {s.worker:<16} {times}{mark}")
    return "\n".join(lines)


def summary(spans: list[StepSpan], wall_s: float) -> dict[str, float]:
    """Where a run's time went: summed queue waits, worker set-ups and step runs, and the wall."""
    return {
        "wall_s": wall_s,
        "steps": float(len(spans)),
        "queued_s": sum(s.queued_s for s in spans),
        "setup_s": sum(s.setup_s for s in spans),
        "run_s": sum(s.run_s for s in spans),
        "workers": float(len({s.worker for s in spans})),
    }
