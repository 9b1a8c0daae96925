"""Writing ``ohlcv`` around its audit, for tests only.

Production has one write path into ``ohlcv``, ``data_curator.core.step.audit_and_publish_ohlcv``
(a test says no other production code writes it). The gate over *stored* rows must still catch
bad rows that got in some other way (an older version, a hand edit, a restore), and only a write
that skips the audit can put them there: that is what this helper is for, and its name says so.
"""

from __future__ import annotations

from collections.abc import Sequence

import duckdb
import pandas as pd

from quantlab_assets.common.warehouse import replace_slice
from quantlab_assets.data_curator.core.schema import OHLCV


def write_ohlcv_unaudited(
    con: duckdb.DuckDBPyConnection, rows: pd.DataFrame, start, end, symbols: Sequence[str]
) -> int:
    """Replace ``symbols``' rows over [start, end] with ``rows`` in one transaction, unaudited."""
    return replace_slice(con, OHLCV, rows, start, end, key_column="symbol", keys=symbols)
