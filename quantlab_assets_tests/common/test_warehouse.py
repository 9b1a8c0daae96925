"""Warehouse writes on real DuckDB files: by-name inserts, atomic slice replacement, DATE dates."""

from __future__ import annotations

from datetime import date

import duckdb
import pandas as pd
import pytest

from quantlab_assets.common.warehouse import (
    Column,
    SchemaMismatchError,
    TableSchema,
    connect,
    ensure_table,
    read_slice,
    read_strategy_slice,
    replace_slice,
    table_checksum,
)

PRICES = TableSchema(
    name="prices",
    columns=(
        Column("date", "DATE", False),
        Column("symbol", "VARCHAR", False),
        # Two columns of the same type: a positional insert of a reordered frame would
        # silently swap them instead of failing.
        Column("open", "DOUBLE"),
        Column("close", "DOUBLE"),
        Column("volume", "BIGINT"),
    ),
)
COLS = PRICES.column_names
T = pd.Timestamp


def make_frame(symbols, start, end, base=0.0) -> pd.DataFrame:
    """One row per (symbol, weekday); values encode symbol, day and ``base`` so rows differ."""
    days = pd.bdate_range(start, end)
    rows = []
    for i, s in enumerate(symbols):
        for j, d in enumerate(days):
            rows.append(
                {
                    "date": d,
                    "symbol": s,
                    "open": base + 100 * i + j,
                    "close": base + 100 * i + j + 0.5,
                    "volume": 1000 * (i + 1) + j,
                }
            )
    return pd.DataFrame(rows, columns=COLS)


@pytest.fixture
def con(tmp_path):
    c = connect(tmp_path / "wh" / "lab.duckdb")  # parent folder created by connect
    yield c
    c.close()


@pytest.fixture
def seeded(con):
    """AAA, BBB, CCC over January 2024 (weekdays)."""
    frame = make_frame(["AAA", "BBB", "CCC"], "2024-01-01", "2024-01-31")
    assert replace_slice(con, PRICES, frame, "2024-01-01", "2024-01-31") == len(frame) == 69
    return con


def checksum(con):
    return table_checksum(con, "prices", COLS)


def rows_where(con, where: str = "TRUE") -> pd.DataFrame:
    return con.execute(f"SELECT * FROM prices WHERE {where} ORDER BY symbol, date").df()


# ----------------------------------------------------------------------------- by-name insert


def test_reversed_column_order_lands_in_the_right_columns(con):
    frame = pd.DataFrame(
        {"date": [T("2024-01-02")], "symbol": ["AAA"], "open": [10.0], "close": [11.0], "volume": [123]}
    )
    reversed_frame = frame[list(reversed(COLS))]
    assert list(reversed_frame.columns) == ["volume", "close", "open", "symbol", "date"]
    replace_slice(con, PRICES, reversed_frame, "2024-01-02", "2024-01-02")
    got = con.execute("SELECT date, symbol, open, close, volume FROM prices").fetchall()
    assert got == [(date(2024, 1, 2), "AAA", 10.0, 11.0, 123)]


def test_missing_column_raises_naming_it(con):
    frame = make_frame(["AAA"], "2024-01-02", "2024-01-03").drop(columns=["close"])
    with pytest.raises(SchemaMismatchError, match=r"missing columns \['close'\]"):
        replace_slice(con, PRICES, frame, "2024-01-02", "2024-01-03")


def test_extra_column_raises_naming_it(con):
    frame = make_frame(["AAA"], "2024-01-02", "2024-01-03").assign(adj_close=1.0)
    with pytest.raises(SchemaMismatchError, match=r"unexpected columns \['adj_close'\]") as exc:
        replace_slice(con, PRICES, frame, "2024-01-02", "2024-01-03")
    assert "prices" in str(exc.value)


def test_missing_and_extra_columns_are_both_named(con):
    frame = make_frame(["AAA"], "2024-01-02", "2024-01-03").rename(columns={"volume": "vol"})
    with pytest.raises(SchemaMismatchError) as exc:
        replace_slice(con, PRICES, frame, "2024-01-02", "2024-01-03")
    assert "['volume']" in str(exc.value) and "['vol']" in str(exc.value)


