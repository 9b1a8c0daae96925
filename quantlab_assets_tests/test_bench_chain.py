"""The bench's own rules worth pinning: the pooled instance config Dagster must accept, and the
dates a core is timed over being exactly the step's."""

import sys
from datetime import date
from pathlib import Path

import dagster as dg
import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

import bench_chain  # noqa: E402  (bench/ is scripts, not a package)
import bench_cores  # noqa: E402


def test_pooled_instance_keeps_the_run_limit_and_limits_each_pool_to_one_step(tmp_path, monkeypatch):
    stock = (ROOT / "dagster.yaml").read_text()
    (tmp_path / "dagster.yaml").write_text(bench_chain.pooled(stock))
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    with dg.DagsterInstance.from_config(str(tmp_path)) as instance:  # refuses a limit set twice
        concurrency = instance.get_concurrency_config()
        assert instance.event_log_storage.supports_global_concurrency_limits
    runs = yaml.safe_load(stock)["run_coordinator"]["config"]["max_concurrent_runs"]
    assert concurrency.run_queue_config.max_concurrent_runs == runs
    assert concurrency.pool_config.default_pool_limit == 1


def test_core_window_is_the_dates_the_partition_range_owns():
    # Friday 2024-03-08 owns its weekend, as partition_dates says.
    assert bench_cores.window("2024-03-01", "2024-03-08") == (date(2024, 3, 1), date(2024, 3, 10))
    assert bench_cores.window("2024-03-04", "2024-03-05") == (date(2024, 3, 4), date(2024, 3, 5))
