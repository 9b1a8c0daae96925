"""The ``experiments`` table: every recorded research backtest and sweep with what it takes to
run it again (the spec, the range), what it ran on (code version, warehouse data version) and
what it gave; ``research.rerun`` runs it again and says whether the numbers still match."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from quantlab_assets.common.versions import content_hash
from quantlab_assets.common.warehouse import append_rows, read_slice
from quantlab_assets.research.api import ResearchData, ResearchResult
from quantlab_assets.research.schema import EXPERIMENTS

PACKAGE = Path(__file__).resolve().parents[1]
# The code a result depends on: the cores of the targets, the backtest and the research layer.
CODE_DIRS = ("strategy_lab/core", "backtest_engine/core", "research")


def code_version() -> str:
    paths = [path for folder in CODE_DIRS for path in sorted((PACKAGE / folder).glob("*.py"))]
    return content_hash(*(part for path in paths for part in (path.name, path.read_bytes())))


def data_version(data: ResearchData) -> str:
    """Content hash of the bars and features a run read (order-independent within each)."""
    parts = [
        int(pd.util.hash_pandas_object(frame, index=False).sum()) if len(frame) else 0
        for frame in (data.bars, data.features)
    ]
    return content_hash(json.dumps(parts))


def backtest_results(out: ResearchResult) -> dict:
    return {"final_equity": out.final_equity, "trades": len(out.trades), **out.kpis_last}


@dataclass(frozen=True)
class Experiment:
    id: str
    kind: str
    name: str
    spec: dict
    start: pd.Timestamp
    end: pd.Timestamp
    data_version: str
    code_version: str
    results: dict


def experiment_row(
    kind: str, name: str, spec: dict, start, end, data_ver: str, results: dict, now: pd.Timestamp | None = None
) -> pd.DataFrame:
    now = pd.Timestamp.now(tz="UTC").tz_localize(None) if now is None else now
    spec_json = json.dumps(spec, sort_keys=True, default=str)
    exp_id = f"{kind[:2]}-{now:%Y%m%d%H%M%S}-{content_hash(spec_json + str(now))[:6]}"
    return pd.DataFrame(
        [
            {
                "id": exp_id,
                "kind": kind,
                "name": name,
                "spec": spec_json,
                "spec_hash": content_hash(spec_json),
                "code_version": code_version(),
                "start": pd.Timestamp(start),
                "end": pd.Timestamp(end),
                "data_version": data_ver,
                "results": json.dumps(results, sort_keys=True),
                "recorded_at": now,
            }
        ]
    )


def model_rows(name: str, model, wf, data_ver: str, now: pd.Timestamp | None = None) -> pd.DataFrame:
    """One ``kind = model`` row per trained model of a walk-forward (``strategy_lab.core.walk_forward``):
    its parameters and refit date (spec), training range (start, end), version, rows and
    feature importance (results)."""
    now = pd.Timestamp.now(tz="UTC").tz_localize(None) if now is None else now
    rows = [
        experiment_row(
            "model",
            name,
            {**model.model_dump(mode="json"), "refit_date": str(r.refit.date())},
            r.train_start,
            r.train_end,
            data_ver,
            {"model_version": r.model.version, "rows": r.model.rows, "importance": r.model.importance},
            now,
        )
        for r in wf.refits
        if r.model is not None
    ]
    return pd.concat(rows, ignore_index=True) if rows else pd.DataFrame(columns=EXPERIMENTS.column_names)


def record(con, row: pd.DataFrame) -> str:
    append_rows(con, EXPERIMENTS, row)
    return str(row["id"].iloc[0])


def results_line(kind: str, results_json: str) -> str:
    """An experiment's headline result for a listing: a backtest's Sharpe, return and drawdown; a
    sweep's best in-sample variant, its out-of-sample Sharpe and the deflated Sharpe ratio."""
    try:
        res = json.loads(results_json) if isinstance(results_json, str) else {}
    except ValueError:
        return "results unreadable"

    def f(v, fmt: str) -> str:
        return "n/a" if not isinstance(v, (int, float)) or v != v else fmt.format(v)

    if kind == "sweep":
        st = (res.get("statistics") or [{}])[0]
        n = len(res.get("variants") or {})
        return (
            f"{n} variants, best {st.get('best') or 'n/a'}: OOS Sharpe {f(st.get('best_oos_sharpe'), '{:.2f}')}, "
            f"DSR {f(st.get('dsr'), '{:.2f}')} over {st.get('trials', n)} distinct trials"
        )
    return (
        f"Sharpe {f(res.get('sharpe_ratio'), '{:.2f}')}, return {f(res.get('total_return'), '{:.2%}')}, "
        f"max DD {f(res.get('max_drawdown'), '{:.2%}')}"
    )


def list_experiments(con) -> pd.DataFrame:
    rows = (
        read_slice(con, EXPERIMENTS, "1990-01-01", "2100-12-31", ensure=False)
        if "experiments" in {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
        else pd.DataFrame(columns=EXPERIMENTS.column_names)
    )
    return rows.sort_values("recorded_at").reset_index(drop=True)


def get(con, exp_id: str) -> Experiment:
    rows = list_experiments(con)
    hit = rows[rows["id"] == exp_id]
    if hit.empty:
        raise KeyError(f"no experiment {exp_id!r}; `quantlab experiments` lists them")
    r = hit.iloc[0]
    return Experiment(
        r["id"],
        r["kind"],
        r["name"],
        json.loads(r["spec"]),
        pd.Timestamp(r["start"]),
        pd.Timestamp(r["end"]),
        r["data_version"],
        r["code_version"],
        json.loads(r["results"]),
    )


def _same(a, b) -> bool:
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return a == b


def differences(old: dict, new: dict, prefix: str = "") -> list[str]:
    out = []
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key), new.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            out += differences(a, b, f"{prefix}{key}.")
        elif not _same(a, b):
            out.append(f"{prefix}{key}: recorded {a!r}, now {b!r}")
    return out
