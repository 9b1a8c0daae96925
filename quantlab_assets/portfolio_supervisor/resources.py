"""The supervisor's resource: where the risk rules are."""

from __future__ import annotations

import os

import dagster as dg
from pydantic import Field

from quantlab_assets.portfolio_supervisor.core.rules import RiskRules, load_rules
from quantlab_assets.strategy_lab.resources import strategies_dir


class SupervisorResource(dg.ConfigurableResource):
    rules_file: str = Field(
        default="", description="risk rules YAML; empty = QUANTLAB_RISK_RULES or the packaged default"
    )

    def rules(self) -> RiskRules:
        # Overrides must name a strategy file that exists (valid or not: an invalid file is
        # reported on its own).
        known = {p.stem for p in strategies_dir().glob("*.y*ml")}
        return load_rules(self.rules_file or os.environ.get("QUANTLAB_RISK_RULES", "").strip() or None, known)
