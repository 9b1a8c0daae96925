"""The strategy file schema (pydantic; no DSL of our own) and its loader.

A strategy is a fixed set of building blocks: universe filter, signal (a feature, a weighted
blend of cross-sectional z-scores or ranks, or a model (ridge, LightGBM, elastic net) fitted
walk-forward on past labels), selection, weighting, rebalance frequency, constraints and costs.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Discriminator, Field, Tag, ValidationError, field_validator, model_validator

from quantlab_assets.common.yaml_io import FrozenModel, describe_validation_error, read_yaml
from quantlab_assets.feature_store.core.labels import HORIZONS, label_column

NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_]{0,47}$")
EQUAL_WEIGHT = "equal_weight"  # the spec's default benchmark: an equal-weight, daily-rebalanced book of the universe


class StrategyError(ValueError):
    """A strategy file is invalid; the message names the file, the field and why."""


class _Model(FrozenModel):
    pass


class Universe(_Model):
    include: tuple[str, ...] = ()  # empty = the whole registry
    exclude: tuple[str, ...] = ()
    sectors: tuple[str, ...] = ()  # empty = all sectors
    min_log_dollar_volume: float | None = Field(default=None, description="filter on log_dollar_volume_20")


class BlendTerm(_Model):
    feature: str
    weight: float = 1.0
    transform: Literal["zscore", "rank"] = "zscore"

    @field_validator("weight")
    @classmethod
    def _nonzero(cls, v: float) -> float:
        if v == 0:
            raise ValueError("a blend weight of 0 has no effect; remove the term")
        return v


class _ModelBase(_Model):
    """What every model kind shares: its inputs, its label and the walk-forward schedule
    (docs/models.md). Preprocessing is fitted on the training window only: ``transform`` per
    session across names, then ``clip_quantile`` bounds and ``missing`` fill values from the
    training rows."""

    features: tuple[str, ...] = Field(min_length=1)
    label: Literal["fwd_ret_1", "fwd_ret_5", "fwd_ret_20"] = "fwd_ret_5"
    train_sessions: int = Field(default=252, ge=20, le=2520)
    refit_every: int = Field(default=21, ge=1, le=252)
    embargo: int = Field(default=0, ge=0, le=252, description="sessions between a label's exit and the refit")
    transform: Literal["zscore", "rank"] = "zscore"
    clip_quantile: float | None = Field(
        default=None, gt=0.0, lt=0.5, description="clip each input at the training rows' q and 1-q quantiles"
    )
    missing: Literal["drop", "median"] = Field(
        default="drop", description="drop a row with a missing input, or fill it with the training median"
    )

    @field_validator("features")
    @classmethod
    def _distinct(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        twice = sorted({f for f in v if v.count(f) > 1})
        if twice:
            raise ValueError(f"features listed twice: {twice}; list each input once")
        return v

    @property
    def horizon(self) -> int:
        """The label's horizon in sessions (``fwd_ret_5``: 5)."""
        return next(h for h in HORIZONS if label_column(h) == self.label)

    @property
    def history(self) -> int:
        """Sessions before a decision date the model may read (training window + a refit period)."""
        return self.train_sessions + self.refit_every


class RidgeModel(_ModelBase):
    """Ridge regression, closed form, no intercept: ``(X'X + alpha n I) b = X'y``."""

    kind: Literal["ridge"] = "ridge"
    alpha: float = Field(default=1.0, ge=0.0)


class LightGBMModel(_ModelBase):
    """Gradient-boosted trees (LightGBM, L2 loss), one thread and a fixed seed: bit-identical."""

    kind: Literal["lightgbm"]
    n_estimators: int = Field(default=100, ge=1, le=5000)
    learning_rate: float = Field(default=0.05, gt=0.0, le=1.0)
    num_leaves: int = Field(default=31, ge=2, le=1024)
    max_depth: int = Field(default=-1, ge=-1, le=64)
    min_child_samples: int = Field(default=100, ge=1)
    subsample: float = Field(default=1.0, gt=0.0, le=1.0)
    colsample_bytree: float = Field(default=1.0, gt=0.0, le=1.0)
    reg_lambda: float = Field(default=0.0, ge=0.0)
    seed: int = Field(default=0, ge=0, le=2**31 - 1)


class ElasticNetModel(_ModelBase):
    """Elastic net (lasso at ``l1_ratio`` 1): a linear model that drops inputs it does not need."""

    kind: Literal["elastic_net"]
    alpha: float = Field(default=1e-4, ge=0.0)
    l1_ratio: float = Field(default=0.5, ge=0.0, le=1.0)
    max_iter: int = Field(default=1000, ge=1, le=100_000)
    tol: float = Field(default=1e-8, gt=0.0)


