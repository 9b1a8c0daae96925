"""The ohlcv quality gate on a real DuckDB table: clean data passes, each corruption is named."""

from __future__ import annotations

import shutil
from datetime import date, datetime, timezone

import pandas as pd
import pytest

from quantlab_assets.common.calendar import trading_days
from quantlab_assets.common.warehouse import connect, table_checksum
from quantlab_assets.data_curator.core import gate as ohlcv_gate
from quantlab_assets.data_curator.core import store
from quantlab_assets.data_curator.core.gate import QualityThresholds, evaluate_stored
from quantlab_assets.data_curator.core.providers import FetchResult, SymbolFailure, empty_bars
from quantlab_assets.data_curator.core.report import quality_report_markdown
from quantlab_assets.data_curator.core.schema import OHLCV
from quantlab_assets.data_curator.core.step import audit_and_publish_ohlcv
from quantlab_assets.data_curator.core.synthetic import SyntheticProvider
from quantlab_assets_tests.support.unaudited import write_ohlcv_unaudited

SYMBOLS = ["AAA", "BBB", "CCC", "DDD", "EEE"]
SECTORS = {"AAA": "Tech", "BBB": "Tech", "CCC": "Energy", "DDD": "Energy", "EEE": "Health"}
START, END = date(2024, 1, 2), date(2024, 2, 29)
N_SESSIONS = len(trading_days(START, END))  # 21 in January (New Year, MLK) + 20 in February
CHECKS = ["coverage", "duplicates", "invalid_prices", "volume_non_negative", "suspicious_jumps"]
BAD_SYMBOL, BAD_DAY = "CCC", "2024-01-17"
STRICT = QualityThresholds()
NOW = datetime(2024, 3, 1, 12, 0, tzinfo=timezone.utc)


@pytest.fixture(scope="module")
def clean_db(tmp_path_factory):
    """A clean ``ohlcv`` table written the way the asset writes it; copied by each test."""
    path = tmp_path_factory.mktemp("template") / "lab.duckdb"
    result = SyntheticProvider(seed=7, sectors=SECTORS).fetch(SYMBOLS, START, END)
    rows = store.ohlcv_rows(result, "synthetic", "run-clean", NOW)
    con = connect(path)
    try:
        outcome = audit_and_publish_ohlcv(con, rows, result, SYMBOLS, START, END, "synthetic", "run-clean", NOW)
        assert outcome.refused == {} and outcome.published == SYMBOLS
        assert outcome.rows_written == len(SYMBOLS) * N_SESSIONS == 205
        checksum = table_checksum(con, "ohlcv", OHLCV.column_names)
    finally:
        con.close()
    return path, checksum


@pytest.fixture
def con(clean_db, tmp_path):
    """A fresh copy of the clean table."""
    template, checksum = clean_db
    path = tmp_path / "lab.duckdb"
    shutil.copy(template, path)
    check = connect(path, read_only=True)
    try:
        assert table_checksum(check, "ohlcv", OHLCV.column_names) == checksum
    finally:
        check.close()  # a separate connection: table_checksum leaves a pending result (see below)
    c = connect(path)
    yield c
    c.close()


def evaluate(con, start=START, end=END, symbols=SYMBOLS, thresholds=STRICT, listing=None):
    results = evaluate_stored(con, start, end, symbols, thresholds, listing)
    assert [r.name for r in results] == CHECKS
    return {r.name: r for r in results}


def failed(results) -> set[str]:
    return {name for name, r in results.items() if not r.passed}


def where_bad(extra: str = "") -> str:
    return f"symbol = '{BAD_SYMBOL}' AND date = DATE '{BAD_DAY}'" + (f" AND {extra}" if extra else "")


# ----------------------------------------------------------------------------- clean data


def test_clean_table_passes_every_check(con):
    results = evaluate(con)
    assert failed(results) == set()
    cov = results["coverage"]
    assert cov.figures["coverage_pct"] == 100.0
    assert cov.figures["expected_pairs"] == 205 and cov.figures["missing_pairs"] == 0
    assert cov.figures["rows_off_calendar"] == 0
    assert cov.description == "coverage 100% of 205 (symbol, session) pairs"
    assert results["duplicates"].figures == {"duplicate_keys": 0, "extra_rows": 0}
    assert results["invalid_prices"].figures == {"invalid_rows": 0}
    assert results["volume_non_negative"].figures == {"invalid_rows": 0}
    assert results["suspicious_jumps"].figures == {"jumps": 0}
    assert all(len(r.offending) == 0 for r in results.values())
    assert [r.blocking for r in results.values()] == [True, True, True, True, False]


