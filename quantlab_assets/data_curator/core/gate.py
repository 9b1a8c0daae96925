"""The ohlcv quality gate: pure functions over the warehouse, each naming offending rows.

Each row rule is one SQL query over a table name: the ingest runs it on the staged rows
(``ohlcv_staged``, a view only its own connection sees) to decide what may be published,
and the gate checks run it on what is stored (what downstream reads), so corrupting a row
in the table and re-running the checks catches it too.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date

import duckdb
import numpy as np
import pandas as pd

from quantlab_assets.common.calendar import trading_days
from quantlab_assets.common.gates import GateResult  # the one gate-result shape of every team
from quantlab_assets.data_curator.core.providers import FetchResult
from quantlab_assets.data_curator.core.schema import MAX_PRICE, MAX_VOLUME, MIN_PRICE, OHLCV, PRICE_COLUMNS

STORED = OHLCV.name
STAGED = "ohlcv_staged"
_TABLES = (STORED, STAGED)  # the only names a rule's FROM may take


def _table(name: str) -> str:
    if name not in _TABLES:
        raise ValueError(f"quality rules read {_TABLES}, not {name!r}")
    return name


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


def _range(start, end) -> list:
    return [pd.Timestamp(start).date(), pd.Timestamp(end).date()]


def _name_rows(frame: pd.DataFrame, label: str) -> str:
    parts = []
    for row in frame.head(3).itertuples(index=False):
        d = pd.Timestamp(row.date).date()
        parts.append(f"{row.symbol} {d}" + (f" ({getattr(row, label)})" if label else ""))
    more = f" and {len(frame) - 3} more" if len(frame) > 3 else ""
    return ", ".join(parts) + more


def check_duplicates(con: duckdb.DuckDBPyConnection, start, end, table: str = STORED) -> GateResult:
    dupes = con.execute(
        f"""SELECT symbol, date, count(*) AS copies FROM {_table(table)}
           WHERE date BETWEEN ? AND ? GROUP BY symbol, date HAVING count(*) > 1
           ORDER BY symbol, date""",
        _range(start, end),
    ).df()
    dupes["column"] = "date"
    extra = int((dupes["copies"] - 1).sum()) if len(dupes) else 0
    desc = (
        "no duplicate (symbol, date) rows"
        if not len(dupes)
        else f"{len(dupes)} (symbol, date) keys stored more than once: {_name_rows(dupes, 'copies')}"
    )
    return GateResult(
        "duplicates", not len(dupes), desc, figures={"duplicate_keys": len(dupes), "extra_rows": extra}, offending=dupes
    )


def _price_problems() -> str:
    """SQL: the list of {column, reason} a row breaks (empty when the row is valid)."""
    items = []
    for c in PRICE_COLUMNS:
        # DuckDB orders NaN above every number, so NaN is tested before comparisons.
        for cond, reason in (
            (f"{c} IS NULL", "missing price"),
            (f"isnan({c})", "NaN price"),
            (f"isinf({c})", "infinite price"),
            (f"{c} <= 0", "non-positive price"),
            # Constants of the code, not input: beyond them the feature store cannot represent it.
            (f"NOT isnan({c}) AND NOT isinf({c}) AND {c} > {MAX_PRICE!r}", f"price above {MAX_PRICE:g}"),
            (f"{c} > 0 AND {c} < {MIN_PRICE!r}", f"price below {MIN_PRICE:g}"),
        ):
            items.append(f"CASE WHEN {cond} THEN {{'column': '{c}', 'reason': '{reason}'}} END")
    for cond, cols, reason in (
        ("high < low", "high, low", "high < low"),
        ("open < low OR open > high", "open, low, high", "open outside [low, high]"),
        ("close < low OR close > high", "close, low, high", "close outside [low, high]"),
    ):
        items.append(f"CASE WHEN {cond} THEN {{'column': '{cols}', 'reason': '{reason}'}} END")
    return f"list_filter([{', '.join(items)}], lambda x: x IS NOT NULL)"


_PROBLEMS = _price_problems()


def check_invalid_prices(con: duckdb.DuckDBPyConnection, start, end, table: str = STORED) -> GateResult:
    bad = con.execute(
        f"""SELECT date, symbol, open, high, low, close, adj_close, {_PROBLEMS} AS problems
            FROM {_table(table)} WHERE date BETWEEN ? AND ? AND len({_PROBLEMS}) > 0
            ORDER BY symbol, date""",
        _range(start, end),
    ).df()
    reasons, columns, values = [], [], []
    for row in bad.itertuples(index=False):
        problems = list(row.problems)
        reasons.append(
            "; ".join(
                dict.fromkeys(p["reason"] + ("" if "," in p["column"] else f" ({p['column']})") for p in problems)
            )
        )
        cols = list(dict.fromkeys(c for p in problems for c in p["column"].split(", ")))
        columns.append(", ".join(cols))
        values.append(", ".join(f"{c}={getattr(row, c)}" for c in cols))
    bad = bad.drop(columns=["problems"]).assign(reason=reasons, column=columns, value=values)
    desc = (
        "all prices positive, finite and consistent (low <= open, close <= high)"
        if not len(bad)
        else f"{len(bad)} rows with invalid prices: {_name_rows(bad, 'reason')}"
    )
    return GateResult("invalid_prices", not len(bad), desc, figures={"invalid_rows": len(bad)}, offending=bad)


def check_volume(con: duckdb.DuckDBPyConnection, start, end, table: str = STORED) -> GateResult:
    bad = con.execute(
        f"""SELECT date, symbol, volume, CASE WHEN volume < 0 THEN 'negative volume'
                  WHEN volume > {MAX_VOLUME!r} THEN 'volume above {MAX_VOLUME:g}'
                  ELSE 'missing volume' END AS reason FROM {_table(table)}
           WHERE date BETWEEN ? AND ? AND (volume IS NULL OR isnan(volume) OR volume < 0 OR volume > {MAX_VOLUME!r})
           ORDER BY symbol, date""",
        _range(start, end),
    ).df()
    bad["column"] = "volume"
    desc = (
        f"volume present, >= 0 and <= {MAX_VOLUME:g} on every row"
        if not len(bad)
        else f"{len(bad)} rows with negative, missing or absurd volume: {_name_rows(bad, 'volume')}"
    )
    return GateResult("volume_non_negative", not len(bad), desc, figures={"invalid_rows": len(bad)}, offending=bad)


def expected_sessions(
    symbols: Sequence[str],
    start,
    end,
    listing: Mapping[str, tuple[date | None, date | None]] | None = None,
) -> pd.DataFrame:
    """(symbol, date) pairs that must carry a bar: sessions within each symbol's listing."""
    days = trading_days(start, end)
    per_symbol = []  # each symbol's sessions as an array, then one frame (not a frame per symbol)
    for symbol in symbols:
        first, last = (listing or {}).get(symbol, (None, None))
        d = days
        if first is not None:
            d = d[d >= pd.Timestamp(first)]
        if last is not None:
            d = d[d <= pd.Timestamp(last)]
        per_symbol.append(d.to_numpy())
    if not per_symbol:
        return pd.DataFrame({"symbol": pd.Series(dtype=object), "date": pd.Series(dtype="datetime64[ns]")})
    return pd.DataFrame(
        {
            "symbol": np.repeat(np.asarray(list(symbols), dtype=object), [len(d) for d in per_symbol]),
            "date": np.concatenate(per_symbol),
        }
    )


