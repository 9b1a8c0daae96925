"""Users' own data: a directory of per-symbol CSV files (``<SYMBOL>.csv``).

A file is read as text and refused whole when it is not a clean table: empty, not UTF-8,
ragged (a line with more or fewer fields than the header), or naming one column twice
(``Adj Close`` and ``adj_close``). Values then pass ``source_rules.strict_bars``.
"""

from __future__ import annotations

import csv
import time
from collections.abc import Iterator, Sequence
from datetime import date
from pathlib import Path

import pandas as pd

from quantlab_assets.data_curator.core.providers import (
    FetchResult,
    InputRefused,
    Rejection,
    SymbolFailure,
    empty_bars,
    normalize_bars,
    refuse,
)
from quantlab_assets.data_curator.core.source_rules import DROPPED, strict_bars

# Header spellings seen in common exports (Yahoo, Alpha Vantage CSV, Stooq) -> our names.
_ALIASES = {
    "timestamp": "date",
    "day": "date",
    "adj_close": "adj_close",
    "adjclose": "adj_close",
    "adjusted_close": "adj_close",
    "dividend_amount": "dividend",
    "dividends": "dividend",
    "split": "split_coefficient",
    "stock_splits": "split_coefficient",
}
REQUIRED = ("date", "open", "high", "low", "close", "volume")
MAX_CSV_BYTES = 4 * 1024**3
"""A source file above this is refused naming it (a bound on what one symbol's file may be)."""
OPTIONAL = ("adj_close", "dividend", "split_coefficient")


def _canonical(name: str) -> str:
    key = str(name).strip().lower().replace(" ", "_").replace("-", "_")
    return _ALIASES.get(key, key)


def _text_lines(path: Path, symbol: str) -> Iterator[str]:
    """The file's lines decoded one at a time (memory: one line, not the file); a byte that is not
    UTF-8 refuses the file naming line and offset; a file larger than :data:`MAX_CSV_BYTES` or
    with no non-blank line is refused whole."""
    size = path.stat().st_size
    if size > MAX_CSV_BYTES:
        raise refuse(
            symbol,
            str(path),
            [Rejection(symbol, str(path), f"the file is {size:,} bytes, above the {MAX_CSV_BYTES:,} a source may be")],
        )
    offset, blank = 0, True
    with open(path, "rb") as handle:
        for number, raw in enumerate(handle, 1):
            try:
                text = raw.decode("utf-8-sig" if number == 1 else "utf-8")
            except UnicodeDecodeError as exc:
                bad = raw[exc.start : exc.start + 1].hex()
                where = offset + exc.start
                raise refuse(
                    symbol,
                    str(path),
                    [
                        Rejection(
                            symbol,
                            str(path),
                            f"not UTF-8 text (byte 0x{bad} at offset {where}); save it as UTF-8",
                            line=number,
                        )
                    ],
                ) from None
            offset += len(raw)
            blank = blank and not text.strip()
            yield text
    if blank:
        raise refuse(symbol, str(path), [Rejection(symbol, str(path), "the file is empty (no header, no rows)")])


def _outside(value: str, start: date | None, end: date | None) -> bool:
    """True only for a readable ISO date outside [start, end]: such a row is never kept, so it is
    not held in memory; anything else stays for the rules to judge."""
    if start is None and end is None:
        return False
    try:
        day = date.fromisoformat(value.strip()[:10])
    except ValueError:
        return False
    return (start is not None and day < start) or (end is not None and day > end)


