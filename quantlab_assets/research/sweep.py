"""Sweeps: one base strategy, a grid of field paths -> values, and in-sample / out-of-sample
periods (one split or walk-forward folds). Every variant runs on the same loaded arrays with the
cores the assets call (``book_arrays`` for the targets, the engine's ``simulate`` kernel for the
book); the result is one row per variant with its in-sample and out-of-sample KPIs, turnover and
costs, and the selection-bias statistics of ``overfitting``.

A sweep file (``sweeps/<name>.yaml``)::

    name: momentum_grid
    strategy: strategies/momentum_topk.yaml      # a file (from the project root) or a mapping
    grid:
      selection.k: [5, 10, 20]
      signal.feature: [mom_12_1, ret_60]
    in_sample: {start: 2015-01-02, end: 2020-12-31}
    out_of_sample: {start: 2021-01-04, end: 2024-12-31}
    # or, instead of the two periods:
    # walk_forward: {start: 2015-01-02, end: 2024-12-31, folds: 4}

Walk-forward cuts [start, end] into folds + 1 equal blocks of sessions; fold i is in-sample on
blocks 0..i (expanding) and out-of-sample on block i+1. A variant runs once over the whole
range (its parameters are what the in-sample period selects; nothing is fitted), and each
period's KPIs are those of its sessions' returns.
"""

from __future__ import annotations

import itertools
import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml
from pydantic import Field, ValidationError, model_validator

from quantlab_assets.backtest_engine.core.engine import BacktestState, simulate
from quantlab_assets.backtest_engine.core.holding import keep_array
from quantlab_assets.backtest_engine.core.kpis import (
    SINCE_START,
    annual_volatility,
    cagr,
    max_drawdown,
    sharpe_ratio,
    total_return,
)
from quantlab_assets.common import settings
from quantlab_assets.common.calendar import trading_days
from quantlab_assets.common.versions import content_hash
from quantlab_assets.common.warehouse import Column, TableSchema, append_rows_in_transaction, ensure_table, transaction
from quantlab_assets.common.yaml_io import FrozenModel, describe_validation_error, read_yaml
from quantlab_assets.data_curator.core.bars import adjusted_open
from quantlab_assets.research.api import ResearchData, apply_overrides, history_start, load_data, spec_dict
from quantlab_assets.research.experiments import data_version, experiment_row, record
from quantlab_assets.research.overfitting import selection_statistics
from quantlab_assets.strategy_lab.core.spec import StrategyError, StrategySpec
from quantlab_assets.strategy_lab.core.targets import book_arrays, model_predictions, wide_features

SWEEPS_DIR = settings.DEFAULT_SWEEPS
KPIS: dict[str, Callable[[np.ndarray], float]] = {
    "sharpe": sharpe_ratio,
    "cagr": cagr,
    "volatility": annual_volatility,
    "max_drawdown": max_drawdown,
    "total_return": total_return,
}

EXPERIMENT_RESULTS = TableSchema(
    name="experiment_results",
    date_column="recorded_at",
    description="One row per sweep variant: parameters, in-sample and out-of-sample KPIs, turnover, costs.",
    columns=(
        Column("sweep", "VARCHAR", False),
        Column("variant", "VARCHAR", False),
        Column("params", "VARCHAR", False, "the grid values of this variant, JSON"),
        Column("spec_hash", "VARCHAR", False, "sha256 of the variant's full spec, 12 hex digits"),
        *(
            Column(f"{p}_{k}", "DOUBLE", description=f"{k}, {'in' if p == 'is' else 'out of'} sample (mean over folds)")
            for p in ("is", "oos")
            for k in KPIS
        ),
        Column("turnover", "DOUBLE", description="mean daily turnover over the whole range"),
        Column("costs", "DOUBLE", description="costs paid over the whole range, in currency"),
        Column("is_rank", "INTEGER", False, "rank by in-sample Sharpe (1 = best)"),
        Column("folds", "VARCHAR", False, "per fold: periods and Sharpe ratios, JSON"),
        Column("experiment_id", "VARCHAR", False),
        Column("recorded_at", "TIMESTAMP", False),
    ),
)


class SweepError(ValueError):
    """A sweep file is invalid; the message names the file and the field."""


class _Model(FrozenModel):
    pass


class Period(_Model):
    start: date
    end: date

    @model_validator(mode="after")
    def _ordered(self) -> Period:
        if self.end < self.start:
            raise ValueError(f"end {self.end} is before start {self.start}")
        return self