def test_schema_error_happens_before_any_write(seeded):
    before = checksum(seeded)
    frame = make_frame(["AAA"], "2024-01-02", "2024-01-31", base=5000).drop(columns=["open"])
    with pytest.raises(SchemaMismatchError):
        replace_slice(seeded, PRICES, frame, "2024-01-01", "2024-01-31")
    assert checksum(seeded) == before


# ----------------------------------------------------------------------------- idempotence, scope


def test_rerunning_the_same_slice_is_idempotent(con):
    frame = make_frame(["AAA", "BBB"], "2024-02-01", "2024-02-29")
    replace_slice(con, PRICES, frame, "2024-02-01", "2024-02-29")
    first = checksum(con)
    assert first[0] == len(frame) == 42
    replace_slice(con, PRICES, frame, "2024-02-01", "2024-02-29")
    assert checksum(con) == first
    replace_slice(con, PRICES, frame.sample(frac=1.0, random_state=0), "2024-02-01", "2024-02-29")
    assert checksum(con) == first


def test_checksum_detects_a_changed_value(seeded):
    before = checksum(seeded)
    seeded.execute("UPDATE prices SET close = close + 0.01 WHERE symbol = 'BBB' AND date = '2024-01-10'")
    after = checksum(seeded)
    assert after[0] == before[0] and after[1] != before[1]


def test_replace_only_touches_the_slice(seeded):
    outside = "date < DATE '2024-01-10' OR date > DATE '2024-01-12'"
    before_outside = rows_where(seeded, outside)
    new = make_frame(["AAA", "BBB", "CCC"], "2024-01-10", "2024-01-12", base=9000)
    replace_slice(seeded, PRICES, new, "2024-01-10", "2024-01-12")
    pd.testing.assert_frame_equal(rows_where(seeded, outside), before_outside, check_exact=True)
    inside = rows_where(seeded, "date BETWEEN DATE '2024-01-10' AND DATE '2024-01-12'")
    assert len(inside) == 9
    assert (inside["open"] >= 9000).all()
    assert checksum(seeded)[0] == 69


def test_replacing_a_slice_with_fewer_rows_removes_the_stale_ones(seeded):
    new = make_frame(["AAA"], "2024-01-10", "2024-01-12", base=9000)
    replace_slice(seeded, PRICES, new, "2024-01-10", "2024-01-12")
    inside = rows_where(seeded, "date BETWEEN DATE '2024-01-10' AND DATE '2024-01-12'")
    assert inside["symbol"].tolist() == ["AAA"] * 3
    assert checksum(seeded)[0] == 69 - 6


def test_keys_limit_the_delete_to_those_symbols(seeded):
    before_others = rows_where(seeded, "symbol <> 'AAA'")
    new = make_frame(["AAA"], "2024-01-01", "2024-01-31", base=7000)
    n = replace_slice(seeded, PRICES, new, "2024-01-01", "2024-01-31", key_column="symbol", keys=["AAA"])
    assert n == 23
    pd.testing.assert_frame_equal(rows_where(seeded, "symbol <> 'AAA'"), before_others, check_exact=True)
    aaa = rows_where(seeded, "symbol = 'AAA'")
    assert len(aaa) == 23 and (aaa["open"] >= 7000).all()
    assert checksum(seeded)[0] == 69


def test_keys_with_a_failed_symbol_keep_its_previous_rows(seeded):
    """Partial refresh: BBB failed to download, so only AAA and CCC are replaced."""
    before_bbb = rows_where(seeded, "symbol = 'BBB'")
    new = make_frame(["AAA", "CCC"], "2024-01-15", "2024-01-19", base=8000)
    replace_slice(seeded, PRICES, new, "2024-01-15", "2024-01-19", key_column="symbol", keys=["CCC", "AAA", "AAA"])
    pd.testing.assert_frame_equal(rows_where(seeded, "symbol = 'BBB'"), before_bbb, check_exact=True)
    week = rows_where(seeded, "date BETWEEN DATE '2024-01-15' AND DATE '2024-01-19' AND symbol <> 'BBB'")
    assert len(week) == 10 and (week["open"] >= 8000).all()
    assert checksum(seeded)[0] == 69


def test_empty_keys_delete_nothing(seeded):
    before = checksum(seeded)
    empty = make_frame([], "2024-01-01", "2024-01-31")
    assert replace_slice(seeded, PRICES, empty, "2024-01-01", "2024-01-31", key_column="symbol", keys=[]) == 0
    assert checksum(seeded) == before


