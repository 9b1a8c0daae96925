"""Resources shared by every team: the DuckDB warehouse and the run artifact folder."""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path

import dagster as dg
from dagster_duckdb import DuckDBResource
from pydantic import Field

from quantlab_assets.common import artifacts, settings


class WarehouseResource(DuckDBResource):
    """The DuckDB file every contract lives in (``QUANTLAB_DB`` unless ``database`` is set).

    Connecting goes through dagster-duckdb, which retries while another process holds the
    file's write lock (DuckDB allows one writer process per file) and then fails with
    DuckDB's message naming the lock holder's PID.
    """

    database: str = Field(default="", description="DuckDB file; empty = QUANTLAB_DB or data/quantlab.duckdb")

    def path(self) -> Path:
        return Path(self.database) if self.database else settings.db_path()

    @contextmanager
    def get_connection(self):
        path = self.path()
        path.parent.mkdir(parents=True, exist_ok=True)
        stock = DuckDBResource(database=str(path), connection_config=self.connection_config)
        with stock.get_connection() as con:
            try:
                yield con
            finally:
                con.close()  # the stock resource skips close() when the body raises


class ArtifactsResource(dg.ConfigurableResource):
    """Per-run artifact folders: ``<root>/runs/<run_id>/`` (root = ``QUANTLAB_ARTIFACTS``)."""

    root: str = Field(default="", description="artifact root; empty = QUANTLAB_ARTIFACTS or artifacts/")

    def root_path(self) -> Path:
        return Path(self.root) if self.root else settings.artifacts_root()

    def run_dir(self, run_id: str) -> Path:
        return artifacts.run_dir(self.root_path(), run_id)

    def write_report(self, run_id: str, name: str, text: str) -> Path:
        return artifacts.write_report(self.root_path(), run_id, name, text)

    def write_section(self, run_id: str, name: str, section: str, text: str, title: str | None = None) -> Path:
        return artifacts.write_section(self.root_path(), run_id, name, section, text, title)
