"""``core.csv_artifact.merge_csv`` writes the bytes pandas' ``to_csv`` writes for the same rows.

The pandas version it replaced (the reference below, for a key written again) re-read the file with
``pd.read_csv``, whose default float parser is not round-trip exact: it rewrote the earlier
strategies' fills with the last digit changed. Appending keeps every fill exactly as stored."""

import numpy as np
import pandas as pd
import pytest

from quantlab_assets.backtest_engine.core import csv_artifact
from quantlab_assets.backtest_engine.core.csv_artifact import merge_csv


def pandas_merge(path, rows, key_column, key):
    """The reference: the pandas version (formerly ``ArtifactsResource.merge_csv``)."""
    if path.exists():
        existing = pd.read_csv(path)
        rows = pd.concat([existing[existing[key_column] != key], rows], ignore_index=True)
    rows.to_csv(path, index=False)


def fills(strategy: str, n: int, seed: int) -> pd.DataFrame:
    """Fills shaped like the backtest's: dates, a NaT decision, signed floats of every magnitude."""
    rng = np.random.default_rng(seed)
    dates = pd.bdate_range("2015-01-02", periods=max(n // 3, 1)).to_numpy()
    date = np.sort(rng.choice(dates, n))
    shares = rng.standard_normal(n) * 10.0 ** rng.integers(-9, 17, n)
    shares[: min(n, 3)] = [1.0, -0.0, 1e16][: min(n, 3)]
    price = rng.uniform(1, 500, n)
    price[rng.random(n) < 0.1] = np.nan
    frame = pd.DataFrame(
        {
            "date": date,
            "strategy": strategy,
            "decision_date": date - np.timedelta64(1, "D"),
            "symbol": rng.choice(["AAPL", "BRK.B", "G0001", "MSFT"], n).astype(object),
            "side": np.where(shares > 0, "buy", "sell").astype(object),
            "shares": shares,
            "price": price,
            "notional": shares * price,
            "cost": np.abs(shares * price) * 6e-4,
        }
    )
    frame.loc[frame.index[: min(n, 2)], "decision_date"] = pd.NaT
    return frame


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_one_strategy_then_another_same_bytes_as_pandas(tmp_path, seed):
    ours = tmp_path / "ours.csv"
    written = []
    for i, name in enumerate(["momentum", "trend", "value"]):
        rows = fills(name, 500 + 37 * i, seed + 10 * i)
        written.append(rows)
        merge_csv(ours, rows, "strategy", name)
        assert ours.read_text() == pd.concat(written, ignore_index=True).to_csv(index=False)
    assert not list(tmp_path.glob(".*part"))  # the temporary part file is gone
    back = pd.read_csv(ours, float_precision="round_trip")
    for column in ("shares", "price", "notional", "cost"):  # every fill exactly as it was given
        expected = pd.concat(written, ignore_index=True)[column].to_numpy()
        assert np.array_equal(back[column].to_numpy(), expected, equal_nan=True)


def test_the_same_key_again_replaces_its_rows(tmp_path):
    ours, ref = tmp_path / "ours.csv", tmp_path / "ref.csv"
    for name, seed in (("a", 0), ("b", 1), ("a", 2)):
        rows = fills(name, 200, seed)
        merge_csv(ours, rows, "strategy", name)
        pandas_merge(ref, rows, "strategy", name)
    assert ours.read_bytes() == ref.read_bytes()
    assert pd.read_csv(ours)["strategy"].value_counts().to_dict() == {"b": 200, "a": 200}


def test_no_rows_and_awkward_values_go_through_pandas(tmp_path):
    awkward = fills("s", 20, 3)
    awkward.loc[0, "symbol"] = "A,B"  # pandas quotes it
    awkward.loc[1, "side"] = ""
    assert csv_artifact._duckdb_select(awkward) is None
    timed = fills("s", 5, 4)
    timed.loc[0, "date"] = pd.Timestamp("2015-01-02 10:30")  # pandas then writes the times
    assert csv_artifact._duckdb_select(timed) is None
    for frame in (awkward, timed, fills("s", 0, 5)):
        ours, ref = tmp_path / "ours.csv", tmp_path / "ref.csv"
        merge_csv(ours, frame, "strategy", "s")
        pandas_merge(ref, frame, "strategy", "s")
        assert ours.read_bytes() == ref.read_bytes()
        ours.unlink()
        ref.unlink()


def test_appendable_only_with_the_same_header_and_without_the_key(tmp_path):
    path = tmp_path / "t.csv"
    path.write_bytes(b"date,strategy\n2024-01-02,momentum\n")
    assert csv_artifact._appendable(path, b"date,strategy", b"trend")
    assert not csv_artifact._appendable(path, b"date,strategy", b"momentum")
    assert not csv_artifact._appendable(path, b"date,strategy,symbol", b"trend")
    assert not csv_artifact._appendable(path, b"date,strategy", b"")