def _model_kind(value: object) -> str:
    """The model's ``kind`` (ridge when the file leaves it out, as before the other kinds)."""
    if isinstance(value, dict):
        return str(value.get("kind", "ridge"))
    return str(getattr(value, "kind", "ridge"))


ModelSignal = Annotated[
    Annotated[RidgeModel, Tag("ridge")]
    | Annotated[LightGBMModel, Tag("lightgbm")]
    | Annotated[ElasticNetModel, Tag("elastic_net")],
    Discriminator(_model_kind),
]
AnyModel = RidgeModel | LightGBMModel | ElasticNetModel


class Signal(_Model):
    kind: Literal["feature", "blend", "model"]
    feature: str | None = None
    direction: Literal[1, -1] = 1  # -1: lower values are better (e.g. reversal, low volatility)
    blend: tuple[BlendTerm, ...] = ()
    model: ModelSignal | None = None  # ridge, lightgbm or elastic_net (docs/models.md)

    @model_validator(mode="after")
    def _one_source(self) -> Signal:
        need = {"feature": "feature", "blend": "blend", "model": "model"}[self.kind]
        if not getattr(self, need):
            raise ValueError(f"signal kind {self.kind!r} needs the field '{need}'")
        extra = [f for f in ("feature", "blend", "model") if f != need and getattr(self, f)]
        if extra:
            raise ValueError(f"signal kind {self.kind!r} does not use {extra}")
        return self

    def features_used(self) -> list[str]:
        if self.kind == "feature":
            assert self.feature is not None  # _one_source: kind "feature" has a feature
            return [self.feature]
        if self.kind == "blend":
            return [t.feature for t in self.blend]
        assert self.model is not None  # _one_source: kind "model" has a model
        return list(self.model.features)


# The fields each selection kind reads; any other field given is refused, naming it.
SELECTION_FIELDS = {
    "top_k": ("k",),
    "long_short_quantile": ("quantile",),
    "all": (),
    "threshold": ("feature", "long_above", "short_below", "long_below", "short_above", "between"),
}


class Selection(_Model):
    """Which names the book holds: ranked across names (``top_k``, ``long_short_quantile``,
    ``all``) or one by one in time (``threshold``, works on a one-name universe): trend
    following says ``long_above``/``short_below`` (long while ``feature`` > ``long_above``,
    short while it is < ``short_below``), mean reversion says ``long_below``/``short_above``
    (long while ``feature`` < ``long_below``, short while it is > ``short_above``); flat in
    between. One long field and one short field at most, on opposite sides."""

    kind: Literal["top_k", "long_short_quantile", "all", "threshold"]
    k: int | None = Field(default=None, ge=1)
    quantile: float | None = Field(default=None, gt=0.0, le=0.5)
    feature: str | None = None
    long_above: float | None = None
    short_below: float | None = None
    long_below: float | None = None
    short_above: float | None = None
    # Between the thresholds: flat, or hold the side the name had (hysteresis; with an event
    # feature such as ma_cross's cross, a position held from one cross to the next).
    between: Literal["flat", "hold"] = "flat"

    @model_validator(mode="after")
    def _params(self) -> Selection:
        unused = [f for f in SELECTION_FIELDS["threshold"][:-1] + ("k", "quantile") if getattr(self, f) is not None]
        unused += ["between"] if self.between != "flat" else []
        unused = [f for f in unused if f not in SELECTION_FIELDS[self.kind]]
        if unused:
            raise ValueError(f"selection {self.kind!r} does not use {unused}")
        if self.kind == "top_k" and self.k is None:
            raise ValueError("selection 'top_k' needs k")
        if self.kind == "long_short_quantile" and self.quantile is None:
            raise ValueError("selection 'long_short_quantile' needs quantile")
        if self.kind == "threshold":
            self._threshold_fields()
        return self

    def _threshold_fields(self) -> None:
        if self.feature is None:
            raise ValueError("selection 'threshold' needs feature")
        given = [f for f in SELECTION_FIELDS["threshold"][1:-1] if getattr(self, f) is not None]
        if not given:
            raise ValueError(
                "selection 'threshold' needs long_above, short_below or both (trend), "
                "or long_below, short_above or both (mean reversion)"
            )
        longs, shorts = [f for f in given if f.startswith("long")], [f for f in given if f.startswith("short")]
        if len(longs) > 1 or len(shorts) > 1:
            raise ValueError(
                f"selection 'threshold': {given} give one side twice; one long and one short field at most"
            )
        if self.long_above is not None and self.short_above is not None:
            raise ValueError(
                "selection 'threshold': long_above and short_above overlap (a value above both would be long and "
                "short); say long_above/short_below (trend) or long_below/short_above (mean reversion)"
            )
        if self.long_below is not None and self.short_below is not None:
            raise ValueError(
                "selection 'threshold': long_below and short_below overlap (a value below both would be long and "
                "short); say long_above/short_below (trend) or long_below/short_above (mean reversion)"
            )
        if self.long_above is not None and self.short_below is not None and self.short_below > self.long_above:
            raise ValueError(f"short_below {self.short_below} is above long_above {self.long_above}")
        if self.long_below is not None and self.short_above is not None and self.long_below > self.short_above:
            raise ValueError(f"long_below {self.long_below} is above short_above {self.short_above}")

    @property
    def reversion(self) -> bool:
        """A threshold selection that buys low values and sells high ones (mean reversion)."""
        return self.long_below is not None or self.short_above is not None

    @property
    def long_only(self) -> bool:
        if self.kind == "threshold":
            return self.short_below is None and self.short_above is None
        return self.kind != "long_short_quantile"