class WalkForward(Period):
    folds: int = Field(ge=1, le=50)


class SweepFile(_Model):
    name: str = Field(pattern=r"^[a-z][a-z0-9_]{0,47}$")
    description: str = ""
    strategy: str | dict
    grid: dict[str, list[Any]]
    in_sample: Period | None = None
    out_of_sample: Period | None = None
    walk_forward: WalkForward | None = None

    @model_validator(mode="after")
    def _periods(self) -> SweepFile:
        if not self.grid:
            raise ValueError("grid: empty; give at least one field path with values")
        for path, values in self.grid.items():
            if not values:
                raise ValueError(f"grid.{path}: no values")
        split = self.in_sample is not None or self.out_of_sample is not None
        if split == (self.walk_forward is not None):
            raise ValueError("give either in_sample and out_of_sample, or walk_forward")
        if split:
            if self.in_sample is None or self.out_of_sample is None:
                raise ValueError("in_sample and out_of_sample go together")
            a, b = self.in_sample, self.out_of_sample
            if a.start <= b.end and b.start <= a.end:
                raise ValueError(f"out_of_sample {b.start}..{b.end} overlaps in_sample {a.start}..{a.end}")
        return self


@dataclass(frozen=True)
class Fold:
    in_sample: tuple[pd.Timestamp, pd.Timestamp]
    out_of_sample: tuple[pd.Timestamp, pd.Timestamp]


@dataclass(frozen=True)
class Variant:
    id: str
    params: dict
    spec: StrategySpec
    raw: dict  # the strategy fields with the overrides applied (what ``promote`` writes)

    @property
    def spec_hash(self) -> str:
        return content_hash(self.spec.version_json())


@dataclass(frozen=True)
class Sweep:
    name: str
    source: str
    description: str
    variants: list[Variant]
    folds: list[Fold]

    @property
    def start(self) -> pd.Timestamp:
        return min(f.in_sample[0] for f in self.folds)

    @property
    def end(self) -> pd.Timestamp:
        return max(f.out_of_sample[1] for f in self.folds)


def _folds(cfg: SweepFile) -> list[Fold]:
    if cfg.walk_forward is None:
        a, b = cfg.in_sample, cfg.out_of_sample
        assert a is not None and b is not None  # SweepFile._periods: no walk_forward means both periods
        return [Fold((pd.Timestamp(a.start), pd.Timestamp(a.end)), (pd.Timestamp(b.start), pd.Timestamp(b.end)))]
    wf = cfg.walk_forward
    days = trading_days(wf.start, wf.end)
    blocks = np.array_split(np.arange(len(days)), wf.folds + 1)
    if min(len(b) for b in blocks) < 2:
        raise ValueError(f"walk_forward: {len(days)} sessions are too few for {wf.folds} folds")
    return [
        Fold((days[0], days[blocks[i][-1]]), (days[blocks[i + 1][0]], days[blocks[i + 1][-1]])) for i in range(wf.folds)
    ]


def find_sweep(name_or_path: str | Path) -> Path:
    path = Path(name_or_path)
    if path.exists() or path.suffix in (".yaml", ".yml"):
        return path
    return settings.sweeps_dir() / f"{name_or_path}.yaml"  # QUANTLAB_SWEEPS, like the sweep assets


def check_size(path: Path, variants: int, cap: int | None = None) -> None:
    """``SweepError`` when the grid's size is above the cap (``QUANTLAB_SWEEP_MAX_VARIANTS``),
    counted before a single variant is built."""
    cap = settings.sweep_max_variants() if cap is None else cap
    if variants > cap:
        raise SweepError(
            f"{path}: the grid has {variants:,} variants, above the cap of {cap:,} "
            f"({settings.SWEEP_MAX_VARIANTS}): narrow the grid or raise the cap"
        )


