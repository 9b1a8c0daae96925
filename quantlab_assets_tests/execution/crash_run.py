"""Run a strategy's paper trading over a range in this process, and die by SIGKILL right after the
broker accepted the ``kill_after``-th order (before Quant Lab recorded it): the restart test's victim.

    python -m quantlab_assets_tests.execution.crash_run DB START END KILL_AFTER
"""

from __future__ import annotations

import os
import signal
import sys

import duckdb

from quantlab_assets.execution.core.broker import SimulatedBroker
from quantlab_assets.execution.core.cycle import Cycle
from quantlab_assets.execution.core.orders import OrderPolicy
from quantlab_assets.execution.core.risk import TradeLimits
from quantlab_assets.execution.core.step import execution_partition

STRATEGY = "restart_s"
CAPITAL = 100_000.0


class DyingBroker(SimulatedBroker):
    kill_after: int = 0
    submitted: int = 0

    def submit(self, order, session):
        answer = super().submit(order, session)
        self.submitted += 1
        if self.kill_after and self.submitted >= self.kill_after:
            os.kill(os.getpid(), signal.SIGKILL)  # kill -9: no cleanup, no commit of anything pending
        return answer


def run(db: str, start: str, end: str, kill_after: int = 0):
    with duckdb.connect(db) as con:
        broker = DyingBroker(con, STRATEGY, capital=CAPITAL)
        broker.kill_after = kill_after
        return execution_partition(con, broker, Cycle(STRATEGY, OrderPolicy(), TradeLimits(), "run"), start, end)


if __name__ == "__main__":
    run(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]))