def non_session_rows(con: duckdb.DuckDBPyConnection, start, end, table: str = STORED) -> pd.DataFrame:
    """Rows dated on a weekend or exchange holiday: one such row would make that day a
    session for every symbol downstream."""
    sessions = [d.date() for d in trading_days(start, end)]
    rows = con.execute(
        f"""SELECT symbol, date FROM {_table(table)} WHERE date BETWEEN ? AND ?
            AND date NOT IN (SELECT unnest(?::DATE[])) ORDER BY symbol, date""",
        _range(start, end) + [sessions],
    ).df()
    rows["column"] = "date"
    rows["reason"] = [
        f"{pd.Timestamp(d).day_name()} is not a trading session"
        if pd.Timestamp(d).dayofweek >= 5
        else "exchange holiday, not a trading session"
        for d in rows["date"]
    ]
    return rows


def check_coverage(
    con: duckdb.DuckDBPyConnection,
    start,
    end,
    symbols: Sequence[str],
    min_coverage: float,
    listing: Mapping[str, tuple[date | None, date | None]] | None = None,
) -> GateResult:
    expected = expected_sessions(symbols, start, end, listing)
    con.register("_expected", expected)
    try:
        missing = con.execute(
            f"""SELECT e.symbol, e.date FROM _expected e
               ANTI JOIN (SELECT DISTINCT symbol, date FROM {STORED} WHERE date BETWEEN ? AND ?) o
               ON e.symbol = o.symbol AND e.date = o.date
               ORDER BY e.symbol, e.date""",
            _range(start, end),
        ).df()
        off_calendar = con.execute(
            f"""SELECT o.symbol, o.date FROM {STORED} o
               WHERE o.date BETWEEN ? AND ? AND o.symbol IN (SELECT DISTINCT symbol FROM _expected)
               AND NOT EXISTS (SELECT 1 FROM _expected e WHERE e.symbol = o.symbol AND e.date = o.date)
               ORDER BY o.symbol, o.date""",
            _range(start, end),
        ).df()
    finally:
        con.unregister("_expected")
    non_sessions = non_session_rows(con, start, end)
    n_expected = len(expected)
    coverage = 1.0 if n_expected == 0 else 1.0 - len(missing) / n_expected
    passed = coverage >= min_coverage and not len(non_sessions)
    if len(non_sessions):
        desc = f"{len(non_sessions)} rows on dates that are not sessions: {_name_rows(non_sessions, 'reason')}"
    elif n_expected == 0:
        desc = "no trading sessions in range (holiday or weekend): nothing expected"
    elif not len(missing):
        desc = f"coverage 100% of {n_expected} (symbol, session) pairs"
    else:
        by_symbol = missing.groupby("symbol").size().sort_values(ascending=False)
        worst = ", ".join(f"{s} ({n} missing)" for s, n in by_symbol.head(5).items())
        desc = (
            f"coverage {coverage:.2%} (limit {min_coverage:.2%}): {len(missing)} of "
            f"{n_expected} (symbol, session) pairs missing, e.g. {_name_rows(missing, '')}; "
            f"worst symbols: {worst}"
        )
    return GateResult(
        "coverage",
        passed,
        desc,
        figures={
            "coverage_pct": round(100 * coverage, 4),
            "expected_pairs": n_expected,
            "missing_pairs": len(missing),
            "rows_off_calendar": len(off_calendar),
            "rows_on_non_sessions": len(non_sessions),
            "min_coverage_pct": 100 * min_coverage,
        },
        offending=non_sessions if len(non_sessions) else missing,
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
        f"""WITH ordered AS (
             SELECT date, symbol, close, adj_close,
                    lag(adj_close) OVER (PARTITION BY symbol ORDER BY date) AS prev_adj_close,
                    split_coefficient
             FROM {STORED} WHERE date BETWEEN ? AND ?)
           SELECT date, symbol, prev_adj_close, adj_close, adj_close / prev_adj_close AS ratio,
                  split_coefficient
           FROM ordered
           WHERE date >= ? AND prev_adj_close > 0 AND abs(adj_close / prev_adj_close - 1) > ?
           ORDER BY symbol, date""",
        [lo.date(), pd.Timestamp(end).date(), pd.Timestamp(start).date(), max_abs_jump],
    ).df()
    if len(jumps):
        jumps["hint"] = [_split_hint(r) for r in jumps["ratio"]]
    desc = (
        f"no adjusted-close move beyond ±{max_abs_jump:.0%}"
        if not len(jumps)
        else f"{len(jumps)} moves beyond ±{max_abs_jump:.0%} (splits not adjusted, or bad prints): "
        + _name_rows(jumps.assign(ratio=jumps["ratio"].round(4)), "ratio")
    )
    return GateResult(
        "suspicious_jumps", not len(jumps), desc, blocking=False, figures={"jumps": len(jumps)}, offending=jumps
    )