class Weighting(_Model):
    kind: Literal["equal", "score", "inverse_vol"] = "equal"
    vol_feature: str = "vol_60"

    @model_validator(mode="after")
    def _vol_feature(self) -> Weighting:
        # Value-based (a spec dumped with its defaults must load again): a vol_feature other than
        # the default is a choice the kind would ignore.
        if self.kind != "inverse_vol" and self.vol_feature != "vol_60":
            raise ValueError(f"weighting {self.kind!r} does not use ['vol_feature'] (only inverse_vol does)")
        return self


class Rebalance(_Model):
    frequency: Literal["daily", "weekly", "monthly", "every_n"] = "weekly"
    n: int | None = Field(default=None, ge=1, le=252)

    @model_validator(mode="after")
    def _n(self) -> Rebalance:
        if (self.frequency == "every_n") != (self.n is not None):
            raise ValueError("'n' is required with frequency every_n and only then")
        return self


class Holding(_Model):
    """How a decision trades names already held (see ``backtest_engine/core/holding.py``):
    ``rebalance`` resizes every name to its target; ``until_change`` trades a name only when its
    target changes (side or weight); ``band`` only when its weight drifts more than ``band`` from
    its target. A flip or an exit always trades."""

    kind: Literal["rebalance", "until_change", "band"] = "rebalance"
    band: float | None = Field(default=None, gt=0.0, le=1.0, description="no-trade band, in weight")

    @model_validator(mode="after")
    def _band(self) -> Holding:
        if (self.kind == "band") != (self.band is not None):
            raise ValueError(
                f"holding {self.kind!r} does not use ['band']" if self.band is not None else "holding 'band' needs band"
            )
        return self


class Constraints(_Model):
    max_weight: float = Field(default=0.1, gt=0.0, le=1.0)
    gross_exposure: float = Field(default=1.0, gt=0.0, le=3.0)
    net_exposure: float = Field(default=1.0, ge=-1.0, le=1.0)
    min_names: int = Field(default=5, ge=1)
    max_turnover: float | None = Field(default=None, gt=0.0, le=4.0, description="one-way, per rebalance")


class Costs(_Model):
    """Trading costs in bps of traded notional; carry in bps per year, accrued per session
    (252 a year); an optional cap on the share of a session's volume an order may trade (the
    rest of the order is dropped, not carried)."""

    fee_bps: float = Field(default=1.0, ge=0.0, le=500.0)
    slippage_bps: float = Field(default=5.0, ge=0.0, le=500.0)
    borrow_bps: float = Field(default=0.0, ge=0.0, le=10_000.0, description="fee on short value, bps/year")
    cash_interest_bps: float = Field(
        default=0.0, ge=-1_000.0, le=5_000.0, description="interest on cash (paid on negative cash), bps/year"
    )
    max_participation: float | None = Field(
        default=None, gt=0.0, le=1.0, description="largest share of a session's volume per order"
    )


