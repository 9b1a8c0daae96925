"""Issue 22 point 8: asking research for a range the warehouse does not hold names the range it
holds and the command that fills it (not "bars miss 2516 session(s) ... sweeps need every session")."""

from __future__ import annotations

import pytest

from quantlab_assets import research
from quantlab_assets.common.calendar import shift_sessions
from quantlab_assets_tests.research.conftest import END, START


def test_a_range_outside_the_warehouse_names_what_is_held_and_how_to_fill_it(materialized):
    with pytest.raises(ValueError) as err:
        research.load_data("2015-01-02", "2015-03-31", db=materialized)
    message = str(err.value)
    held_from = shift_sessions(START, -260).date()
    assert f"{materialized}: asked for 2015-01-02..2015-03-31, but 61 of its 61 session(s)" in message
    assert f"the warehouse holds ohlcv {held_from}..{END} and features {START}..{END}" in message
    assert "dagster asset materialize -m quantlab_assets.definitions --select 'ohlcv*' " in message
    assert "--partition-range 2015-01-02...2015-03-31" in message
    # Partly outside (the end past the stored one): refused too, counting the missing sessions.
    with pytest.raises(ValueError, match=r"asked for .*\.\.2024-05-31, but 22 of its"):
        research.load_data(START, "2024-05-31", db=materialized)
    # Inside: fine.
    assert len(research.load_data(START, END, db=materialized).bars) > 0
