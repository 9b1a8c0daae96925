"""``factor_ic``'s report: ``reports/feature_ic.md`` and the IC-decay chart."""

from __future__ import annotations

import pandas as pd

from quantlab_assets.analytics.core.factor_ic_stats import ranked
from quantlab_assets.common.charts import render_png


def ic_decay_png(summary: pd.DataFrame, top: int = 8) -> bytes:
    """Mean rank IC against the horizon for the ``top`` features of ``ranked``."""
    return render_png(_ic_decay, summary, top, dpi=80)


def _ic_decay(plt, summary: pd.DataFrame, top: int):
    best = list(dict.fromkeys(ranked(summary)["feature"]))[:top]
    overall = summary[summary["period"] == "all"]
    fig, ax = plt.subplots(figsize=(8, 4))
    for name in best:
        rows = overall[overall["feature"] == name].sort_values("horizon")
        ax.plot(rows["horizon"], rows["rank_ic_mean"], marker="o", lw=1.2, label=name)
    ax.axhline(0, color="black", lw=0.6)
    ax.set_xlabel("label horizon (sessions)")
    ax.set_ylabel("mean rank IC")
    ax.set_xscale("log")
    ax.set_xticks(sorted(overall["horizon"].unique()), [str(h) for h in sorted(overall["horizon"].unique())])
    ax.set_title(f"IC decay over horizons: top {len(best)} features by |rank ICIR|")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    return fig


def feature_ic_markdown(summary: pd.DataFrame, as_of, start, chart: str | None, rows: int = 45) -> str:
    """``reports/feature_ic.md``: the ranked overall table, the skipped-date counts, the convention."""
    from quantlab_assets.common.artifacts import markdown_table

    table = ranked(summary)
    shown = table[
        [
            "feature",
            "horizon",
            "dates",
            "rank_ic_mean",
            "rank_ic_ir",
            "rank_ic_t",
            "rank_ic_positive",
            "ic_mean",
            "ic_ir",
            *[c for c in table.columns if c.startswith("q") and c[1:].isdigit()],
            "top_minus_bottom",
            "rank_autocorr",
            "dates_without_labels",
            "skipped_few_names",
            "skipped_constant",
        ]
    ]
    skipped = int(table["skipped_few_names"].sum() + table["skipped_constant"].sum())
    lines = [
        f"# Feature IC as of {pd.Timestamp(as_of).date()}",
        "",
        f"Decision dates {pd.Timestamp(start).date()} … {pd.Timestamp(as_of).date()}; a label counts only if "
        f"its exit bar was known at the close of {pd.Timestamp(as_of).date()} (exit_date_h <= as-of date).",
        f"Ranked by |rank-IC ICIR|. (feature, horizon, date) cells skipped: {skipped} "
        "(fewer names than the minimum, or a constant cross-section); dates whose labels were not yet "
        "known are counted per row.",
        "",
    ]
    if chart:
        lines += [f"![IC decay]({chart})", ""]
    lines += [markdown_table(shown, max_rows=rows), ""]
    yearly = summary[summary["period"] != "all"]
    if len(yearly) and len(table):
        top = table.head(10)[["feature", "horizon"]]
        by_year = yearly.merge(top, on=["feature", "horizon"]).pivot_table(
            index=["feature", "horizon"], columns="period", values="rank_ic_mean", sort=False
        )
        by_year = by_year.reindex(pd.MultiIndex.from_frame(top)).reset_index()
        lines += [
            "## Mean rank IC by year (top 10 rows above)",
            "",
            markdown_table(by_year, max_rows=10),
            "",
            "Every row and year with all statistics: `feature_ic.csv`.",
            "",
        ]
    return "\n".join(lines)
