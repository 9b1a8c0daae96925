"""worker_timeline on hand-worked spans: which steps overlapped on different workers, and the split
of a step's time into queue wait, set-up and run. (The system test reads a real Celery run's log.)"""

from quantlab_assets.batch_orchestrator.worker_timeline import StepSpan, overlaps, render, summary


def test_overlaps_need_different_workers_and_intersecting_times():
    a = StepSpan("features", "w1@h", 10.0, 20.0, True, 9.0, 9.5)
    b = StepSpan("labels", "w2@h", 15.0, 25.0, True, 9.0, 14.0)
    c = StepSpan("targets", "w1@h", 20.0, 30.0, True, 19.0, 19.5)  # after a on the same worker
    d = StepSpan("ic", "w2@h", 25.0, 26.0, True)  # starts as b ends (not with b), within c
    e = StepSpan("local", "", 0.0, 100.0, True)  # worker unknown: never counted
    pairs = overlaps([a, b, c, d, e])
    assert [(x.step, y.step) for x, y in pairs] == [("features", "labels"), ("labels", "targets"), ("targets", "ic")]


def test_time_split_and_summary():
    b = StepSpan("labels", "w2@h", 15.0, 25.0, True, 9.0, 14.0)
    assert (b.queued_s, b.setup_s, b.run_s) == (5.0, 1.0, 10.0)
    bare = StepSpan("x", "", 1.0, 2.0, False)
    assert (bare.queued_s, bare.setup_s, bare.run_s) == (0.0, 0.0, 1.0)
    assert summary([b, bare], 30.0) == {
        "wall_s": 30.0,
        "steps": 2.0,
        "queued_s": 5.0,
        "setup_s": 1.0,
        "run_s": 11.0,
        "workers": 2.0,
    }
    text = render([b, bare])
    assert "labels" in text and "FAILED" in text.splitlines()[-1]
    assert render([]) == "no steps recorded"
