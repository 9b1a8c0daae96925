"""Dagster's bookkeeping per asset-partition on each instance storage, side by side in one run.

A bare one-asset graph (run_all.PROBE: no compute, no DuckDB) backfilled over N weekday partitions
in one run with `dagster asset materialize --partition-range`, on:

- Dagster's stock `storage: sqlite` and QuantLabSqliteStorage (the repository's dagster.yaml);
- Dagster's stock `storage: postgres` as installed (no DAGSTER_EVENT_BATCH_SIZE: every event alone),
  the same with DAGSTER_EVENT_BATCH_SIZE=1000 (dagster-postgres's own store_event_batch), and
  QuantLabPostgresStorage (docs/dagster.postgres.yaml), each in a fresh database on a private
  PostgreSQL server on 127.0.0.1 (scripts/postgres.sh; or the one DAGSTER_PG_* names).

Each storage runs at two sizes (1 year, then --years). The marginal cost per asset-partition is the
wall time's growth between them divided by the extra partitions: a planned event and a
materialization per partition, wherever they are written, without process start and instance
set-up (the "fixed per run" column). "In the step" counts the probe step's materializations only.

    python bench/bench_bookkeeping.py              # 1 and 2 years: 261 and 522 partitions
    python bench/bench_bookkeeping.py --years 10   # 1 and 10 years (the stock storages take minutes)
"""

from __future__ import annotations

import argparse
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
from run_all import DAGSTER, PROBE, STOCK_STORAGE, run, steps  # noqa: E402  (one probe for every bench)

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
            env = dict(line.removeprefix("export ").split("=", 1)
                       for line in (self.dir / "env").read_text().splitlines() if "=" in line)
        else:
            env = {v: os.environ[v] for v in PG_VARS}
        self.settings = env

    def new_database(self) -> str:
        import psycopg2
        from psycopg2 import sql

        name = f"quantlab_bench_{uuid.uuid4().hex[:12]}"
        conn = psycopg2.connect(host=self.settings["DAGSTER_PG_HOST"], port=int(self.settings["DAGSTER_PG_PORT"]),
                                user=self.settings["DAGSTER_PG_USERNAME"],
                                password=self.settings["DAGSTER_PG_PASSWORD"],
                                dbname=self.settings["DAGSTER_PG_DB"], connect_timeout=10)
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        conn.close()
        return name

    def stop(self) -> None:
        if self.dir is not None:
            subprocess.run(["bash", str(ROOT / "scripts" / "postgres.sh"), "stop", str(self.dir)], check=False)
            shutil.rmtree(self.dir, ignore_errors=True)


def measure(tmp: Path, label: str, config: str, env_extra, sizes: list[tuple[str, int]]) -> dict:
    """One fresh DAGSTER_HOME (and database) per size; the marginal cost per asset-partition is the
    wall time's growth between the sizes, so process start and instance set-up drop out."""
    walls, step, n = [], 0.0, 0
    for partitions, n in sizes:
        home = tmp / f"home_{len(list(tmp.glob('home_*')))}"
        home.mkdir()
        (home / "dagster.yaml").write_text(config)
        extra = env_extra() if callable(env_extra) else env_extra
        env = {**os.environ, **extra, "DAGSTER_HOME": str(home), "QUANTLAB_ARTIFACTS": str(home / "artifacts")}
        for var in ("DAGSTER_EVENT_BATCH_SIZE", "DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS"):
            if var not in extra:
                env.pop(var, None)
        wall, log = run([DAGSTER, "asset", "materialize", "-f", str(tmp / "probe.py"), "--select", "probe",
                         "--partition-range", partitions], env=env)
        walls.append(wall)
        step = steps(log)["probe"]
    (_, n0), (_, n1) = sizes
    marginal = (walls[1] - walls[0]) / (n1 - n0)
    row = {"label": label, "walls": walls, "step": step, "per_step": step / n, "marginal": marginal,
           "fixed": walls[0] - n0 * marginal}
    print(f"{label:<62} wall {walls[0]:5.1f} / {walls[1]:5.1f} s  step {step / n * 1000:6.2f} ms/partition  "
          f"marginal {marginal * 1000:6.2f} ms/partition  fixed {row['fixed']:5.1f} s", flush=True)
    return row


def main() -> list[str]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--years", type=int, default=2, help="the larger size, years from 2015-01-01 (default 2)")
    args = parser.parse_args()
    import pandas as pd

    sizes = []
    for years in (1, args.years):
        days = pd.bdate_range("2015-01-01", f"{2015 + years - 1}-12-31")  # the probe's weekday partitions
        sizes.append((f"{days[0].date()}...{days[-1].date()}", len(days)))
    print(f"workload: one bare asset, {sizes[0][1]} and {sizes[1][1]} weekday partitions from 2015-01-01, "
          "each in one run, in-process executor")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        (tmp / "probe.py").write_text(PROBE)
        server = Server()
        try:
            pg = dict(server.settings)

            def fresh_db(**extra):
                return lambda: {**pg, "DAGSTER_PG_DB": server.new_database(), **extra}

            rows = [
                measure(tmp, "SQLite: Dagster's stock `storage: sqlite`", sqlite_config(True), {}, sizes),
                measure(tmp, "SQLite: QuantLabSqliteStorage (dagster.yaml)", sqlite_config(False), {}, sizes),
                measure(tmp, "Postgres: stock `storage: postgres`, as installed", postgres_config(True),
                        fresh_db(), sizes),
                measure(tmp, "Postgres: stock, DAGSTER_EVENT_BATCH_SIZE=1000", postgres_config(True),
                        fresh_db(DAGSTER_EVENT_BATCH_SIZE="1000"), sizes),
                measure(tmp, "Postgres: QuantLabPostgresStorage (docs/dagster.postgres.yaml)", postgres_config(False),
                        fresh_db(), sizes),
            ]
        finally:
            server.stop()
    embedded = rows[1]
    (_, n0), (_, n1) = sizes
    lines = [f"| instance storage | wall, {n0} partitions | wall, {n1} partitions | per asset-partition: marginal "
             "(wall growth) | in the step | fixed per run |", "|---|---|---|---|---|---|"]
    lines += [f"| {r['label']} | {r['walls'][0]:.1f} s | {r['walls'][1]:.1f} s | **{r['marginal'] * 1000:.2f} ms** | "
              f"{r['per_step'] * 1000:.2f} ms | {r['fixed']:.1f} s |" for r in rows]
    lines.append("")
    for r in rows[2:]:
        lines.append(f"- {r['label']}: {r['marginal'] / embedded['marginal']:.1f}x the embedded default's marginal "
                     f"cost per asset-partition, {r['fixed'] - embedded['fixed']:+.1f} s fixed per run")
    print("\n".join(lines))
    return lines


if __name__ == "__main__":
    main()
