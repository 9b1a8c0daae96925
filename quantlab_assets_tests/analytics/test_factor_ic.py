"""feature_ic's core: hand-worked cases, alphalens-reloaded on the same factor and forward returns
(IC and quantile returns to 1e-9), zero leakage, and skipped dates counted."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from quantlab_assets.analytics.core import factor_ic as fic
from quantlab_assets.common.calendar import shift_sessions, trading_days


def _panel(n_dates=60, n_names=40, horizons=(1, 5), seed=0, ties=True):
    """Long features (f_signal, f_noise, f_ties) and labels with exit dates, as the warehouse stores them."""
    rng = np.random.default_rng(seed)
    dates = trading_days("2023-01-03", "2023-12-29")[:n_dates]
    syms = [f"N{i:02d}" for i in range(n_names)]
    D, S = np.meshgrid(dates, syms, indexing="ij")
    signal = rng.normal(size=D.shape)
    feats = pd.DataFrame(
        {
            "date": D.ravel(),
            "symbol": S.ravel(),
            "f_signal": signal.ravel(),
            "f_noise": rng.normal(size=D.size),
            "f_ties": np.round(rng.normal(size=D.size), 1 if ties else 12),
        }
    )
    labels = pd.DataFrame({"date": D.ravel(), "symbol": S.ravel()})
    for h in horizons:
        labels[f"fwd_ret_{h}"] = 0.01 * np.sqrt(h) * (0.3 * signal.ravel() + rng.normal(size=D.size))
        labels[f"exit_date_{h}"] = (
            [shift_sessions(d, 1 + h) for d in D.ravel()]
            if D.size < 5000
            else pd.DatetimeIndex(D.ravel()) + pd.Timedelta(days=int(1.5 * (1 + h)))
        )
    return feats, labels, dates


def test_hand_worked_date():
    day = pd.Timestamp("2024-03-01")
    feats = pd.DataFrame({"date": day, "symbol": list("ABCDE"), "f": [1.0, 2.0, 2.0, 4.0, 5.0]})
    labels = pd.DataFrame(
        {
            "date": day,
            "symbol": list("ABCDE"),
            "fwd_ret_1": [0.01, 0.03, 0.02, 0.05, 0.04],
            "exit_date_1": pd.Timestamp("2024-03-05"),
        }
    )
    p = fic.factor_panels(feats, labels, ["f"], [1], "2024-03-05", quantiles=2, min_names=2)
    x, y = np.array([1, 2, 2, 4, 5.0]), np.array([0.01, 0.03, 0.02, 0.05, 0.04])
    assert p.ic[0, 0, 0] == pytest.approx(np.corrcoef(x, y)[0, 1], abs=1e-15)
    # ranks: f -> 1, 2.5, 2.5, 4, 5; returns -> 1, 3, 2, 5, 4
    assert p.rank_ic[0, 0, 0] == pytest.approx(np.corrcoef([1, 2.5, 2.5, 4, 5], [1, 3, 2, 5, 4])[0, 1], abs=1e-15)
    # median edge = 2: bin 1 holds 1, 2, 2 (closed on the right), bin 2 holds 4, 5
    assert p.quantile_mean[0, 0, 0].tolist() == pytest.approx([0.02, 0.045], abs=1e-15)
    assert p.n_names[0, 0, 0] == 5


def _alphalens_inputs(feats, labels, name, horizons):
    factor = feats.set_index(["date", "symbol"])[name]
    factor.index = factor.index.set_names(["date", "asset"])
    fwd = labels.set_index(["date", "symbol"])[[f"fwd_ret_{h}" for h in horizons]]
    fwd.index = fwd.index.set_names(["date", "asset"])
    fwd.columns = [f"{h}D" for h in horizons]
    data = fwd.copy()
    data["factor"] = factor
    data = data.dropna()
    return data


def test_matches_alphalens_ic_and_quantile_returns():
    al = pytest.importorskip("alphalens")
    horizons = (1, 5)
    feats, labels, dates = _panel(horizons=horizons)
    as_of = shift_sessions(dates[-1], 30)  # every label known
    p = fic.factor_panels(feats, labels, ["f_signal", "f_noise", "f_ties"], horizons, as_of, quantiles=5, min_names=5)
    for f, name in enumerate(p.features):
        data = _alphalens_inputs(feats, labels, name, horizons)
        data["factor_quantile"] = al.utils.quantize_factor(data, quantiles=5)
        ic = al.performance.factor_information_coefficient(data)
        q_by_date = al.performance.mean_return_by_quantile(data, by_date=True, demeaned=False)[0]
        for k, h in enumerate(horizons):
            np.testing.assert_allclose(p.rank_ic[f, k], ic[f"{h}D"].reindex(p.dates).to_numpy(), atol=1e-9, rtol=0)
            wide = q_by_date[f"{h}D"].unstack("factor_quantile").reindex(p.dates)
            np.testing.assert_allclose(p.quantile_mean[f, k], wide.to_numpy(), atol=1e-9, rtol=0)
        # Rank autocorrelation over one session (alphalens' factor turnover figure).
        ac = al.performance.factor_rank_autocorrelation(data, period=1)
        np.testing.assert_allclose(p.rank_autocorr[f, 0, 1:], ac.reindex(p.dates).to_numpy()[1:], atol=1e-9, rtol=0)


def test_pearson_ic_matches_pandas_per_date():
    feats, labels, dates = _panel(horizons=(1,))
    p = fic.factor_panels(feats, labels, ["f_signal"], (1,), shift_sessions(dates[-1], 5), min_names=5)
    merged = feats.merge(labels, on=["date", "symbol"])
    ref = merged.groupby("date").apply(lambda g: g["f_signal"].corr(g["fwd_ret_1"]), include_groups=False)
    np.testing.assert_allclose(p.ic[0, 0], ref.reindex(p.dates).to_numpy(), atol=1e-12, rtol=0)


def test_summary_statistics_hand_checked():
    feats, labels, dates = _panel(horizons=(1,))
    p = fic.factor_panels(feats, labels, ["f_signal"], (1,), shift_sessions(dates[-1], 5), min_names=5)
    s = fic.summarise(p)
    row = s[(s["period"] == "all")].iloc[0]
    ric = p.rank_ic[0, 0]
    assert row["rank_ic_mean"] == pytest.approx(ric.mean(), abs=1e-15)
    assert row["rank_ic_ir"] == pytest.approx(ric.mean() / ric.std(ddof=1), abs=1e-12)
    assert row["rank_ic_t"] == pytest.approx(ric.mean() / ric.std(ddof=1) * np.sqrt(len(ric)), abs=1e-12)
    assert row["rank_ic_positive"] == pytest.approx((ric > 0).mean())
    assert row["top_minus_bottom"] == pytest.approx((p.quantile_mean[0, 0, :, -1] - p.quantile_mean[0, 0, :, 0]).mean())
    assert row["rank_ic_mean"] > 0.1 and row["top_minus_bottom"] > 0  # the planted signal is found
    assert row["dates"] == len(dates)


def test_no_leakage_labels_after_the_as_of_date_never_count():
    feats, labels, dates = _panel(horizons=(1, 5))
    as_of = dates[40]
    base = fic.factor_ic(feats, labels, ["f_signal", "f_ties"], (1, 5), as_of, min_names=5)
    # Change every label that became known after as_of, and every feature after it: nothing moves.
    tampered_labels = labels.copy()
    for h in (1, 5):
        late = pd.to_datetime(tampered_labels[f"exit_date_{h}"]) > as_of
        assert late.any()
        tampered_labels.loc[late, f"fwd_ret_{h}"] = 123.0
    tampered_feats = feats.copy()
    tampered_feats.loc[tampered_feats["date"] > as_of, ["f_signal", "f_ties"]] = -7.0
    again = fic.factor_ic(tampered_feats, tampered_labels, ["f_signal", "f_ties"], (1, 5), as_of, min_names=5)
    pd.testing.assert_frame_equal(base, again, check_exact=True)
    # The last 1 + h decision dates before as_of have no known label: counted, not dropped.
    row = base[(base["period"] == "all") & (base["feature"] == "f_signal") & (base["horizon"] == 5)].iloc[0]
    assert row["dates_without_labels"] >= 5 and row["dates"] + row["dates_without_labels"] == 41


def test_dates_with_few_names_or_constant_values_are_counted():
    feats, labels, dates = _panel(n_dates=10, n_names=12, horizons=(1,), ties=False)
    feats.loc[(feats["date"] == dates[2]) & (feats["symbol"] > "N03"), "f_signal"] = np.nan  # 4 names left
    feats.loc[feats["date"] == dates[3], "f_noise"] = 1.0  # constant cross-section
    s = fic.factor_ic(feats, labels, ["f_signal", "f_noise"], (1,), shift_sessions(dates[-1], 5), min_names=5)
    overall = s[s["period"] == "all"].set_index("feature")
    assert overall.loc["f_signal", "skipped_few_names"] == 1 and overall.loc["f_signal", "dates"] == 9
    assert overall.loc["f_noise", "skipped_constant"] == 1 and overall.loc["f_noise", "dates"] == 9


def test_by_year_rows_partition_the_dates():
    feats, labels, dates = _panel(n_dates=20, horizons=(1,))
    feats = pd.concat([feats, feats.assign(date=feats["date"] + pd.DateOffset(years=1))], ignore_index=True)
    labels = pd.concat(
        [
            labels,
            labels.assign(
                date=labels["date"] + pd.DateOffset(years=1), exit_date_1=labels["exit_date_1"] + pd.DateOffset(years=1)
            ),
        ]
    )
    s = fic.factor_ic(feats, labels, ["f_signal"], (1,), "2025-12-31", min_names=5)
    assert set(s["period"]) == {"all", "2023", "2024"}
    assert s.loc[s["period"] == "all", "dates"].iloc[0] == s.loc[s["period"] != "all", "dates"].sum()


def test_bad_inputs_raise_clear_errors():
    feats, labels, dates = _panel(n_dates=5, horizons=(1,))
    with pytest.raises(ValueError, match="missing columns .*fwd_ret_5"):
        fic.factor_panels(feats, labels, ["f_signal"], (5,), dates[-1])
    with pytest.raises(ValueError, match="quantiles must be an integer >= 2"):
        fic.quantile_fractions(1)


def test_report_ranks_by_rank_icir_and_shows_years_and_skips():
    feats, labels, dates = _panel(n_dates=30, horizons=(1, 5))
    feats.loc[(feats["date"] == dates[2]) & (feats["symbol"] > "N03"), "f_noise"] = np.nan
    s = fic.factor_ic(
        feats, labels, ["f_signal", "f_noise", "f_ties"], (1, 5), shift_sessions(dates[-1], 10), min_names=5
    )
    table = fic.ranked(s)
    assert table["rank_ic_ir"].abs().is_monotonic_decreasing and table.iloc[0]["feature"] == "f_signal"
    md = fic.feature_ic_markdown(s, dates[-1], dates[0], "decay.png")
    assert "![IC decay](decay.png)" in md and "Mean rank IC by year" in md
    assert "cells skipped: 2" in md  # f_noise's thin date, once per horizon
    assert fic.ic_decay_png(s)[:4] == b"\x89PNG"
