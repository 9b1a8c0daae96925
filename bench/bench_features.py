"""Feature benchmark: the default preset over synthetic bars (500 symbols x 10 years).

Times ``compute_features`` against a baseline measured in the same run: much the same
features written the obvious pandas way (``groupby('symbol')`` with ``rolling``,
``transform`` and ``ewm``; beta through a rolling covariance per symbol; cross-sectional
ranks through ``groupby('date')``). Also times one partition computed on its own (one date,
every symbol, ``lookback_sessions`` of history), which is what a daily run does.

    python bench/bench_features.py [--symbols 500] [--start 2015-01-02] [--end 2024-12-31]
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import numpy as np
import pandas as pd

from quantlab_assets.common.calendar import shift_sessions
from quantlab_assets.data_curator.core.synthetic import SyntheticProvider
from quantlab_assets.feature_store.core.features import compute_features, load_preset


def pandas_baseline(bars: pd.DataFrame) -> pd.DataFrame:
    """The obvious pandas version of most of the default preset."""
    df = bars.sort_values(["symbol", "date"]).reset_index(drop=True)
    px = df["adj_close"]
    df["lp"] = np.log(px)
    g = df.groupby("symbol", sort=False)
    df["r"] = g["lp"].diff()
    g = df.groupby("symbol", sort=False)

    def roll(col: str, w: int):
        return g[col].rolling(w)

    def back(result: pd.Series) -> pd.Series:
        return result.reset_index(level=0, drop=True)

    out = pd.DataFrame({"date": df["date"], "symbol": df["symbol"]})
    for h in (1, 5, 20, 60, 120):
        out[f"ret_{h}"] = g["adj_close"].pct_change(h)
        out[f"logret_{h}"] = g["lp"].diff(h)
    out["mom_12_1"] = g["adj_close"].shift(21) / g["adj_close"].shift(252) - 1
    for w in (20, 50, 200):
        out[f"sma_ratio_{w}"] = px / back(roll("adj_close", w).mean()) - 1
    ema = {s: g["lp"].transform(lambda x, s=s: x.ewm(span=s).mean()) for s in (12, 26)}
    for s in (12, 26):
        out[f"ema_ratio_{s}"] = np.exp(df["lp"] - ema[s]) - 1
    out["macd"] = ema[12] - ema[26]
    out["macd_signal"] = out.groupby("symbol", sort=False)["macd"].transform(lambda x: x.ewm(span=9).mean())
    out["macd_hist"] = out["macd"] - out["macd_signal"]
    for w in (20, 60):
        out[f"vol_{w}"] = back(roll("r", w).std()) * np.sqrt(252)
    df["gain"], df["loss"] = df["r"].clip(lower=0), (-df["r"]).clip(lower=0)
    g = df.groupby("symbol", sort=False)
    gains, losses = back(roll("gain", 14).mean()), back(roll("loss", 14).mean())
    out["rsi_14"] = 100 * gains / (gains + losses)
    mean, std = back(roll("adj_close", 20).mean()), back(roll("adj_close", 20).std())
    out["bb_pctb_20"] = (px - (mean - 2 * std)) / (4 * std)
    prev = g["adj_close"].shift()
    k = px / df["close"]
    df["tr"] = (np.maximum(df["high"] * k, prev) - np.minimum(df["low"] * k, prev)) / prev
    g = df.groupby("symbol", sort=False)
    out["atr_14_pct"] = back(roll("tr", 14).mean())
    df["lv"] = np.log(df["volume"])
    df["ldv"] = np.log(df["close"] * df["volume"])
    g = df.groupby("symbol", sort=False)
    out["volume_z_20"] = (df["lv"] - back(roll("lv", 20).mean())) / back(roll("lv", 20).std())
    out["log_dollar_volume_20"] = back(roll("ldv", 20).mean())
    out["dist_52w_high"] = px / back(roll("adj_close", 252).max()) - 1
    out["dist_52w_low"] = px / back(roll("adj_close", 252).min()) - 1
    df["m"] = df.groupby("date")["r"].transform("mean")
    g = df.groupby("symbol", sort=False)
    cov = g[["r", "m"]].apply(lambda x: x["r"].rolling(60).cov(x["m"])).reset_index(level=0, drop=True)
    out["beta_60"] = cov / back(roll("m", 60).var())
    out["corr_60"] = g[["r", "m"]].apply(lambda x: x["r"].rolling(60).corr(x["m"])).reset_index(level=0, drop=True)
    out["body_ratio"] = (df["close"] - df["open"]) / (df["high"] - df["low"])
    out["range_pct"] = df["high"] / df["low"] - 1
    out["gap_1"] = df["open"] * k / prev - 1
    by_date = out.groupby("date")
    for f in ("ret_5", "ret_20", "mom_12_1", "vol_20", "rsi_14"):
        out[f"cs_z_{f}"] = (out[f] - by_date[f].transform("mean")) / by_date[f].transform("std")
        out[f"cs_rank_{f}"] = by_date[f].rank(pct=True)
    return out


def cpu_name() -> str:
    try:
        for line in open("/proc/cpuinfo", encoding="utf-8"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def timed(fn, *args):
    t0 = time.perf_counter()
    result = fn(*args)
    return time.perf_counter() - t0, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--symbols", type=int, default=500)
    parser.add_argument("--start", default="2015-01-02")
    parser.add_argument("--end", default="2024-12-31")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs of each")
    args = parser.parse_args()
    symbols = [f"S{i:04d}" for i in range(args.symbols)]
    preset = load_preset()

    gen_s, result = timed(SyntheticProvider().fetch, symbols, pd.Timestamp(args.start), pd.Timestamp(args.end))
    bars = result.bars
    sessions = bars["date"].nunique()

    # Alternate the two so neither gets a warmer allocator or cache; report first and best.
    ours_s, base_s = [], []
    for _ in range(args.repeat):
        frame = base = None  # release the previous run's output before timing the next
        seconds, frame = timed(compute_features, bars, preset, args.start, args.end)
        ours_s.append(seconds)
        seconds, base = timed(pandas_baseline, bars)
        base_s.append(seconds)

    last = bars["date"].max()
    window = bars[bars["date"] >= shift_sessions(last, -preset.lookback_sessions)]
    daily_s = min(timed(compute_features, window, preset, last, last)[0] for _ in range(5))

    print(
        f"machine: {cpu_name()}, {os.cpu_count()} cpus, {platform.system()} {platform.machine()}, "
        f"python {platform.python_version()}, numpy {np.__version__}, pandas {pd.__version__}"
    )
    print(
        f"workload: {args.symbols} symbols x {sessions} sessions ({args.start}..{args.end}) = "
        f"{len(bars):,} bars; synthetic generation {gen_s:.2f} s"
    )
    print(
        f"ours    : {len(preset.feature_names)} features, {frame.shape[0]:,} rows: "
        f"first {ours_s[0]:.2f} s, best of {args.repeat} {min(ours_s):.2f} s "
        f"({len(bars) / min(ours_s):,.0f} bars/s)"
    )
    print(
        f"baseline: {base.shape[1] - 2} features, {base.shape[0]:,} rows (pandas groupby/rolling): "
        f"first {base_s[0]:.2f} s, best of {args.repeat} {min(base_s):.2f} s"
    )
    print(f"ratio   : {base_s[0] / ours_s[0]:.1f}x faster (first runs), {min(base_s) / min(ours_s):.1f}x (best runs)")
    print(
        f"one partition (1 date x {args.symbols} symbols, {preset.lookback_sessions} sessions of history): "
        f"{daily_s * 1000:.0f} ms"
    )


if __name__ == "__main__":
    main()
