"""The ohlcv quality gate: pure functions over the warehouse, each naming offending rows.

Every check reads what is stored (what downstream will read), so corrupting a row in the
table and re-running the checks catches it too.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date

import duckdb
import numpy as np
import pandas as pd

from quantlab_assets.common.calendar import trading_days
from quantlab_assets.data_curator.core.providers import FetchResult

SAMPLE_ROWS = 10


@dataclass(frozen=True)
class QualityThresholds:
    """Limits of the gate; defaults are strict (a single missing session fails coverage)."""

    min_coverage: float = 1.0
    min_success_rate: float = 1.0
    max_abs_jump: float = 0.4  # |adj_close / previous - 1| above this is flagged

    def __post_init__(self):
        for name in ("min_coverage", "min_success_rate"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be within [0, 1], got {value}")
        if not self.max_abs_jump > 0:  # also rejects NaN, which would disable the check
            raise ValueError(f"max_abs_jump must be positive, got {self.max_abs_jump}")


@dataclass
class GateResult:
    name: str
    passed: bool
    description: str
    blocking: bool = True
    figures: dict[str, float] = field(default_factory=dict)
    offending: pd.DataFrame = field(default_factory=pd.DataFrame)


def _range(start, end) -> list:
    return [pd.Timestamp(start).date(), pd.Timestamp(end).date()]


def _name_rows(frame: pd.DataFrame, label: str) -> str:
    parts = []
    for row in frame.head(3).itertuples(index=False):
        d = pd.Timestamp(row.date).date()
        parts.append(f"{row.symbol} {d}" + (f" ({getattr(row, label)})" if label else ""))
    more = f" and {len(frame) - 3} more" if len(frame) > 3 else ""
    return ", ".join(parts) + more


def check_duplicates(con: duckdb.DuckDBPyConnection, start, end) -> GateResult:
    dupes = con.execute(
        """SELECT symbol, date, count(*) AS copies FROM ohlcv
           WHERE date BETWEEN ? AND ? GROUP BY symbol, date HAVING count(*) > 1
           ORDER BY symbol, date""", _range(start, end)).df()
    extra = int((dupes["copies"] - 1).sum()) if len(dupes) else 0
    desc = ("no duplicate (symbol, date) rows" if not len(dupes) else
            f"{len(dupes)} (symbol, date) keys stored more than once: {_name_rows(dupes, 'copies')}")
    return GateResult("duplicates", not len(dupes), desc,
                      figures={"duplicate_keys": len(dupes), "extra_rows": extra}, offending=dupes)


_INVALID_REASONS = """
    list_filter([
        CASE WHEN open IS NULL OR high IS NULL OR low IS NULL OR close IS NULL OR adj_close IS NULL
             THEN 'missing price' END,
        CASE WHEN isnan(open) OR isnan(high) OR isnan(low) OR isnan(close) OR isnan(adj_close)
             THEN 'NaN price' END,
        CASE WHEN isinf(open) OR isinf(high) OR isinf(low) OR isinf(close) OR isinf(adj_close)
             THEN 'infinite price' END,
        CASE WHEN open <= 0 OR high <= 0 OR low <= 0 OR close <= 0 OR adj_close <= 0
             THEN 'non-positive price' END,
        CASE WHEN high < low THEN 'high < low' END,
        CASE WHEN open < low OR open > high THEN 'open outside [low, high]' END,
        CASE WHEN close < low OR close > high THEN 'close outside [low, high]' END
    ], lambda x: x IS NOT NULL)
