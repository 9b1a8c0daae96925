"""Dagster's bookkeeping per asset-partition on each instance storage, side by side in one run.

A bare one-asset graph (run_all.PROBE: no compute, no DuckDB) backfilled over N weekday partitions
in one run (the range tags `dagster asset materialize --partition-range` sets), on:

- Dagster's stock `storage: sqlite` and QuantLabSqliteStorage (the repository's dagster.yaml);
- Dagster's stock `storage: postgres` as installed (no DAGSTER_EVENT_BATCH_SIZE: every event alone),
  the same with DAGSTER_EVENT_BATCH_SIZE=1000 (dagster-postgres's own store_event_batch), and
  QuantLabPostgresStorage (docs/dagster.postgres.yaml), each in a fresh database on a private
  PostgreSQL server on 127.0.0.1 (scripts/postgres.sh; or the one DAGSTER_PG_* names).

Each storage gets a one-partition run, then the N-partition single run, both timed inside one
process (imports and instance set-up excluded): the cost per asset-partition is the growth from 1
to N partitions, i.e. a planned event and a materialization per partition wherever they are written
(the planned ones at run creation, outside the step). --chain adds one daily partition of the whole
chain on both repository storages, where the step events that are never batched dominate.

    python bench/bench_bookkeeping.py              # stock storages 2 years (522 partitions), ours 10 (2,610)
    python bench/bench_bookkeeping.py --years 10   # the stock storages over 10 years too (many minutes)
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
from run_all import PROBE, STOCK_STORAGE, materialize, run, steps  # noqa: E402  (one probe for every bench)

PG_VARS = ("DAGSTER_PG_HOST", "DAGSTER_PG_PORT", "DAGSTER_PG_USERNAME", "DAGSTER_PG_PASSWORD", "DAGSTER_PG_DB")


def sqlite_config(stock: bool) -> str:
    config = yaml.safe_load((ROOT / "dagster.yaml").read_text())
    if stock:
        config["storage"] = yaml.safe_load(STOCK_STORAGE)["storage"]
    return yaml.safe_dump(config)


def postgres_config(stock: bool) -> str:
    config = yaml.safe_load((ROOT / "docs" / "dagster.postgres.yaml").read_text())
    if stock:
        config["storage"] = {"postgres": {"postgres_db": config["storage"]["custom"]["config"]["postgres_db"]}}
    return yaml.safe_dump(config)


class Server:
    """The PostgreSQL server to measure on: DAGSTER_PG_* if set, else a private one for this run."""

    def __init__(self):
        self.dir = None
        if not all(os.getenv(v) for v in PG_VARS):
            # Its own directory: as root the server runs as `postgres`, which must reach the data dir.
            self.dir = Path(tempfile.mkdtemp(prefix="quantlab-pg-bench."))
            subprocess.run(["bash", str(ROOT / "scripts" / "postgres.sh"), "start", str(self.dir)], check=True)
            env = dict(
                line.removeprefix("export ").split("=", 1)
                for line in (self.dir / "env").read_text().splitlines()
                if "=" in line
            )
        else:
            env = {v: os.environ[v] for v in PG_VARS}
        self.settings = env

    def new_database(self) -> str:
        import psycopg2
        from psycopg2 import sql

        name = f"quantlab_bench_{uuid.uuid4().hex[:12]}"
        conn = psycopg2.connect(
            host=self.settings["DAGSTER_PG_HOST"],
            port=int(self.settings["DAGSTER_PG_PORT"]),
            user=self.settings["DAGSTER_PG_USERNAME"],
            password=self.settings["DAGSTER_PG_PASSWORD"],
            dbname=self.settings["DAGSTER_PG_DB"],
            connect_timeout=10,
        )
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        conn.close()
        return name

    def stop(self) -> None:
        if self.dir is not None:
            subprocess.run(["bash", str(ROOT / "scripts" / "postgres.sh"), "stop", str(self.dir)], check=False)
            shutil.rmtree(self.dir, ignore_errors=True)


TIMER = """
import json, sys, time
import dagster as dg
sys.path.insert(0, sys.argv[1])
from probe import defs

first, last = sys.argv[2], sys.argv[3]
job = defs.resolve_implicit_global_asset_job_def()
with dg.DagsterInstance.get() as instance:
    timings = {}
    for name, kwargs in (("one", {"partition_key": first}),
                         ("range", {"tags": {"dagster/asset_partition_range_start": first,
                                             "dagster/asset_partition_range_end": last}})):
        t0 = time.perf_counter()
        result = job.execute_in_process(instance=instance, **kwargs)
        took = time.perf_counter() - t0
        assert result.success
        step = sum(e.event_specific_data.duration_ms for e in result.all_events if e.is_step_success) / 1000
        timings[name] = {"wall": took, "step": step}