def check_ingest_success(
    result: FetchResult, symbols: Sequence[str], min_success_rate: float, refused: Mapping[str, str] | None = None
) -> GateResult:
    """Share of the symbols the provider delivered in a readable, well-formed source.

    Symbols the audit refused afterwards (``refused``) are named here but fail the gate's
    own checks (invalid_prices, duplicates, coverage, ...), evaluated in the next step, so
    that every rule is reported under its own name in the UI.
    """
    failed = pd.DataFrame(
        [{"symbol": f.symbol, "reason": f.reason} for f in result.failures], columns=["symbol", "reason"]
    )
    n = len(symbols)
    rate = 1.0 if n == 0 else (n - len(failed)) / n
    passed = rate >= min_success_rate
    if failed.empty:
        desc = f"all {n} symbols fetched"
    else:
        names = ", ".join(failed["symbol"].head(5)) + (" …" if len(failed) > 5 else "")
        desc = (
            f"{n - len(failed)} of {n} symbols fetched ({rate:.1%}, limit {min_success_rate:.0%}); "
            f"failed: {names}. First reason: {failed['reason'].iloc[0]}"
        )
        if result.stopped_reason:
            desc += f". Stopped early: {result.stopped_reason}"
    if refused:
        desc += (
            f"; {len(refused)} refused by the audit, stored rows kept "
            f"({', '.join(sorted(refused))}): see the gate's checks"
        )
    return GateResult(
        "ingest_success_rate",
        passed,
        desc,
        figures={
            "success_rate_pct": round(100 * rate, 4),
            "symbols_requested": n,
            "symbols_failed": len(failed),
            "symbols_refused": len(refused or {}),
        },
        offending=failed,
    )


