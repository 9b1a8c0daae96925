"""The run's ``trades.csv``: one file shared by the strategies of a run, written by DuckDB.

``pandas.DataFrame.to_csv`` formats each float through Python and took ~5 s for the 1.1 million
fills of a 10-year daily-rebalanced book at 500 names (more than the rest of the backtest step);
DuckDB's CSV writer formats the same bytes in C++ (doubles in Python's shortest ``repr``, dates as
``YYYY-MM-DD``, NaN and NaT as empty fields). Only frames whose every column it writes exactly as
pandas does take that path, appended to the run's file; anything else (or a file that already holds
the key's rows) goes through pandas' read, concat and rewrite.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

# A field pandas would quote (QUOTE_MINIMAL) or an empty string (pandas writes nothing, DuckDB "").
_NEEDS_CARE = re.compile(r'[,"\r\n]|^\s|\s$|^$')


def merge_csv(path: Path, rows: pd.DataFrame, key_column: str, key: str) -> Path:
    """Put ``rows`` into the CSV at ``path``, replacing the rows whose ``key_column`` is ``key``
    (the other keys' rows first, then ``rows``), as the pandas version it replaced did, except that
    the other keys' rows are kept as written (its ``read_csv`` round trip changed their last digits)."""
    exists = path.exists()
    select = _duckdb_select(rows)
    appendable = not exists or _appendable(path, ",".join(rows.columns).encode(), key.encode())
    if select is None or not appendable:
        return _pandas_merge(path, rows, key_column, key)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.part")
    con = duckdb.connect()
    try:
        con.register("_rows", rows)
        header_opt = "false" if exists else "true"
        con.execute(f"COPY (SELECT {select} FROM _rows) TO '{_sql_path(tmp)}' (FORMAT csv, HEADER {header_opt})")
    finally:
        con.close()
    if not exists:
        tmp.replace(path)
    else:
        with path.open("ab") as out, tmp.open("rb") as part:
            while chunk := part.read(1 << 24):
                out.write(chunk)
        tmp.unlink()
    return path


def _appendable(path: Path, header: bytes, key: bytes) -> bool:
    """The file has the same columns and no row of ``key`` (its text appears nowhere in it), so
    appending equals pandas' rewrite; read in chunks (the file can be hundreds of MB)."""
    if not key:
        return False
    with path.open("rb") as f:
        if f.readline().rstrip(b"\n") != header:
            return False
        tail = b""
        while chunk := f.read(1 << 24):
            if key in tail + chunk:
                return False
            tail = chunk[-len(key) :]
    return True


def _pandas_merge(path: Path, rows: pd.DataFrame, key_column: str, key: str) -> Path:
    if path.exists():
        existing = pd.read_csv(path)
        rows = pd.concat([existing[existing[key_column] != key], rows], ignore_index=True)
    rows.to_csv(path, index=False)
    return path


def _sql_path(path: Path) -> str:
    return str(path).replace("'", "''")


def _duckdb_select(rows: pd.DataFrame) -> str | None:
    """The SELECT list that makes DuckDB write ``rows`` as ``to_csv(index=False)`` does, or None
    when a column is of a kind whose text could differ."""
    if os.linesep != "\n":  # pandas ends lines with os.linesep, DuckDB with "\n"
        return None
    if not len(rows.columns) or any(not isinstance(c, str) or _NEEDS_CARE.search(c) for c in rows.columns):
        return None
    items = []
    for name in rows.columns:
        col, q = rows[name], f'"{name}"'
        kind = col.dtype.kind
        if kind == "f" and col.dtype == np.float64:
            items.append(f"CASE WHEN isnan({q}) THEN NULL ELSE {q} END AS {q}")  # NaN: an empty field
        elif kind == "M" and getattr(col.dtype, "tz", None) is None and _whole_days(col):
            items.append(f"strftime(CAST({q} AS DATE), '%Y-%m-%d') AS {q}")  # pandas' format for dates
        elif kind == "O" and _plain_strings(col):
            items.append(q)
        else:
            return None
    return ", ".join(items)


def _whole_days(col: pd.Series) -> bool:
    present = col.dropna()
    return bool((present == present.dt.normalize()).all())


def _plain_strings(col: pd.Series) -> bool:
    """Every value a non-empty string that needs no quoting (checked once per distinct value)."""
    if pd.api.types.infer_dtype(col, skipna=False) != "string":
        return False
    return not any(_NEEDS_CARE.search(v) for v in pd.unique(col))
