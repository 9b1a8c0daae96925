"""One partition of a strategy's backtest and of its KPIs: the candidate rows and their audit.

The Dagster layer reads the inputs (``core/store.py``), calls one function here, and hands the
result to ``common.publish.audit_and_publish``: the gate judges exactly the rows that would be
published, in memory, before anything is written (write-audit-publish).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import pandas as pd

from quantlab_assets.backtest_engine.core.account import STATE_COLUMNS
from quantlab_assets.backtest_engine.core.frames import POSITION_COLUMNS, SKIPPED_COLUMNS, TRADE_COLUMNS
from quantlab_assets.backtest_engine.core.gate import accounting_identity, kpis_finite, no_trade_before_decision
from quantlab_assets.backtest_engine.core.holding import holding_of
from quantlab_assets.backtest_engine.core.kpis import KPI_COLUMNS, SINCE_START, kpis_of_range
from quantlab_assets.backtest_engine.core.report import backtest_summary_markdown, equity_drawdown_png
from quantlab_assets.backtest_engine.core.schema import (
    BACKTEST_EQUITY,
    BACKTEST_KPIS,
    BACKTEST_POSITIONS,
    BACKTEST_SPEC,
    BACKTEST_STATE,
    BACKTEST_TRADES,
)
from quantlab_assets.backtest_engine.core.store import backtest_strategy
from quantlab_assets.common.calendar import shift_sessions, trading_days
from quantlab_assets.common.gates import (
    UPSTREAM_CHECK,
    GateResult,
    inputs_missing_reason,
    not_evaluated,
    period_label,
    upstream_complete,
)
from quantlab_assets.common.publish import Slice
from quantlab_assets.common.versions import content_hash
from quantlab_assets.strategy_lab.core.spec import EQUAL_WEIGHT, StrategySpec


@dataclass(frozen=True)
class BacktestInputs:
    """What one partition of a strategy's backtest reads.

    ``bars``: ohlcv of the strategy's universe from the session before ``start`` to ``end`` (the
    benchmark's first return needs that session). ``targets``: the strategy's targets in
    [start, end]. ``state``: the stored state at the close before ``start`` (None: none stored);
    ``last_state_date``: the latest stored state date before that close (None: the strategy has
    no history, a first run). ``targets_asset``/``backtest_asset``: what to materialize first.
    """

    bars: pd.DataFrame
    targets: pd.DataFrame
    state: pd.DataFrame | None = None
    last_state_date: pd.Timestamp | None = None
    targets_asset: str = "targets"
    backtest_asset: str = "backtest"
    # (version, JSON) of the spec the resume state was built under; None: not recorded.
    state_spec: tuple[str, str] | None = None
    # The targets of the two sessions before ``start`` (holding 'until_change' compares each
    # decision, the pending one included, with the session before it); None: not needed.
    previous_targets: pd.DataFrame | None = None
    invested_before: bool = False  # the stored backtest held a book before ``start``
    # The bars of the spec's named benchmark symbol over ``bars``' sessions (None: the
    # equal-weight universe); ``benchmark_registered``: that symbol is in the symbol registry.
    benchmark_bars: pd.DataFrame | None = None
    benchmark_registered: bool = True


@dataclass(frozen=True)
class BacktestPartition:
    """The candidate rows of one partition and the gate evaluated on exactly them."""

    equity: pd.DataFrame
    positions: pd.DataFrame
    trades: pd.DataFrame
    states: pd.DataFrame
    skipped: pd.DataFrame
    gate: list[GateResult]
    spec: pd.DataFrame | None = None  # one row per session: the spec it was simulated under
    headline: dict = field(default_factory=dict)  # the published backtest's since-start figures (the asset's)

    def slices(self, strategy: str) -> list[Slice]:
        """The tables, published together or not at all."""
        out = [
            Slice(BACKTEST_EQUITY, self.equity, strategy=strategy),
            Slice(BACKTEST_POSITIONS, self.positions, strategy=strategy),
            Slice(BACKTEST_TRADES, self.trades, strategy=strategy),
            Slice(BACKTEST_STATE, self.states, strategy=strategy),
        ]
        if self.spec is not None:
            out.append(Slice(BACKTEST_SPEC, self.spec, strategy=strategy))
        return out


@dataclass(frozen=True)
class KpisPartition:
    table: pd.DataFrame
    gate: list[GateResult]

    def slices(self, strategy: str) -> list[Slice]:
        return [Slice(BACKTEST_KPIS, self.table, strategy=strategy)]


def _empty(schema_or_columns) -> pd.DataFrame:
    columns = getattr(schema_or_columns, "column_names", schema_or_columns)
    return pd.DataFrame(columns=[c for c in columns if c != "strategy"])


def state_gap(inputs: BacktestInputs, start) -> GateResult | None:
    """The resume rule: a strategy with stored history resumes from the state of the close just
    before ``start``; without it (a session skipped) resuming would be wrong, so nothing is run."""
    if inputs.state is not None or inputs.last_state_date is None:
        return None
    prev, last = shift_sessions(start, -1), pd.Timestamp(inputs.last_state_date)
    resume = shift_sessions(last, 1)
    return GateResult(
        UPSTREAM_CHECK,
        False,
        f"backtest state missing for {prev.date()} (stored up to {last.date()}): materialize "
        f"{inputs.backtest_asset} from {resume.date()} first; nothing was written",
        figures={"state_missing": 1.0},
        offending=pd.DataFrame({"input": ["backtest_state"], "date": [prev], "materialize": [inputs.backtest_asset]}),
    )


# A named-symbol benchmark has been credited under the strategy's fills since 2026-12-06; a state
# stored before held its close-to-close returns under the same spec, so its version says so and a
# daily run does not resume one convention's history with the other's rows (equal-weight specs
# keep their version: their convention did not change then).
NAMED_BENCHMARK_CONVENTION = "strategy_fills"


def spec_version(spec: StrategySpec) -> tuple[str, str]:
    """(content hash, JSON) of a spec: the version recorded with every simulated session."""
    text = spec.model_dump_json()
    if spec.benchmark != EQUAL_WEIGHT:
        text = json.dumps({**json.loads(text), "benchmark_convention": NAMED_BENCHMARK_CONVENTION})
    return content_hash(text), text


def _changed_fields(old: str, new: str) -> str:
    def leaves(obj, prefix=""):
        if isinstance(obj, dict):
            for k, v in obj.items():
                yield from leaves(v, f"{prefix}{k}.")
        else:
            yield prefix.rstrip("."), obj

    was, now = dict(leaves(json.loads(old))), dict(leaves(json.loads(new)))
    diffs = [f"{k} {was.get(k)!r} -> {now.get(k)!r}" for k in sorted(set(was) | set(now)) if was.get(k) != now.get(k)]
    return ", ".join(diffs[:5]) + (f" and {len(diffs) - 5} more" if len(diffs) > 5 else "")


def spec_changed(inputs: BacktestInputs, spec: StrategySpec, start) -> GateResult | None:
    """The spec rule: a daily run resumes only from a state built under the same spec. A changed
    strategy file would otherwise continue an equity and KPI history built under another one, so
    nothing is run; a backfill from the strategy's first session rebuilds the history (no state
    before it to resume from), or the old file goes back."""
    if inputs.state is None or inputs.state_spec is None:
        return None
    old_version, old_json = inputs.state_spec
    new_version, new_json = spec_version(spec)
    if old_version == new_version:
        return None
    prev = shift_sessions(start, -1)
    return GateResult(
        UPSTREAM_CHECK,
        False,
        f"{spec.name}'s strategy spec changed since the state of {prev.date()} was built (spec {old_version} -> "
        f"{new_version}: {_changed_fields(old_json, new_json)}); resuming would mix two specs in one equity and "
        f"KPI history, so nothing was written: backfill {inputs.backtest_asset} from its first session to "
        "rebuild it under the new spec, or restore the old strategy file",
        figures={"spec_changed": 1.0},
        offending=pd.DataFrame({"state_date": [prev], "stored_spec": [old_version], "current_spec": [new_version]}),
    )


def benchmark_gap(
    symbol: str, bars: pd.DataFrame | None, start, end, registered: bool = True, strategy: str = ""
) -> str:
    """One line naming the sessions of [start, end] a named benchmark ``symbol`` has no bar on
    (which symbol, which range, what to do); "" when it has every one. ``bars``: that symbol's
    stored bars; ``start`` is the session before the first when the first return is close to close."""
    sessions = trading_days(start, end)
    held = set(pd.to_datetime(bars["date"]).dt.normalize()) if bars is not None and len(bars) else set()
    missing = [d for d in sessions if d not in held]
    if not missing:
        return ""
    label, owner = period_label(start, end), f"{strategy}: " if strategy else ""
    where = (
        f"add {symbol} to the symbol registry (QUANTLAB_SYMBOLS) and materialize ohlcv"
        if not registered
        else "materialize ohlcv"
    )
    return (
        f"{owner}field 'benchmark': {symbol} has no ohlcv bar on {len(missing)} of {len(sessions)} sessions of "
        f"{label} (first missing {missing[0].date()}{'' if registered else f'; {symbol} is not in the symbol registry'}"
        f"): {where} for {sessions[0].date()}...{sessions[-1].date()}, or set 'benchmark: equal_weight' in the "
        "strategy file"
    )


def _benchmark_input(inputs: BacktestInputs, spec: StrategySpec | None, start, end) -> GateResult | None:
    """The named benchmark's bars are an input: a session without one would give a silent NaN
    in every relative figure, so nothing is run (the equal-weight benchmark reads ``bars``)."""
    if spec is None or spec.benchmark == EQUAL_WEIGHT:
        return None
    lo = shift_sessions(start, -1) if inputs.invested_before else start  # close to close needs the prior close
    line = benchmark_gap(spec.benchmark, inputs.benchmark_bars, lo, end, inputs.benchmark_registered, spec.name)
    if not line:
        return None
    return GateResult(
        UPSTREAM_CHECK,
        False,
        line + "; nothing was written",
        figures={"benchmark_missing": 1.0},
        offending=pd.DataFrame({"input": [f"ohlcv {spec.benchmark}"], "start": [lo], "end": [pd.Timestamp(end)]}),
    )


def backtest_upstream(inputs: BacktestInputs, start, end, spec: StrategySpec | None = None) -> GateResult:
    """``upstream_complete`` of the backtest: the resume state (and the spec it was built under),
    the named benchmark's bars, then targets and ohlcv every session."""
    gap = state_gap(inputs, start) or (spec_changed(inputs, spec, start) if spec is not None else None)
    gap = gap or _benchmark_input(inputs, spec, start, end)
    if gap is not None:
        return gap
    bars_dates = inputs.bars["date"][inputs.bars["date"] >= pd.Timestamp(start)].unique()
    return upstream_complete(
        {"targets": (inputs.targets["date"].unique(), inputs.targets_asset), "ohlcv": (bars_dates, "ohlcv")},
        start,
        end,
    )


