"""What each partition's page shows of its own day, by hand."""

import pandas as pd

from quantlab_assets.portfolio_supervisor.core.report import approval_summary_markdown, book_days, supervisor_kpis

D1, D2 = pd.Timestamp("2024-04-01"), pd.Timestamp("2024-04-02")


def test_book_days_count_held_names_at_the_rules_threshold():
    books = pd.DataFrame(
        {
            "date": [D1, D1, D1, D2, D2],
            "symbol": ["A", "B", "C", "A", "B"],
            "weight": [0.5, 1e-12, -0.5, 0.0, -0.0],  # 1e-12 is under EPS: cash, not a name held
            "source": ["targets"] * 3 + ["held last approved book"] * 2,
        }
    )
    assert book_days(books) == {
        D1: {"names": 2, "source": "targets"},
        D2: {"names": 0, "source": "held last approved book"},
    }
    assert book_days(books.iloc[:0]) == {}


def test_the_approval_rate_counts_only_books_that_were_not_flat():
    """Approving cash is no approved trading day (issue 22 point 4): three sessions judged a flat
    book, one rejected a book, two approved one; the rate is 2 of 3, over the 3 book days."""
    approvals = pd.DataFrame(
        {
            "status": ["approved", "approved", "approved", "rejected", "approved", "approved"],
            "gross": [0.0, None, 1e-12, 1.0, 0.95, 1.0],
            "flags": ["", "", "", "gross_exposure", "", ""],
            "override_by": [None] * 6,
        }
    )
    k = supervisor_kpis(approvals)
    assert (k["days"], k["book_days"], k["rejected_days"]) == (6.0, 3.0, 1.0)
    assert k["approval_rate"] == 2 / 3
    flat = supervisor_kpis(approvals.iloc[:3])
    assert flat["book_days"] == 0.0 and pd.isna(flat["approval_rate"])
    md = approval_summary_markdown("s", D1, D2, approvals.iloc[:3])
    assert "n/a (every book judged was flat)" in md and "0 of 3 sessions" in md
