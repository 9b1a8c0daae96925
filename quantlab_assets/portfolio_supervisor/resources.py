"""The supervisor's resource: where the risk rules are."""

from __future__ import annotations

import dagster as dg
from pydantic import Field

from quantlab_assets.common import settings
from quantlab_assets.portfolio_supervisor.core.rules import RiskRules, load_rules


class SupervisorResource(dg.ConfigurableResource):
    """Where the risk rules are (``rules_file``, else ``QUANTLAB_RISK_RULES``, else the packaged rules)."""

    rules_file: str | None = Field(
        default=None, description="risk rules YAML; unset: QUANTLAB_RISK_RULES, else the packaged default"
    )

    def rules(self) -> RiskRules:
        # Overrides must name a strategy file that exists (valid or not: an invalid file is
        # reported on its own).
        known = {p.stem for p in settings.strategies_dir().glob("*.y*ml")}
        return load_rules(self.rules_file if self.rules_file is not None else settings.risk_rules_file(), known)
