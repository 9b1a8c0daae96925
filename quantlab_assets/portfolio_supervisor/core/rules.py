"""Risk rules: a validated YAML of defaults plus per-strategy overrides."""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path

from pydantic import Field, ValidationError, model_validator

from quantlab_assets.common.yaml_io import FrozenModel, describe_validation_error, read_yaml

DEFAULT_RULES_FILE = Path(__file__).resolve().parents[1] / "risk_rules.yaml"


class RulesError(ValueError):
    """The risk rules file is invalid; the message names the file and the field."""


class RiskLimits(FrozenModel):
    max_weight: float = Field(default=0.15, gt=0, le=1)
    max_gross: float = Field(default=1.05, gt=0, le=5)
    max_net: float = Field(default=1.05, ge=-5, le=5)
    min_net: float = Field(default=-0.10, ge=-5, le=5)
    min_names: int = Field(default=8, ge=1)
    max_hhi: float = Field(default=0.15, gt=0, le=1)
    max_turnover: float = Field(default=1.0, gt=0, le=4)
    max_drawdown: float = Field(default=0.20, gt=0, le=1)
    min_sharpe: float = Field(default=-0.5, ge=-10, le=10)
    min_history_sessions: int = Field(default=40, ge=2)

    @model_validator(mode="after")
    def _net_range(self) -> RiskLimits:
        if self.min_net > self.max_net:
            raise ValueError(f"min_net {self.min_net} is above max_net {self.max_net}")
        return self


class RiskRules(FrozenModel):
    defaults: RiskLimits = RiskLimits()
    strategies: dict[str, dict] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _overrides_valid(self) -> RiskRules:
        for name, fields in self.strategies.items():
            try:
                RiskLimits.model_validate({**self.defaults.model_dump(), **(fields or {})})
            except ValidationError as exc:
                first = exc.errors()[0]
                loc = ".".join(str(p) for p in first["loc"])
                raise ValueError(f"strategies.{name}.{loc}: {first['msg']}") from None
        return self

    def for_strategy(self, name: str) -> RiskLimits:
        return RiskLimits.model_validate({**self.defaults.model_dump(), **(self.strategies.get(name) or {})})


def load_rules(path: str | Path | None = None, known_strategies: Collection[str] | None = None) -> RiskRules:
    """Load and validate the risk rules; errors name the file and the field.

    With ``known_strategies``, an override for any other name is an error in a rules file of
    your own (a typo such as ``momentum_top_k`` would otherwise leave the strategy on the
    defaults without a word). The packaged file's overrides are for the shipped strategies: with
    a strategies folder of your own (``QUANTLAB_STRATEGIES``) those it does not hold are left out,
    so your strategies run on the packaged defaults without editing the packaged rules.
    """
    packaged = not path
    path = Path(path) if path else DEFAULT_RULES_FILE
    raw = read_yaml(path, "risk rules", RulesError)
    if raw is None:
        raw = {}  # an empty file: the defaults
    if not isinstance(raw, dict):
        raise RulesError(f"{path}: expected a mapping with 'defaults' and 'strategies', got {type(raw).__name__}")
    try:
        rules = RiskRules.model_validate(raw)
    except ValidationError as exc:
        raise RulesError(f"{path}: {describe_validation_error(exc)}") from exc
    if known_strategies is not None:
        unknown = sorted(set(rules.strategies) - set(known_strategies))
        if unknown and packaged:
            kept = {k: v for k, v in rules.strategies.items() if k in set(known_strategies)}
            return rules.model_copy(update={"strategies": kept})
        if unknown:
            raise RulesError(
                f"{path}: field 'strategies': no strategy named {', '.join(map(repr, unknown))} "
                f"(strategies: {', '.join(sorted(known_strategies)) or 'none'})"
            )
    return rules
