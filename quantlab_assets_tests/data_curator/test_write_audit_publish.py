"""Write, audit, publish: re-ingesting a stored week from a bad source keeps every stored
price bit for bit, fails the run naming file, row and column, and keeps what was refused.

Each case: a good week (2024-02-05..09, five symbols) is stored by the ohlcv step's core call;
then the same week is re-ingested through the real Definitions, where AAA's source is bad
and the other four sources carry the same bars as stored.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone

import dagster as dg
import duckdb
import pandas as pd
import pytest

from quantlab_assets.common.warehouse import connect, table_checksum
from quantlab_assets.data_curator.assets import ohlcv, symbols
from quantlab_assets.data_curator.checks import ohlcv_quality_gate
from quantlab_assets.data_curator.core.schema import OHLCV
from quantlab_assets.data_curator.core.step import audit_and_publish_ohlcv
from quantlab_assets.data_curator.core.store import ohlcv_rows
from quantlab_assets.data_curator.resources import MarketDataResource
from quantlab_assets.definitions import defs
from quantlab_assets_tests.support.alphavantage_server import ScriptedServer, daily_payload, reply_json, reply_raw

START, END = "2024-02-05", "2024-02-09"
TAGS = {"dagster/asset_partition_range_start": START, "dagster/asset_partition_range_end": END}
# The bars themselves; provenance (source, ingested_at, run_id) changes on a re-publish.
CONTENT = [c for c in OHLCV.column_names if c not in ("source", "ingested_at", "run_id")]
HEADER = "date,open,high,low,close,adj_close,volume"


def _lines(bars: pd.DataFrame) -> list[str]:
    return [
        f"{d:%Y-%m-%d},{o!r},{h!r},{lo!r},{c!r},{a!r},{v!r}"
        for d, o, h, lo, c, a, v in zip(
            bars["date"], bars["open"], bars["high"], bars["low"], bars["close"], bars["adj_close"], bars["volume"]
        )
    ]


def _state(db) -> dict:
    """Row count + checksum per table, and AAA's rows with every column (bit for bit)."""
    with duckdb.connect(str(db), read_only=True) as con:
        out = {
            "ohlcv": table_checksum(con, "ohlcv", CONTENT),
            "ohlcv_all_columns": table_checksum(con, "ohlcv", OHLCV.column_names),
            "symbols": table_checksum(con, "symbols", ["symbol", "sector"]),
        }
        out["AAA"] = con.execute("SELECT * FROM ohlcv WHERE symbol = 'AAA' ORDER BY date").fetchall()
    return out


def _run(instance, provider: str = "csv", **market):
    resources = {**defs.resources, "market_data": MarketDataResource(provider=provider, **market)}
    return dg.materialize(
        [symbols, ohlcv, ohlcv_quality_gate], instance=instance, resources=resources, tags=TAGS, raise_on_error=False
    )


@pytest.fixture
def stored_week(lab_env, small_universe, tmp_path, monkeypatch):
    """The good week stored by a real run, plus CSV files of the same bars for the re-ingest."""
    instance = dg.DagsterInstance.get()
    # Stored the way the ohlcv step stores (its core call), without a Dagster run to keep this fast.
    market = MarketDataResource(provider="synthetic")
    registry = market.registry()
    fetched = market.build_provider(registry).fetch(registry.tickers, START, "2024-02-11")
    now = datetime(2024, 2, 12, 23, 0, tzinfo=timezone.utc)
    with connect(lab_env["QUANTLAB_DB"]) as con:
        audit_and_publish_ohlcv(
            con,
            ohlcv_rows(fetched, "synthetic", "run-good-week", now),
            fetched,
            registry.tickers,
            START,
            "2024-02-11",
            "synthetic",
            "run-good-week",
            now,
            registry,
        )
    with duckdb.connect(str(lab_env["QUANTLAB_DB"]), read_only=True) as con:
        bars = con.execute("SELECT * FROM ohlcv ORDER BY symbol, date").df()
    csv_dir = tmp_path / "csv"
    csv_dir.mkdir()
    for symbol, frame in bars.groupby("symbol"):
        (csv_dir / f"{symbol}.csv").write_text("\n".join([HEADER, *_lines(frame)]) + "\n")
    monkeypatch.setenv("QUANTLAB_CSV_DIR", str(csv_dir))
    before = _state(lab_env["QUANTLAB_DB"])
    assert before["ohlcv"][0] == 25 and len(before["AAA"]) == 5
    return {"instance": instance, "bars": bars, "csv": csv_dir, "db": lab_env["QUANTLAB_DB"], "before": before}


