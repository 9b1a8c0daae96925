"""A scale-out deployment on one machine, every part on 127.0.0.1 (docs/scaling.md, "Deployment"):

* PostgreSQL for Dagster's run, event and schedule storage (the caller's DAGSTER_PG_* server),
* Redis as the Celery broker and result backend (``scripts/redis.sh``),
* an S3 bucket (moto in server mode) holding the Delta warehouse,
* N Celery workers (``dagster-celery worker start``), each in its own working directory with its
  own DAGSTER_HOME, symbol registry copy and artifact folder: nothing is shared between them but
  the services' URLs and the warehouse URL,
* a launcher directory from which runs are submitted (``dagster asset materialize -m
  quantlab_assets.celery_definitions``).

Used by the system test (quantlab_assets_tests/test_celery_system.py) and bench_scaleout.py.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from quantlab_assets_tests.support.s3_server import BUCKET, s3_server  # noqa: E402

PG_VARS = ("DAGSTER_PG_HOST", "DAGSTER_PG_PORT", "DAGSTER_PG_USERNAME", "DAGSTER_PG_PASSWORD", "DAGSTER_PG_DB")
WORKER_READY_TIMEOUT_S = 120.0
RUN_TIMEOUT_S = 3600.0


def chain_selection() -> str:
    """Everything downstream of ohlcv but paper trading (issue 25), which keeps its ledger on the
    DuckDB file by design and refuses the Delta backend, as the comma list `dagster asset
    materialize --select` takes (it does not take `and not group:`)."""
    import dagster as dg

    from quantlab_assets.definitions import defs

    chain = dg.AssetSelection.assets("ohlcv").downstream() - dg.AssetSelection.groups("execution")
    return ",".join(sorted(k.to_user_string() for k in chain.resolve(defs.resolve_asset_graph())))


class RedisUnavailable(RuntimeError):
    """redis-server is not installed and cannot be (scripts/redis.sh exit code 2)."""


@dataclass
class Cluster:
    root: Path
    env: dict[str, str]  # what every part reads: services' URLs, the warehouse URL
    workers: list[Path] = field(default_factory=list)

    @property
    def delta_url(self) -> str:
        return self.env["QUANTLAB_DELTA_URL"]

    def part_env(self, home: Path) -> dict[str, str]:
        """The environment of one part (a worker or the launcher) run from ``home``."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("QUANTLAB_", "DAGSTER_"))}
        env.update(self.env)
        env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
        env.update(
            {
                "DAGSTER_HOME": str(home / "dagster_home"),
                "QUANTLAB_ARTIFACTS": str(home / "artifacts"),
                "QUANTLAB_DB": str(home / "unused.duckdb"),  # the delta backend never opens it
            }
        )
        if (home / "symbols.yaml").exists():
            env["QUANTLAB_SYMBOLS"] = str(home / "symbols.yaml")
        return env

    def materialize(self, select: str, first: str, last: str) -> subprocess.CompletedProcess:
        """One run from the launcher directory: ``select`` over partitions first..last."""
        proc = self.start_run(select, first, last)
        stdout, stderr = proc.communicate(timeout=RUN_TIMEOUT_S)
        return subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)

    def start_run(self, select: str, first: str, last: str) -> subprocess.Popen:
        """:meth:`materialize` without waiting for it."""
        launcher = self.root / "launcher"
        return subprocess.Popen(
            [
                *_dagster(),
                "asset",
                "materialize",
                "-m",
                "quantlab_assets.celery_definitions",
                "--select",
                select,
                "--partition-range",
                f"{first}...{last}",
            ],
            cwd=launcher,
            env=self.part_env(launcher),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )


def _dagster() -> list[str]:
    return [str(Path(sys.executable).parent / "dagster")]


def _prepare_home(home: Path, symbols: Path | None) -> None:
    (home / "dagster_home").mkdir(parents=True, exist_ok=True)
    shutil.copy(ROOT / "docs" / "dagster.postgres.yaml", home / "dagster_home" / "dagster.yaml")
    if symbols is not None:
        shutil.copy(symbols, home / "symbols.yaml")


@contextmanager
def redis_server(directory: Path) -> Iterator[dict[str, str]]:
    script = ROOT / "scripts" / "redis.sh"
    rc = subprocess.run(["bash", str(script), "install"], capture_output=True, text=True, timeout=600)
    if rc.returncode == 2:
        raise RedisUnavailable(rc.stdout.strip())
    started = subprocess.run(
        ["bash", str(script), "start", str(directory)], capture_output=True, text=True, timeout=120
    )
    if started.returncode != 0:
        raise RuntimeError(f"scripts/redis.sh start failed: {started.stdout}{started.stderr}")
    try:
        env = {}
        for line in (directory / "env").read_text().splitlines():
            key, _, value = line.removeprefix("export ").partition("=")
            env[key] = value
        yield env
    finally:
        subprocess.run(["bash", str(script), "stop", str(directory)], capture_output=True, timeout=120)


def _start_worker(cluster: Cluster, name: str, symbols: Path | None) -> subprocess.Popen:
    home = cluster.root / name
    _prepare_home(home, symbols)
    log = open(home / "worker.log", "w")  # noqa: SIM115  (closed with the process)
    proc = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "dagster-celery"),
            "worker",
            "start",
            "-A",
            "dagster_celery.app",
            "-y",
            str(ROOT / "docs" / "celery_worker.yaml"),
            "-n",
            name,
            "--",
            "-c",
            "1",  # one step at a time per worker: N workers, N steps at once
        ],
        cwd=home,
        env=cluster.part_env(home),
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group: stopped as one, nothing else touched
    )
    cluster.workers.append(home)
    return proc


def _wait_ready(cluster: Cluster, procs: list[subprocess.Popen]) -> None:
    deadline = time.monotonic() + WORKER_READY_TIMEOUT_S
    for home, proc in zip(cluster.workers, procs):
        while f"{home.name}@" not in (text := (home / "worker.log").read_text()) or " ready." not in text:
            if proc.poll() is not None:
                raise RuntimeError(f"worker {home.name} exited:\n{text[-3000:]}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"worker {home.name} not ready in {WORKER_READY_TIMEOUT_S:g} s:\n{text[-3000:]}")
            time.sleep(0.5)


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)  # the group this module started (dagster-celery + celery)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)


@contextmanager
def local_cluster(root: Path, workers: int = 2, symbols: Path | None = None) -> Iterator[Cluster]:
    """Redis, an S3 bucket and ``workers`` Celery workers under ``root``; PostgreSQL from the
    caller's DAGSTER_PG_* variables (scripts/postgres.sh start writes them)."""
    missing = [v for v in PG_VARS if not os.environ.get(v)]
    if missing:
        raise RuntimeError(f"no PostgreSQL configured ({', '.join(missing)} unset): bash scripts/postgres.sh start DIR")
    with ExitStack() as stack:
        broker = stack.enter_context(redis_server(root / "redis"))
        s3 = stack.enter_context(s3_server())
        env = {v: os.environ[v] for v in PG_VARS} | broker | s3
        env |= {"QUANTLAB_WAREHOUSE_BACKEND": "delta", "QUANTLAB_DELTA_URL": f"s3://{BUCKET}/warehouse"}
        cluster = Cluster(root, env)
        _prepare_home(root / "launcher", symbols)
        procs = []
        try:
            for i in range(workers):
                procs.append(_start_worker(cluster, f"worker{i + 1}", symbols))
            _wait_ready(cluster, procs)
            yield cluster
        finally:
            for proc in procs:
                _stop(proc)
