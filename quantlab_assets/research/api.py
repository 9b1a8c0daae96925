"""The research API: a strategy spec backtested over any range of the warehouse's stored data,
with the same core functions the assets call, in memory (nothing is written).

From a notebook::

    from quantlab_assets import research
    data = research.load_data("2015-01-02", "2024-12-31")            # one short read-only read
    out = research.backtest("strategies/momentum_topk.yaml", "2015-01-02", "2024-12-31",
                            overrides={"selection.k": 20}, data=data)
    out.kpis_last, out.equity, out.trades

For the same spec and range, the targets, equity, positions, trades and KPI table equal what
the ``<strategy>/<strategy>_targets``, ``_backtest`` and ``_backtest_kpis`` assets store
when materialized over that range from an empty history, bit for bit (a test materializes them
and compares).

Reads open the DuckDB file read-only, copy what they need and close it before any computation,
so a notebook never holds the file's lock while it thinks (DuckDB allows one writer process, and
a reader's open handle blocks it).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, cast

import pandas as pd
import yaml
from pydantic import ValidationError

from quantlab_assets.backtest_engine.core.holding import holding_of
from quantlab_assets.backtest_engine.core.kpis import SINCE_START, add_pnl, invested_kpi_table
from quantlab_assets.backtest_engine.core.step import benchmark_gap
from quantlab_assets.backtest_engine.core.store import backtest_strategy
from quantlab_assets.common import settings
from quantlab_assets.common.calendar import shift_sessions, trading_days
from quantlab_assets.common.gates import period_label
from quantlab_assets.common.warehouse import connect, read_slice
from quantlab_assets.common.yaml_io import describe_validation_error, read_yaml
from quantlab_assets.data_curator.core.bars import BAR_COLUMNS, most_sessions_stored
from quantlab_assets.data_curator.core.registry import load_registry
from quantlab_assets.data_curator.core.schema import OHLCV
from quantlab_assets.feature_store.core.features import load_preset
from quantlab_assets.feature_store.core.labels import LABELS
from quantlab_assets.feature_store.core.sets import load_feature_sets, read_features
from quantlab_assets.feature_store.core.store import FEATURES_TABLE
from quantlab_assets.strategy_lab.core.construct import universe_filter
from quantlab_assets.strategy_lab.core.gate import book_not_empty, feature_history
from quantlab_assets.strategy_lab.core.spec import EQUAL_WEIGHT, StrategyError, StrategySpec
from quantlab_assets.strategy_lab.core.targets import TargetsResult, compute_targets

SpecLike = StrategySpec | Mapping[str, Any] | str | Path


# ---------------------------------------------------------------------------------------------
# Specs: a file, a dict or a spec, with optional overrides by field path.


def parse_overrides(items: Iterable[str]) -> dict[str, Any]:
    """``["selection.k=20", "costs.fee_bps=2"]`` -> ``{"selection.k": 20, ...}`` (values are YAML)."""
    out = {}
    for item in items:
        path, sep, value = item.partition("=")
        if not sep or not path.strip():
            raise StrategyError(f"override {item!r}: expected FIELD.PATH=VALUE, e.g. selection.k=20")
        # A value typed on a command line, not a file: plain YAML scalar parsing ("20" -> 20, "[a, b]" -> a
        # list). Files go through common.yaml_io.read_yaml (duplicate keys refused, errors naming the file).
        out[path.strip()] = yaml.safe_load(value)
    return out


def apply_overrides(raw: Mapping[str, Any], overrides: Mapping[str, Any], source: str = "spec") -> dict:
    """A deep copy of ``raw`` with each dotted field path set; a path through a non-mapping is an
    error naming it (unknown leaf fields are left to the schema, which names them)."""
    out = yaml.safe_load(yaml.safe_dump(dict(raw)))  # a deep copy as plain YAML values (no file is read)
    for path, value in overrides.items():
        node = out
        parts = path.split(".")
        for i, part in enumerate(parts[:-1]):
            nxt = node.get(part)
            if nxt is None:
                nxt = node[part] = {}
            if not isinstance(nxt, dict):
                raise StrategyError(
                    f"{source}: field '{'.'.join(parts[: i + 1])}' is not a mapping; cannot set '{path}'"
                )
            node = nxt
        node[parts[-1]] = value
    return out


def spec_dict(spec: SpecLike) -> tuple[dict, str]:
    """The raw fields of a spec and where they came from (for error messages)."""
    if isinstance(spec, StrategySpec):
        return spec.model_dump(mode="json"), f"spec {spec.name!r}"
    if isinstance(spec, Mapping):
        return dict(spec), "spec"
    path = Path(spec)
    raw = read_yaml(path, "strategy", StrategyError)
    if not isinstance(raw, dict):
        raise StrategyError(f"{path}: expected a mapping of strategy fields, got {type(raw).__name__}")
    return raw, str(path)


def load_spec(
    spec: SpecLike, overrides: Mapping[str, Any] | Sequence[str] | None = None, known_features: set[str] | None = None
) -> StrategySpec:
    """A validated spec from a file, a dict or a spec, with overrides by field path.

    Validation is the strategy files' own: the same pydantic errors, naming the field.
    """
    if isinstance(overrides, Sequence) and not isinstance(overrides, str | bytes):
        overrides = parse_overrides(overrides)
    raw, source = spec_dict(spec)
    if overrides:
        # A sequence of "path=value" strings was parsed above: what is left is the mapping.
        raw = apply_overrides(raw, cast(Mapping[str, Any], overrides), source)
    try:
        out = StrategySpec.model_validate(raw)
    except ValidationError as exc:
        raise StrategyError(f"{source}: {describe_validation_error(exc)}") from exc
    if known_features is not None:
        unknown = [f for f in out.features_used() if f not in known_features]
        if unknown:
            raise StrategyError(
                f"{source}: unknown feature(s) {unknown}; the feature preset declares {len(known_features)} features"
            )
    return out


# ---------------------------------------------------------------------------------------------
# Data: one short read-only read of everything a range needs.


@dataclass(frozen=True)
class ResearchData:
    """What backtests over [start, end] read: features (date, symbol, features...) from
    ``features_from``, labels over the same dates, bars from the session before ``start``,
    and the registry's symbols and sectors."""

    start: pd.Timestamp
    end: pd.Timestamp
    features: pd.DataFrame
    labels: pd.DataFrame
    bars: pd.DataFrame
    symbols: tuple[str, ...]
    sectors: Mapping[str, str]
    features_from: pd.Timestamp
    db: str = ""
    wide: dict = field(default_factory=dict, compare=False, repr=False)  # cache for sweeps

    def universe(self, spec: StrategySpec) -> list[str]:
        return universe_filter(self.symbols, self.sectors, spec)


