"""The synthetic provider: deterministic per (seed, symbol, session), consistent and realistic."""

from __future__ import annotations

from datetime import date
from itertools import combinations

import numpy as np
import pandas as pd
import pytest

from quantlab_assets.common.calendar import trading_days
from quantlab_assets.data_curator.core.registry import load_registry
from quantlab_assets.data_curator.core.schema import PROVIDER_COLUMNS
from quantlab_assets.data_curator.core.synthetic import ORIGIN, SyntheticProvider

D = date.fromisoformat
SECTORS = {"AAA": "Tech", "BBB": "Tech", "CCC": "Energy", "DDD": "Health", "MMM": "Energy"}


def fetch(provider, symbols, start, end) -> pd.DataFrame:
    return provider.fetch(symbols, D(start), D(end)).bars


def rows_of(bars: pd.DataFrame, symbol: str, start: str, end: str) -> pd.DataFrame:
    keep = (bars["symbol"] == symbol) & bars["date"].between(pd.Timestamp(start), pd.Timestamp(end))
    return bars[keep].reset_index(drop=True)


@pytest.fixture(scope="module")
def demo():
    return load_registry()


@pytest.fixture(scope="module")
def demo_bars(demo):
    """All 50 demo names over 2016-2019 with their sectors."""
    provider = SyntheticProvider(seed=7, sectors=demo.sector_of())
    return fetch(provider, demo.tickers, "2016-01-01", "2019-12-31")


# ----------------------------------------------------------------------------- determinism


@pytest.mark.parametrize("target", [("2020-03-02", "2020-03-31"), ("2008-09-02", "2008-10-31")])
def test_same_rows_whatever_the_enclosing_request(target):
    start, end = target
    provider = SyntheticProvider(seed=7, sectors=SECTORS)
    alone = fetch(provider, ["AAA"], start, end)
    assert len(alone) == len(trading_days(start, end)) > 15
    year = int(start[:4])
    requests = [
        (["AAA"], f"{year - 1}-01-01", f"{year + 1}-06-30"),  # larger range
        (["ZZZ", "AAA", "MMM"], f"{year}-01-01", f"{year}-12-31"),  # other co-symbols
        (["BBB", "AAA"], start, "2024-12-31"),  # range far past the anchor
        (["DDD", "CCC", "BBB", "AAA"], "1990-01-02", end),  # from ORIGIN
    ]
    for symbols, lo, hi in requests:
        other = rows_of(fetch(provider, symbols, lo, hi), "AAA", start, end)
        pd.testing.assert_frame_equal(other, alone, check_exact=True)
    # A fresh instance with the same seed is identical too (no hidden state).
    pd.testing.assert_frame_equal(fetch(SyntheticProvider(7, SECTORS), ["AAA"], start, end), alone, check_exact=True)


def test_symbol_order_does_not_matter():
    provider = SyntheticProvider(seed=11)
    a = fetch(provider, ["AAA", "BBB", "CCC"], "2021-01-01", "2021-03-31")
    b = fetch(provider, ["CCC", "AAA", "BBB"], "2021-01-01", "2021-03-31")
    pd.testing.assert_frame_equal(a, b, check_exact=True)
    assert a["symbol"].is_monotonic_increasing  # sorted by (symbol, date)


def test_a_different_seed_changes_values():
    a = fetch(SyntheticProvider(seed=7), ["AAA", "BBB"], "2022-01-01", "2022-06-30")
    b = fetch(SyntheticProvider(seed=8), ["AAA", "BBB"], "2022-01-01", "2022-06-30")
    assert (a[["date", "symbol"]].values == b[["date", "symbol"]].values).all()
    for col in ("open", "high", "low", "close", "volume"):
        assert (a[col] != b[col]).mean() > 0.95, col


def test_symbols_differ_from_each_other():
    bars = fetch(SyntheticProvider(seed=7), ["AAA", "BBB"], "2022-01-01", "2022-03-31")
    aaa, bbb = (bars[bars.symbol == s]["close"].to_numpy() for s in ("AAA", "BBB"))
    assert len(aaa) == len(bbb) > 50
    assert not np.allclose(aaa, bbb)