def load_sweep(path: str | Path, max_variants: int | None = None) -> Sweep:
    """Load and validate a sweep file and every variant of its grid; errors name the file and
    the field (an unknown field path is the strategy schema's error for that path). A grid above
    ``max_variants`` (default ``QUANTLAB_SWEEP_MAX_VARIANTS``) is refused before it is built."""
    path = Path(path)
    raw = read_yaml(path, "sweep", SweepError)
    if not isinstance(raw, dict):
        raise SweepError(f"{path}: expected a mapping of sweep fields, got {type(raw).__name__}")
    try:
        cfg = SweepFile.model_validate(raw)
        folds = _folds(cfg)
    except ValidationError as exc:
        raise SweepError(f"{path}: {describe_validation_error(exc)}") from exc
    except ValueError as exc:
        raise SweepError(f"{path}: {exc}") from exc
    if isinstance(cfg.strategy, str):
        base_path = Path(cfg.strategy)
        base_path = base_path if base_path.is_absolute() else settings.PROJECT_ROOT / base_path
        try:
            base, _ = spec_dict(base_path)
        except StrategyError as exc:
            raise SweepError(f"{path}: field 'strategy': {exc}") from exc
    else:
        base = dict(cfg.strategy)
    paths = list(cfg.grid)
    check_size(path, math.prod(len(cfg.grid[p]) for p in paths), max_variants)
    variants = []
    for i, values in enumerate(itertools.product(*(cfg.grid[p] for p in paths))):
        params = dict(zip(paths, values))
        try:
            fields = apply_overrides(base, params, str(path))
            spec = StrategySpec.model_validate(fields)
        except ValidationError as exc:
            raise SweepError(f"{path}: grid {params}: {describe_validation_error(exc)}") from exc
        except StrategyError as exc:
            raise SweepError(f"{path}: grid {params}: {exc}") from exc
        variants.append(Variant(f"v{i:03d}", params, spec, fields))
    return Sweep(cfg.name, str(path), cfg.description, variants, folds)


# ---------------------------------------------------------------------------------------------
# Running: the variants share the loaded arrays.


@dataclass
class SharedArrays:
    """Prices and features as (sessions x registry symbols) arrays, built once per sweep."""

    data: ResearchData
    sessions: pd.DatetimeIndex
    symbols: list[str]
    open_: np.ndarray
    close: np.ndarray
    features: dict[str, np.ndarray] = field(default_factory=dict)

    @classmethod
    def build(cls, data: ResearchData, start, end) -> SharedArrays:
        bars = data.bars[(data.bars["date"] >= pd.Timestamp(start)) & (data.bars["date"] <= pd.Timestamp(end))]
        sessions = trading_days(start, end)
        have = pd.DatetimeIndex(np.unique(bars["date"].to_numpy()))
        if not np.array_equal(have.to_numpy(), sessions.to_numpy()):
            raise ValueError(
                f"bars miss {len(sessions.difference(have))} session(s) in {pd.Timestamp(start).date()}.."
                f"{pd.Timestamp(end).date()}; sweeps need every session (use research.backtest)"
            )
        symbols = sorted(data.symbols)
        rows = sessions.get_indexer(bars["date"])
        cols = pd.Index(symbols).get_indexer(bars["symbol"])
        ok = cols >= 0
        open_ = np.full((len(sessions), len(symbols)), np.nan)
        close = np.full_like(open_, np.nan)
        open_[rows[ok], cols[ok]] = adjusted_open(bars)[ok]  # the engine's fill price
        close[rows[ok], cols[ok]] = bars["adj_close"].to_numpy(np.float64)[ok]
        return cls(data, sessions, symbols, open_, close)

    def feature(self, name: str) -> np.ndarray:
        if name not in self.features:
            self.features.update(wide_features(self.data.features, [name], self.sessions, self.symbols))
        return self.features[name]


def run_variant(shared: SharedArrays, spec: StrategySpec) -> dict[str, np.ndarray]:
    """Daily ret, turnover and costs of one spec over the shared sessions: the targets' and the
    backtest's cores on the shared arrays (equal to ``research.backtest``, a test holds it)."""
    universe = shared.data.universe(spec)
    cols = pd.Index(shared.symbols).get_indexer(universe)
    wide = {f: shared.feature(f)[:, cols] for f in spec.features_used()}
    wf = model_predictions(shared.data.features, shared.data.labels, spec, shared.sessions, wide, universe)
    predictions = wf.scores if wf is not None else None
    mask, _, book, _, _, _ = book_arrays(wide, spec, shared.sessions, np.zeros(len(cols)), predictions=predictions)
    decisions = np.where(mask[:, None], book, np.nan)
    if spec.costs.max_participation is not None:
        # The shared arrays carry no volume; a capped variant would silently trade uncapped.
        raise SweepError(
            f"strategy '{spec.name}': field 'costs.max_participation' is not supported in sweeps "
            "(run the variant with `quantlab backtest`)"
        )
    _, res = simulate(
        BacktestState.initial(len(cols), spec.capital),
        shared.open_[:, cols],
        shared.close[:, cols],
        decisions,
        spec.costs.fee_bps,
        spec.costs.slippage_bps,
        borrow_bps=spec.costs.borrow_bps,
        cash_interest_bps=spec.costs.cash_interest_bps,
        keep=keep_array(book) if spec.holding.kind == "until_change" else None,
        band=spec.holding.band,
    )
    return {"ret": res.ret, "turnover": res.turnover, "costs": res.costs}


