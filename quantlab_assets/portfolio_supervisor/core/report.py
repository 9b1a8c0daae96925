"""``approval_summary.md``: the supervisor's decisions, reasons, overrides and KPIs."""

from __future__ import annotations

import pandas as pd

from quantlab_assets.common.artifacts import markdown_table


def supervisor_kpis(approvals: pd.DataFrame) -> dict[str, float]:
    """Approval rate and limit breaches (the seed's supervisor KPIs) over the given rows."""
    n = len(approvals)
    flags = approvals["flags"].fillna("").str.split(",").explode()
    flags = flags[flags != ""].str.split(":").str[0]
    return {
        "days": float(n),
        "approval_rate": float((approvals["status"] == "approved").mean()) if n else float("nan"),
        "rejected_days": float((approvals["status"] == "rejected").sum()),
        "needs_review_days": float((approvals["status"] == "needs_review").sum()),
        "limit_breaches": float(len(flags)),
        "overrides": float(approvals["override_by"].notna().sum()),
        **{f"breaches_{rule}": float(count) for rule, count in flags.value_counts().sort_index().items()},
    }


def approval_summary_markdown(strategy: str, start, end, approvals: pd.DataFrame) -> str:
    k = supervisor_kpis(approvals)
    lines = [
        f"## {strategy}: {pd.Timestamp(start).date()} … {pd.Timestamp(end).date()}",
        "",
        f"- approval rate **{k['approval_rate']:.1%}** over {int(k['days'])} sessions; rejected "
        f"{int(k['rejected_days'])}, needs review {int(k['needs_review_days'])}; limit breaches "
        f"{int(k['limit_breaches'])}; overrides {int(k['overrides'])}",
    ]
    breaches = {key[len("breaches_") :]: int(v) for key, v in k.items() if key.startswith("breaches_")}
    if breaches:
        lines.append("- breaches by rule: " + ", ".join(f"{r} {n}" for r, n in breaches.items()))
    not_ok = approvals[approvals["status"] != "approved"]
    if len(not_ok):
        lines += ["", "### Not approved", "", markdown_table(not_ok[["date", "status", "reasons"]], max_rows=25)]
    overridden = approvals[approvals["override_by"].notna()]
    if len(overridden):
        lines += [
            "",
            "### Overrides (append-only log)",
            "",
            markdown_table(overridden[["date", "rule_status", "status", "override_by", "override_reason"]]),
        ]
    return "\n".join(lines) + "\n"
