"""The upstream rule every step applies before writing (common.gates), on hand-worked calendars."""

import pandas as pd

from quantlab_assets.common.gates import period_label, upstream_complete


def test_period_labels():
    assert period_label("2021-09-01", "2021-09-30") == "2021-09"
    assert period_label("2021-10-01", "2021-10-31") == "2021-10"  # a month whose last partition is a Friday
    assert period_label("2021-10-04", "2021-10-10") == "2021-10-04..2021-10-08"  # Friday owns the weekend
    assert period_label("2024-04-05", "2024-04-07") == "2024-04-05"
    assert period_label("2024-04-02", "2024-04-02") == "2024-04-02"


def test_missing_sessions_are_counted_against_the_calendar():
    # September 2021: 22 weekdays, Labor Day (09-06) closed: 21 sessions.
    result = upstream_complete({"features": ([], "features")}, "2021-09-01", "2021-09-30")
    assert not result.passed and result.blocking
    assert result.description.startswith(
        "features missing for 21 of 21 sessions of 2021-09: materialize features first (first missing 2021-09-01)"
    )
    assert len(result.offending) == 21 and pd.Timestamp("2021-09-06") not in set(result.offending["date"])


def test_every_missing_input_is_named_and_present_ones_pass():
    present = pd.to_datetime(["2024-04-01", "2024-04-02", "2024-04-03"])
    result = upstream_complete(
        {"targets": (present[:2], "s/s_targets"), "ohlcv": (present, "ohlcv")}, "2024-04-01", "2024-04-03"
    )
    assert not result.passed
    assert result.description == (
        "targets missing for 1 of 3 sessions of 2024-04-01..2024-04-03: materialize "
        "s/s_targets first (first missing 2024-04-03); nothing was written"
    )
    assert result.figures == {"sessions": 3.0, "targets_missing_sessions": 1.0, "ohlcv_missing_sessions": 0.0}
    assert upstream_complete({"ohlcv": (present, "ohlcv")}, "2024-04-01", "2024-04-03").passed


def test_a_holiday_expects_nothing():
    result = upstream_complete({"features": ([], "features")}, "2025-06-19", "2025-06-19")  # Juneteenth
    assert result.passed and result.description == "no session in 2025-06-19: nothing expected, 0 rows"