class StrategySpec(_Model):
    name: str
    description: str = ""
    universe: Universe = Universe()
    signal: Signal
    selection: Selection
    weighting: Weighting = Weighting()
    rebalance: Rebalance = Rebalance()
    holding: Holding = Holding()
    constraints: Constraints = Constraints()
    costs: Costs = Costs()
    capital: float = Field(default=1_000_000.0, gt=0.0)
    # The benchmark of every relative figure (backtest KPIs, tearsheet, leaderboard): the equal-weight
    # universe, or a registry symbol (e.g. SPY once ingested), under the strategy's execution convention.
    benchmark: str = Field(default=EQUAL_WEIGHT, pattern=r"^(equal_weight|[A-Z][A-Z0-9]{0,5}([.-][A-Z0-9]{1,2})?)$")

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not NAME_PATTERN.match(v):
            raise ValueError("must be lower_snake_case, start with a letter, at most 48 characters")
        return v

    @model_validator(mode="after")
    def _threshold_signal(self) -> StrategySpec:
        """A threshold selection compares ``selection.feature`` itself: the signal says nothing else."""
        sel, sig = self.selection, self.signal
        if sel.kind != "threshold":
            return self
        if sig.kind != "feature" or sig.feature != sel.feature:
            raise ValueError(
                f"signal: selection 'threshold' compares selection.feature {sel.feature!r} with its thresholds; "
                f"a {sig.kind!r} signal{'' if sig.feature is None else f' on {sig.feature!r}'} would not be used: "
                f"say signal: {{kind: feature, feature: {sel.feature}}}"
            )
        if sig.direction != 1:  # the default (1) is harmless; -1 would be silently ignored
            raise ValueError(
                "signal.direction: selection 'threshold' does not use it; for mean reversion say "
                "selection.long_below / selection.short_above"
            )
        return self

    @model_validator(mode="after")
    def _feasible(self) -> StrategySpec:
        c = self.constraints
        long_only = self.selection.long_only
        if long_only and c.net_exposure != c.gross_exposure:
            raise ValueError(
                f"constraints: a long-only selection has net == gross, got net "
                f"{c.net_exposure} and gross {c.gross_exposure}"
            )
        if not long_only and abs(c.net_exposure) > c.gross_exposure:
            raise ValueError("constraints: |net_exposure| cannot exceed gross_exposure")
        if self.selection.kind == "top_k":
            k = self.selection.k
            assert k is not None  # Selection._params: top_k needs k
            if k < c.min_names:
                raise ValueError(f"selection.k={k} is below constraints.min_names={c.min_names}")
            if k * c.max_weight < c.gross_exposure - 1e-12:
                raise ValueError(
                    f"constraints cannot be met: k={k} names × max_weight={c.max_weight} "
                    f"= {k * c.max_weight:g} < gross_exposure={c.gross_exposure}"
                )
        return self

    def version_json(self) -> str:
        """The spec as JSON for code versions and hashes. Fields added later (holding, the
        mean-reversion thresholds) are left out while at their defaults, so a strategy that does
        not use them keeps the version it had."""
        exclude: dict = {}
        if self.holding == Holding():
            exclude["holding"] = True
        unset = {f for f in ("long_below", "short_above") if getattr(self.selection, f) is None}
        unset |= {"between"} if self.selection.between == "flat" else set()
        if unset:
            exclude["selection"] = unset
        return self.model_dump_json(exclude=exclude)

    def features_used(self) -> list[str]:
        used = self.signal.features_used()
        if self.weighting.kind == "inverse_vol":
            used.append(self.weighting.vol_feature)
        if self.universe.min_log_dollar_volume is not None:
            used.append("log_dollar_volume_20")
        if self.selection.kind == "threshold":
            assert self.selection.feature is not None  # Selection._params: threshold needs feature
            used.append(self.selection.feature)
        return list(dict.fromkeys(used))


def load_strategy(path: str | Path, known_features: set[str] | None = None) -> StrategySpec:
    """Load and validate one strategy file; every error names the file and the field."""
    path = Path(path)
    raw = read_yaml(path, "strategy", StrategyError)
    if not isinstance(raw, dict):
        raise StrategyError(f"{path}: expected a mapping of strategy fields, got {type(raw).__name__}")
    try:
        spec = StrategySpec.model_validate(raw)
    except ValidationError as exc:
        raise StrategyError(f"{path}: {describe_validation_error(exc)}") from exc
    except (TypeError, ArithmeticError, RecursionError) as exc:  # a validator tripped on odd input
        raise StrategyError(f"{path}: could not be validated: {type(exc).__name__}: {exc}") from exc
    if spec.name != path.stem:
        raise StrategyError(f"{path}: field 'name': {spec.name!r} must equal the file name {path.stem!r}")
    if known_features is not None:
        unknown = [f for f in spec.features_used() if f not in known_features]
        if unknown:
            raise StrategyError(
                f"{path}: unknown feature(s) {unknown}; the feature preset declares "
                f"{len(known_features)} features (see quantlab_assets/feature_store/presets)"
            )
    return spec


def discover(directory: str | Path, known_features: set[str] | None = None):
    """All ``*.yaml`` strategies of a folder: (valid specs, {file: error}) — one bad file never
    takes the others down."""
    specs, errors = [], {}
    for path in sorted(Path(directory).glob("*.y*ml")):
        try:
            specs.append(load_strategy(path, known_features))
        except StrategyError as exc:
            errors[str(path)] = str(exc)
        except Exception as exc:  # noqa: BLE001 - RecursionError, IsADirectoryError, not UTF-8 ...: still one file
            errors[str(path)] = f"{path}: cannot be loaded: {type(exc).__name__}: {exc}"
    return specs, errors
