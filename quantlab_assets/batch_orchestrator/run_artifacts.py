"""Per-run artifacts written by Dagster itself, for every run however it was launched.

``dagster.yaml`` attaches ``RunArtifactsHandler`` to the Dagster logger of every run
(``python_logs.dagster_handler_config``), so CLI runs, UI runs and scheduled runs all write
``artifacts/runs/<run_id>/pipeline.log`` as they go and, when the run ends,
``summary.json`` (stages, statuses, timings, check results, headline figures) and
``reports/walkthrough.md`` (what ran, what it produced, where to look).
"""

from __future__ import annotations

import json
import logging
import sys
import threading
import time
from pathlib import Path
from typing import TextIO

from quantlab_assets.backtest_engine.core.schema import (
    BACKTEST_EQUITY,
    BACKTEST_KPIS,
    BACKTEST_POSITIONS,
    BACKTEST_STATE,
    BACKTEST_TRADES,
)
from quantlab_assets.common import settings
from quantlab_assets.common.artifacts import run_dir
from quantlab_assets.data_curator.core.schema import INGEST_LOG, OHLCV, REJECTS, SYMBOLS
from quantlab_assets.feature_store.core.schema import FEATURES_TABLE, LABELS
from quantlab_assets.portfolio_supervisor.core.schema import APPROVAL_LOG, APPROVALS, APPROVED_TARGETS, OVERRIDES
from quantlab_assets.strategy_lab.core.schema import TARGETS

_END = {
    "PIPELINE_SUCCESS": "SUCCESS",
    "PIPELINE_FAILURE": "FAILURE",
    "PIPELINE_CANCELED": "CANCELED",
    "RUN_SUCCESS": "SUCCESS",
    "RUN_FAILURE": "FAILURE",
    "RUN_CANCELED": "CANCELED",
}
# Where each stage's rows are, named from the declared schemas (a renamed table cannot be missed).
_TABLES = {
    stage: ", ".join(schemas)
    for stage, schemas in {
        "ohlcv": (OHLCV.name, INGEST_LOG.name, REJECTS.name, SYMBOLS.name),
        "features": (FEATURES_TABLE,),
        "labels": (LABELS.name,),
        "targets": (TARGETS.name,),
        "backtest": (BACKTEST_EQUITY.name, BACKTEST_POSITIONS.name, BACKTEST_TRADES.name, BACKTEST_STATE.name),
        "backtest_kpis": (BACKTEST_KPIS.name,),
        "approvals": (APPROVALS.name, APPROVAL_LOG.name, OVERRIDES.name),
        "approved_targets": (APPROVED_TARGETS.name,),
    }.items()
}


def tables_of(asset: str) -> str:
    """The DuckDB tables behind an asset key: ``ohlcv`` or ``<s>/<s>_approved_targets`` (the
    strategy's name leads the last part, the stage ends it; longest stage first)."""
    last = asset.split("/")[-1]
    if last.startswith(f"{FEATURES_TABLE}_"):  # an extra feature set: asset and table share the name
        return last
    for stage in sorted(_TABLES, key=len, reverse=True):
        if last == stage or last.endswith(f"_{stage}"):
            return _TABLES[stage]
    return ""


# Dagster may build several handler instances in one run process (one per log manager), so
# the run's state lives at module level, not on the instance.
_PER_PARTITION = {"ASSET_MATERIALIZATION", "ASSET_MATERIALIZATION_PLANNED"}
_RUNS: dict[str, dict] = {}
# pipeline.log stays open for the run: a backfill logs one line per asset and partition (75k in
# a 10-year chain), and opening the file per line cost more than writing it.
_LOGS: dict[str, TextIO] = {}
_LOCK = threading.Lock()
_UNWRITABLE: set[str] = set()  # runs whose artifacts folder could not be written (said once)


