"""The CSV source reads with memory proportional to what it keeps, and refuses a file above its
size bound naming it (issue 24: a 114 MB file took 2.1 GB)."""

from __future__ import annotations

import tracemalloc
from datetime import date

import pytest

from quantlab_assets.common.calendar import trading_days
from quantlab_assets.data_curator.core import csv_source
from quantlab_assets.data_curator.core.csv_source import read_symbol_csv
from quantlab_assets.data_curator.core.providers import InputRefused

NOTE = "x" * 200


def _big_file(path, last: str) -> int:
    with open(path, "w") as out:
        out.write("date,open,high,low,close,adj_close,volume,note\n")  # a vendor's extra column, not kept
        for d in trading_days("1990-01-02", last):
            out.write(f"{d:%Y-%m-%d},10.5,11.25,10.125,11.0,11.0,123456,{NOTE}\n")
    return path.stat().st_size


def test_memory_follows_the_rows_kept_not_the_file(tmp_path):
    path = tmp_path / "AAA.csv"
    size = _big_file(path, "2023-12-29")  # 34 years: ~8.5k rows, ~2.2 MB
    tracemalloc.start()
    try:
        week = read_symbol_csv(path, "AAA", date(2020, 3, 2), date(2020, 3, 6))
        _, peak_week = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        everything = read_symbol_csv(path, "AAA")
        _, peak_all = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(week) == 5 and len(everything) > 8_000
    assert week["close"].tolist() == [11.0] * 5
    # A week of a 34-year file costs a small fraction of the file; the whole file costs rows.
    assert peak_week < size / 4, (peak_week, size)
    assert peak_all > 5 * peak_week


def test_a_file_above_the_bound_is_refused_naming_it(tmp_path, monkeypatch):
    path = tmp_path / "AAA.csv"
    size = _big_file(path, "1990-02-28")
    monkeypatch.setattr(csv_source, "MAX_CSV_BYTES", size - 1)
    with pytest.raises(InputRefused) as info:
        read_symbol_csv(path, "AAA")
    assert f"the file is {size:,} bytes, above the {size - 1:,} a source may be" in str(info.value)
    assert str(path) in str(info.value)


def test_a_row_out_of_range_with_a_bad_date_is_still_judged(tmp_path):
    path = tmp_path / "AAA.csv"
    path.write_text(
        "date,open,high,low,close,adj_close,volume\n2024-02-05,1,2,0.5,1.5,1.5,10\nsoon,1,2,0.5,1.5,1.5,10\n"
    )
    with pytest.raises(InputRefused, match="line 3"):
        read_symbol_csv(path, "AAA", date(2024, 2, 5), date(2024, 2, 9))