def _aaa_lines(week) -> list[str]:
    return _lines(week["bars"][week["bars"]["symbol"] == "AAA"])


def _replace_value(line: str, column: str, value: str) -> str:
    parts = line.split(",")
    parts[HEADER.split(",").index(column)] = value
    return ",".join(parts)


def _rejects(db, run_id) -> list[tuple]:
    with duckdb.connect(str(db), read_only=True) as con:
        return con.execute(
            'SELECT symbol, date, source, line, "column", value, check_name FROM ohlcv_rejects '
            'WHERE run_id = ? ORDER BY line, "column"',
            [run_id],
        ).fetchall()


def _assert_kept(week, result):
    """Nothing of the stored week changed; the four good symbols were re-published (same values)."""
    after = _state(week["db"])
    assert after["AAA"] == week["before"]["AAA"]  # bit for bit, provenance included
    assert after["ohlcv"] == week["before"]["ohlcv"] and after["symbols"] == week["before"]["symbols"]
    assert not result.success
    started = {e.step_key for e in result.all_events if e.event_type_value == "STEP_START"}
    assert "ohlcv" in started


def _checks(result) -> dict:
    return {e.check_name: e for e in result.get_asset_check_evaluations()}


# Refused by the source rules while reading: the ingest check names file, line, column, value.
SOURCE_CASES = {
    "thousands_separator": (
        lambda ls: [ls[0], _replace_value(ls[1], "close", '"1,234.5"'), *ls[2:]],
        "line 3, 2024-02-06, column close, value '1,234.5': not a plain number",
        3,
    ),
    "n_a": (
        lambda ls: [ls[0], ls[1], _replace_value(ls[2], "open", "N/A"), *ls[3:]],
        "line 4, 2024-02-07, column open, value 'N/A': not a number",
        4,
    ),
    "dash": (
        lambda ls: [*ls[:4], _replace_value(ls[4], "low", "-")],
        "line 6, 2024-02-09, column low, value '-': not a number",
        6,
    ),
    "empty_price": (
        lambda ls: [_replace_value(ls[0], "high", ""), *ls[1:]],
        "line 2, 2024-02-05, column high, value '': empty where a number is required",
        2,
    ),
    "duplicate_date": (
        lambda ls: [*ls, _replace_value(ls[0], "close", "99.5")],
        "line 2, 2024-02-05, column date, value '2024-02-05': date appears 2 times for AAA",
        2,
    ),
    "saturday": (
        lambda ls: [*ls, _replace_value(ls[4], "date", "2024-02-10")],
        "line 7, 2024-02-10, column date, value '2024-02-10': Saturday is not a trading session",
        7,
    ),
    "ragged": (lambda ls: [ls[0], ls[1] + ",17", *ls[2:]], "line 3, value '2024-02-06,", 3),
}