"""


def check_invalid_prices(con: duckdb.DuckDBPyConnection, start, end) -> GateResult:
    # DuckDB orders NaN above every number, so NaN is tested explicitly before comparisons.
    bad = con.execute(
        f"""SELECT date, symbol, open, high, low, close, adj_close,
                   array_to_string({_INVALID_REASONS}, '; ') AS reason
            FROM ohlcv WHERE date BETWEEN ? AND ?
              AND len({_INVALID_REASONS}) > 0
            ORDER BY symbol, date""", _range(start, end)).df()
    desc = ("all prices positive, finite and consistent (low <= open, close <= high)"
            if not len(bad) else f"{len(bad)} rows with invalid prices: {_name_rows(bad, 'reason')}")
    return GateResult("invalid_prices", not len(bad), desc,
                      figures={"invalid_rows": len(bad)}, offending=bad)


def check_volume(con: duckdb.DuckDBPyConnection, start, end) -> GateResult:
    bad = con.execute(
        """SELECT date, symbol, volume FROM ohlcv
           WHERE date BETWEEN ? AND ? AND (volume IS NULL OR isnan(volume) OR volume < 0)
           ORDER BY symbol, date""", _range(start, end)).df()
    desc = ("volume present and >= 0 on every row" if not len(bad) else
            f"{len(bad)} rows with negative or missing volume: {_name_rows(bad, 'volume')}")
    return GateResult("volume_non_negative", not len(bad), desc,
                      figures={"invalid_rows": len(bad)}, offending=bad)


def expected_sessions(
    symbols: Sequence[str], start, end,
    listing: Mapping[str, tuple[date | None, date | None]] | None = None,
) -> pd.DataFrame:
    """(symbol, date) pairs that must carry a bar: sessions within each symbol's listing."""
    days = trading_days(start, end)
    frames = []
    for symbol in symbols:
        first, last = (listing or {}).get(symbol, (None, None))
        d = days
        if first is not None:
            d = d[d >= pd.Timestamp(first)]
        if last is not None:
            d = d[d <= pd.Timestamp(last)]
        frames.append(pd.DataFrame({"symbol": symbol, "date": d}))
    if not frames:
        return pd.DataFrame({"symbol": pd.Series(dtype=object), "date": pd.Series(dtype="datetime64[ns]")})
    return pd.concat(frames, ignore_index=True)


def check_coverage(
    con: duckdb.DuckDBPyConnection, start, end, symbols: Sequence[str], min_coverage: float,
    listing: Mapping[str, tuple[date | None, date | None]] | None = None,
) -> GateResult:
    expected = expected_sessions(symbols, start, end, listing)
    con.register("_expected", expected)
    try:
        missing = con.execute(
            """SELECT e.symbol, e.date FROM _expected e
               ANTI JOIN (SELECT DISTINCT symbol, date FROM ohlcv WHERE date BETWEEN ? AND ?) o
               ON e.symbol = o.symbol AND e.date = o.date
               ORDER BY e.symbol, e.date""", _range(start, end)).df()
        off_calendar = con.execute(
            """SELECT o.symbol, o.date FROM ohlcv o
               WHERE o.date BETWEEN ? AND ? AND o.symbol IN (SELECT DISTINCT symbol FROM _expected)
               AND NOT EXISTS (SELECT 1 FROM _expected e WHERE e.symbol = o.symbol AND e.date = o.date)
               ORDER BY o.symbol, o.date""", _range(start, end)).df()
    finally:
        con.unregister("_expected")
    n_expected = len(expected)
    coverage = 1.0 if n_expected == 0 else 1.0 - len(missing) / n_expected
    passed = coverage >= min_coverage
    if n_expected == 0:
        desc = "no trading sessions in range (holiday or weekend): nothing expected"
    elif not len(missing):
        desc = f"coverage 100% of {n_expected} (symbol, session) pairs"
    else:
        by_symbol = missing.groupby("symbol").size().sort_values(ascending=False)
        worst = ", ".join(f"{s} ({n} missing)" for s, n in by_symbol.head(5).items())
        desc = (f"coverage {coverage:.2%} (limit {min_coverage:.2%}): {len(missing)} of "
                f"{n_expected} (symbol, session) pairs missing, e.g. {_name_rows(missing, '')}; "
                f"worst symbols: {worst}")
    return GateResult(
        "coverage", passed, desc,
        figures={"coverage_pct": round(100 * coverage, 4), "expected_pairs": n_expected,
                 "missing_pairs": len(missing), "rows_off_calendar": len(off_calendar),
                 "min_coverage_pct": 100 * min_coverage},
        offending=missing,
    )


