"""``add_partition_metadata`` stores on every partition what the one-call-per-partition version stored.

The reference below is the previous implementation (one ``context.add_asset_metadata`` per
partition); both run in real single-run backfills of the same multi-asset step over a range with
a holiday, a weekend and a partition without rows, and every partition's stored metadata is compared.
"""

from __future__ import annotations

import dagster as dg
import pandas as pd
import pytest

from quantlab_assets.common.calendar import is_trading_day
from quantlab_assets.metadata import add_partition_metadata
from quantlab_assets.partitions import trading_day_partitions

START, END = "2024-06-14", "2024-07-09"  # 2024-06-19 and 2024-07-04 are NYSE holidays
A, B = dg.AssetKey(["s", "a"]), dg.AssetKey(["s", "b"])


def reference_add_partition_metadata(
    context, dates, asset_key=None, per_day=None, written=True, latest=None, why="an upstream input is missing"
):
    counts = (
        pd.Series(pd.to_datetime(pd.Series(list(dates), dtype="object"))).value_counts()
        if len(dates)
        else pd.Series(dtype=int)
    )
    for key in context.partition_keys:
        day = pd.Timestamp(key)
        if not is_trading_day(day):
            meta = {"dagster/row_count": 0, "session": "no session: 0 rows"}
        elif not written:
            meta = {"dagster/row_count": 0, "session": f"not written: {why}"}
        else:
            meta = {"dagster/row_count": int(counts.get(day, 0)), "session": key}
        meta.update((per_day or {}).get(day, {}))
        if latest and key == context.partition_keys[-1]:
            meta.update(latest)
        context.add_asset_metadata(meta, asset_key=asset_key, partition_key=key)


def build(add, column: bool = False):
    @dg.multi_asset(
        specs=[
            dg.AssetSpec(A, partitions_def=trading_day_partitions),
            dg.AssetSpec(B, partitions_def=trading_day_partitions),
        ],
        backfill_policy=dg.BackfillPolicy.single_run(),
        name="step",
    )
    def step(context):
        days = [d for d in pd.bdate_range(START, END) if is_trading_day(d) and d != pd.Timestamp("2024-06-21")]
        dates = [d for d in days for _ in range(3)]  # three rows a session, none on 06-21
        add(
            context,
            pd.Series(dates, dtype="datetime64[us]") if column else dates,  # a frame's date column, or a list
            asset_key=A,
            per_day={d: {"names": i, "gross": 0.5 * i} for i, d in enumerate(days)},
            latest={"run_summary": dg.MetadataValue.md("**summary**")},
        )
        add(context, [], asset_key=B, written=False, why="the audit refused")
        yield dg.MaterializeResult(asset_key=A, metadata={"universe": 3, "dagster/row_count": len(dates)})
        yield dg.MaterializeResult(asset_key=B, metadata={"not_written": "x"})

    return step


def stored(instance, key) -> dict[str, dict]:
    records = instance.fetch_materializations(key, limit=1000).records
    return {r.partition_key: dict(r.asset_materialization.metadata) for r in records}


@pytest.mark.parametrize("column", [False, True])
@pytest.mark.parametrize("keys", [(START, END), ("2024-06-17", "2024-06-17")])
def test_same_per_partition_metadata_as_one_call_per_partition(keys, column, monkeypatch):
    calls = []
    public = dg.AssetExecutionContext.add_asset_metadata
    monkeypatch.setattr(
        dg.AssetExecutionContext,
        "add_asset_metadata",
        lambda self, *a, **k: calls.append(k.get("partition_key")) or public(self, *a, **k),
    )
    tags = {"dagster/asset_partition_range_start": keys[0], "dagster/asset_partition_range_end": keys[1]}
    results = []
    for add in (reference_add_partition_metadata, add_partition_metadata):
        with dg.instance_for_test() as instance:
            assert dg.materialize([build(add, column)], instance=instance, tags=tags).success
            results.append({k: stored(instance, k) for k in (A, B)})
        if add is reference_add_partition_metadata:
            assert len(calls) == 2 * len(pd.bdate_range(*keys))
            calls.clear()
    assert len(calls) == 2, "one public call per asset, the rest merged at once"
    expected, got = results
    n = len(pd.bdate_range(*keys))
    assert len(got[A]) == len(got[B]) == n
    assert got == expected
    if n > 1:
        assert got[A]["2024-07-04"]["session"].value == "no session: 0 rows"
        assert got[A]["2024-06-21"]["dagster/row_count"].value == 0
        assert got[A]["2024-06-20"]["dagster/row_count"].value == 3
        assert "run_summary" in got[A][keys[1]] and "run_summary" not in got[A][keys[0]]
    assert got[B][keys[0]]["session"].value.startswith("not written: the audit refused")


def test_a_partition_outside_the_run_is_refused():
    from quantlab_assets.dagster_internals import add_asset_metadata_per_partition

    @dg.asset(partitions_def=trading_day_partitions, backfill_policy=dg.BackfillPolicy.single_run())
    def lone(context):
        add_asset_metadata_per_partition(context, {"2024-06-17": {"x": 1}, "2024-06-28": {"x": 2}})

    tags = {"dagster/asset_partition_range_start": "2024-06-17", "dagster/asset_partition_range_end": "2024-06-18"}
    with dg.instance_for_test() as instance:
        with pytest.raises(dg.DagsterInvariantViolationError, match="2024-06-28"):
            dg.materialize([lone], instance=instance, tags=tags)


@pytest.mark.parametrize("keys", [(START, END), ("2024-06-17", "2024-06-18")])
def test_a_backfill_keeps_the_schema_and_previews_on_its_last_partition_only(keys):
    from quantlab_assets.common.gates import GateResult
    from quantlab_assets.common.publish import Published
    from quantlab_assets.metadata import DETAIL_PARTITIONS, published_results

    schema = dg.TableSchema(columns=[dg.TableColumn("date", "DATE")])

    @dg.asset(partitions_def=trading_day_partitions, backfill_policy=dg.BackfillPolicy.single_run())
    def contract(context):
        outcome = Published(True, [GateResult("rule", True, "fine")])
        metadata = {"dagster/row_count": 3, "dagster/column_schema": schema, "preview": dg.MetadataValue.md("| a |")}
        yield from published_results(context, outcome, context.asset_key, metadata)

    tags = {"dagster/asset_partition_range_start": keys[0], "dagster/asset_partition_range_end": keys[1]}
    with dg.instance_for_test() as instance:
        assert dg.materialize([contract], instance=instance, tags=tags).success
        got = stored(instance, dg.AssetKey("contract"))
    partitions = list(pd.bdate_range(*keys).strftime("%Y-%m-%d"))
    assert sorted(got) == partitions
    backfill = len(partitions) > DETAIL_PARTITIONS
    for key in partitions:
        heavy_here = not backfill or key == keys[1]
        assert ("dagster/column_schema" in got[key]) == heavy_here, key
        assert ("preview" in got[key]) == heavy_here, key
    assert got[keys[1]]["dagster/column_schema"].value == schema
