"""Resources shared by every team: the DuckDB warehouse and the run artifact folder."""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Any

import dagster as dg
from dagster_duckdb import DuckDBResource
from pydantic import Field, PrivateAttr

from quantlab_assets.common import artifacts, settings, warehouse, warehouse_guard


class WarehouseResource(DuckDBResource):
    """The DuckDB file every contract lives in (``database``, else ``QUANTLAB_DB``).

    Connecting goes through ``common.warehouse.connect``: a path that is not a DuckDB file
    (a CSV, a Parquet file, a directory) is refused naming it, and while another process
    holds the file's lock (DuckDB allows one writer process per file) it waits at most
    ``lock_wait_s``, logging who holds it, then fails saying what to close.

    Inside a run it also guards the file (``common.warehouse_guard``): only a connection asked
    with ``create=True`` (the ingest) may create a missing file; the first connection of a run
    records the file's identity in the run's tags and every later step must find that same file;
    a file not yet read back by this process since it last changed is read back whole before it
    is handed out, so nothing is written into a damaged file.
    """

    # Optional here (DuckDBResource requires it): unset, the run reads QUANTLAB_DB when it connects.
    database: str | None = Field(  # type: ignore[assignment]
        default=None, description="DuckDB file; unset: QUANTLAB_DB, else data/quantlab.duckdb"
    )
    lock_wait_s: float | None = Field(
        default=None,
        ge=0,
        le=settings.MAX_LOCK_WAIT_S,
        allow_inf_nan=False,
        description="seconds to wait for another process's DuckDB lock; unset: QUANTLAB_DB_LOCK_WAIT_S, else 60",
    )

    _run: tuple[Any, str] | None = PrivateAttr(default=None)  # (instance, run_id) inside a run

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        if context.instance is not None and context.run is not None:
            self._run = (context.instance, context.run.run_id)

    def path(self) -> Path:
        return Path(self.database) if self.database is not None else settings.db_path()

    @contextmanager
    def get_connection(self, on_wait=None, create: bool = False):
        """A connection to the warehouse; ``create``: a missing file may be created (the ingest only)."""
        if settings.warehouse_backend() == "delta":  # Delta tables at QUANTLAB_DELTA_URL (docs/scaling.md)
            from quantlab_assets.common import delta_store  # the `scale` extra

            session = delta_store.DeltaSession(delta_store.DeltaStore.from_settings())
            try:
                yield session
            finally:
                session.close()
            return
        # The DuckDB file's guards (issue 24, docs/operations.md); the Delta backend has its own.
        path = self.path()
        started_with = warehouse_guard.run_identity(*self._run) if self._run else None
        warehouse_guard.check_same_file(path, started_with)
        con = warehouse.connect(
            path,
            create=create,
            wait_s=self.lock_wait_s,
            config=dict(self.connection_config),
            on_wait=on_wait,
        )
        try:
            warehouse_guard.check_same_file(path, started_with)  # replaced while we waited for the lock
            warehouse_guard.read_back_if_changed(con, path)
            wid = warehouse_guard.warehouse_id(con, create=create)
            warehouse_guard.check_same_warehouse(path, started_with, wid)
            if self._run and started_with is None:
                warehouse_guard.record_run_identity(*self._run, path, wid)
            yield con
        finally:
            con.close()
            warehouse_guard.remember_good(path)


class ArtifactsResource(dg.ConfigurableResource):
    """Per-run artifact folders: ``<root>/runs/<run_id>/`` (root, else ``QUANTLAB_ARTIFACTS``)."""

    root: str | None = Field(default=None, description="artifact root; unset: QUANTLAB_ARTIFACTS, else artifacts/")

    def root_path(self) -> Path:
        return Path(self.root) if self.root is not None else settings.artifacts_root()

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        # Checked before any step publishes: a folder reports cannot go to is said once, up front;
        # the contracts are still published (a report is never a reason to stop them).
        why = artifacts.unwritable(self.root_path())
        if why and context.log is not None:
            context.log.warning(
                f"the artifacts folder {self.root_path()} cannot take this run's reports ({why}; "
                f"{settings.ARTIFACTS}): the contracts are published, the reports are not written"
            )

    def run_dir(self, run_id: str) -> Path:
        return artifacts.run_dir(self.root_path(), run_id)

    def _guard(self, run_id: str, name: str, write):
        """``write()``'s path, or None after a warning naming the file when it cannot be written."""
        try:
            return write()
        except OSError as exc:
            where = f" ({exc.filename})" if exc.filename else ""
            dg.get_dagster_logger().warning(
                f"report {self.root_path() / 'runs' / run_id / 'reports' / name} not written: "
                f"{exc.strerror or exc}{where} ({settings.ARTIFACTS}); the contracts are not affected"
            )
            return None

    def write_report(self, run_id: str, name: str, text: str) -> Path | None:
        """Write ``reports/<name>``; None (and a warning naming the file) when it cannot be written."""
        return self._guard(run_id, name, lambda: artifacts.write_report(self.root_path(), run_id, name, text))

    def write_section(self, run_id: str, name: str, section: str, text: str, title: str | None = None) -> Path | None:
        return self._guard(
            run_id, name, lambda: artifacts.write_section(self.root_path(), run_id, name, section, text, title)
        )

    def write_image(self, run_id: str, name: str, data: bytes) -> Path | None:
        """Write ``reports/<name>`` (a chart) for a run; names follow ``write_report``'s rule."""

        def write() -> Path:
            path = artifacts.write_report(self.root_path(), run_id, name, "")
            path.write_bytes(data)
            return path

        return self._guard(run_id, name, write)