def test_unknown_key_column_raises(seeded):
    with pytest.raises(SchemaMismatchError, match="ticker"):
        replace_slice(
            seeded,
            PRICES,
            make_frame(["AAA"], "2024-01-02", "2024-01-02"),
            "2024-01-02",
            "2024-01-02",
            key_column="ticker",
            keys=["AAA"],
        )


def test_rows_outside_the_slice_are_rejected(seeded):
    before = checksum(seeded)
    frame = make_frame(["AAA"], "2024-01-10", "2024-01-16", base=6000)  # 5 weekdays
    with pytest.raises(ValueError, match=r"2 rows .* outside the slice 2024-01-10..2024-01-12"):
        replace_slice(seeded, PRICES, frame, "2024-01-10", "2024-01-12")
    assert checksum(seeded) == before


def test_row_before_the_slice_is_rejected(con):
    frame = make_frame(["AAA"], "2024-01-09", "2024-01-10")
    with pytest.raises(ValueError, match="outside the slice"):
        replace_slice(con, PRICES, frame, "2024-01-10", "2024-01-10")


# ----------------------------------------------------------------------------- atomicity


def test_non_date_string_leaves_previous_state(seeded):
    before = checksum(seeded)
    frame = make_frame(["AAA"], "2024-01-10", "2024-01-12", base=5000).astype({"date": object})
    frame.loc[1, "date"] = "not a date"
    with pytest.raises(ValueError, match="not a date"):
        replace_slice(seeded, PRICES, frame, "2024-01-10", "2024-01-12")
    assert checksum(seeded) == before


def test_cast_failure_during_insert_rolls_back_the_delete(seeded):
    before = checksum(seeded)
    frame = make_frame(["AAA", "BBB"], "2024-01-10", "2024-01-12", base=5000).astype({"open": object})
    frame.loc[4, "open"] = "abc"  # cannot be cast to DOUBLE: fails inside the INSERT
    with pytest.raises(duckdb.Error):
        replace_slice(seeded, PRICES, frame, "2024-01-10", "2024-01-12")
    assert checksum(seeded) == before
    # The connection is usable afterwards (no transaction left open).
    good = make_frame(["AAA"], "2024-01-10", "2024-01-12", base=5000)
    replace_slice(seeded, PRICES, good, "2024-01-10", "2024-01-12", key_column="symbol", keys=["AAA"])
    assert checksum(seeded)[0] == 69


def test_not_null_violation_rolls_back(seeded):
    before = checksum(seeded)
    frame = make_frame(["AAA"], "2024-01-10", "2024-01-12", base=5000)
    frame.loc[2, "symbol"] = None
    with pytest.raises(duckdb.Error):
        replace_slice(seeded, PRICES, frame, "2024-01-10", "2024-01-12")
    assert checksum(seeded) == before


class _FailOnInsert:
    """A connection proxy that runs everything but raises on the INSERT (after the DELETE)."""

    def __init__(self, con):
        self._con = con
        self.statements: list[str] = []

    def execute(self, sql, *args, **kwargs):
        self.statements.append(sql.strip().split()[0].upper())
        if sql.lstrip().upper().startswith("INSERT"):
            raise RuntimeError("simulated crash between DELETE and INSERT")
        return self._con.execute(sql, *args, **kwargs)

    def __getattr__(self, name):
        return getattr(self._con, name)


def test_crash_after_delete_leaves_previous_state(seeded):
    before = checksum(seeded)
    proxy = _FailOnInsert(seeded)
    frame = make_frame(["AAA", "BBB", "CCC"], "2024-01-01", "2024-01-31", base=5000)
    with pytest.raises(RuntimeError, match="simulated crash"):
        replace_slice(proxy, PRICES, frame, "2024-01-01", "2024-01-31")
    # The DELETE really ran inside the transaction before the failure, and was rolled back.
    assert proxy.statements.index("DELETE") < proxy.statements.index("INSERT")
    assert proxy.statements[-1] == "ROLLBACK"
    assert checksum(seeded) == before