def period_kpis(ret: np.ndarray, sessions: pd.DatetimeIndex, period) -> dict[str, np.ndarray]:
    """KPIs of each column of ``ret`` (sessions x variants) over the sessions in ``period``."""
    rows = (sessions >= period[0]) & (sessions <= period[1])
    # One contiguous column at a time: a 2-D reduction sums in another order (last bits differ
    # from the same variant's KPIs computed alone).
    cols = [np.ascontiguousarray(ret[rows, j]) for j in range(ret.shape[1])]
    return {k: np.array([float(f(c)) for c in cols]) for k, f in KPIS.items()}


@dataclass(frozen=True)
class SweepResult:
    results: pd.DataFrame  # EXPERIMENT_RESULTS columns but experiment_id and recorded_at
    statistics: list[dict]  # per fold: best variant, DSR, SR0, rank correlation
    returns: pd.DataFrame  # daily returns, sessions x variants


def estimate_line(sweep: Sweep, sessions: int, first_s: float) -> str:
    """What a sweep is about to cost: its size and, from the first variant's time, the rest's."""
    rest = first_s * (len(sweep.variants) - 1)
    return (
        f"sweep {sweep.name}: {len(sweep.variants):,} variants x {sessions:,} sessions; the first took "
        f"{first_s:.2f} s, the other {len(sweep.variants) - 1:,} about {rest:,.0f} s more"
    )


def run_sweep(sweep: Sweep, data: ResearchData, say: Callable[[str], None] | None = None) -> SweepResult:
    """Every variant over the sweep's whole range on the shared arrays. ``say`` gets one line with
    the size and the estimated time of the rest, after the first variant and before the others."""
    if any(history_start(v.spec, sweep.start) < data.features_from for v in sweep.variants):
        raise ValueError("the data do not reach back to a model variant's training window")
    shared = SharedArrays.build(data, sweep.start, sweep.end)
    runs: dict[str, dict[str, np.ndarray]] = {}
    for n, v in enumerate(sweep.variants):
        t0 = time.perf_counter()
        runs[v.id] = run_variant(shared, v.spec)
        if n == 0 and say is not None:
            say(estimate_line(sweep, len(shared.sessions), time.perf_counter() - t0))
    ids = [v.id for v in sweep.variants]
    ret = np.column_stack([runs[i]["ret"] for i in ids])
    per_fold, stats = [], []
    for fold in sweep.folds:
        is_k = period_kpis(ret, shared.sessions, fold.in_sample)
        oos_k = period_kpis(ret, shared.sessions, fold.out_of_sample)
        per_fold.append((is_k, oos_k))
        rows = (shared.sessions >= fold.in_sample[0]) & (shared.sessions <= fold.in_sample[1])
        st = selection_statistics(
            {i: ret[rows, j] for j, i in enumerate(ids)}, {i: float(oos_k["sharpe"][j]) for j, i in enumerate(ids)}
        )
        best = ids.index(st["best"]) if st["best"] else None
        stats.append(
            {
                "in_sample": [str(fold.in_sample[0].date()), str(fold.in_sample[1].date())],
                "out_of_sample": [str(fold.out_of_sample[0].date()), str(fold.out_of_sample[1].date())],
                **st,
                "best_oos_sharpe": float(oos_k["sharpe"][best]) if best is not None else float("nan"),
            }
        )
    frame = pd.DataFrame(
        {
            "sweep": sweep.name,
            "variant": ids,
            "params": [json.dumps(v.params, sort_keys=True, default=str) for v in sweep.variants],
            "spec_hash": [v.spec_hash for v in sweep.variants],
        }
    )
    for prefix, pick in (("is", 0), ("oos", 1)):
        for k in KPIS:
            frame[f"{prefix}_{k}"] = (
                np.nanmean(np.vstack([f[pick][k] for f in per_fold]), axis=0)
                if len(per_fold) > 1
                else per_fold[0][pick][k]
            )
    frame["turnover"] = [float(np.nanmean(runs[i]["turnover"])) for i in ids]
    frame["costs"] = [float(np.nansum(runs[i]["costs"])) for i in ids]
    frame["is_rank"] = frame["is_sharpe"].rank(ascending=False, method="first", na_option="bottom").astype(int)
    frame["folds"] = [
        json.dumps(
            [
                {"in_sample_sharpe": float(f[0]["sharpe"][j]), "out_of_sample_sharpe": float(f[1]["sharpe"][j])}
                for f in per_fold
            ]
        )
        for j in range(len(ids))
    ]
    return SweepResult(frame, stats, pd.DataFrame(ret, index=shared.sessions, columns=ids))