class RunArtifactsHandler(logging.Handler):
    def __init__(self, level=logging.DEBUG):
        super().__init__(level)

    def emit(self, record: logging.LogRecord) -> None:
        meta = getattr(record, "dagster_meta", None) or {}
        run_id = meta.get("run_id")
        if not run_id:
            return
        try:
            with _LOCK:
                self._handle(run_id, meta, record)
        except OSError as exc:  # a read-only or full artifacts folder: said once per run, in one line
            if run_id not in _UNWRITABLE:
                _UNWRITABLE.add(run_id)
                sys.stderr.write(
                    f"quantlab: run artifacts of {run_id} not written ({exc.filename or settings.artifacts_root()}: "
                    f"{exc.strerror or exc}; {settings.ARTIFACTS}); the run itself continues\n"
                )
        except Exception:  # artifacts must never break a run
            self.handleError(record)

    def _handle(self, run_id: str, meta: dict, record: logging.LogRecord) -> None:
        event = meta.get("dagster_event")
        kind = event.event_type_value if event is not None else "LOG"
        step = meta.get("step_key") or (event.step_key if event is not None else None) or "-"
        stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(record.created))
        message = record.getMessage().replace("\n", " ")[:2000]
        log = _LOGS.get(run_id)
        if log is None or log.closed:  # the folder is looked up once per run, not per record
            folder = run_dir(settings.artifacts_root(), run_id)
            log = _LOGS[run_id] = open(folder / "pipeline.log", "a", encoding="utf-8")  # noqa: SIM115
        log.write(f"{stamp} {record.levelname:7} {step:40} {kind:24} {message}\n")
        if kind not in _PER_PARTITION:  # step and run events reach the file at once
            log.flush()
        run = _RUNS.setdefault(
            run_id,
            {
                "run_id": run_id,
                "job": meta.get("job_name"),
                "started": record.created,
                "steps": {},
                "checks": [],
                "assets": {},
            },
        )
        if event is None:
            return
        data = event.event_specific_data
        if kind == "STEP_START":
            run["steps"][step] = {"status": "STARTED", "started": record.created}
        elif kind in ("STEP_SUCCESS", "STEP_FAILURE"):
            entry = run["steps"].setdefault(step, {"started": record.created})
            entry["status"] = "SUCCESS" if kind == "STEP_SUCCESS" else "FAILURE"
            entry["seconds"] = round(record.created - entry["started"], 3)
            if kind == "STEP_FAILURE" and getattr(data, "error", None) is not None:
                entry["error"] = data.error.message.strip()[:1000]
        elif kind == "ASSET_CHECK_EVALUATION":
            run["checks"].append(
                {
                    "asset": data.asset_key.to_user_string(),
                    "check": data.check_name,
                    "passed": bool(data.passed),
                    "severity": data.severity.value,
                    "description": data.description,
                }
            )
        elif kind == "ASSET_MATERIALIZATION":
            mat = data.materialization
            figures = {
                k: v.value
                for k, v in mat.metadata.items()
                if isinstance(getattr(v, "value", None), (int, float)) and not isinstance(v.value, bool)
            }
            key = mat.asset_key.to_user_string()
            run["assets"][key] = figures  # the headline: the run's last partition's figures
            # A backfill emits one materialization per partition: the rows written are their sum.
            rows = run.setdefault("rows", {})
            rows[key] = rows.get(key, 0) + int(figures.get("dagster/row_count", 0))
        elif kind in _END:
            _LOGS.pop(run_id).close()
            run["status"], run["ended"] = _END[kind], record.created
            self._finish(Path(log.name).parent, _RUNS.pop(run_id))

    def _finish(self, folder: Path, run: dict) -> None:
        run["seconds"] = round(run["ended"] - run["started"], 3)
        run["partitions"] = _partitions(run["run_id"])
        reports = sorted(p.name for p in (folder / "reports").glob("*") if p.is_file())
        summary = {
            "run_id": run["run_id"],
            "job": run["job"],
            "status": run["status"],
            "seconds": run["seconds"],
            "partitions": run["partitions"],
            "stages": [{"step": k, **{f: v for f, v in s.items() if f != "started"}} for k, s in run["steps"].items()],
            "checks": run["checks"],
            "checks_failed": [f"{c['asset']}.{c['check']}" for c in run["checks"] if not c["passed"]],
            "headline": run["assets"],
            "rows_written": run.get("rows", {}),
            "reports": reports,
        }
        (folder / "summary.json").write_text(json.dumps(summary, indent=2, default=str), encoding="utf-8")
        (folder / "reports" / "walkthrough.md").write_text(_walkthrough(summary, folder), encoding="utf-8")


def _partitions(run_id: str) -> str:
    try:
        import dagster as dg

        run = dg.DagsterInstance.get().get_run_by_id(run_id)
        tags = run.tags if run else {}
    except Exception:
        return "-"
    if "dagster/asset_partition_range_start" in tags:
        return f"{tags['dagster/asset_partition_range_start']}...{tags['dagster/asset_partition_range_end']}"
    return tags.get("dagster/partition", "-")


def _walkthrough(summary: dict, folder: Path) -> str:
    failed_steps = [s for s in summary["stages"] if s.get("status") == "FAILURE"]
    lines = [
        f"# Walkthrough of run {summary['run_id']}",
        "",
        f"**{summary['status']}** in {summary['seconds']:.1f} s, job `{summary['job']}`, partitions "
        f"`{summary['partitions']}`.",
        "",
        "## What ran",
        "",
        "| step | status | seconds |",
        "|---|---|---|",
        *[f"| {s['step']} | {s.get('status', '?')} | {s.get('seconds', '')} |" for s in summary["stages"]],
    ]
    if failed_steps:
        lines += ["", "## What failed", ""]
        lines += [f"- `{s['step']}`: {s.get('error', 'see pipeline.log')}" for s in failed_steps]
    if summary["checks_failed"]:
        lines += ["", "Checks that did not pass: " + ", ".join(f"`{c}`" for c in summary["checks_failed"])]
    lines += ["", "## What it produced", ""]
    for asset, figures in summary["headline"].items():
        table = tables_of(asset)
        rows = summary.get("rows_written", {}).get(asset, figures.get("dagster/row_count"))
        lines.append(
            f"- `{asset}`"
            + (f": {int(rows)} rows written" if rows is not None else "")
            + (f" in DuckDB `{table}`" if table else "")
        )
    lines += [
        "",
        "## Where to look",
        "",
        f"- this folder: `{folder}`",
        "- `summary.json`: stages, timings, every check result, headline figures",
        "- `pipeline.log`: every event of the run",
        *[f"- `reports/{r}`" for r in summary["reports"] if r != "walkthrough.md"],
        "- the Dagster UI (`dagster dev`): the run, its lineage, check results and metadata",
        "- `python -m quantlab_assets.batch_orchestrator.cli runs`: run history",
    ]
    return "\n".join(lines) + "\n"