def test_stored_rows_carry_provenance(con):
    got = con.execute("SELECT DISTINCT source, run_id, ingested_at, typeof(date) FROM ohlcv").fetchall()
    assert got == [("synthetic", "run-clean", datetime(2024, 3, 1, 12, 0), "DATE")]


# ----------------------------------------------------------------------------- one corruption each


@pytest.mark.parametrize(
    "update, reason",
    [
        ("close = 'NaN'::DOUBLE", "NaN price"),
        ("close = NULL", "missing price"),
        ("close = 'inf'::DOUBLE", "infinite price"),
        ("low = -1.0", "non-positive price"),
        ("open = 0.0", "non-positive price"),
        ("high = low, low = high", "high < low"),
        ("close = high * 1.01", "close outside [low, high]"),
        ("open = low * 0.99", "open outside [low, high]"),
    ],
    ids=[
        "nan_close",
        "null_close",
        "inf_close",
        "negative_low",
        "zero_open",
        "high_below_low",
        "close_above_high",
        "open_below_low",
    ],
)
def test_invalid_price_is_named(con, update, reason):
    con.execute(f"UPDATE ohlcv SET {update} WHERE {where_bad()}")
    results = evaluate(con)
    assert failed(results) == {"invalid_prices"}
    r = results["invalid_prices"]
    assert r.blocking
    assert r.figures == {"invalid_rows": 1}
    assert f"{BAD_SYMBOL} {BAD_DAY}" in r.description
    assert reason in r.description
    assert r.offending[["symbol"]].values.ravel().tolist() == [BAD_SYMBOL]
    assert pd.Timestamp(r.offending["date"].iloc[0]) == pd.Timestamp(BAD_DAY)
    assert reason in r.offending["reason"].iloc[0]


def test_nan_written_through_pandas_is_caught(con):
    """A NaN close in a provider frame (as pandas writes it), stored past the audit, is flagged by the gate."""
    day = pd.Timestamp(BAD_DAY)
    bars = SyntheticProvider(seed=7, sectors=SECTORS).fetch([BAD_SYMBOL], day, day).bars
    bars.loc[0, "close"] = float("nan")
    rows = store.ohlcv_rows(
        FetchResult(bars=bars, stats={BAD_SYMBOL: {}}), "synthetic", "run-2", datetime(2024, 3, 2, tzinfo=timezone.utc)
    )
    write_ohlcv_unaudited(con, rows, day, day, [BAD_SYMBOL])  # the audit would refuse it: the stored gate must see it
    results = evaluate(con)
    assert failed(results) == {"invalid_prices"}
    assert f"{BAD_SYMBOL} {BAD_DAY}" in results["invalid_prices"].description


def test_duplicated_row_is_named(con):
    con.execute(f"INSERT INTO ohlcv SELECT * FROM ohlcv WHERE {where_bad()}")
    results = evaluate(con)
    assert failed(results) == {"duplicates"}
    r = results["duplicates"]
    assert r.figures == {"duplicate_keys": 1, "extra_rows": 1}
    assert f"{BAD_SYMBOL} {BAD_DAY} (2)" in r.description
    assert results["coverage"].figures["coverage_pct"] == 100.0  # duplicates do not inflate coverage


def test_missing_session_is_named_by_coverage(con):
    con.execute(f"DELETE FROM ohlcv WHERE {where_bad()}")
    results = evaluate(con)
    assert failed(results) == {"coverage"}
    r = results["coverage"]
    assert r.figures["missing_pairs"] == 1 and r.figures["expected_pairs"] == 205
    assert r.figures["coverage_pct"] == round(100 * (1 - 1 / 205), 4)
    assert r.figures["coverage_pct"] < 100
    assert f"{BAD_SYMBOL} {BAD_DAY}" in r.description
    assert f"worst symbols: {BAD_SYMBOL} (1 missing)" in r.description
    assert r.offending["symbol"].tolist() == [BAD_SYMBOL]


def test_lower_coverage_limit_tolerates_a_missing_session(con):
    con.execute(f"DELETE FROM ohlcv WHERE {where_bad()}")
    results = evaluate(con, thresholds=QualityThresholds(min_coverage=0.99))
    assert failed(results) == set()
    assert results["coverage"].figures["missing_pairs"] == 1  # still reported


