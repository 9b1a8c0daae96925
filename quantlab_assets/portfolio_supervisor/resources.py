"""The supervisor's resource: where the risk rules are."""

from __future__ import annotations

import dagster as dg
from pydantic import Field

from quantlab_assets.common import settings
from quantlab_assets.portfolio_supervisor.core.rules import (
    DEFAULT_RULES_FILE,
    RiskRules,
    RulesError,
    contradictions,
    load_rules,
)


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


def strategy_conflicts(specs, files: dict | None = None) -> dict[str, list[str]]:
    """{strategy name: what makes the supervisor reject its every invested day}, from the strategy
    files, the risk rules and the symbol registry as they are now (``core.rules.contradictions``).
    ``files``: {name: path} of strategy files outside the strategies folder (the CLI's argument).
    Rules or a registry that do not load give nothing here: their own assets report them."""
    from quantlab_assets.data_curator.core.registry import RegistryError
    from quantlab_assets.data_curator.resources import MarketDataResource
    from quantlab_assets.strategy_lab.core.construct import universe_of

    rules_file = settings.risk_rules_file() or DEFAULT_RULES_FILE
    try:
        rules = load_rules(rules_file)  # an override for an unknown strategy is the resource's error
    except (RulesError, OSError):
        return {}
    try:
        registry = MarketDataResource().registry()
    except (RegistryError, OSError, ValueError):
        registry = None
    out = {}
    for spec in specs:
        path = (files or {}).get(spec.name) or next(
            iter(sorted(settings.strategies_dir().glob(f"{spec.name}.y*ml"))), f"{spec.name}.yaml"
        )
        size = len(universe_of(registry, spec)) if registry is not None else None
        found = contradictions(spec, rules, path, rules_file, size)
        if found:
            out[spec.name] = found
    return out