@pytest.mark.parametrize("case", sorted(SOURCE_CASES))
def test_bad_source_values_are_refused_and_the_stored_week_kept(stored_week, case):
    edit, fragment, line = SOURCE_CASES[case]
    path = stored_week["csv"] / "AAA.csv"
    path.write_text("\n".join([HEADER, *edit(_aaa_lines(stored_week))]) + "\n")

    result = _run(stored_week["instance"])

    _assert_kept(stored_week, result)
    ingest = _checks(result)["ingest_success_rate"]
    assert not ingest.passed
    assert f"AAA: refused {path}: {fragment}" in ingest.description
    assert "4 of 5 symbols fetched" in ingest.description
    if case == "ragged":
        assert "8 fields where the header has 7" in ingest.description
    rejects = _rejects(stored_week["db"], result.run_id)
    assert rejects and all(r[0] == "AAA" and r[2] == str(path) for r in rejects)
    assert line in [r[3] for r in rejects]
    with duckdb.connect(str(stored_week["db"]), read_only=True) as con:
        weekend = con.execute("SELECT count(*) FROM ohlcv WHERE dayofweek(date) IN (0, 6)").fetchall()[0][0]
        log = con.execute(
            "SELECT status, rows FROM ohlcv_ingest_log WHERE run_id = ? AND symbol = 'AAA'", [result.run_id]
        ).fetchall()
    assert weekend == 0 and log == [("failed", 0)]


FILE_CASES = {
    "empty_file": (b"", "the file is empty"),
    "not_utf8": (
        f"{HEADER}\n2024-02-05,1,2,0.5,1.5,1.5,10\n".encode() + "Soci\u00e9t\u00e9\n".encode("cp1252"),
        "line 3: not UTF-8 text (byte 0xe9",
    ),
    "two_adj_close_columns": (
        b"Date,Open,High,Low,Close,Adj Close,adj_close,Volume\n",
        "line 1, column adj_close: columns 'Adj Close' and 'adj_close' both mean 'adj_close'",
    ),
}


@pytest.mark.parametrize("case", sorted(FILE_CASES))
def test_unreadable_files_are_refused_with_a_clear_message(stored_week, case):
    body, fragment = FILE_CASES[case]
    path = stored_week["csv"] / "AAA.csv"
    path.write_bytes(body)

    result = _run(stored_week["instance"])

    _assert_kept(stored_week, result)
    description = _checks(result)["ingest_success_rate"].description
    assert f"AAA: refused {path}: {fragment}" in description
    assert "arg must be" not in description and "Error tokenizing" not in description


@pytest.mark.parametrize(("keep", "kept_of"), [(0, "0 of 5"), (2, "2 of 5")], ids=["header_only", "truncated"])
def test_shorter_series_keeps_the_stored_rows_with_the_counts(stored_week, keep, kept_of):
    path = stored_week["csv"] / "AAA.csv"
    path.write_text("\n".join([HEADER, *_aaa_lines(stored_week)[:keep]]) + "\n")

    result = _run(stored_week["instance"])

    _assert_kept(stored_week, result)
    checks = _checks(result)
    assert checks["ingest_success_rate"].passed  # readable; the audit refused it
    coverage = checks["coverage"]
    assert not coverage.passed
    assert (
        f"AAA: {path}, column date, value '{kept_of} sessions': source has {kept_of} sessions stored "
        "for 2024-02-05…2024-02-09; kept the stored rows"
    ) in coverage.description
    assert _rejects(stored_week["db"], result.run_id) == [
        ("AAA", None, str(path), None, "date", f"{kept_of} sessions", "coverage")
    ]


def test_inconsistent_prices_are_audited_before_publishing(stored_week):
    lines = _aaa_lines(stored_week)
    parts = lines[1].split(",")
    parts[2], parts[3] = parts[3], parts[2]  # high < low on 2024-02-06
    path = stored_week["csv"] / "AAA.csv"
    path.write_text("\n".join([HEADER, lines[0], ",".join(parts), *lines[2:]]) + "\n")

    result = _run(stored_week["instance"])

    _assert_kept(stored_week, result)
    invalid = _checks(result)["invalid_prices"]
    assert not invalid.passed
    assert f"AAA: {path}, 2024-02-06, column high, low" in invalid.description
    assert "high < low" in invalid.description and "AAA kept the stored rows" in invalid.description
    assert invalid.metadata["refused_values"].value == 1.0