def test_rollback_is_visible_from_a_fresh_connection(tmp_path):
    path = tmp_path / "lab.duckdb"
    c = connect(path)
    replace_slice(c, PRICES, make_frame(["AAA"], "2024-01-01", "2024-01-31"), "2024-01-01", "2024-01-31")
    before = table_checksum(c, "prices", COLS)
    with pytest.raises(RuntimeError):
        replace_slice(
            _FailOnInsert(c),
            PRICES,
            make_frame(["AAA"], "2024-01-01", "2024-01-31", base=1),
            "2024-01-01",
            "2024-01-31",
        )
    c.close()
    c2 = connect(path, read_only=True)
    try:
        assert table_checksum(c2, "prices", COLS) == before
    finally:
        c2.close()


# ----------------------------------------------------------------------------- types and reads


def test_dates_are_stored_as_DATE_and_normalised(con):
    frame = make_frame(["AAA"], "2024-01-02", "2024-01-03")
    frame["date"] = frame["date"] + pd.Timedelta(hours=15, minutes=30)  # intraday timestamps
    replace_slice(con, PRICES, frame, "2024-01-02", "2024-01-03")
    assert con.execute("SELECT DISTINCT typeof(date) FROM prices").fetchall() == [("DATE",)]
    assert con.execute("SELECT date FROM prices ORDER BY date").fetchall() == [(date(2024, 1, 2),), (date(2024, 1, 3),)]
    col_type = con.execute(
        "SELECT data_type FROM information_schema.columns WHERE table_name = 'prices' AND column_name = 'date'"
    ).fetchone()[0]
    assert col_type == "DATE"


def test_read_slice_filters_and_orders(con):
    frame = make_frame(["CCC", "AAA", "BBB"], "2024-01-01", "2024-01-31")
    replace_slice(con, PRICES, frame.sample(frac=1.0, random_state=3), "2024-01-01", "2024-01-31")
    out = read_slice(con, PRICES, "2024-01-08", "2024-01-12", symbols=["CCC", "AAA"])
    assert list(out.columns) == COLS
    assert out["symbol"].tolist() == ["AAA"] * 5 + ["CCC"] * 5
    assert [d.date() for d in out["date"][:5]] == [date(2024, 1, d) for d in (8, 9, 10, 11, 12)]
    assert pd.api.types.is_datetime64_any_dtype(out["date"])
    # values are those written for those keys
    expected = frame[(frame["symbol"].isin(["AAA", "CCC"])) & frame["date"].between(T("2024-01-08"), T("2024-01-12"))]
    expected = expected.sort_values(["symbol", "date"]).reset_index(drop=True)
    assert out["open"].tolist() == expected["open"].tolist()
    assert out["volume"].tolist() == expected["volume"].tolist()


def test_read_slice_columns_and_bounds(seeded):
    out = read_slice(seeded, PRICES, date(2024, 1, 31), date(2024, 1, 31), columns=["symbol", "close"])
    assert list(out.columns) == ["symbol", "close"]
    assert out["symbol"].tolist() == ["AAA", "BBB", "CCC"]
    assert len(read_slice(seeded, PRICES, "2024-02-01", "2024-02-29")) == 0
    assert len(read_slice(seeded, PRICES, "2024-01-01", "2024-01-31", symbols=[])) == 0
    with pytest.raises(SchemaMismatchError, match="adj_close"):
        read_slice(seeded, PRICES, "2024-01-01", "2024-01-31", columns=["adj_close"])


def test_ensure_table_rejects_an_older_schema(con):
    con.execute('CREATE TABLE "prices" (date DATE, symbol VARCHAR, open DOUBLE)')
    with pytest.raises(SchemaMismatchError, match=r"\['close', 'volume'\]"):
        ensure_table(con, PRICES)


def test_table_checksum_of_empty_table(con):
    ensure_table(con, PRICES)
    assert table_checksum(con, "prices", COLS) == (0, 0)


def test_table_checksum_leaves_the_connection_usable(seeded):
    assert checksum(seeded)[0] == 69
    seeded.register("_probe", pd.DataFrame({"x": [1, 2]}))
    assert seeded.execute("SELECT sum(x) FROM _probe").fetchall() == [(3,)]


# ----------------------------------------------------------------------------- catalog names


