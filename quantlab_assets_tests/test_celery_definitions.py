"""The Celery definitions are the lab's definitions with another executor, and the workers' config
(docs/celery_worker.yaml) agrees with the run's on the broker and on re-queuing lost steps."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

pytest.importorskip("dagster_celery", reason="steps on workers need the scale extra: pip install -e '.[scale]'")

from quantlab_assets import celery_definitions, definitions  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def test_same_assets_and_checks_other_executor():
    ours, base = celery_definitions.defs.resolve_asset_graph(), definitions.defs.resolve_asset_graph()
    assert ours.get_all_asset_keys() == base.get_all_asset_keys()
    assert ours.asset_check_keys == base.asset_check_keys
    assert celery_definitions.defs.executor is celery_definitions.executor
    assert celery_definitions.executor.name == "celery"


def test_workers_and_runs_share_the_broker_and_the_worker_loss_settings():
    worker = yaml.safe_load((ROOT / "docs" / "celery_worker.yaml").read_text())["execution"]["config"]
    assert worker["broker"] == {"env": celery_definitions.BROKER}
    assert worker["backend"] == {"env": celery_definitions.BACKEND}
    assert worker["config_source"] == celery_definitions.WORKER_LOSS
    assert (
        celery_definitions.WORKER_LOSS["task_acks_late"]
        and celery_definitions.WORKER_LOSS["task_reject_on_worker_lost"]
    )
