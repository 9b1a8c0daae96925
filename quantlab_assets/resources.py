"""Resources shared by every team: the DuckDB warehouse and the run artifact folder."""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path

import dagster as dg
from dagster_duckdb import DuckDBResource
from pydantic import Field

from quantlab_assets.common import artifacts, settings, warehouse


class WarehouseResource(DuckDBResource):
    """The DuckDB file every contract lives in (``database``, else ``QUANTLAB_DB``).

    Connecting goes through ``common.warehouse.connect``: a path that is not a DuckDB file
    (a CSV, a Parquet file, a directory) is refused naming it, and while another process
    holds the file's lock (DuckDB allows one writer process per file) it waits at most
    ``lock_wait_s``, logging who holds it, then fails saying what to close.
    """

    # Optional here (DuckDBResource requires it): unset, the run reads QUANTLAB_DB when it connects.
    database: str | None = Field(  # type: ignore[assignment]
        default=None, description="DuckDB file; unset: QUANTLAB_DB, else data/quantlab.duckdb"
    )
    lock_wait_s: float | None = Field(
        default=None,
        ge=0,
        description="seconds to wait for another process's DuckDB lock; unset: QUANTLAB_DB_LOCK_WAIT_S, else 60",
    )

    def path(self) -> Path:
        return Path(self.database) if self.database is not None else settings.db_path()

    @contextmanager
    def get_connection(self, on_wait=None):
        if settings.warehouse_backend() == "delta":  # Delta tables at QUANTLAB_DELTA_URL (docs/scaling.md)
            from quantlab_assets.common import delta_store  # the `scale` extra

            session = delta_store.DeltaSession(delta_store.DeltaStore.from_settings())
            try:
                yield session
            finally:
                session.close()
            return
        con = warehouse.connect(
            self.path(),
            wait_s=self.lock_wait_s,
            config=dict(self.connection_config),
            on_wait=on_wait,
        )
        try:
            yield con
        finally:
            con.close()


class ArtifactsResource(dg.ConfigurableResource):
    """Per-run artifact folders: ``<root>/runs/<run_id>/`` (root, else ``QUANTLAB_ARTIFACTS``)."""

    root: str | None = Field(default=None, description="artifact root; unset: QUANTLAB_ARTIFACTS, else artifacts/")

    def root_path(self) -> Path:
        return Path(self.root) if self.root is not None else settings.artifacts_root()

    def run_dir(self, run_id: str) -> Path:
        return artifacts.run_dir(self.root_path(), run_id)

    def write_report(self, run_id: str, name: str, text: str) -> Path:
        return artifacts.write_report(self.root_path(), run_id, name, text)

    def write_section(self, run_id: str, name: str, section: str, text: str, title: str | None = None) -> Path:
        return artifacts.write_section(self.root_path(), run_id, name, section, text, title)

    def write_image(self, run_id: str, name: str, data: bytes) -> Path:
        """Write ``reports/<name>`` (a chart) for a run; names follow ``write_report``'s rule."""
        path = self.write_report(run_id, name, "")
        path.write_bytes(data)
        return path