def test_a_good_reingest_replaces_the_week_and_passes(stored_week):
    result = _run(stored_week["instance"])
    assert result.success and all(e.passed for e in result.get_asset_check_evaluations())
    after = _state(stored_week["db"])
    assert after["ohlcv"] == stored_week["before"]["ohlcv"]  # same values ...
    assert after["ohlcv_all_columns"] != stored_week["before"]["ohlcv_all_columns"]  # ... new provenance
    assert _rejects(stored_week["db"], result.run_id) == []


def test_every_symbol_failing_writes_the_ingest_log_before_raising(stored_week):
    for path in stored_week["csv"].iterdir():
        path.write_text(HEADER + "\n")

    result = _run(stored_week["instance"])

    assert not result.success
    assert _state(stored_week["db"]) == stored_week["before"]
    failure = result.failure_data_for_node("ohlcv").error.message
    assert "nothing published for 2024-02-05..2024-02-11, the stored rows are kept" in failure
    assert "AAA: " + str(stored_week["csv"] / "AAA.csv") + ", column date, value '0 of 5 sessions'" in failure
    with duckdb.connect(str(stored_week["db"]), read_only=True) as con:
        log = con.execute(
            "SELECT symbol, status, error FROM ohlcv_ingest_log WHERE run_id = ? ORDER BY symbol", [result.run_id]
        ).fetchall()
    assert [(s, st) for s, st, _ in log] == [(s, "failed") for s in ("AAA", "BBB", "CCC", "DDD", "EEE")]
    assert all("source has 0 of 5 sessions stored" in e for _, _, e in log)


# -- the same rules on the Alpha Vantage path, through the local 127.0.0.1 server -------------


@pytest.fixture
def av(stored_week, monkeypatch):
    server = ScriptedServer()
    monkeypatch.setenv("ALPHAVANTAGE_BASE_URL", server.url)
    monkeypatch.setenv("ALPHAVANTAGE_API_KEY", "TESTKEY0SECRET42")
    bars = stored_week["bars"]
    for symbol in ("BBB", "CCC", "DDD", "EEE"):
        rows = bars[bars["symbol"] == symbol]
        server.script(
            symbol,
            reply_json(
                daily_payload(
                    symbol,
                    {
                        f"{d:%Y-%m-%d}": (repr(o), repr(h), repr(lo), repr(c), repr(v))
                        for d, o, h, lo, c, v in zip(
                            rows["date"], rows["open"], rows["high"], rows["low"], rows["close"], rows["volume"]
                        )
                    },
                )
            ),
        )
    yield server
    server.close()


def _aaa_payload(week, symbol="AAA") -> dict:
    rows = week["bars"][week["bars"]["symbol"] == "AAA"]
    return daily_payload(
        symbol,
        {
            f"{d:%Y-%m-%d}": (repr(o), repr(h), repr(lo), repr(c), repr(v))
            for d, o, h, lo, c, v in zip(
                rows["date"], rows["open"], rows["high"], rows["low"], rows["close"], rows["volume"]
            )
        },
    )


def _run_av(week):
    return _run(
        week["instance"],
        provider="alphavantage",
        requests_per_minute=0,
        backoff_base_s=0.001,
        alphavantage_outputsize="full",
    )


def test_alphavantage_empty_series_keeps_the_stored_rows(stored_week, av):
    payload = _aaa_payload(stored_week)
    payload["Time Series (Daily)"] = {}
    av.script("AAA", reply_json(payload))

    result = _run_av(stored_week)

    _assert_kept(stored_week, result)
    assert (
        "AAA: Alpha Vantage TIME_SERIES_DAILY reply for AAA, column date, value '0 of 5 sessions': source has "
        "0 of 5 sessions stored for 2024-02-05…2024-02-09; kept the stored rows"
    ) in _checks(result)["coverage"].description


def test_alphavantage_reply_for_another_ticker_is_refused(stored_week, av):
    av.script("AAA", reply_json(_aaa_payload(stored_week, symbol="MSFT")))

    result = _run_av(stored_week)

    _assert_kept(stored_week, result)
    assert "the reply's Meta Data symbol is 'MSFT', not 'AAA'" in _checks(result)["ingest_success_rate"].description


