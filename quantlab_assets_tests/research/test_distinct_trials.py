"""Issue 22 point 8: the deflated Sharpe ratio counts distinct return series, not variants: a
parameter that never binds (a max_turnover above any turnover) makes identical pairs, one trial each."""

from __future__ import annotations

import numpy as np

from quantlab_assets.research import overfitting as of


def test_identical_variants_are_one_trial():
    rng = np.random.default_rng(4)
    series = {f"v{i:03d}": rng.normal(0.0005 * i, 0.01, 250) for i in range(9)}
    doubled = {**series, **{f"{k}_cap": v.copy() for k, v in series.items()}}  # 18 variants, 9 series
    oos = {k: 0.0 for k in doubled}
    st = of.selection_statistics(doubled, oos)
    alone = of.selection_statistics(series, {k: 0.0 for k in series})
    assert st["trials"] == 9 == alone["trials"]
    # Same N and same Sharpe ratios: the same SR0 and DSR as the nine distinct series alone.
    assert st["sr0"] == alone["sr0"] and st["dsr"] == alone["dsr"]
    # Counting the 18 variants would have raised the bar (a larger N, a smaller variance).
    srs = np.array([of.per_period_sharpe(v) for v in doubled.values()])
    naive = of.expected_max_sharpe(float(np.var(srs, ddof=1)), 18)
    assert naive != alone["sr0"]
    assert of.distinct_series({"a": np.array([1.0, np.nan]), "b": np.array([1.0, np.nan]), "c": np.ones(2)}) == [
        "a",
        "c",
    ]