def test_symbol_entirely_absent_fails_coverage(con):
    results = evaluate(con, symbols=SYMBOLS + ["ZZZ"])
    assert failed(results) == {"coverage"}
    r = results["coverage"]
    assert r.figures["missing_pairs"] == N_SESSIONS
    assert f"ZZZ ({N_SESSIONS} missing)" in r.description


def test_negative_volume_is_named(con):
    con.execute(f"UPDATE ohlcv SET volume = -100 WHERE {where_bad()}")
    results = evaluate(con)
    assert failed(results) == {"volume_non_negative"}
    r = results["volume_non_negative"]
    assert r.figures == {"invalid_rows": 1}
    assert f"{BAD_SYMBOL} {BAD_DAY} (-100.0)" in r.description


def test_missing_volume_is_named(con):
    con.execute(f"UPDATE ohlcv SET volume = NULL WHERE {where_bad()}")
    results = evaluate(con)
    assert failed(results) == {"volume_non_negative"}
    assert f"{BAD_SYMBOL} {BAD_DAY}" in results["volume_non_negative"].description


def test_unadjusted_split_is_a_non_blocking_jump_with_a_hint(con):
    split_day = "2024-02-05"
    con.execute(
        f"UPDATE ohlcv SET adj_close = adj_close / 2 WHERE symbol = '{BAD_SYMBOL}' AND date >= DATE '{split_day}'"
    )
    results = evaluate(con)
    assert failed(results) == {"suspicious_jumps"}
    r = results["suspicious_jumps"]
    assert r.blocking is False
    assert r.figures == {"jumps": 1}
    assert f"{BAD_SYMBOL} {split_day}" in r.description
    assert len(r.offending) == 1
    row = r.offending.iloc[0]
    assert row["symbol"] == BAD_SYMBOL and pd.Timestamp(row["date"]) == pd.Timestamp(split_day)
    assert 0.45 < row["ratio"] < 0.55
    assert row["hint"] == "looks like an unadjusted 2:1 split"


def test_jump_on_the_first_session_of_the_range_uses_the_previous_session(con):
    """The previous close is read from before ``start`` (across a weekend)."""
    con.execute(
        f"UPDATE ohlcv SET adj_close = adj_close * 3 WHERE symbol = '{BAD_SYMBOL}' AND date >= DATE '2024-02-05'"
    )
    results = evaluate(con, start=date(2024, 2, 5), end=date(2024, 2, 9))
    r = results["suspicious_jumps"]
    assert not r.passed and r.figures == {"jumps": 1}
    assert r.offending["hint"].tolist() == ["looks like an unadjusted 1:3 reverse split"]


@pytest.mark.parametrize(
    "ratio, hint",
    [
        (0.5, "looks like an unadjusted 2:1 split"),
        (0.25, "looks like an unadjusted 4:1 split"),
        (0.1, "looks like an unadjusted 10:1 split"),
        (3.0, "looks like an unadjusted 1:3 reverse split"),
        (2 / 3, "looks like an unadjusted 3:2 split"),
        (0.62, ""),
        (float("nan"), ""),
    ],
)
def test_split_hint(ratio, hint):
    assert ohlcv_gate._split_hint(ratio) == hint


def test_gate_runs_after_a_checksum_on_the_same_connection(con):
    assert table_checksum(con, "ohlcv", OHLCV.column_names)[0] == 205
    results = evaluate(con)
    assert failed(results) == set()


# ----------------------------------------------------------------------------- calendars, listings


@pytest.mark.parametrize(
    "start, end",
    [("2024-01-15", "2024-01-15"), ("2024-02-17", "2024-02-19")],
    ids=["mlk_day", "weekend_and_presidents_day"],
)
def test_holiday_only_range_expects_nothing_and_passes(con, start, end):
    results = evaluate(con, start=start, end=end)
    assert failed(results) == set()
    cov = results["coverage"]
    assert cov.figures["expected_pairs"] == 0 and cov.figures["coverage_pct"] == 100.0
    assert "nothing expected" in cov.description


def test_holiday_is_not_counted_as_missing(con):
    results = evaluate(con, start="2024-01-12", end="2024-01-16")  # Fri, (weekend, MLK), Tue
    assert results["coverage"].figures["expected_pairs"] == 2 * len(SYMBOLS)
    assert results["coverage"].passed


