"""What a source must satisfy before any of its rows may be stored, for every provider.

A source (a CSV file, an Alpha Vantage reply) arrives as text. Each value is parsed strictly:
a date is an ISO date of a trading session, a number is a plain decimal ("1,234.5", "N/A",
"-" and empty are refused, never turned into NULL), and a date appears once. Every problem
is collected with its place (line, date, column, value) so one refusal names all of them.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import date

import numpy as np
import pandas as pd

from quantlab_assets.common.calendar import trading_days
from quantlab_assets.data_curator.core.providers import Rejection, refuse
from quantlab_assets.data_curator.core.schema import PRICE_COLUMNS, PROVIDER_COLUMNS

NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")
# ISO date, optionally with a time and UTC offset (yfinance); the session is the local date.
ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)?")
NUMERIC_COLUMNS = PROVIDER_COLUMNS[2:]
# The gate check whose rule a bad value breaks (prices and volume have their own checks).
_CHECK_OF = {**{c: "invalid_prices" for c in PRICE_COLUMNS}, "volume": "volume_non_negative"}


def _number_problem(text: str) -> str:
    if text.strip() == "":
        return "empty where a number is required"
    if "," in text:
        return "not a plain number (thousands separator or decimal comma)"
    return "not a number"


# What the refusal of a non-session row names: the option that drops such rows instead.
DROP_OPTION = "set market_data.drop_non_session_rows (QUANTLAB_DROP_NON_SESSION_ROWS=1) to drop such rows"
# The attrs key of ``strict_bars``' output listing the non-session dates it dropped.
DROPPED = "dropped_non_session_dates"


def _session_problem(day: pd.Timestamp, droppable: bool) -> str:
    hint = f" ({DROP_OPTION})" if droppable else ""
    if day.dayofweek >= 5:
        return f"{day.day_name()} is not a trading session{hint}"
    return f"exchange holiday, not a trading session{hint}"


def strict_bars(
    raw: pd.DataFrame,
    symbol: str,
    source: str,
    start: date | None = None,
    end: date | None = None,
    lines: Sequence[int] | None = None,
    drop_non_sessions: bool | None = None,
) -> pd.DataFrame:
    """Provider bars (``date``, ``symbol`` and the numeric columns present, as float64)
    for the rows of ``raw`` dated in [start, end], or :class:`InputRefused` naming every
    problem.

    ``raw`` holds text: a ``date`` column and numeric columns named as in
    ``PROVIDER_COLUMNS``. ``lines`` gives each row's line in the source file, if a file.
    Dates must all be readable (a row cannot be placed in or out of the range otherwise);
    the other rules apply to the rows in range, the ones that would be stored.

    A row dated on a weekend or an exchange holiday is refused, unless ``drop_non_sessions``
    (vendor exports often carry a holiday row, a stale copy of the previous close): then it is
    dropped unchecked and its date listed in the output's ``attrs[DROPPED]``. ``None``: the
    source has no such option (the refusal does not offer one); ``False``: refused, naming it.
    """
    text = raw.reset_index(drop=True).astype(str)
    line_of = list(lines) if lines is not None else [None] * len(text)
    problems: list[Rejection] = []

    def reject(
        i: int, reason: str, check: str, column: str | None = None, value: str | None = None, day: str | None = None
    ) -> None:
        problems.append(Rejection(symbol, source, reason, check, line_of[i], day, column, value))

    dates_text = text["date"].str.strip()
    iso = dates_text.str.fullmatch(ISO_DATE.pattern)
    dates = pd.to_datetime(dates_text.str.slice(0, 10).where(iso), format="%Y-%m-%d", errors="coerce")
    for i in np.flatnonzero(dates.isna().to_numpy()):
        reject(int(i), "not an ISO date (YYYY-MM-DD)", "ingest_success_rate", "date", raw["date"].iloc[i])
    if problems:
        raise refuse(symbol, source, problems)

    keep = np.ones(len(text), dtype=bool)
    if start is not None:
        keep &= (dates >= pd.Timestamp(start)).to_numpy()
    if end is not None:
        keep &= (dates <= pd.Timestamp(end)).to_numpy()
    rows = np.flatnonzero(keep)
    dropped: list[str] = []
    if len(rows):
        sessions = trading_days(dates.iloc[rows].min(), dates.iloc[rows].max())
        off = ~dates.iloc[rows].isin(sessions).to_numpy()
        if drop_non_sessions:
            dropped = [str(d.date()) for d in dates.iloc[rows[off]]]
            rows, off = rows[~off], off[~off]
    if len(rows):
        for i in rows[off]:
            day = dates.iloc[i]
            reason = _session_problem(day, drop_non_sessions is not None)
            reject(i, reason, "coverage", "date", raw["date"].iloc[i], str(day.date()))
        repeated = dates.iloc[rows].duplicated(keep=False).to_numpy()
        for i in rows[repeated]:
            day = dates.iloc[i]
            n = int((dates.iloc[rows] == day).sum())
            reject(
                i, f"date appears {n} times for {symbol}", "duplicates", "date", raw["date"].iloc[i], str(day.date())
            )
    out = pd.DataFrame({"date": dates.iloc[rows].to_numpy(dtype="datetime64[ns]")})
    out["symbol"] = symbol
    for column in (c for c in NUMERIC_COLUMNS if c in text.columns):
        values = text[column].iloc[rows].str.strip()
        ok = values.str.fullmatch(NUMBER.pattern).to_numpy()
        for i in rows[~ok]:
            reject(
                i,
                _number_problem(raw[column].iloc[i]),
                _CHECK_OF.get(column, "ingest_success_rate"),
                column,
                raw[column].iloc[i],
                str(dates.iloc[i].date()),
            )
        out[column] = pd.to_numeric(values.where(ok), errors="coerce").to_numpy(dtype=np.float64)
    if problems:
        problems.sort(key=lambda r: (r.line or 0, r.date or "", r.column or ""))
        raise refuse(symbol, source, problems)
    out.attrs[DROPPED] = dropped
    return out