# ----------------------------------------------------------------------------- shape and consistency


def test_provider_columns_and_dtypes(demo_bars):
    assert list(demo_bars.columns) == list(PROVIDER_COLUMNS)
    assert pd.api.types.is_datetime64_any_dtype(demo_bars["date"])
    for col in PROVIDER_COLUMNS[2:]:
        assert demo_bars[col].dtype == np.float64, col
    assert (demo_bars["adj_close"] == demo_bars["close"]).all()
    assert (demo_bars["dividend"] == 0.0).all()
    assert (demo_bars["split_coefficient"] == 1.0).all()


def test_ohlc_consistency_50_symbols_several_years(demo, demo_bars):
    b = demo_bars
    assert len(b) == 50 * len(trading_days("2016-01-01", "2019-12-31")) == 50 * 1006
    assert not b[["open", "high", "low", "close", "volume"]].isna().any().any()
    assert (b["low"] <= b["open"]).all()
    assert (b["low"] <= b["close"]).all()
    assert (b["open"] <= b["high"]).all()
    assert (b["close"] <= b["high"]).all()
    assert (b[["open", "high", "low", "close"]] > 0).all().all()
    assert (b["volume"] >= 0).all()
    assert (b["volume"] == b["volume"].round()).all()
    # Prices are quoted to 1/100 of a cent.
    assert np.allclose(b["close"] * 1e4, np.round(b["close"] * 1e4), atol=1e-6)
    # Not degenerate: bars have a range and names trade at different levels.
    assert (b["high"] > b["low"]).mean() > 0.99
    levels = b.groupby("symbol")["close"].median()
    assert levels.min() > 1 and levels.max() / levels.min() > 3


def test_prices_stay_positive_in_the_earliest_years():
    b = fetch(SyntheticProvider(seed=7), ["AAA", "BBB", "CCC", "DDD", "EEE"], "1990-01-02", "1993-12-31")
    assert (b[["open", "high", "low", "close"]] > 0).all().all()
    assert (b["low"] <= b[["open", "close"]].min(axis=1)).all()
    assert (b["high"] >= b[["open", "close"]].max(axis=1)).all()


def test_one_row_per_symbol_and_session_only(demo, demo_bars):
    sessions = trading_days("2016-01-01", "2019-12-31")
    assert (demo_bars["date"].dt.dayofweek < 5).all()
    assert set(demo_bars["date"].unique()) == set(sessions)
    assert not demo_bars.duplicated(["symbol", "date"]).any()
    counts = demo_bars.groupby("symbol").size()
    assert set(counts.index) == set(demo.tickers)
    assert (counts == len(sessions)).all()
    for closed in ("2016-03-25", "2018-12-05", "2019-07-04", "2017-01-16"):
        assert pd.Timestamp(closed) not in set(demo_bars["date"])


def test_holiday_and_weekend_only_ranges_are_empty():
    provider = SyntheticProvider()
    for start, end in [("2024-03-29", "2024-03-31"), ("2024-12-25", "2024-12-25"), ("2024-06-01", "2024-06-02")]:
        result = provider.fetch(["AAA"], D(start), D(end))
        assert len(result.bars) == 0
        assert list(result.bars.columns) == list(PROVIDER_COLUMNS)
        assert result.fetched_symbols == ["AAA"]
    assert len(provider.fetch(["AAA"], D("2024-02-01"), D("2024-01-01")).bars) == 0


def test_fetch_result_bookkeeping():
    result = SyntheticProvider().fetch(["BBB", "AAA"], D("2024-01-02"), D("2024-01-05"))
    assert result.failures == [] and result.stopped_reason is None
    assert result.fetched_symbols == ["AAA", "BBB"]
    assert result.stats == {s: {"api_calls": 0, "retries": 0, "latency_s": 0.0} for s in ("AAA", "BBB")}


# ----------------------------------------------------------------------------- realism