def test_listing_window_excludes_pre_ipo_sessions(con):
    con.execute("DELETE FROM ohlcv WHERE symbol = 'EEE' AND date < DATE '2024-02-01'")
    listing = {"EEE": (date(2024, 2, 1), None)}
    results = evaluate(con, listing=listing)
    assert failed(results) == set()
    assert results["coverage"].figures["expected_pairs"] == 205 - 21
    # Without the listing window, the same table misses EEE's January.
    without = evaluate(con)
    assert failed(without) == {"coverage"}
    assert "EEE (21 missing)" in without["coverage"].description


def test_listing_window_end_and_rows_off_calendar(con):
    listing = {"DDD": (None, date(2024, 1, 31))}
    results = evaluate(con, listing=listing)
    cov = results["coverage"]
    # DDD still has February rows: expected pairs drop, the extra rows are counted, not failed.
    assert cov.passed
    assert cov.figures["expected_pairs"] == 205 - 20
    assert cov.figures["rows_off_calendar"] == 20


def test_expected_sessions():
    exp = ohlcv_gate.expected_sessions(["AAA", "NEW"], "2024-01-26", "2024-02-02", {"NEW": (date(2024, 2, 1), None)})
    assert exp.groupby("symbol").size().to_dict() == {"AAA": 6, "NEW": 2}
    assert ohlcv_gate.expected_sessions([], "2024-01-02", "2024-01-05").empty


# ----------------------------------------------------------------------------- ingest success


def _result(failures=(), stopped=None, symbols=("AAA", "BBB", "CCC", "DDD")):
    stats = {s: {"api_calls": 1, "retries": 0, "latency_s": 0.1} for s in symbols}
    return FetchResult(bars=empty_bars(), failures=list(failures), stats=stats, stopped_reason=stopped)


def test_ingest_success_all_fetched():
    r = ohlcv_gate.check_ingest_success(_result(), ["AAA", "BBB", "CCC", "DDD"], 1.0)
    assert r.passed and r.blocking
    assert r.description == "all 4 symbols fetched"
    assert r.figures == {"success_rate_pct": 100.0, "symbols_requested": 4, "symbols_failed": 0, "symbols_refused": 0}


def test_ingest_success_with_failures_and_stopped_reason():
    res = _result(
        failures=[
            SymbolFailure("CCC", "daily quota exhausted; 2 symbols remain"),
            SymbolFailure("DDD", "daily quota exhausted; 2 symbols remain"),
        ],
        stopped="Alpha Vantage daily quota exhausted at 'CCC'",
    )
    r = ohlcv_gate.check_ingest_success(res, ["AAA", "BBB", "CCC", "DDD"], 1.0)
    assert not r.passed
    assert r.figures == {"success_rate_pct": 50.0, "symbols_requested": 4, "symbols_failed": 2, "symbols_refused": 0}
    assert "2 of 4 symbols fetched (50.0%, limit 100%)" in r.description
    assert "failed: CCC, DDD" in r.description
    assert "First reason: daily quota exhausted; 2 symbols remain" in r.description
    assert r.description.endswith("Stopped early: Alpha Vantage daily quota exhausted at 'CCC'")
    assert r.offending["symbol"].tolist() == ["CCC", "DDD"]
    # A lower limit lets the same result pass, with the same description of what failed.
    loose = ohlcv_gate.check_ingest_success(res, ["AAA", "BBB", "CCC", "DDD"], 0.5)
    assert loose.passed and "failed: CCC, DDD" in loose.description


def test_ingest_success_truncates_long_failure_lists():
    symbols = [f"S{i}" for i in range(8)]
    res = _result(failures=[SymbolFailure(s, f"HTTP 500 for {s}") for s in symbols[:6]], symbols=symbols)
    r = ohlcv_gate.check_ingest_success(res, symbols, 0.0)
    assert r.passed
    assert "failed: S0, S1, S2, S3, S4 …" in r.description
    assert "Stopped early" not in r.description
    assert r.figures["success_rate_pct"] == 25.0


# ----------------------------------------------------------------------------- thresholds


def test_threshold_defaults_are_strict():
    t = QualityThresholds()
    assert (t.min_coverage, t.min_success_rate, t.max_abs_jump) == (1.0, 1.0, 0.4)
    QualityThresholds(min_coverage=0.0, min_success_rate=0.0, max_abs_jump=5.0)  # bounds allowed


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"min_coverage": 1.01}, "min_coverage"),
        ({"min_coverage": -0.1}, "min_coverage"),
        ({"min_coverage": float("nan")}, "min_coverage"),
        ({"min_success_rate": 95}, "min_success_rate"),
        ({"max_abs_jump": 0}, "max_abs_jump"),
        ({"max_abs_jump": -0.4}, "max_abs_jump"),
    ],
)
def test_threshold_validation(kwargs, name):
    with pytest.raises(ValueError, match=name):
        QualityThresholds(**kwargs)