def test_alphavantage_duplicate_json_keys_are_refused(stored_week, av):
    text = json.dumps(_aaa_payload(stored_week))
    first = text.index('"2024-02-05": ')
    row = text[first : text.index("}", first) + 1]
    av.script(
        "AAA", reply_raw(text.replace(row, row + ", " + row.replace('"4. close": "', '"4. close": "1'), 1).encode())
    )

    result = _run_av(stored_week)

    _assert_kept(stored_week, result)
    assert "JSON key '2024-02-05' appears twice" in _checks(result)["ingest_success_rate"].description


def test_a_gate_reexecuted_alone_still_judges_what_its_parent_run_refused(stored_week):
    from types import SimpleNamespace

    from quantlab_assets.data_curator.checks import _ingesting_run

    path = stored_week["csv"] / "AAA.csv"
    path.write_text("\n".join([HEADER, *_aaa_lines(stored_week)[:2]]) + "\n")
    parent = _run(stored_week["instance"])
    assert not _checks(parent)["coverage"].passed
    child = SimpleNamespace(run_id="child-run", parent_run_id=parent.run_id, root_run_id=parent.run_id)
    fresh = SimpleNamespace(run_id=parent.run_id, parent_run_id=None, root_run_id=None)
    with duckdb.connect(str(stored_week["db"])) as con:
        assert _ingesting_run(con, child) == parent.run_id  # "Re-execute from failure" of the gate
        assert _ingesting_run(con, fresh) == parent.run_id
        assert (
            _ingesting_run(con, SimpleNamespace(run_id="checks-only", parent_run_id=None, root_run_id=None))
            == "checks-only"
        )


def test_no_symbol_fetched_writes_the_ingest_log_before_raising(stored_week):
    for path in stored_week["csv"].iterdir():
        path.unlink()

    result = _run(stored_week["instance"])

    assert not result.success and _state(stored_week["db"]) == stored_week["before"]
    assert "0 of 5 symbols fetched" in result.failure_data_for_node("ohlcv").error.message
    with duckdb.connect(str(stored_week["db"]), read_only=True) as con:
        log = con.execute(
            "SELECT symbol, status, rows, error FROM ohlcv_ingest_log WHERE run_id = ? ORDER BY symbol", [result.run_id]
        ).fetchall()
    assert [(s, st, n) for s, st, n, _ in log] == [(s, "failed", 0) for s in ("AAA", "BBB", "CCC", "DDD", "EEE")]
    assert all("no file for symbol" in e for *_, e in log)


# What the feature store cannot represent is refused at ingest, naming the row (issue 24): a CSV
# close of 1e308 was stored and every later features run overflowed.
ABSURD_CASES = {
    "all_prices_1e308": (
        ["open", "high", "low", "close", "adj_close"],
        "1e+308",
        "invalid_prices",
        "price above 1e+09",
    ),
    "tiny_price": (["open", "high", "low", "close", "adj_close"], "1e-09", "invalid_prices", "price below 1e-06"),
    "volume_1e300": (["volume"], "1e300", "volume_non_negative", "volume above 1e+15"),
}


@pytest.mark.parametrize("case", sorted(ABSURD_CASES))
def test_values_the_feature_store_cannot_represent_are_refused_naming_the_row(stored_week, case):
    columns, value, check, reason = ABSURD_CASES[case]
    lines = _aaa_lines(stored_week)
    for column in columns:
        lines[2] = _replace_value(lines[2], column, value)
    path = stored_week["csv"] / "AAA.csv"
    path.write_text("\n".join([HEADER, *lines]) + "\n")

    result = _run(stored_week["instance"])

    _assert_kept(stored_week, result)
    gate = _checks(result)[check]
    assert not gate.passed
    assert f"AAA: {path}, 2024-02-07, column " in gate.description and reason in gate.description
    rejects = _rejects(stored_week["db"], result.run_id)
    assert {(r[0], str(r[1]), r[6]) for r in rejects} == {("AAA", "2024-02-07", check)}