def test_market_factor_and_plausible_volatility():
    symbols = [f"S{i:02d}" for i in range(20)]
    sectors = {s: ["Tech", "Energy", "Health", "Financials"][i % 4] for i, s in enumerate(symbols)}
    bars = fetch(SyntheticProvider(seed=7, sectors=sectors), symbols, "2017-01-01", "2019-12-31")
    closes = bars.pivot(index="date", columns="symbol", values="close")
    assert closes.shape == (len(trading_days("2017-01-01", "2019-12-31")), 20)
    returns = np.log(closes).diff().dropna()
    corr = returns.corr().to_numpy()
    pairs = [corr[i, j] for i, j in combinations(range(20), 2)]
    assert np.mean(pairs) > 0.1
    assert min(pairs) > 0.0  # every pair shares the market factor
    ann_vol = returns.std() * np.sqrt(252)
    assert 0.10 <= ann_vol.median() <= 0.60
    assert ann_vol.between(0.05, 1.0).all()
    # Not a perfect factor model either: idiosyncratic risk remains.
    assert np.mean(pairs) < 0.95


def test_asking_before_origin_raises():
    with pytest.raises(ValueError, match=str(ORIGIN.date())):
        SyntheticProvider().fetch(["AAA"], D("1989-12-29"), D("1990-01-31"))
    # ORIGIN itself is served.
    bars = fetch(SyntheticProvider(), ["AAA"], "1990-01-02", "1990-01-05")
    assert bars["date"].min() == ORIGIN


def _fetch_per_symbol(provider, symbols, start, end) -> pd.DataFrame:
    """The readable reference: one frame per symbol from its path, concatenated, then normalized."""
    from quantlab_assets.common.calendar import trading_days
    from quantlab_assets.data_curator.core.providers import normalize_bars
    from quantlab_assets.data_curator.core.synthetic import (
        ORIGIN,
        PRICE_ANCHOR,
        market_factor,
        sector_factor,
        symbol_path,
    )

    lo, hi = pd.Timestamp(start), pd.Timestamp(end)
    sessions = trading_days(ORIGIN, max(hi, PRICE_ANCHOR))
    keep = (sessions >= lo) & (sessions <= hi)
    market = market_factor(provider.seed, len(sessions))
    frames = []
    for symbol in symbols:
        sector = sector_factor(provider.seed, provider.sectors.get(symbol, "Unknown"), len(sessions))
        path = symbol_path(provider.seed, symbol, market, sector, int(sessions.get_loc(PRICE_ANCHOR)))
        frame = pd.DataFrame({k: v[keep] for k, v in path.items()})
        frame.insert(0, "symbol", symbol)
        frame.insert(0, "date", sessions[keep])
        frames.append(frame)
    return normalize_bars(pd.concat(frames, ignore_index=True), lo, hi)


@pytest.mark.parametrize(
    "symbols",
    [["AAA", "BBB", "CCC"], ["ZZZ", "AAA", "MMM"]],  # in order (no sort needed) and shuffled
)
def test_fetch_equals_the_per_symbol_frames(symbols):
    provider = SyntheticProvider(seed=3, sectors={"AAA": "Tech", "ZZZ": "Energy"})
    got = provider.fetch(symbols, date(2023, 12, 1), date(2024, 2, 29)).bars
    want = _fetch_per_symbol(provider, symbols, "2023-12-01", "2024-02-29")
    pd.testing.assert_frame_equal(got, want, check_exact=True)
    assert list(got["symbol"].unique()) == sorted(symbols)


def test_normalize_bars_sorts_only_when_needed_and_leaves_the_input_alone():
    from quantlab_assets.data_curator.core.providers import normalize_bars

    days = pd.to_datetime(["2024-01-02", "2024-01-03", "2024-01-04"])
    frame = pd.DataFrame({"date": days.repeat(2), "symbol": ["B", "A"] * 3, "open": 1.0, "high": 2.0})
    frame = frame.assign(low=0.5, close=1.5, volume=10)
    before = frame.copy()
    out = normalize_bars(frame, "2024-01-03", "2024-01-04")
    assert list(zip(out["symbol"], out["date"].dt.day)) == [("A", 3), ("A", 4), ("B", 3), ("B", 4)]
    assert list(out.index) == [0, 1, 2, 3]
    pd.testing.assert_frame_equal(frame, before)  # no column added to the caller's frame
    again = normalize_bars(out, "2024-01-02", "2024-01-04")
    pd.testing.assert_frame_equal(again, out)
