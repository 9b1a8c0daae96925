"""One interface for every market data source, and the shape of what they return."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Protocol

import numpy as np
import pandas as pd

from quantlab_assets.data_curator.core.schema import PROVIDER_COLUMNS


class ProviderError(RuntimeError):
    """A source could not deliver data; the message is safe to show (no secrets)."""


@dataclass(frozen=True)
class Rejection:
    """One problem in a source, named so a person can find it: file (or reply), line, date,
    column, the value as found, the gate check whose rule it breaks and why."""

    symbol: str
    source: str
    reason: str
    check_name: str = "ingest_success_rate"
    line: int | None = None
    date: str | None = None
    column: str | None = None
    value: str | None = None

    def describe(self, with_source: bool = True) -> str:
        where = ", ".join(
            p
            for p in (
                self.source if with_source else "",
                f"line {self.line}" if self.line is not None else "",
                self.date or "",
                f"column {self.column}" if self.column else "",
                f"value {self.value!r}" if self.value is not None else "",
            )
            if p
        )
        return f"{self.symbol}: {where + ': ' if where else ''}{self.reason}"


class InputRefused(ProviderError, ValueError):
    """A source's content breaks a rule; nothing of the symbol is stored. ``rejections``
    names every problem found (the message names the first ones)."""

    def __init__(self, message: str, rejections: Sequence[Rejection] = ()):
        super().__init__(message)
        self.rejections = tuple(rejections)


def refuse(symbol: str, source: str, rejections: Sequence[Rejection], limit: int = 3) -> InputRefused:
    shown = "; ".join(r.describe(with_source=False).split(": ", 1)[1] for r in rejections[:limit])
    more = f" and {len(rejections) - limit} more" if len(rejections) > limit else ""
    return InputRefused(f"{symbol}: refused {source}: {shown}{more}", rejections)


@dataclass(frozen=True)
class SymbolFailure:
    symbol: str
    reason: str
    # What exactly was refused, for the rejects table and the check results.
    rejections: tuple[Rejection, ...] = ()


@dataclass
class FetchResult:
    """Bars for the symbols that succeeded, and a reason for each that did not."""

    bars: pd.DataFrame
    failures: list[SymbolFailure] = field(default_factory=list)
    # Per symbol: api_calls, retries, latency_s (providers without a network report zeros).
    stats: dict[str, dict[str, float]] = field(default_factory=dict)
    # Why the provider stopped early (for example an exhausted daily quota), if it did.
    stopped_reason: str | None = None
    # Per symbol: where its rows came from (a file path, a reply), to name it in refusals.
    origins: dict[str, str] = field(default_factory=dict)
    # Per symbol: what the provider did to an accepted series (rows dropped by an option), for the log.
    notes: dict[str, str] = field(default_factory=dict)

    @property
    def fetched_symbols(self) -> list[str]:
        failed = {f.symbol for f in self.failures}
        return sorted(s for s in self.stats if s not in failed)


class MarketDataProvider(Protocol):
    name: str

    def fetch(self, symbols: Sequence[str], start: date, end: date) -> FetchResult:
        """Daily bars for ``symbols`` with session dates in [start, end]."""
        ...


def empty_bars() -> pd.DataFrame:
    frame = pd.DataFrame({c: pd.Series(dtype="float64") for c in PROVIDER_COLUMNS})
    frame["date"] = pd.Series(dtype="datetime64[ns]")
    frame["symbol"] = pd.Series(dtype="object")
    return frame[list(PROVIDER_COLUMNS)]


def normalize_bars(frame: pd.DataFrame, start: date, end: date) -> pd.DataFrame:
    """Provider-neutral shape: declared columns, float prices, dates in [start, end], sorted.

    Values are not repaired here: a bad price stays bad so the quality gate can name it.
    """
    out = frame.copy(deep=False)  # new columns land on the copy only; the selection below copies the data
    if "adj_close" not in out.columns:
        out["adj_close"] = out["close"]
    if "dividend" not in out.columns:
        out["dividend"] = 0.0
    if "split_coefficient" not in out.columns:
        out["split_coefficient"] = 1.0
    missing = [c for c in PROVIDER_COLUMNS if c not in out.columns]
    if missing:
        raise ProviderError(f"provider frame lacks columns {missing}")
    out = out[list(PROVIDER_COLUMNS)]
    out["date"] = pd.to_datetime(out["date"]).dt.normalize()
    for col in PROVIDER_COLUMNS[2:]:
        out[col] = pd.to_numeric(out[col], errors="coerce").astype(np.float64)
    lo, hi = pd.Timestamp(start), pd.Timestamp(end)
    inside = (out["date"] >= lo) & (out["date"] <= hi)
    if not inside.all():
        out = out[inside]
    if _sorted_by_symbol_and_date(out):  # the stable sort would keep every row in place: no copy
        out.index = pd.RangeIndex(len(out))
        return out
    return out.sort_values(["symbol", "date"], kind="stable").reset_index(drop=True)


def _sorted_by_symbol_and_date(frame: pd.DataFrame) -> bool:
    if len(frame) < 2:
        return True
    symbol = frame["symbol"]
    if pd.api.types.infer_dtype(symbol, skipna=False) != "string" or not symbol.is_monotonic_increasing:
        return False
    s, d = symbol.to_numpy(), frame["date"].to_numpy()
    same = s[1:] == s[:-1]
    return bool((d[1:][same] >= d[:-1][same]).all())
