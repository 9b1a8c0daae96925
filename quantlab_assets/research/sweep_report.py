"""What a person does with a sweep's result: read its leaderboard (markdown: per fold the best
in-sample variant, its out-of-sample Sharpe, the rank correlation and the deflated Sharpe ratio;
then the variants by in-sample rank) and promote one variant to a strategy file.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import yaml

from quantlab_assets.common import settings
from quantlab_assets.research.sweep_run import SweepResult
from quantlab_assets.research.sweep_spec import Sweep
from quantlab_assets.strategy_lab.core.spec import StrategySpec


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
