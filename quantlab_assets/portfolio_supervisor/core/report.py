"""``approval_summary.md``: the supervisor's decisions, reasons, overrides and KPIs; and what
each partition shows of its own day in the UI."""

from __future__ import annotations

import pandas as pd

from quantlab_assets.common.artifacts import markdown_table
from quantlab_assets.portfolio_supervisor.core.evaluate import APPROVED, EPS, NEEDS_REVIEW, REJECTED
from quantlab_assets.portfolio_supervisor.core.schema import FLAGS_SEPARATOR


def judged_a_book(approvals: pd.DataFrame):
    """Per row: the judged book was not flat (``gross`` over the rules' EPS). The one rule of what
    counts toward an approval rate, here and in the leaderboard."""
    return approvals["gross"].fillna(0.0).to_numpy() > EPS


def supervisor_kpis(approvals: pd.DataFrame) -> dict[str, float]:
    """Approval rate and limit breaches (the seed's supervisor KPIs) over the given rows. The
    approval rate counts the sessions whose judged book was not flat (``gross`` > 0): approving
    cash is no approved trading day, so a strategy that never held anything reads n/a, not 100%."""
    n = len(approvals)
    at_stake = judged_a_book(approvals)
    judged = approvals.loc[at_stake, "status"]
    flags = approvals["flags"].fillna("").str.split(FLAGS_SEPARATOR).explode()
    flags = flags[flags != ""].str.split(":").str[0]
    return {
        "days": float(n),
        "book_days": float(at_stake.sum()),
        "approval_rate": float((judged == APPROVED).mean()) if len(judged) else float("nan"),
        "rejected_days": float((approvals["status"] == REJECTED).sum()),
        "needs_review_days": float((approvals["status"] == NEEDS_REVIEW).sum()),
        "limit_breaches": float(len(flags)),
        "overrides": float(approvals["override_by"].notna().sum()),
        **{f"breaches_{rule}": float(count) for rule, count in flags.value_counts().sort_index().items()},
    }


def _rate(value: float) -> str:
    return "n/a (every book judged was flat)" if pd.isna(value) else f"{value:.1%}"


def approval_summary_markdown(strategy: str, start, end, approvals: pd.DataFrame) -> str:
    k = supervisor_kpis(approvals)
    lines = [
        f"## {strategy}: {pd.Timestamp(start).date()} … {pd.Timestamp(end).date()}",
        "",
        f"- approval rate **{_rate(k['approval_rate'])}** over the {int(k['book_days'])} of {int(k['days'])} "
        f"sessions whose book was not flat; rejected "
        f"{int(k['rejected_days'])}, needs review {int(k['needs_review_days'])}; limit breaches "
        f"{int(k['limit_breaches'])}; overrides {int(k['overrides'])}",
    ]
    breaches = {key[len("breaches_") :]: int(v) for key, v in k.items() if key.startswith("breaches_")}
    if breaches:
        lines.append("- breaches by rule: " + ", ".join(f"{r} {n}" for r, n in breaches.items()))
    not_ok = approvals[approvals["status"] != APPROVED]
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


def approval_days(approvals: pd.DataFrame) -> dict[pd.Timestamp, dict[str, str]]:
    """Each day's own decision for its partition's page: status, reasons, a person's override."""
    return {
        r.date: {
            "status": str(r.status),
            "rule_status": str(r.rule_status),
            "reasons": r.reasons or "none",  # text: shown inline on the partition's page
            **({"override": f"{r.override_by}: {r.override_reason}"} if pd.notna(r.override_by) else {}),
        }
        for r in approvals.itertuples()
    }


def held(books: pd.DataFrame) -> pd.Series:
    """Rows of a tradable book that hold a position (the rules' own threshold, ``EPS``)."""
    return books["weight"].abs() > EPS


def book_days(books: pd.DataFrame) -> dict[pd.Timestamp, dict[str, int | str]]:
    """Each day's tradable book for its partition's page: names held and where it came from."""
    days = (
        books.assign(held=held(books)).groupby("date", sort=True).agg(names=("held", "sum"), source=("source", "first"))
    )
    return {day: {"names": int(n), "source": str(s)} for day, n, s in zip(days.index, days["names"], days["source"])}


def last_book(books: pd.DataFrame) -> pd.DataFrame:
    """The latest day's held positions: what may be traded now."""
    return books[(books["date"] == books["date"].max()) & held(books)][["symbol", "weight", "source"]]
