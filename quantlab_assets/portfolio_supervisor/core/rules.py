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


def _field(rules: RiskRules, strategy: str, name: str) -> str:
    """Where a strategy's limit is set in the rules file: its override, else the defaults."""
    return f"strategies.{strategy}.{name}" if name in (rules.strategies.get(strategy) or {}) else f"defaults.{name}"


def contradictions(spec, rules: RiskRules, spec_file, rules_file, universe_size: int | None = None) -> list[str]:
    """What makes the supervisor reject every invested day of ``spec`` (a ``StrategySpec``),
    decided from the two files alone: each message names both files and both fields.

    Only certainties: the strategy's own constraints beyond a hard limit (gross and net
    exposure), or a limit no book its selection can build meets: a top-k selection or a universe
    of n names holds at most n names, with a largest weight of at least gross / n and an HHI of
    at least 1 / n. ``universe_size``: names the strategy can hold (None: unknown).
    """
    limits, c, name = rules.for_strategy(spec.name), spec.constraints, spec.name
    s, r = f"{spec_file}", f"{rules_file}"

    def say(spec_field: str, value, rule: str, limit, why: str) -> str:
        return (
            f"{s}: field '{spec_field}' = {value:g} and {r}: field '{_field(rules, name, rule)}' = {limit:g}: "
            f"{why}; the supervisor rejects every invested day"
        )

    out = []
    if c.gross_exposure > limits.max_gross + 1e-12:
        out.append(say("constraints.gross_exposure", c.gross_exposure, "max_gross", limits.max_gross, "gross above"))
    if c.net_exposure > limits.max_net + 1e-12:
        out.append(say("constraints.net_exposure", c.net_exposure, "max_net", limits.max_net, "net above"))
    if c.net_exposure < limits.min_net - 1e-12:
        out.append(say("constraints.net_exposure", c.net_exposure, "min_net", limits.min_net, "net below"))
    caps = []
    if spec.selection.kind == "top_k" and spec.selection.k is not None:
        caps.append(("selection.k", spec.selection.k))
    if universe_size is not None:
        caps.append(("universe (names in the symbol registry)", universe_size))
    for where, n in caps:
        if n <= 0:
            continue
        if c.gross_exposure / n > limits.max_weight + 1e-12:
            why = f"{n} names at gross {c.gross_exposure:g} hold at least {c.gross_exposure / n:.2%} in one name"
            out.append(say(where, n, "max_weight", limits.max_weight, why))
        if n < limits.min_names:
            out.append(say(where, n, "min_names", limits.min_names, f"at most {n} names are held"))
        if 1.0 / n > limits.max_hhi + 1e-12:
            why = f"{n} names have a concentration (HHI) of at least {1.0 / n:.3f}"
            out.append(say(where, n, "max_hhi", limits.max_hhi, why))
    return out