def sweep_features(sweep: Sweep) -> list[str]:
    return list(dict.fromkeys(f for v in sweep.variants for f in v.spec.features_used()))


def sweep_history_from(sweep: Sweep) -> pd.Timestamp:
    return min(history_start(v.spec, sweep.start) for v in sweep.variants)


def run_sweep_from_warehouse(sweep: Sweep, db=None, say: Callable[[str], None] | None = None) -> SweepResult:
    data = load_data(
        sweep.start,
        sweep.end,
        sweep_features(sweep),
        db=db,
        history_from=sweep_history_from(sweep),
        labels=any(v.spec.signal.kind == "model" for v in sweep.variants),
    )
    return run_sweep(sweep, data, say)


# ---------------------------------------------------------------------------------------------
# Reporting and promotion.


def _fmt(v) -> str:
    return "n/a" if v is None or (isinstance(v, float) and not np.isfinite(v)) else f"{v:.3f}"


def leaderboard_markdown(sweep: Sweep, result: SweepResult, top: int = 20) -> str:
    r = result.results.sort_values("is_rank")
    lines = [
        f"## Sweep {sweep.name}: {len(r)} variants, {sweep.start.date()} … {sweep.end.date()}",
        "",
        sweep.description or "",
        "",
    ]
    for i, st in enumerate(result.statistics):
        lines.append(
            f"- fold {i + 1}: in-sample {st['in_sample'][0]}…{st['in_sample'][1]}, out-of-sample "
            f"{st['out_of_sample'][0]}…{st['out_of_sample'][1]}: best in-sample **{st['best']}**, its out-of-sample "
            f"Sharpe {_fmt(st['best_oos_sharpe'])}; rank correlation of in- vs out-of-sample Sharpe "
            f"**{_fmt(st['rank_corr'])}**; deflated Sharpe ratio **{_fmt(st['dsr'])}** (probability the best "
            f"in-sample Sharpe beats the best of {st.get('trials', len(r))} unskilled trials: the distinct "
            f"in-sample return series among the {len(r)} variants, identical ones counted once; "
            f"SR0 {_fmt(st['sr0'])} per day; "
            "Bailey & López de Prado 2014)"
        )
    lines += [
        "",
        "| rank | variant | params | IS Sharpe | OOS Sharpe | IS CAGR | OOS CAGR | OOS max DD | turnover | costs |",
        "|---:|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in r.head(top).itertuples():
        lines.append(
            f"| {row.is_rank} | {row.variant} | `{row.params}` | {_fmt(row.is_sharpe)} | {_fmt(row.oos_sharpe)} | "
            f"{_fmt(row.is_cagr)} | {_fmt(row.oos_cagr)} | {_fmt(row.oos_max_drawdown)} | "
            f"{_fmt(row.turnover)} | {row.costs:,.0f} |"
        )
    return "\n".join(lines) + "\n"


def promote(sweep: Sweep, variant_id: str, out: Path | None = None) -> Path:
    """Write a variant as a strategy file named ``<base>_<variant>`` (never over an existing file)."""
    by_id = {v.id: v for v in sweep.variants}
    if variant_id not in by_id:
        raise KeyError(
            f"{sweep.source}: no variant {variant_id!r}; the sweep has {sweep.variants[0].id}..{sweep.variants[-1].id}"
        )
    v = by_id[variant_id]
    name = f"{v.spec.name}_{variant_id}"[:48]
    out = out or settings.strategies_dir() / f"{name}.yaml"  # QUANTLAB_STRATEGIES: where the assets load from
    name = Path(out).stem
    if Path(out).exists():
        raise FileExistsError(f"{out} exists; choose another --out")
    fields = {**v.raw, "name": name}
    StrategySpec.model_validate(fields)
    header = (
        f"# Promoted from sweep {sweep.name} ({sweep.source}), variant {variant_id}: "
        f"{json.dumps(v.params, default=str)}\n"
    )
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    Path(out).write_text(header + yaml.safe_dump(fields, sort_keys=False), encoding="utf-8")
    return Path(out)


def results_for_storage(result: SweepResult, experiment_id: str, now: pd.Timestamp) -> pd.DataFrame:
    return result.results.assign(experiment_id=experiment_id, recorded_at=now)[EXPERIMENT_RESULTS.column_names]


def store_sweep(con, sweep: Sweep, result: SweepResult, data: ResearchData) -> tuple[str, pd.DataFrame]:
    """Replace the sweep's rows of ``experiment_results`` (one transaction) and record the run in
    ``experiments``; returns (experiment id, the stored rows)."""
    row = experiment_row(
        "sweep", sweep.name, sweep_record(sweep), sweep.start, sweep.end, data_version(data), sweep_results(result)
    )
    exp_id = str(row["id"].iloc[0])
    stored = results_for_storage(result, exp_id, row["recorded_at"].iloc[0])
    ensure_table(con, EXPERIMENT_RESULTS)
    with transaction(con):
        con.execute(f'DELETE FROM "{EXPERIMENT_RESULTS.name}" WHERE "sweep" = ?', [sweep.name])
        append_rows_in_transaction(con, EXPERIMENT_RESULTS, stored)
    con.unregister("_rows")
    record(con, row)
    return exp_id, stored


def sweep_record(sweep: Sweep) -> dict:
    """What ``experiments`` stores to run a sweep again (not the file: it may change)."""
    return {
        "name": sweep.name,
        "source": sweep.source,
        "description": sweep.description,
        "variants": [{"id": v.id, "params": v.params, "fields": v.raw} for v in sweep.variants],
        "folds": [
            {
                "in_sample": [str(f.in_sample[0].date()), str(f.in_sample[1].date())],
                "out_of_sample": [str(f.out_of_sample[0].date()), str(f.out_of_sample[1].date())],
            }
            for f in sweep.folds
        ],
    }


def sweep_from_record(record: dict) -> Sweep:
    variants = [
        Variant(v["id"], v["params"], StrategySpec.model_validate(v["fields"]), v["fields"]) for v in record["variants"]
    ]
    folds = [
        Fold(tuple(map(pd.Timestamp, f["in_sample"])), tuple(map(pd.Timestamp, f["out_of_sample"])))
        for f in record["folds"]
    ]
    return Sweep(record["name"], record["source"], record.get("description", ""), variants, folds)


def sweep_results(result: SweepResult) -> dict:
    """Headline numbers for ``experiments``: per variant IS/OOS Sharpe, and the statistics."""
    per = {
        r.variant: {"is_sharpe": float(r.is_sharpe), "oos_sharpe": float(r.oos_sharpe)}
        for r in result.results.itertuples()
    }
    return {"variants": per, "statistics": result.statistics}


@dataclass(frozen=True)
class Evaluation:
    """One variant's daily returns, turnover and costs, and its since-start KPIs at the end."""

    spec: StrategySpec
    sessions: pd.DatetimeIndex
    ret: np.ndarray
    turnover: np.ndarray
    costs: np.ndarray
    kpis: dict

    @property
    def equity(self) -> pd.Series:
        """The book's value after each close, indexed by session (``ret`` compounded from capital)."""
        return pd.Series(self.spec.capital * np.cumprod(1.0 + self.ret), index=self.sessions, name="equity")


def evaluate(spec, data: ResearchData, overrides=None) -> Evaluation:
    """The fast path of a notebook loop: targets and the engine's kernel on the arrays shared by
    every call on ``data`` (built once), then the KPI table; no frames of positions or trades.
    The returns equal ``research.backtest``'s equity ``ret`` over the data's range bit for bit."""
    from quantlab_assets.backtest_engine.core.kpis import invested_kpi_table
    from quantlab_assets.research.api import load_spec

    spec = load_spec(spec, overrides)
    shared = data.wide.get("shared")
    if shared is None:
        shared = data.wide["shared"] = SharedArrays.build(data, data.start, data.end)
    run = run_variant(shared, spec)
    table = invested_kpi_table(pd.DataFrame({"date": shared.sessions, "ret": run["ret"], "turnover": run["turnover"]}))
    last = table[table["scope"] == SINCE_START].iloc[-1]
    return Evaluation(
        spec,
        shared.sessions,
        run["ret"],
        run["turnover"],
        run["costs"],
        {k: float(v) for k, v in last.drop(["date", "scope"]).items()},
    )
