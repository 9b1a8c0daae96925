"""What a person reads of a partition: ``execution_summary.md`` and each day's figures."""

from __future__ import annotations

import pandas as pd

from quantlab_assets.common.artifacts import markdown_table
from quantlab_assets.execution.core.compare import DRIFT_PARTS


def per_day(book: pd.DataFrame) -> dict[pd.Timestamp, dict]:
    """Each session's own figures for its partition: paper equity beside the reference's, the
    drift, open orders, fills, breaks and the kill switch."""
    out = {}
    for row in book.itertuples(index=False):
        out[pd.Timestamp(row.date)] = {
            "paper_equity": float(row.equity),
            "backtest_equity": float(row.reference_equity),
            "drift": float(row.drift),
            "orders": int(row.orders),
            "refused_orders": int(row.refused),
            "fills": int(row.fills),
            "open_orders": int(row.open_orders),
            "breaks": int(row.breaks),
            "kill_switch": str(row.switch),
        }
    return out


def summary_markdown(strategy: str, start, end, book: pd.DataFrame, refusals: list[str], broker: str) -> str:
    if book.empty:
        return f"**{strategy}**, {pd.Timestamp(start).date()}..{pd.Timestamp(end).date()}: no session traded.\n"
    last = book.iloc[-1]
    parts = {p: float(book[f"drift_{p}"].sum()) for p in DRIFT_PARTS}
    lines = [
        f"**{strategy}** on the `{broker}` broker, {book['date'].min().date()}..{book['date'].max().date()} "
        f"({len(book)} sessions).",
        "",
        f"- paper equity {last['equity']:,.2f} beside the reference backtest's {last['reference_equity']:,.2f} "
        f"(gap {last['equity'] - last['reference_equity']:+,.2f})",
        f"- orders sent {int(book['orders'].sum())}, refused {int(book['refused'].sum())}, "
        f"fills {int(book['fills'].sum())}, open after the last close {int(last['open_orders'])}",
        f"- reconciliation breaks {int(book['breaks'].sum())}; kill switch now {last['switch']}",
        "- drift over the range, by cause: " + ", ".join(f"{k} {v:+,.2f}" for k, v in parts.items()),
        "",
        markdown_table(
            book[["date", "equity", "reference_equity", "drift", "orders", "fills", "open_orders", "breaks"]],
            max_rows=20,
        ),
    ]
    if refusals:
        lines += ["", "Refused orders:", *[f"- {r}" for r in refusals[:20]]]
    return "\n".join(lines) + "\n"
