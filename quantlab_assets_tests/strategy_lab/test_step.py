"""The targets step's core: candidate targets and their audit in memory, the contract's readers."""

from __future__ import annotations

from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest

from quantlab_assets.common.calendar import shift_sessions, trading_days
from quantlab_assets.common.gates import UPSTREAM_CHECK
from quantlab_assets.common.warehouse import replace_slice
from quantlab_assets.data_curator.core.registry import SymbolRegistry
from quantlab_assets.strategy_lab.assets import build_targets_asset
from quantlab_assets.strategy_lab.core.construct import universe_of
from quantlab_assets.strategy_lab.core.gate import TARGETS_RULES, TARGETS_WARNINGS
from quantlab_assets.strategy_lab.core.spec import StrategySpec, load_strategy
from quantlab_assets.strategy_lab.core.step import targets_partition
from quantlab_assets.strategy_lab.core.targets import TARGETS, compute_targets, read_previous_weights

ROOT = Path(__file__).resolve().parents[2]
SPEC = StrategySpec.model_validate(
    {
        "name": "t",
        "signal": {"kind": "feature", "feature": "f"},
        "selection": {"kind": "top_k", "k": 3},
        "constraints": {"max_weight": 0.5, "min_names": 2},
    }
)
NAMES = ["AAA", "BBB", "CCC", "DDD", "EEE"]
START, END = "2024-04-01", "2024-04-05"


def _features(days=None) -> pd.DataFrame:
    days = trading_days(START, END) if days is None else days
    rng = np.random.default_rng(7)
    return pd.DataFrame(
        {
            "date": np.repeat(days, len(NAMES)),
            "symbol": np.tile(NAMES, len(days)),
            "f": rng.normal(size=len(days) * len(NAMES)),
        }
    )


NO_LABELS = pd.DataFrame(columns=["date", "symbol", "fwd_ret_5"])


def test_the_partition_is_compute_targets_audited_on_its_own_rows():
    prev = pd.Series({"AAA": 0.5, "BBB": 0.5})
    part = targets_partition(_features(), NO_LABELS, SPEC, NAMES, NAMES, prev, START, END)
    alone = compute_targets(_features(), SPEC, NAMES, START, END, prev_weights=prev)
    pd.testing.assert_frame_equal(part.targets, alone.targets, check_exact=True)  # one kernel
    assert [g.name for g in part.gate] == [UPSTREAM_CHECK, *TARGETS_RULES, *TARGETS_WARNINGS]
    assert all(g.passed for g in part.gate), [g.description for g in part.gate]
    assert [g.blocking for g in part.gate] == [True] * (1 + len(TARGETS_RULES)) + [False] * len(TARGETS_WARNINGS)
    assert part.figures["universe"] == 5 and part.figures["rebalances"] == 1.0  # weekly: Monday 04-01
    # Top 3 of 5 equally weighted: the preview's book is the last session's three names at 1/3.
    assert len(part.book) == 3 and np.allclose(part.book["weight"], 1 / 3)
    assert "## t: 2024-04-01 … 2024-04-05" in part.report


def test_missing_features_fail_upstream_and_compute_nothing():
    feats = _features(trading_days(START, "2024-04-03"))  # 04-04 and 04-05 missing
    part = targets_partition(feats, NO_LABELS, SPEC, NAMES, NAMES, None, START, END)
    upstream = part.gate[0]
    assert upstream.name == UPSTREAM_CHECK and not upstream.passed
    assert "features missing for 2 of 5 sessions of 2024-04-01..2024-04-05" in upstream.description
    assert part.targets.empty and list(part.targets.columns) == TARGETS.column_names
    # Nothing computed: the rules are reported as not evaluated (warnings), never as passed.
    assert [(g.passed, g.blocking) for g in part.gate[1:]] == [(False, False)] * (len(part.gate) - 1)
    assert all(g.description == "not evaluated: upstream_complete failed, nothing was computed" for g in part.gate[1:])


def test_a_symbol_outside_the_registry_fails_naming_symbol_and_date():
    registry = NAMES[:4]  # EEE was dropped from the registry but the universe still trades it
    part = targets_partition(_features(), NO_LABELS, SPEC, NAMES, registry, None, START, END)
    failed = {g.name: g for g in part.gate if not g.passed}
    assert list(failed) == ["symbols_in_registry"]
    assert failed["symbols_in_registry"].description == "unknown symbols ['EEE'] on 5 rows, e.g. EEE 2024-04-01"
    assert set(failed["symbols_in_registry"].offending["date"]) == set(trading_days(START, END))


def test_the_asset_declares_exactly_the_rules_its_core_returns():
    for path in sorted((ROOT / "strategies").glob("*.yaml")):
        asset = build_targets_asset(load_strategy(path))
        specs = list(asset.check_specs)
        assert [s.name for s in specs] == [UPSTREAM_CHECK, *TARGETS_RULES, *TARGETS_WARNINGS]
        assert [s.blocking for s in specs] == [True] * (1 + len(TARGETS_RULES)) + [False] * len(TARGETS_WARNINGS)
        assert all(s.asset_key == asset.key for s in specs)