def with_rejects(results: Sequence[GateResult], rejects: pd.DataFrame) -> list[GateResult]:
    """Each check also fails on what this run refused under its rule: the stored rows were
    kept, so the table alone would look clean while the new data was bad."""
    out = []
    for r in results:
        mine = rejects[rejects["check_name"] == r.name] if len(rejects) else rejects
        if not len(mine) or not r.blocking:
            out.append(r)
            continue
        named = []
        for row in mine.head(3).itertuples(index=False):
            where = ", ".join(
                p
                for p in (
                    row.source,
                    f"line {int(row.line)}" if pd.notna(row.line) else "",
                    str(pd.Timestamp(row.date).date()) if pd.notna(row.date) else "",
                    f"column {row.column}" if isinstance(row.column, str) else "",
                    f"value {row.value!r}" if isinstance(row.value, str) else "",
                )
                if p
            )
            named.append(f"{row.symbol}: {where}: {row.reason}")
        more = f" and {len(mine) - 3} more" if len(mine) > 3 else ""
        symbols = sorted(set(mine["symbol"]))
        desc = (
            f"refused before publishing ({', '.join(symbols)} kept the stored rows): "
            f"{'; '.join(named)}{more}. Stored: {r.description}"
        )
        shown = mine[["symbol", "date", "source", "line", "column", "value", "reason"]]
        offending = shown if not len(r.offending) else pd.concat([shown, r.offending], ignore_index=True)
        out.append(
            GateResult(
                r.name,
                False,
                desc,
                r.blocking,
                {**r.figures, "refused_values": len(mine), "refused_symbols": len(symbols)},
                offending,
            )
        )
    return out


def evaluate_stored(
    con: duckdb.DuckDBPyConnection,
    start,
    end,
    symbols: Sequence[str],
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