def read_symbol_csv(
    path: Path, symbol: str, start: date | None = None, end: date | None = None, drop_non_sessions: bool = False
) -> pd.DataFrame:
    """One symbol's file as provider bars dated in [start, end] (all rows when omitted); rows
    dated off the trading calendar are refused, or dropped with ``drop_non_sessions`` (their
    dates in ``attrs[source_rules.DROPPED]``).

    Raises :class:`InputRefused` (a ``ValueError``-like ``ProviderError``) naming the file,
    and the line, column and value of every problem.
    """
    source = str(path)
    lo = pd.Timestamp(start).date() if start is not None else None
    hi = pd.Timestamp(end).date() if end is not None else None
    reader = csv.reader(_text_lines(path, symbol))
    header: list[str] | None = None
    date_at = -1
    rows: list[list[str]] = []
    lines: list[int] = []
    ragged: list[Rejection] = []
    for row in reader:
        if not row:  # a blank line
            continue
        if header is None:
            header = row
            date_at = next((i for i, c in enumerate(header) if _canonical(c) == "date"), -1)
            continue
        if len(row) == len(header) and date_at >= 0 and _outside(row[date_at], lo, hi):
            continue  # memory proportional to what is kept: rows of other dates are dropped as read
        if len(row) != len(header):
            ragged.append(
                Rejection(
                    symbol,
                    source,
                    f"{len(row)} fields where the header has {len(header)}",
                    line=reader.line_num,
                    value=",".join(row)[:80],
                )
            )
            continue
        rows.append(row)
        lines.append(reader.line_num)
    assert header is not None  # a non-blank file has a first row
    names = [_canonical(c) for c in header]
    seen: dict[str, str] = {}
    twice = []
    for original, name in zip(header, names):
        if name in seen:
            twice.append(
                Rejection(
                    symbol,
                    source,
                    f"columns {seen[name]!r} and {original!r} both mean {name!r}; keep one",
                    line=1,
                    column=original,
                )
            )
        seen.setdefault(name, original)
    missing = [c for c in REQUIRED if c not in names]
    if missing:
        twice.append(Rejection(symbol, source, f"missing columns {missing} (have {names})", line=1))
    if twice or ragged:
        raise refuse(symbol, source, twice + ragged)
    wanted = [c for c in REQUIRED + OPTIONAL if c in names]
    frame = (
        pd.DataFrame(rows, columns=names, dtype=object)[wanted]
        if rows
        else pd.DataFrame({c: pd.Series(dtype=object) for c in wanted})
    )
    bars = strict_bars(frame, symbol, source, start, end, lines=lines, drop_non_sessions=drop_non_sessions)
    if "split_coefficient" in bars.columns:
        # "Stock Splits" exports write 0 for no split; the contract says 1.
        bars["split_coefficient"] = bars["split_coefficient"].replace(0.0, 1.0)
    return bars


class CsvProvider:
    name = "csv"

    def __init__(self, directory: str | Path, drop_non_sessions: bool = False):
        self.directory = Path(directory)
        self.drop_non_sessions = drop_non_sessions

    def __repr__(self) -> str:
        return f"CsvProvider(directory={str(self.directory)!r}, drop_non_sessions={self.drop_non_sessions})"

    def fetch(self, symbols: Sequence[str], start: date, end: date) -> FetchResult:
        if not self.directory.is_dir():
            raise FileNotFoundError(f"CSV data directory {self.directory} does not exist")
        frames, failures, stats, origins, notes = [], [], {}, {}, {}
        counts: dict[str, int] = {}
        for symbol in symbols:
            t0 = time.perf_counter()
            path = self.directory / f"{symbol}.csv"
            origins[symbol] = str(path)
            try:
                if not path.exists():
                    raise FileNotFoundError(f"{path}: no file for symbol {symbol}")
                bars = read_symbol_csv(path, symbol, start, end, self.drop_non_sessions)
                dropped = bars.attrs.get(DROPPED, [])
                if dropped:
                    counts[symbol] = len(dropped)
                    notes[symbol] = (
                        f"{path}: dropped {len(dropped)} non-session row(s) ({', '.join(dropped[:5])}"
                        f"{', ...' if len(dropped) > 5 else ''}): drop_non_session_rows is on"
                    )
                frames.append(normalize_bars(bars, start, end))
            except InputRefused as exc:
                failures.append(SymbolFailure(symbol, str(exc), exc.rejections))
            except (OSError, ValueError) as exc:
                failures.append(SymbolFailure(symbol, str(exc), (Rejection(symbol, str(path), str(exc)),)))
            stats[symbol] = {"api_calls": 0, "retries": 0, "latency_s": time.perf_counter() - t0}
            if symbol in counts:
                stats[symbol]["non_session_rows_dropped"] = float(counts[symbol])
        bars = pd.concat(frames, ignore_index=True) if frames else empty_bars()
        return FetchResult(
            bars=normalize_bars(bars, start, end), failures=failures, stats=stats, origins=origins, notes=notes
        )