def test_nan_jump_limit_is_rejected():
    with pytest.raises(ValueError, match="max_abs_jump"):
        QualityThresholds(max_abs_jump=float("nan"))


# ----------------------------------------------------------------------------- report


def test_report_failed_with_offending_rows(con):
    con.execute(f"UPDATE ohlcv SET close = high * 1.01 WHERE {where_bad()}")
    results = evaluate_stored(con, START, END, SYMBOLS, STRICT)
    md = quality_report_markdown(START, END, "test5", 5, results)
    assert "# Quality report: ohlcv 2024-01-02 … 2024-02-29" in md
    assert "Universe **test5** (5 symbols). Gate verdict: **FAILED**." in md
    assert "| invalid_prices | yes | FAIL |" in md
    assert "| coverage | yes | pass |" in md
    assert "## invalid_prices: offending rows" in md
    section = md.split("## invalid_prices: offending rows", 1)[1]
    assert f"| {BAD_DAY} | {BAD_SYMBOL} |" in section
    assert "close outside [low, high]" in section
    assert "PASSED" not in md


def test_report_passed_when_clean(con):
    results = evaluate_stored(con, START, END, SYMBOLS, STRICT)
    md = quality_report_markdown(START, END, "test5", 5, results)
    assert "Gate verdict: **PASSED**." in md
    assert "offending rows" not in md and "FAILED" not in md
    for name in CHECKS:
        assert f"| {name} | " in md and "| pass |" in md
    assert md.count("| pass |") == len(CHECKS)


def test_report_non_blocking_failure_is_a_warning_and_still_passes(con):
    con.execute(
        f"UPDATE ohlcv SET adj_close = adj_close / 2 WHERE symbol = '{BAD_SYMBOL}' AND date >= DATE '2024-02-05'"
    )
    results = evaluate_stored(con, START, END, SYMBOLS, STRICT)
    md = quality_report_markdown(START, END, "test5", 5, results)
    assert "Gate verdict: **PASSED**." in md
    assert "| suspicious_jumps | no | warn |" in md
    assert "## suspicious_jumps: offending rows" in md
    assert "looks like an unadjusted 2:1 split" in md


def test_report_includes_the_ingest_log():
    res = _result(failures=[SymbolFailure("CCC", "HTTP 503")], symbols=("AAA", "BBB", "CCC"))
    log = store.ingest_log_rows(
        res, ["AAA", "BBB", "CCC"], START, END, "alphavantage", "run-9", datetime(2024, 3, 1, tzinfo=timezone.utc)
    )
    gate = ohlcv_gate.check_ingest_success(res, ["AAA", "BBB", "CCC"], 1.0)
    md = quality_report_markdown(START, END, "u", 3, [gate], log)
    assert "Gate verdict: **FAILED**." in md
    assert "- source: alphavantage" in md
    assert "- symbols fetched: 2 of 3" in md
    assert "### Failed symbols" in md and "| CCC | HTTP 503 |" in md


def _expected_per_symbol(symbols, start, end, listing) -> pd.DataFrame:
    """The readable reference: a frame of each symbol's sessions inside its listing, concatenated."""
    from quantlab_assets.common.calendar import trading_days

    frames = []
    for symbol in symbols:
        first, last = (listing or {}).get(symbol, (None, None))
        d = trading_days(start, end)
        d = d[d >= pd.Timestamp(first)] if first is not None else d
        d = d[d <= pd.Timestamp(last)] if last is not None else d
        frames.append(pd.DataFrame({"symbol": symbol, "date": d}))
    return pd.concat(frames, ignore_index=True)


@pytest.mark.parametrize(
    "symbols,listing",
    [
        (["CCC", "AAA", "BBB"], None),
        (["AAA", "BBB", "CCC"], {"AAA": (date(2024, 2, 1), None), "CCC": (None, date(2024, 1, 19))}),
        (["AAA", "BBB"], {"BBB": (date(2025, 1, 1), None)}),  # listed after the range: no sessions
    ],
)
def test_expected_sessions_equal_the_per_symbol_frames(symbols, listing):
    from quantlab_assets.data_curator.core.gate import expected_sessions

    got = expected_sessions(symbols, "2024-01-01", "2024-03-01", listing)
    pd.testing.assert_frame_equal(got, _expected_per_symbol(symbols, "2024-01-01", "2024-03-01", listing))
