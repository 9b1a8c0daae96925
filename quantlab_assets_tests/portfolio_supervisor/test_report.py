"""What each partition's page shows of its own day, by hand."""

import pandas as pd

from quantlab_assets.portfolio_supervisor.core.report import book_days

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