def backtest_partition(inputs: BacktestInputs, spec: StrategySpec, start, end) -> BacktestPartition:
    """Simulate [start, end] from the stored state, trading the targets' rebalance rows, and audit
    the result: ``upstream_complete``, ``accounting_identity`` (equity and positions) and
    ``no_trade_before_decision`` (the fills), each on exactly the candidate rows.

    With an upstream input missing nothing is simulated: empty tables, that failed rule and the
    others reported as not evaluated."""
    upstream = backtest_upstream(inputs, start, end, spec)
    if not upstream.passed:
        equity, positions, trades = _empty(BACKTEST_EQUITY), _empty(POSITION_COLUMNS), _empty(TRADE_COLUMNS)
        rules = [accounting_identity(equity, positions), no_trade_before_decision(trades)]
        return BacktestPartition(
            equity,
            positions,
            trades,
            _empty(STATE_COLUMNS),
            _empty(SKIPPED_COLUMNS),
            [upstream, *not_evaluated(rules, inputs_missing_reason(upstream))],
        )
    targets = inputs.targets
    decisions = targets.loc[targets["rebalance"].to_numpy(dtype=bool), ["date", "symbol", "weight"]]
    history = targets if inputs.previous_targets is None else pd.concat([inputs.previous_targets, targets])
    out, equity = backtest_strategy(
        inputs.bars,
        decisions,
        start,
        end,
        spec.costs,
        spec.capital,
        inputs.state,
        holding_of(spec, history),
        invested_before=inputs.invested_before,
        benchmark_bars=None if spec.benchmark == EQUAL_WEIGHT else inputs.benchmark_bars,
    )
    assert out.states is not None  # run_backtest always reports the state after every close
    gate = [upstream, accounting_identity(equity, out.positions), no_trade_before_decision(out.trades)]
    version, text = spec_version(spec)
    built_under = pd.DataFrame({"date": equity["date"], "spec_version": version, "spec": text})
    return BacktestPartition(equity, out.positions, out.trades, out.states, out.skipped, gate, built_under)