@pytest.mark.parametrize("filename", ["lab.duckdb", "main.duckdb", "prices.duckdb", "quantlab.duckdb"])
def test_database_file_name_does_not_clash_with_our_tables(tmp_path, filename):
    """The catalog is named after the file; unqualified names resolve in the main schema."""
    c = connect(tmp_path / filename)
    try:
        frame = make_frame(["AAA", "BBB"], "2024-01-02", "2024-01-05")
        assert replace_slice(c, PRICES, frame, "2024-01-02", "2024-01-05") == 8
        replace_slice(c, PRICES, frame, "2024-01-02", "2024-01-05")
        assert table_checksum(c, "prices", COLS)[0] == 8
        assert len(read_slice(c, PRICES, "2024-01-02", "2024-01-05", symbols=["BBB"])) == 4
        where = c.execute(
            "SELECT table_catalog, table_schema FROM information_schema.tables WHERE table_name = 'prices'"
        ).fetchall()
        assert where == [(c.execute("SELECT current_database()").fetchone()[0], "main")]
    finally:
        c.close()


def test_ensure_table_ignores_same_named_table_in_attached_catalog(tmp_path):
    other = connect(tmp_path / "other.duckdb")
    ensure_table(other, PRICES)  # full, current schema
    other.close()
    c = connect(tmp_path / "lab.duckdb")
    try:
        c.execute('CREATE TABLE "prices" (date DATE, symbol VARCHAR, open DOUBLE)')  # old schema
        c.execute(f"ATTACH '{tmp_path / 'other.duckdb'}' AS other (READ_ONLY)")
        with pytest.raises(SchemaMismatchError, match="close"):
            ensure_table(c, PRICES)
    finally:
        c.close()


def test_rows_for_symbols_outside_keys_are_rejected_and_nothing_changes(seeded):
    """A frame carrying a symbol whose old rows are not being deleted would duplicate them."""
    before = checksum(seeded)
    new = make_frame(["AAA", "BBB"], "2024-01-15", "2024-01-19", base=9000)
    with pytest.raises(ValueError, match="BBB"):
        replace_slice(seeded, PRICES, new, "2024-01-15", "2024-01-19", key_column="symbol", keys=["AAA"])
    assert checksum(seeded) == before


# ----------------------------------------------------------------------------- one strategy's rows
BOOKS = TableSchema(
    name="books",
    columns=(
        Column("date", "DATE", False),
        Column("strategy", "VARCHAR", False),
        Column("symbol", "VARCHAR", False),
        Column("weight", "DOUBLE"),
        Column("rebalance", "BOOLEAN"),
        Column("note", "VARCHAR"),
    ),
)


def reference_read_strategy_slice(con, schema, strategy, start, end):
    """The previous implementation: every strategy's rows, filtered in pandas."""
    rows = read_slice(con, schema, start, end)
    return rows[rows["strategy"] == strategy].drop(columns=["strategy"]).reset_index(drop=True)


def test_read_strategy_slice_equals_reading_all_and_filtering(con):
    days = pd.bdate_range("2024-01-01", "2024-02-29")
    frames = []
    for k, name in enumerate(["alpha", "beta", "alphabet"]):  # 'alpha' must not match 'alphabet'
        for i, sym in enumerate(["CCC", "AAA", "BBB"][: k + 1]):
            frames.append(
                pd.DataFrame(
                    {
                        "date": days,
                        "symbol": sym,
                        "weight": [None if (j + i) % 7 == 0 else 0.01 * (j + k) for j in range(len(days))],
                        "rebalance": [j % 5 == 0 for j in range(len(days))],
                        "note": [None if j % 3 else f"{name}{j}" for j in range(len(days))],
                    }
                ).assign(strategy=name)
            )
    replace_slice(con, BOOKS, pd.concat(frames), days[0], days[-1])
    for name in ["alpha", "beta", "alphabet", "nobody"]:
        for lo, hi in [(days[0], days[-1]), (days[10], days[12]), ("2023-01-01", "2023-12-31")]:
            got = read_strategy_slice(con, BOOKS, name, lo, hi)
            expected = reference_read_strategy_slice(con, BOOKS, name, lo, hi)
            assert list(got.columns) == ["date", "symbol", "weight", "rebalance", "note"]
            pd.testing.assert_frame_equal(got, expected)
    assert len(read_strategy_slice(con, BOOKS, "beta", days[0], days[-1])) == 2 * len(days)