def history_start(spec: StrategySpec, start) -> pd.Timestamp:
    """The first session a spec's targets read (a model trains on the sessions before ``start``)."""
    if spec.signal.kind != "model":
        return pd.Timestamp(start)
    m = spec.signal.model
    assert m is not None  # Signal._one_source: kind "model" has a model
    return shift_sessions(start, -(m.train_sessions + m.refit_every))


def read_data(
    con,
    start,
    end,
    registry,
    features: Sequence[str] | None = None,
    history_from=None,
    labels: bool = True,
    preset=None,
) -> ResearchData:
    """Read features (all of the preset's, or ``features``), labels (unless ``labels=False``;
    only model signals use them) and bars for [start, end] on an open connection (read-only is
    enough); ``registry`` is the symbol registry (the universe's source)."""
    symbols = tuple(registry.tickers)
    preset = preset or load_preset(settings.feature_preset_file())
    sets = load_feature_sets(preset, settings.feature_sets_dir())
    # Every feature of the default set unless named; named ones from whichever set holds them.
    cols = list(features) if features is not None else list(preset.feature_names)
    lo = min(pd.Timestamp(history_from) if history_from is not None else pd.Timestamp(start), pd.Timestamp(start))
    try:
        feats, _ = read_features(con, sets, list(dict.fromkeys(cols)), lo, end, symbols, ensure=False)
    except KeyError as exc:
        raise ValueError(str(exc.args[0])) from None
    labels_ = (
        read_slice(con, LABELS, lo, end, symbols=symbols, ensure=False)
        if labels
        else pd.DataFrame(columns=LABELS.column_names)
    )
    bars = read_slice(con, OHLCV, shift_sessions(start, -1), end, columns=BAR_COLUMNS, symbols=symbols, ensure=False)
    return ResearchData(
        pd.Timestamp(start), pd.Timestamp(end), feats, labels_, bars, symbols, dict(registry.sector_of()), lo
    )


