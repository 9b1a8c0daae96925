"""Walk-forward training and prediction of each model kind, side by side in one run.

10 years x 500 names x every feature of the default preset, the 5-session label, a year of
training rows, refit every 21 sessions (monthly). The data are synthetic bars through the real
feature and label cores (not timed); each kind then runs ``walk_forward``, the kernel the
predictions asset, the research API and the sweeps call. Where the time goes is measured by
wrapping the kernel's parts (the training grid, each refit's training set, the fit, the
per-session scoring); wall and CPU seconds both, since the machine is shared:

    python bench/bench_models.py [--names 500] [--years 10] [--kinds ridge,elastic_net,lightgbm]
                                 [--last-years KIND=N ...] [--json]

``--last-years lightgbm=1`` runs that kind over the last N years only (each refit still trains on
a full window, so a fit costs what it costs over 10 years; refits scale linearly): on a shared
machine a 10-year LightGBM run may not fit in the time at hand. The output says so per row.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


class Clock:
    """Wall and CPU seconds per named part, accumulated over calls."""

    def __init__(self):
        self.wall: dict[str, float] = defaultdict(float)
        self.cpu: dict[str, float] = defaultdict(float)
        self.calls: dict[str, int] = defaultdict(int)

    def wrap(self, name, fn):
        def timed(*args, **kwargs):
            w, c = time.perf_counter(), time.process_time()
            try:
                return fn(*args, **kwargs)
            finally:
                self.wall[name] += time.perf_counter() - w
                self.cpu[name] += time.process_time() - c
                self.calls[name] += 1

        return timed


def make_data(names: int, years: int):
    import pandas as pd

    from quantlab_assets.common.calendar import shift_sessions, trading_days
    from quantlab_assets.data_curator.core.synthetic import SyntheticProvider
    from quantlab_assets.feature_store.core.features import compute_features, load_preset
    from quantlab_assets.feature_store.core.labels import compute_labels

    end = pd.Timestamp("2024-12-31")
    days = trading_days(end - pd.DateOffset(years=years) + pd.Timedelta(days=1), end)
    start = days[0]
    preset = load_preset()
    lo = shift_sessions(start, -(252 + 21))  # the first refit's training window
    sectors = ["Tech", "Energy", "Health", "Utilities", "Financials"]
    symbols = {f"S{i:03d}": sectors[i % 5] for i in range(names)}
    bars = (
        SyntheticProvider(sectors=symbols)
        .fetch(sorted(symbols), shift_sessions(lo, -(preset.lookback_sessions + 5)).date(), end.date())
        .bars
    )
    features = compute_features(bars, preset, lo, end)
    labels = compute_labels(bars, lo, end)
    return features, labels, preset, start, end


def run_kind(kind: str, features, labels, preset, start, end, last_years: int | None = None) -> dict:
    import numpy as np
    import pandas as pd
    from pydantic import TypeAdapter

    from quantlab_assets.common.calendar import trading_days
    from quantlab_assets.strategy_lab.core import models as models_core
    from quantlab_assets.strategy_lab.core import walk_forward as wf_core
    from quantlab_assets.strategy_lab.core.spec import ModelSignal
    from quantlab_assets.strategy_lab.core.targets import wide_features

    names = [f for f in preset.feature_names]
    m = TypeAdapter(ModelSignal).validate_python(
        {"kind": kind, "features": names, "label": "fwd_ret_5", "train_sessions": 252, "refit_every": 21}
    )
    clock = Clock()
    saved = (wf_core.training_grid, wf_core.training_set, wf_core.fit_model, models_core.FittedModel.predict)
    wf_core.training_grid = clock.wrap("training grid (long rows -> arrays)", saved[0])
    wf_core.training_set = clock.wrap("training sets (per refit: window, known labels, transform)", saved[1])
    wf_core.fit_model = clock.wrap("fit (preprocessing + estimator)", saved[2])
    models_core.FittedModel.predict = clock.wrap("scoring (per session)", saved[3])  # type: ignore[method-assign]
    try:
        days = trading_days(start, end)
        if last_years:
            days = days[days > end - pd.DateOffset(years=last_years)]
        universe = sorted(features["symbol"].unique())
        w0, c0 = time.perf_counter(), time.process_time()
        wide = wide_features(features, m.features, days, universe)
        w1, c1 = time.perf_counter(), time.process_time()
        result = wf_core.walk_forward(features, labels, m, days, wide)
        w2, c2 = time.perf_counter(), time.process_time()
    finally:
        wf_core.training_grid, wf_core.training_set, wf_core.fit_model, models_core.FittedModel.predict = saved
    fits = [r for r in result.refits if r.model is not None]
    parts = {"inputs as arrays (wide_features)": (w1 - w0, c1 - c0)}
    parts.update({k: (clock.wall[k], clock.cpu[k]) for k in clock.wall})
    inner = sum(v[0] for k, v in parts.items() if k != "inputs as arrays (wide_features)")
    parts["other (cross-sectional transform of the scored sessions, bookkeeping)"] = (
        (w2 - w1) - inner,
        (c2 - c1) - sum(v[1] for k, v in parts.items() if k != "inputs as arrays (wide_features)"),
    )
    return {
        "kind": kind,
        "range": f"{days[0].date()}..{days[-1].date()}",
        "wall_s": w2 - w0,
        "cpu_s": c2 - c0,
        "refits": len(result.refits),
        "fitted": len(fits),
        "mean_training_rows": float(np.mean([r.model.rows for r in fits])) if fits else 0.0,
        "scored_cells": int(np.isfinite(result.scores).sum()),
        "parts": parts,
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--names", type=int, default=500)
    p.add_argument("--years", type=int, default=10)
    p.add_argument("--kinds", default="ridge,elastic_net,lightgbm")
    p.add_argument("--last-years", action="append", default=[], metavar="KIND=N")
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    last = {k: int(v) for k, v in (item.split("=") for item in args.last_years)}
    w, c = time.perf_counter(), time.process_time()
    features, labels, preset, start, end = make_data(args.names, args.years)
    prep = (time.perf_counter() - w, time.process_time() - c)
    load = os.getloadavg()
    out = []
    for kind in args.kinds.split(","):
        out.append(run_kind(kind, features, labels, preset, start, end, last.get(kind)))
        print(
            f"# {kind} done: {out[-1]['wall_s']:.1f} s wall, {out[-1]['cpu_s']:.1f} s CPU", file=sys.stderr, flush=True
        )
    if args.json:
        print(json.dumps({"data_prep_s": prep, "load": load, "results": out}, indent=1, default=str))
        return
    print(
        f"{args.names} names x {args.years} years ({start.date()}..{end.date()}), {len(preset.feature_names)} "
        f"features, label fwd_ret_5, train 252 sessions, refit every 21; data prep (bars, features, labels; "
        f"not timed below) {prep[0]:.1f} s; load average at start {load[0]:.1f} on {os.cpu_count()} CPUs"
    )
    print("| kind | sessions scored | wall s | CPU s | refits (fitted) | CPU s per refit | mean training rows |")
    print("|---|---|---|---|---|---|---|")
    for r in out:
        print(
            f"| {r['kind']} | {r['range']} | {r['wall_s']:.1f} | {r['cpu_s']:.1f} | {r['refits']} ({r['fitted']}) | "
            f"{r['cpu_s'] / max(r['refits'], 1):.2f} | {r['mean_training_rows']:,.0f} |"
        )
    for r in out:
        print(f"\n{r['kind']}: where the time goes (wall s / CPU s)")
        for part, (pw, pc) in r["parts"].items():
            print(f"  {part:<72} {pw:7.2f} / {pc:7.2f}")


if __name__ == "__main__":
    main()
