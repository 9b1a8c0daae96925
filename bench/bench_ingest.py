"""Ingest benchmark: synthetic W (symbols x years) into DuckDB ``ohlcv``.

Times the production write path, the one the ``ohlcv`` asset takes
(``data_curator.core.step.audit_and_publish_ohlcv``: stage, audit every row, publish the symbols
that pass, record rejects, the ingest log and the registry, in one transaction), against a
baseline measured in the same run on a separate file: DuckDB's primary-key ``INSERT`` and
``INSERT ... ON CONFLICT DO UPDATE`` (no audit). Also shows that a re-run of the same range adds
0 rows and that the audit published every symbol (a bench that refused rows would time nothing).

    python bench/bench_ingest.py [--symbols 500] [--years 10]
"""

from __future__ import annotations

import argparse
import platform
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import duckdb
import pandas as pd

from quantlab_assets.common.warehouse import connect
from quantlab_assets.data_curator.core.registry import SymbolEntry, SymbolRegistry
from quantlab_assets.data_curator.core.schema import OHLCV
from quantlab_assets.data_curator.core.step import audit_and_publish_ohlcv
from quantlab_assets.data_curator.core.store import ohlcv_rows
from quantlab_assets.data_curator.core.synthetic import SyntheticProvider


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--symbols", type=int, default=500)
    parser.add_argument("--years", type=int, default=10)
    args = parser.parse_args()
    symbols = [f"S{i:04d}" for i in range(args.symbols)]
    start, end = (
        pd.Timestamp("2015-01-02"),
        pd.Timestamp("2015-01-02") + pd.DateOffset(years=args.years) - pd.Timedelta(days=1),
    )

    t0 = time.perf_counter()
    result = SyntheticProvider().fetch(symbols, start, end)
    gen_s = time.perf_counter() - t0
    now = datetime.now(timezone.utc)
    rows = ohlcv_rows(result, "synthetic", "bench", now)
    n = len(rows)
    registry = SymbolRegistry(universe="bench", symbols=tuple(SymbolEntry(symbol=s) for s in symbols))

    def publish(con, run_id: str):
        return audit_and_publish_ohlcv(con, rows, result, symbols, start, end, "synthetic", run_id, now, registry)

    with tempfile.TemporaryDirectory() as tmp:
        con = connect(Path(tmp) / "bench.duckdb")
        t0 = time.perf_counter()
        first = publish(con, "bench-1")
        first_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        again = publish(con, "bench-2")
        rerun_s = time.perf_counter() - t0
        total = con.execute("SELECT count(*) FROM ohlcv").fetchone()[0]
        con.close()
    for outcome in (first, again):
        if outcome.refused or len(outcome.published) != len(symbols) or outcome.rows_written != n:
            raise SystemExit(f"the audit refused rows ({len(outcome.refused)} symbols): nothing comparable was timed")

    with tempfile.TemporaryDirectory() as tmp:
        base_first_s, base_rerun_s = baseline_upsert(Path(tmp) / "baseline.duckdb", rows)

    print(
        f"machine: {platform.machine()} {platform.processor() or ''} python {platform.python_version()} "
        f"duckdb {duckdb.__version__} pandas {pd.__version__}"
    )
    print(
        f"workload: {args.symbols} symbols x {args.years} years = {n:,} rows "
        f"(synthetic generation {gen_s:.2f} s, {n / gen_s:,.0f} rows/s)"
    )
    print(f"audited publish, first load     : {first_s:6.2f} s  {n / first_s:12,.0f} rows/s")
    print(
        f"audited publish, re-run (replace): {rerun_s:6.2f} s  {n / rerun_s:12,.0f} rows/s   "
        f"rows after re-run: {total:,} (added {total - n}; {len(again.published)} symbols published, 0 refused)"
    )
    print(f"baseline PK insert (no audit)     : {base_first_s:6.2f} s  {n / base_first_s:12,.0f} rows/s")
    print(f"baseline ON CONFLICT (no audit)   : {base_rerun_s:6.2f} s  {n / base_rerun_s:12,.0f} rows/s")
    print(
        f"ON CONFLICT time / our re-run time: {base_rerun_s / rerun_s:.2f} (>1: ours faster). Ours also audits "
        "every row, records rejects and the ingest log, and replaces the slice exactly (rows that vanished "
        "upstream go too), all in one transaction."
    )


def baseline_upsert(path: Path, rows: pd.DataFrame) -> tuple[float, float]:
    """The baseline, in its own file (never a warehouse): DuckDB's primary-key ``INSERT`` of the
    rows, then ``INSERT ... ON CONFLICT DO UPDATE`` of the same rows; seconds of each."""
    base = duckdb.connect(str(path))
    try:
        cols = ", ".join(OHLCV.column_names)
        base.execute(OHLCV.ddl()[:-1] + ", PRIMARY KEY (symbol, date))")
        base.register("incoming", rows)
        t0 = time.perf_counter()
        base.execute(f"INSERT INTO ohlcv ({cols}) SELECT {cols} FROM incoming")
        first_s = time.perf_counter() - t0
        updates = ", ".join(f"{c} = excluded.{c}" for c in OHLCV.column_names if c not in ("symbol", "date"))
        t0 = time.perf_counter()
        base.execute(
            f"INSERT INTO ohlcv ({cols}) SELECT {cols} FROM incoming ON CONFLICT (symbol, date) DO UPDATE SET {updates}"
        )
        return first_s, time.perf_counter() - t0
    finally:
        base.close()


if __name__ == "__main__":
    main()
