"""The Delta Lake backend (common/delta_store.py) behind common/warehouse.py: the same slice
semantics as the DuckDB file, one commit per published slice, refusals that leave the version
unchanged, and real concurrent writer processes."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path

import duckdb
import pandas as pd
import pytest

deltalake = pytest.importorskip(
    "deltalake", reason="the Delta backend needs the scale extra: pip install -e '.[scale]'"
)

from quantlab_assets.common import delta_store, settings, warehouse  # noqa: E402
from quantlab_assets.common.gates import GateResult  # noqa: E402
from quantlab_assets.common.publish import AUDIT_REJECTS, Slice, audit_and_publish  # noqa: E402
from quantlab_assets_tests.support.delta_writer import END, START, TARGETS, frame  # noqa: E402

PROJECT_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def session(tmp_path):
    s = delta_store.DeltaSession(delta_store.DeltaStore(str(tmp_path / "delta")))
    yield s
    s.close()


def _rows(con) -> pd.DataFrame:
    return warehouse.read_slice(con, TARGETS, "2024-01-01", "2024-01-31").sort_values(["strategy", "symbol", "date"])


def _same_ops(con) -> None:
    """The same writes on either backend: two strategies, then a partial re-write of one."""
    warehouse.replace_strategy_slice(con, TARGETS, frame("a", 1.0), "a", START, END)
    warehouse.replace_strategy_slice(con, TARGETS, frame("o'neil", 2.0), "o'neil", START, END)
    redo = frame("a", 3.0)
    redo = redo[redo["date"] == pd.Timestamp("2024-01-03")]
    warehouse.replace_strategy_slice(con, TARGETS, redo, "a", "2024-01-03", "2024-01-03")
    # an empty slice deletes exactly that slice
    warehouse.replace_strategy_slice(con, TARGETS, frame("a", 0.0).iloc[0:0], "a", "2024-01-05", "2024-01-05")


def test_slices_equal_the_duckdb_backend_and_each_is_one_commit(session, tmp_path):
    duck = duckdb.connect(str(tmp_path / "lab.duckdb"))
    _same_ops(duck)
    expected = _rows(duck).reset_index(drop=True)
    duck.close()

    _same_ops(session)
    got = _rows(session).reset_index(drop=True)
    pd.testing.assert_frame_equal(got, expected, check_exact=True)
    # hand-worked: a = 1.0 on 01-02 and 01-04, 3.0 on 01-03, nothing on 01-05; o'neil untouched by a's writes
    a = got[got["strategy"] == "a"].groupby("date")["weight"].agg(["min", "max", "size"])
    assert a.to_dict("index") == {
        pd.Timestamp("2024-01-02"): {"min": 1.0, "max": 1.0, "size": 3},
        pd.Timestamp("2024-01-03"): {"min": 3.0, "max": 3.0, "size": 3},
        pd.Timestamp("2024-01-04"): {"min": 1.0, "max": 1.0, "size": 3},
    }
    assert (got[got["strategy"] == "o'neil"]["weight"] == 2.0).all() and (got["strategy"] == "o'neil").sum() == 12
    # created (0) + four slice commits, one each
    table = session.store.table("targets")
    assert table is not None and table.version() == 4
    assert [h["operation"] for h in session.store.history("targets").to_dict("records")][:4] == ["WRITE"] * 4


def test_refused_audit_leaves_the_version_and_is_recorded(session):
    warehouse.replace_strategy_slice(session, TARGETS, frame("a", 1.0), "a", START, END)
    before = session.store.table("targets").version()
    failing = GateResult("weights_sum", False, "gross above 1", blocking=True)
    out = audit_and_publish(
        session, [Slice(TARGETS, frame("a", 9.0), "a")], [failing], START, END, contract="targets/a", run_id="r1"
    )
    assert not out.published and "stored rows were kept" in out.reason
    assert session.store.table("targets").version() == before
    assert (_rows(session)["weight"] == 1.0).all()
    rejects = session.execute(f'SELECT run_id, contract, rule FROM "{AUDIT_REJECTS.name}"').fetchall()
    assert rejects == [("r1", "targets/a", "weights_sum")]
    # a passing audit publishes in one commit
    passing = GateResult("weights_sum", True, "ok", blocking=True)
    out = audit_and_publish(
        session, [Slice(TARGETS, frame("a", 5.0), "a")], [passing], START, END, contract="targets/a", run_id="r2"
    )
    assert out.published and session.store.table("targets").version() == before + 1
    assert (_rows(session)["weight"] == 5.0).all()


def test_a_transaction_commits_nothing_on_error(session):
    warehouse.replace_strategy_slice(session, TARGETS, frame("a", 1.0), "a", START, END)
    version = session.store.table("targets").version()
    with pytest.raises(RuntimeError, match="boom"), warehouse.transaction(session):
        warehouse.replace_strategy_slice(session, TARGETS, frame("a", 7.0), "a", START, END)
        raise RuntimeError("boom")
    assert session.store.table("targets").version() == version and (_rows(session)["weight"] == 1.0).all()


def test_a_slice_may_not_write_outside_itself(session):
    with pytest.raises(ValueError, match="outside the slice"):
        warehouse.replace_slice(session, TARGETS, frame("a", 1.0), START, "2024-01-03")
    with pytest.raises(ValueError, match="not among the keys"):
        warehouse.replace_slice(session, TARGETS, frame("a", 1.0), START, END, key_column="strategy", keys=["b"])
    assert session.store.table("targets") is None or session.store.table("targets").version() == 0


def test_lost_race_is_retried_and_logged_then_fails_clearly(session, caplog):
    warehouse.replace_strategy_slice(session, TARGETS, frame("a", 1.0), "a", START, END)
    store = session.store
    pred = delta_store.slice_predicate("date", START, END, "strategy", ["a"])
    data = delta_store.to_arrow(frame("a", 2.0), TARGETS)
    stale = store.table("targets")
    store.replace(TARGETS, delta_store.to_arrow(frame("a", 3.0), TARGETS), pred)  # a concurrent writer commits
    version = store.table("targets").version()

    def stale_write():  # writes from the version it read, like a writer that lost the race
        deltalake.write_deltalake(stale, data, mode="overwrite", predicate=pred)

    strict = delta_store.DeltaStore(store.url, retries=0)
    with pytest.raises(delta_store.DeltaConflict, match="concurrent writer of the same slice won 1 times"):
        strict.commit("replacing targets a", stale_write)
    assert store.table("targets").version() == version  # nothing of the loser committed

    calls = []

    def write_then_fresh():
        calls.append(1)
        if len(calls) == 1:
            stale_write()
        else:
            store.replace(TARGETS, data, pred)

    with caplog.at_level(logging.WARNING, logger=delta_store.logger.name):
        delta_store.DeltaStore(store.url, retries=2, backoff_s=0.0).commit("replacing targets a", write_then_fresh)
    assert len(calls) == 2 and "conflicted with a concurrent commit (attempt 1 of 3)" in caplog.text


def _writers(url: str, jobs: list[tuple[str, int, int]]) -> list[dict]:
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "quantlab_assets_tests.support.delta_writer", url, s, str(n), str(r)],
            cwd=PROJECT_ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for s, n, r in jobs
    ]
    out = []
    for p in procs:
        stdout, stderr = p.communicate(timeout=300)
        assert p.returncode == 0, stderr[-2000:]
        out.append(json.loads(stdout.strip().splitlines()[-1]))
    return out


def test_writer_processes_of_different_strategies_never_conflict(tmp_path):
    url = str(tmp_path / "delta")
    delta_store.DeltaStore(url).create(TARGETS)
    results = _writers(url, [("a", 8, 0), ("b", 8, 0)])
    assert results == [{"writes": 8, "conflicts": 0, "error": None}] * 2
    s = delta_store.DeltaSession(delta_store.DeltaStore(url))
    rows = _rows(s)
    s.close()
    assert rows.groupby("strategy")["weight"].agg(["min", "max", "size"]).to_dict("index") == {
        "a": {"min": 7.0, "max": 7.0, "size": 12},
        "b": {"min": 7.0, "max": 7.0, "size": 12},
    }


def test_writer_processes_of_the_same_slice_resolve_by_retry(tmp_path):
    url = str(tmp_path / "delta")
    delta_store.DeltaStore(url).create(TARGETS)
    results = _writers(url, [("a", 8, 50), ("a", 8, 50)])
    assert [r["writes"] for r in results] == [8, 8] and all(r["error"] is None for r in results)
    s = delta_store.DeltaSession(delta_store.DeltaStore(url))
    rows = _rows(s)
    s.close()
    # one whole write survives, never a mix, never duplicates: 12 rows of one value
    assert len(rows) == 12 and rows["weight"].nunique() == 1
    history = delta_store.DeltaStore(url).history("targets")
    assert len(history) == 1 + 16  # create + every write committed exactly once


def test_backend_setting_is_a_closed_choice(monkeypatch):
    monkeypatch.setenv(settings.WAREHOUSE_BACKEND, "deltalake")
    with pytest.raises(ValueError, match="valid: duckdb, delta"):
        settings.warehouse_backend()
    monkeypatch.setenv(settings.WAREHOUSE_BACKEND, "Delta")
    assert settings.warehouse_backend() == "delta"
    monkeypatch.setenv(settings.DELTA_COMMIT_RETRIES, "-1")
    with pytest.raises(ValueError, match="whole number"):
        settings.delta_commit_retries()


def test_restore_is_a_new_version_with_the_old_rows(session):
    warehouse.replace_strategy_slice(session, TARGETS, frame("a", 1.0), "a", START, END)
    warehouse.replace_strategy_slice(session, TARGETS, frame("a", 2.0), "a", START, END)
    assert session.store.restore("targets", 1) == 3
    fresh = delta_store.DeltaSession(session.store)
    assert (_rows(fresh)["weight"] == 1.0).all()
    fresh.close()
    with pytest.raises(ValueError, match="versions 0..3"):
        session.store.restore("targets", 9)
    with pytest.raises(ValueError, match="no Delta table 'nope'"):
        session.store.history("nope")


def test_cli_history_and_restore_of_one_strategy(session, capsys):
    from quantlab_assets.batch_orchestrator.cli import main

    url = session.store.url
    warehouse.replace_strategy_slice(session, TARGETS, frame("a", 1.0), "a", START, END)  # v1
    warehouse.replace_strategy_slice(session, TARGETS, frame("b", 1.0), "b", START, END)  # v2
    warehouse.replace_strategy_slice(session, TARGETS, frame("a", 2.0), "a", START, END)  # v3
    warehouse.replace_strategy_slice(session, TARGETS, frame("b", 2.0), "b", START, END)  # v4
    capsys.readouterr()
    assert main(["delta", "history", "targets", "--strategy", "a", "--url", url]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [int(line.split()[0]) for line in lines] == [3, 1, 0]  # a's writes, newest first, and the create
    assert "\"strategy\" IN ('a')" in lines[0] and "2024-01-02" in lines[0]

    assert main(["delta", "restore", "targets", "1", "--strategy", "a", "--url", url]) == 0
    assert "now version 5" in capsys.readouterr().out
    fresh = delta_store.DeltaSession(session.store)
    rows = _rows(fresh)
    fresh.close()
    # a back to version 1's rows, b untouched at its latest
    assert rows.groupby("strategy")["weight"].agg(["min", "max", "size"]).to_dict("index") == {
        "a": {"min": 1.0, "max": 1.0, "size": 12},
        "b": {"min": 2.0, "max": 2.0, "size": 12},
    }
    assert main(["delta", "restore", "targets", "99", "--url", url]) == 2
    assert "versions 0..5" in capsys.readouterr().out
    assert main(["delta", "tables", "--url", url]) == 0
    out = capsys.readouterr().out
    assert "targets" in out and "version 5" in out


def test_a_stored_table_lacking_a_declared_column_is_refused(session):
    old = warehouse.TableSchema(name="targets", columns=TARGETS.columns[:3])
    session.store.create(old)
    fresh = delta_store.DeltaSession(session.store)
    with pytest.raises(warehouse.SchemaMismatchError, match=r"lacks declared columns \['weight'\]"):
        warehouse.replace_strategy_slice(fresh, TARGETS, frame("a", 1.0), "a", START, END)
    fresh.close()