def test_previous_weights_are_the_strategys_book_of_the_session_before(tmp_path):
    day = pd.Timestamp("2024-03-28")  # the session before 2024-04-01 (Good Friday is a holiday)
    assert shift_sessions(START, -1) == day
    rows = pd.DataFrame(
        {
            "date": [day] * 3 + [pd.Timestamp("2024-03-27")],
            "strategy": ["t", "t", "other", "t"],
            "symbol": ["BBB", "AAA", "AAA", "CCC"],
            "score": 0.0,
            "weight": [0.4, 0.6, 1.0, 1.0],
            "rebalance": True,
        }
    )
    with duckdb.connect(str(tmp_path / "t.duckdb")) as con:
        assert read_previous_weights(con, "t", START) is None  # never materialized
        replace_slice(con, TARGETS, rows, "2024-03-27", day)
        prev = read_previous_weights(con, "t", START)
        assert read_previous_weights(con, "nobody", START) is None
    assert prev is not None
    pd.testing.assert_series_equal(
        prev, pd.Series([0.6, 0.4], index=pd.Index(["AAA", "BBB"], name="symbol"), name="weight")
    )


def test_universe_of_filters_the_registry():
    registry = SymbolRegistry.model_validate(
        {"universe": "u", "symbols": [{"symbol": s, "sector": sec} for s, sec in zip(NAMES, "TTEEH")]}
    )
    spec = SPEC.model_copy(update={"universe": SPEC.universe.model_copy(update={"sectors": ("E", "H")})})
    assert universe_of(registry, spec) == ["CCC", "DDD", "EEE"]
    assert universe_of(registry, SPEC) == NAMES


@pytest.mark.parametrize("n", [1, 20, 60, 252, 2520])
def test_shift_sessions_is_the_window_the_calendar_day_fudge_gave(n):
    """The model's training window and refit dates moved from calendar-day spans (``n * 1.6 + 10``
    days, ``n * 2 + 10`` days) to ``shift_sessions``: the same session on every 7th session of 30 years."""
    days = trading_days("2005-01-03", "2034-12-29")[::7]
    fudge = [trading_days(d - pd.Timedelta(days=int(n * 1.6) + 10), d)[-(n + 1) :][0] for d in days]
    refit = [trading_days(d - pd.Timedelta(days=n * 2 + 10), d)[-(n + 1)] for d in days]
    exact = [shift_sessions(d, -n) for d in days]
    assert fudge == exact and refit == exact


def test_an_empty_book_is_a_warning_naming_why():
    """Issue 22 point 4: a strategy that holds nothing over its range warns, saying why."""
    # Three scorable names for a top-3 strategy with min_names 4: flat every day.
    feats = _features()
    feats.loc[feats["symbol"].isin(["DDD", "EEE"]), "f"] = np.nan
    spec = SPEC.model_copy(update={"constraints": SPEC.constraints.model_copy(update={"min_names": 4})})
    spec = spec.model_copy(update={"selection": spec.selection.model_copy(update={"k": 4})})
    part = targets_partition(feats, NO_LABELS, spec, NAMES, NAMES, None, START, END)
    warn = {g.name: g for g in part.gate}["book_not_empty"]
    assert not warn.passed and not warn.blocking
    assert warn.description == (
        "EMPTY BOOK: held nothing on any of 5 session(s) of 2024-04-01..2024-04-05: "
        "3 scorable names < min_names 4: flat"
    ), warn.description
    assert list(warn.offending["date"]) == list(trading_days(START, END))
    # No name scorable at all (features undefined: warm-up): says which features.
    feats["f"] = np.nan
    warn = {g.name: g for g in targets_partition(feats, NO_LABELS, spec, NAMES, NAMES, None, START, END).gate}
    assert "no name had a score: f undefined on every session" in warn["book_not_empty"].description
    # With the features' windows and the history stored: the feature, sessions needed and stored.
    from quantlab_assets.strategy_lab.core.gate import FeatureHistory

    history = FeatureHistory({"f": 253}, 250)
    part = targets_partition(feats, NO_LABELS, spec, NAMES, NAMES, None, START, END, history=history)
    text = {g.name: g for g in part.gate}["book_not_empty"].description
    assert text.startswith(
        "EMPTY BOOK: held nothing on any of 5 session(s) of 2024-04-01..2024-04-05: "
        "f undefined: needs 253 sessions, 250 stored (the most any universe name has): "
        "ingest 3 more session(s) of ohlcv history before the range"
    ), text
    # A window the history covers is not blamed: the generic reason stays (the data is NaN).
    part = targets_partition(
        feats, NO_LABELS, spec, NAMES, NAMES, None, START, END, history=FeatureHistory({"f": 20}, 250)
    )
    assert "no name had a score: f undefined" in {g.name: g for g in part.gate}["book_not_empty"].description