def held_outside_registry(positions: pd.DataFrame, registry_symbols) -> list[str]:
    """One line per name the book still holds on its last date that is no longer in the symbol
    registry: it gets no new bars, so it can be neither marked nor traded, and it would sit in the
    book at its last close without a word. Empty when there is none."""
    if not len(positions):
        return []
    last = positions[positions["date"] == positions["date"].max()]
    stuck = last[~last["symbol"].isin(set(registry_symbols)) & (last["shares"] != 0)]
    return [
        f"{r.symbol}: {r.shares:g} shares ({r.weight:.1%} of the book on {pd.Timestamp(r.date).date()}) held but "
        "no longer in the symbol registry: marked at its last price, cannot be traded; put it back in the registry "
        "(with a last_date) to sell it, or backfill without it"
        for r in stuck.itertuples(index=False)
    ]


def with_candidate(history: pd.DataFrame, candidate: pd.DataFrame, start) -> pd.DataFrame:
    """The stored equity history before ``start`` followed by the candidate rows from ``start``:
    the history the KPIs of a just-published backtest are computed over."""
    before = history[history["date"] < pd.Timestamp(start)]
    parts = [f for f in (before, candidate) if len(f)]  # pandas warns on concatenating empty frames
    return pd.concat(parts, ignore_index=True) if parts else before.reset_index(drop=True)


