"""A real writer process for the Delta concurrency tests:

    python -m quantlab_assets_tests.support.delta_writer URL STRATEGY N RETRIES

replaces the slice (STRATEGY, 2024-01-02..2024-01-05) N times, write i setting every weight to i,
and prints one JSON line: {"writes": N, "conflicts": retries logged, "error": message or null}.
"""

from __future__ import annotations

import json
import logging
import sys

import pandas as pd

from quantlab_assets.common import delta_store, warehouse
from quantlab_assets.common.warehouse import Column, TableSchema

TARGETS = TableSchema(
    name="targets",
    columns=(
        Column("strategy", "VARCHAR", False),
        Column("symbol", "VARCHAR", False),
        Column("date", "DATE", False),
        Column("weight", "DOUBLE"),
    ),
)
START, END = "2024-01-02", "2024-01-05"
SYMBOLS = ("AAA", "BBB", "CCC")


def frame(strategy: str, value: float) -> pd.DataFrame:
    days = pd.bdate_range(START, END)
    return pd.DataFrame(
        [{"strategy": strategy, "symbol": s, "date": d, "weight": value} for d in days for s in SYMBOLS]
    )


class _Count(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.conflicts = 0

    def emit(self, record: logging.LogRecord) -> None:
        self.conflicts += "conflicted with a concurrent commit" in record.getMessage()


def main(url: str, strategy: str, n: int, retries: int) -> dict:
    counter = _Count()
    delta_store.logger.addHandler(counter)
    store = delta_store.DeltaStore(url, retries=retries, backoff_s=0.01)
    error = None
    done = 0
    try:
        for i in range(n):
            session = delta_store.DeltaSession(store)
            try:
                warehouse.replace_strategy_slice(session, TARGETS, frame(strategy, float(i)), strategy, START, END)
            finally:
                session.close()
            done += 1
    except delta_store.DeltaConflict as exc:
        error = str(exc)
    return {"writes": done, "conflicts": counter.conflicts, "error": error}


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))))