def load_data(
    start,
    end,
    features: Sequence[str] | None = None,
    db: str | Path | None = None,
    history_from=None,
    registry: str | Path | None = None,
    labels: bool = True,
) -> ResearchData:
    """``read_data`` on a read-only connection to the warehouse, closed before returning (the
    registry: ``registry``, else ``QUANTLAB_SYMBOLS``, else the packaged demo universe)."""
    path = Path(db) if db else settings.db_path()
    if not path.exists():
        raise FileNotFoundError(
            f"warehouse {path} does not exist: materialize ohlcv and features first (or set QUANTLAB_DB)"
        )
    reg = load_registry(registry or settings.symbols_file())
    con = connect(path, read_only=True)
    try:
        data = read_data(con, start, end, reg, features, history_from, labels)
        refusal = range_refusal(con, path, data)
    finally:
        con.close()
    if refusal:
        raise ValueError(refusal)
    return replace(data, db=str(path))


def _stored_range(con, table: str) -> str:
    """``A..B`` of a stored table's dates ("nothing" when it is empty or absent)."""
    exists = con.execute("SELECT count(*) FROM information_schema.tables WHERE table_name = ?", [table]).fetchone()
    if not exists or not exists[0]:
        return "nothing"
    lo, hi = con.execute(f'SELECT min(date), max(date) FROM "{table}"').fetchone()
    return "nothing" if lo is None else f"{pd.Timestamp(lo).date()}..{pd.Timestamp(hi).date()}"


FILL = "dagster asset materialize -m quantlab_assets.definitions"


def range_refusal(con, path, data: ResearchData) -> str:
    """Why ``data`` cannot serve its range ("" when every session has bars and features): the
    range asked, what the warehouse holds, and the command that fills it."""
    sessions = trading_days(data.start, data.end)
    bars = set(pd.to_datetime(data.bars["date"]).unique())
    feats = set(pd.to_datetime(data.features["date"]).unique())
    missing = [d for d in sessions if d not in bars or d not in feats]
    if not missing:
        return ""
    # The features' look-back (~300 sessions) as far as the partitions reach (QUANTLAB_START_DATE).
    history = max(shift_sessions(data.start, -300).date(), settings.partitions_start())
    before = shift_sessions(data.start, -1).date()
    look_back = (
        f"`{FILL} --select ohlcv --partition-range {history}...{before}` (the features' look-back), then "
        if history <= before
        else ""
    )
    return (
        f"{path}: asked for {data.start.date()}..{data.end.date()}, but {len(missing)} of its {len(sessions)} "
        f"session(s) have no bars or features (first {missing[0].date()}); the warehouse holds ohlcv "
        f"{_stored_range(con, OHLCV.name)} and features {_stored_range(con, FEATURES_TABLE)}. Fill the range "
        f"first: {look_back}`{FILL} --select 'ohlcv*' --partition-range "
        f"{data.start.date()}...{data.end.date()}`; or ask for a range inside the one held"
    )


# ---------------------------------------------------------------------------------------------
# One backtest: targets -> backtest -> KPIs, the assets' own core calls.


@dataclass(frozen=True)
class ResearchResult:
    spec: StrategySpec
    start: pd.Timestamp
    end: pd.Timestamp
    universe: list[str]
    targets: TargetsResult
    equity: pd.DataFrame  # the backtest's equity frame plus benchmark_ret
    positions: pd.DataFrame
    trades: pd.DataFrame
    skipped: pd.DataFrame
    kpis: pd.DataFrame  # KPIs as of every date, since start and trailing 252, with P&L and costs

    @property
    def kpis_last(self) -> dict[str, float]:
        """Since-start KPIs at the last date."""
        last = self.kpis[(self.kpis["scope"] == SINCE_START) & (self.kpis["date"] == self.kpis["date"].max())]
        return {k: float(v) for k, v in last.drop(columns=["date", "scope"]).iloc[0].items()} if len(last) else {}

    @property
    def final_equity(self) -> float:
        return float(self.equity["equity"].iloc[-1]) if len(self.equity) else float("nan")


def decisions_of(targets: pd.DataFrame) -> pd.DataFrame:
    """The rows the backtest trades to: the decided (``rebalance``) rows only.

    Every day's rows carry the held book, but between rebalances the engine must hold shares
    (the weights drift with prices); feeding every day's weights would re-trade to them daily
    and give another equity. A frame without the flag is refused rather than guessed.
    """
    if "rebalance" not in targets.columns:
        raise ValueError(
            "targets need the 'rebalance' column: only the decided rows are orders "
            "(every day's weights would re-balance daily; pass rebalance=True rows "
            "explicitly if that is what you mean)"
        )
    return targets[targets["rebalance"].astype(bool)][["date", "symbol", "weight"]]