def _split_hint(ratio: float) -> str:
    if not np.isfinite(ratio) or ratio <= 0:
        return ""
    for k in (2, 3, 4, 5, 8, 10, 20):
        if abs(ratio * k - 1) < 0.08:
            return f"looks like an unadjusted {k}:1 split"
        if abs(ratio / k - 1) < 0.08:
            return f"looks like an unadjusted 1:{k} reverse split"
    if abs(ratio * 1.5 - 1) < 0.05:
        return "looks like an unadjusted 3:2 split"
    return ""


def check_suspicious_jumps(con: duckdb.DuckDBPyConnection, start, end, max_abs_jump: float) -> GateResult:
    """Adjusted-close moves beyond the limit: an unadjusted split looks like a crash."""
    lo = pd.Timestamp(start) - pd.Timedelta(days=14)  # reach back for the previous session
    jumps = con.execute(
        """WITH ordered AS (
             SELECT date, symbol, close, adj_close,
                    lag(adj_close) OVER (PARTITION BY symbol ORDER BY date) AS prev_adj_close,
                    split_coefficient
             FROM ohlcv WHERE date BETWEEN ? AND ?)
           SELECT date, symbol, prev_adj_close, adj_close, adj_close / prev_adj_close AS ratio,
                  split_coefficient
           FROM ordered
           WHERE date >= ? AND prev_adj_close > 0 AND abs(adj_close / prev_adj_close - 1) > ?
           ORDER BY symbol, date""",
        [lo.date(), pd.Timestamp(end).date(), pd.Timestamp(start).date(), max_abs_jump]).df()
    if len(jumps):
        jumps["hint"] = [_split_hint(r) for r in jumps["ratio"]]
    desc = (f"no adjusted-close move beyond ±{max_abs_jump:.0%}" if not len(jumps) else
            f"{len(jumps)} moves beyond ±{max_abs_jump:.0%} (splits not adjusted, or bad prints): "
            + _name_rows(jumps.assign(ratio=jumps["ratio"].round(4)), "ratio"))
    return GateResult("suspicious_jumps", not len(jumps), desc, blocking=False,
                      figures={"jumps": len(jumps)}, offending=jumps)


def check_ingest_success(result: FetchResult, symbols: Sequence[str], min_success_rate: float) -> GateResult:
    failed = pd.DataFrame(
        [{"symbol": f.symbol, "reason": f.reason} for f in result.failures],
        columns=["symbol", "reason"])
    n = len(symbols)
    rate = 1.0 if n == 0 else (n - len(failed)) / n
    passed = rate >= min_success_rate
    if failed.empty:
        desc = f"all {n} symbols fetched"
    else:
        names = ", ".join(failed["symbol"].head(5)) + (" …" if len(failed) > 5 else "")
        desc = (f"{n - len(failed)} of {n} symbols fetched ({rate:.1%}, limit {min_success_rate:.0%}); "
                f"failed: {names}. First reason: {failed['reason'].iloc[0]}")
        if result.stopped_reason:
            desc += f". Stopped early: {result.stopped_reason}"
    return GateResult("ingest_success_rate", passed, desc,
                      figures={"success_rate_pct": round(100 * rate, 4), "symbols_requested": n,
                               "symbols_failed": len(failed)},
                      offending=failed)


def evaluate_stored(
    con: duckdb.DuckDBPyConnection, start, end, symbols: Sequence[str],
    thresholds: QualityThresholds,
    listing: Mapping[str, tuple[date | None, date | None]] | None = None,
) -> list[GateResult]:
    """All table checks of the gate for [start, end], in report order."""
    return [
        check_coverage(con, start, end, symbols, thresholds.min_coverage, listing),
        check_duplicates(con, start, end),
        check_invalid_prices(con, start, end),
        check_volume(con, start, end),
        check_suspicious_jumps(con, start, end, thresholds.max_abs_jump),
    ]
