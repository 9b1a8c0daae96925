"""``quality_report.md``: the gate's verdict for a range, readable without the UI."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from quantlab_assets.common.artifacts import markdown_table
from quantlab_assets.data_curator.core.gate import GateResult


def quality_report_markdown(
    start,
    end,
    universe: str,
    n_symbols: int,
    results: Sequence[GateResult],
    ingest_log: pd.DataFrame | None = None,
) -> str:
    verdict = "PASSED" if all(r.passed or not r.blocking for r in results) else "FAILED"
    lines = [
        f"# Quality report: ohlcv {pd.Timestamp(start).date()} … {pd.Timestamp(end).date()}",
        "",
        f"Universe **{universe}** ({n_symbols} symbols). Gate verdict: **{verdict}**.",
        "",
        "| check | blocking | result | detail |",
        "|---|---|---|---|",
    ]
    for r in results:
        status = "pass" if r.passed else ("FAIL" if r.blocking else "warn")
        lines.append(f"| {r.name} | {'yes' if r.blocking else 'no'} | {status} | {r.description.replace('|', '/')} |")
    if ingest_log is not None and len(ingest_log):
        ok = ingest_log[ingest_log["status"] == "ok"]
        lines += [
            "",
            "## Ingest",
            "",
            f"- source: {', '.join(sorted(ingest_log['source'].unique()))}",
            f"- symbols fetched: {len(ok)} of {len(ingest_log)}",
            f"- rows: {int(ingest_log['rows'].sum())}; API calls: {int(ingest_log['api_calls'].sum())}; "
            f"retries: {int(ingest_log['retries'].sum())}",
            f"- latency: total {ingest_log['latency_s'].sum():.2f} s, worst symbol "
            f"{ingest_log['latency_s'].max():.2f} s",
        ]
        failed = ingest_log[ingest_log["status"] != "ok"][["symbol", "error"]]
        if len(failed):
            lines += ["", "### Failed symbols", "", markdown_table(failed)]
    for r in results:
        if not r.passed and len(r.offending):
            lines += ["", f"## {r.name}: offending rows", "", markdown_table(r.offending)]
    return "\n".join(lines) + "\n"