def kpis_partition(history: pd.DataFrame, start, end, backtest_asset: str = "backtest") -> KpisPartition:
    """KPI rows of the dates in [start, end], computed over the whole equity ``history`` (so one
    run or many give the same rows), and their audit: ``upstream_complete`` (the backtest has
    every session) and ``kpis_finite``."""
    dates = pd.to_datetime(history["date"])
    in_range = dates[(dates >= pd.Timestamp(start)) & (dates <= pd.Timestamp(end))].unique()
    upstream = upstream_complete({"backtest": (in_range, backtest_asset)}, start, end)
    if not upstream.passed:
        empty = _empty(BACKTEST_KPIS)
        return KpisPartition(empty, [upstream, *not_evaluated([kpis_finite(empty)], inputs_missing_reason(upstream))])
    table = kpis_of_range(history, start, end)
    return KpisPartition(table, [upstream, kpis_finite(table)])


def latest_kpis(table: pd.DataFrame) -> pd.DataFrame:
    """The KPI rows (every scope) of the table's last date."""
    return table[table["date"] == table["date"].max()] if len(table) else table


def since_start_figures(rows: pd.DataFrame) -> dict[str, float]:
    """The finite since-start KPIs of one date's rows, as floats (headline figures)."""
    since = rows[rows["scope"] == SINCE_START]
    if not len(since):
        return {}
    first = since.iloc[0]
    return {k: float(first[k]) for k in KPI_COLUMNS if pd.notna(first[k])}


def since_start_by_date(table: pd.DataFrame) -> dict[pd.Timestamp, dict[str, float]]:
    """:func:`since_start_figures` of every date of a KPI table at once (a backfill's 2,610
    dates: one pass, not a filter per date)."""
    since = table[table["scope"] == SINCE_START].drop_duplicates("date").set_index("date")[list(KPI_COLUMNS)]
    return {day: {k: float(v) for k, v in row.items() if pd.notna(v)} for day, row in since.to_dict("index").items()}


@dataclass(frozen=True)
class BacktestReport:
    """``backtest_summary.md``'s section of a strategy and its chart (empty: too few sessions)."""

    markdown: str
    png: bytes
    chart: str


def backtest_report(
    spec: StrategySpec, history: pd.DataFrame, table: pd.DataFrame, trades, skipped, start, end
) -> BacktestReport:
    """The run's summary of a strategy: the last date's KPIs, its fills and skipped orders, and
    the equity / drawdown chart over the whole ``history`` (referenced as ``chart``)."""
    name, chart = spec.name, f"backtest_{spec.name}.png"
    last = latest_kpis(table)
    bench = history.set_index("date")["benchmark_ret"]
    png = equity_drawdown_png(history, bench, name, spec.benchmark) if len(history) > 1 else b""
    if not len(last):
        return BacktestReport(f"## {name}\n\nno session in {start}..{end}\n", png, chart)
    markdown = backtest_summary_markdown(
        name, start, end, last, trades, skipped, spec.costs.fee_bps, spec.costs.slippage_bps, chart, spec.benchmark
    )
    return BacktestReport(markdown, png, chart)