print("TIMINGS", json.dumps(timings), flush=True)
"""


def measure(tmp: Path, label: str, config: str, env_extra, partitions: str, n: int) -> dict:
    """A one-partition run, then the n-partition single run, timed inside one process (imports and
    instance set-up excluded): the cost per asset-partition is the growth from 1 to n partitions
    (a planned event and a materialization each, wherever they are written)."""
    home = tmp / f"home_{len(list(tmp.glob('home_*')))}"
    home.mkdir()
    (home / "dagster.yaml").write_text(config)
    extra = env_extra() if callable(env_extra) else env_extra
    env = {**os.environ, **extra, "DAGSTER_HOME": str(home), "QUANTLAB_ARTIFACTS": str(home / "artifacts")}
    for var in ("DAGSTER_EVENT_BATCH_SIZE", "DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS"):
        if var not in extra:
            env.pop(var, None)
    first, last = partitions.split("...")
    _, out = run([sys.executable, "-c", TIMER, str(tmp), first, last], env=env)
    timings = json.loads(next(line for line in out.splitlines() if line.startswith("TIMINGS "))[8:])
    one, full = timings["one"], timings["range"]
    row = {
        "label": label,
        "n": n,
        "one": one["wall"],
        "wall": full["wall"],
        "step": full["step"],
        "per": (full["wall"] - one["wall"]) / (n - 1),
        "per_step": full["step"] / n,
    }
    print(
        f"{label:<62} 1 partition {one['wall']:5.2f} s, {n} partitions {full['wall']:6.2f} s "
        f"(step {full['step']:5.2f} s): {row['per'] * 1000:6.2f} ms per asset-partition",
        flush=True,
    )
    return row


def daily_chain(tmp: Path, label: str, config: str, env_extra: dict) -> str:
    """One daily partition of the whole chain (after its history is ingested): what a researcher
    or the schedule runs every day, where the per-event (unbatched) step events dominate."""
    from quantlab_assets.common.calendar import shift_sessions

    home = tmp / f"chain_{len(list(tmp.glob('chain_*')))}"
    home.mkdir()
    (home / "dagster.yaml").write_text(config)
    env = {
        **os.environ,
        **env_extra,
        "DAGSTER_HOME": str(home),
        "QUANTLAB_DB": str(home / "lab.duckdb"),
        "QUANTLAB_ARTIFACTS": str(home / "artifacts"),
    }
    day = "2024-06-03"
    materialize(env, "ohlcv", f"{shift_sessions(day, -300).date()}...{shift_sessions(day, -1).date()}")
    wall, log = materialize(env, "ohlcv*", day)
    line = f"| {label} | {wall:.1f} s | {sum(steps(log).values()):.1f} s |"
    print(line, flush=True)
    return line


def main() -> list[str]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--years", type=int, default=2, help="years of weekday partitions from 2015-01-01 (default 2)")
    parser.add_argument(
        "--years-batched",
        type=int,
        default=10,
        help="years for the two batching storages, whose cost per partition is small (default 10)",
    )
    parser.add_argument(
        "--chain", action="store_true", help="also one daily partition of the whole chain on each repository storage"
    )
    args = parser.parse_args()
    import pandas as pd

    def span(years: int) -> tuple[str, int]:
        days = pd.bdate_range("2015-01-01", f"{2015 + years - 1}-12-31")  # the probe's weekday partitions
        return f"{days[0].date()}...{days[-1].date()}", len(days)

    (partitions, n), (long_partitions, long_n) = span(args.years), span(args.years_batched)
    print(
        f"workload: one bare asset, {n} weekday partitions ({partitions}) in one run, {long_n} "
        f"({long_partitions}) on the batching storages, in-process executor"
    )
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        (tmp / "probe.py").write_text(PROBE)
        server = Server()
        try:
            pg = dict(server.settings)

            def fresh_db(**extra):
                return lambda: {**pg, "DAGSTER_PG_DB": server.new_database(), **extra}

            rows = [
                measure(tmp, "SQLite: Dagster's stock `storage: sqlite`", sqlite_config(True), {}, partitions, n),
                measure(
                    tmp,
                    "SQLite: QuantLabSqliteStorage (dagster.yaml)",
                    sqlite_config(False),
                    {},
                    long_partitions,
                    long_n,
                ),
                measure(
                    tmp,
                    "Postgres: stock `storage: postgres`, as installed",
                    postgres_config(True),
                    fresh_db(),
                    partitions,
                    n,
                ),
                measure(
                    tmp,
                    "Postgres: stock, DAGSTER_EVENT_BATCH_SIZE=1000",
                    postgres_config(True),
                    fresh_db(DAGSTER_EVENT_BATCH_SIZE="1000"),
                    partitions,
                    n,
                ),
                measure(
                    tmp,
                    "Postgres: QuantLabPostgresStorage (docs/dagster.postgres.yaml)",
                    postgres_config(False),
                    fresh_db(),
                    long_partitions,
                    long_n,
                ),
            ]
            chain = []
            if args.chain:
                chain = [
                    "",
                    "One daily partition of the whole chain (`dagster asset materialize --select 'ohlcv*'`):",
                    "",
                    "| instance storage | wall | sum of steps |",
                    "|---|---|---|",
                    daily_chain(tmp, "QuantLabSqliteStorage (dagster.yaml)", sqlite_config(False), {}),
                    daily_chain(
                        tmp,
                        "QuantLabPostgresStorage (docs/dagster.postgres.yaml)",
                        postgres_config(False),
                        fresh_db()(),
                    ),
                ]
        finally:
            server.stop()
    embedded = rows[1]
    lines = [
        "| instance storage | 1-partition run | N-partition run | of which the step | **per asset-partition** |",
        "|---|---|---|---|---|",
    ]
    lines += [
        f"| {r['label']} | {r['one']:.2f} s | N={r['n']}: {r['wall']:.2f} s | {r['step']:.2f} s | "
        f"**{r['per'] * 1000:.2f} ms** |"
        for r in rows
    ]
    lines.append("")
    for r in rows[2:]:
        lines.append(
            f"- {r['label']}: {r['per'] / embedded['per']:.1f}x the embedded default per asset-partition, "
            f"{r['one'] / embedded['one']:.1f}x its one-partition run"
        )
    lines += chain
    print("\n".join(lines))
    return lines


if __name__ == "__main__":
    main()