def check_range(start, end) -> None:
    """``ValueError`` naming the range when it is reversed or holds no trading session (a backtest
    over it would print "final equity nan" and succeed)."""
    if start is None or end is None:
        return
    lo, hi = pd.Timestamp(start).normalize(), pd.Timestamp(end).normalize()
    if lo > hi:
        raise ValueError(f"--start {lo.date()} is after --end {hi.date()}: the range is reversed")
    if not len(trading_days(lo, hi)):
        raise ValueError(f"{lo.date()}..{hi.date()} holds no trading session (weekend or holidays only)")


def named_benchmark_bars(spec: StrategySpec, bars: pd.DataFrame, registered, start, end) -> pd.DataFrame | None:
    """The bars of the spec's named benchmark symbol (None: the equal-weight universe); a
    ``ValueError`` naming the symbol, the range and what to do when a session of [start, end]
    has none (the backtest asset refuses the same range with the same line)."""
    if spec.benchmark == EQUAL_WEIGHT:
        return None
    mine = bars[bars["symbol"] == spec.benchmark]
    line = benchmark_gap(spec.benchmark, mine, start, end, spec.benchmark in set(registered), spec.name)
    if line:
        raise ValueError(line)
    return mine


def backtest(
    spec: SpecLike,
    start=None,
    end=None,
    *,
    overrides=None,
    data: ResearchData | None = None,
    db: str | Path | None = None,
    kpis: bool = True,
) -> ResearchResult:
    """Backtest a spec over [start, end] (default: the data's range) in memory."""
    spec = load_spec(spec, overrides)
    check_range(start, end)
    if data is None:
        data = load_data(
            start,
            end,
            spec.features_used(),
            db=db,
            history_from=history_start(spec, start),
            labels=spec.signal.kind == "model",
        )
    start = pd.Timestamp(start if start is not None else data.start)
    end = pd.Timestamp(end if end is not None else data.end)
    if start < data.start or end > data.end or history_start(spec, start) < data.features_from:
        raise ValueError(
            f"the data covers {data.start.date()}..{data.end.date()} (features from "
            f"{data.features_from.date()}); asked for {start.date()}..{end.date()}"
        )
    universe = data.universe(spec)
    lo = history_start(spec, start)
    feats = data.features
    if lo > data.features_from or end < data.end:
        feats = feats[(feats["date"] >= lo) & (feats["date"] <= end)]
    model = spec.signal.kind == "model"
    result = compute_targets(
        feats, spec, universe, start, end, prev_weights=None, labels=data.labels if model else None
    )
    first_bar = shift_sessions(start, -1)
    in_range = data.bars[(data.bars["date"] >= first_bar) & (data.bars["date"] <= end)]
    out, equity = backtest_strategy(
        in_range[in_range["symbol"].isin(universe)],
        decisions_of(result.targets),
        start,
        end,
        spec.costs,
        spec.capital,
        holding=holding_of(spec, result.targets),
        benchmark_bars=named_benchmark_bars(spec, in_range, data.symbols, start, end),
    )
    table = pd.DataFrame()
    if kpis:
        table = add_pnl(
            invested_kpi_table(equity[["date", "ret", "turnover"]], equity.set_index("date")["benchmark_ret"]), equity
        )
    return ResearchResult(spec, start, end, universe, result, equity, out.positions, out.trades, out.skipped, table)


def empty_book_reason(result: ResearchResult, db: str | Path | None = None) -> str:
    """Why a backtest held nothing, in numbers: the targets asset's own ``book_not_empty`` line
    (the feature, the sessions its window needs and the sessions stored; or the ``min_names``
    comparison); "" when it held a book."""
    sets = load_feature_sets(load_preset(settings.feature_preset_file()), settings.feature_sets_dir())
    con = connect(Path(db) if db else settings.db_path(), read_only=True)
    try:
        history = feature_history(sets, result.spec, most_sessions_stored(con, result.universe, result.end))
    finally:
        con.close()
    label = period_label(result.start, result.end)
    targets = result.targets
    gate = book_not_empty(targets.targets, result.spec, targets.notes, label, history)
    return "" if gate.passed else gate.description
