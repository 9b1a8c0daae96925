"""What a sweep is: the sweep file's schema (``SweepFile``), and the ``Sweep`` it expands to, one
``Variant`` per grid point and the in-sample / out-of-sample ``Fold``s. ``load_sweep`` reads and
validates a file and every variant of its grid; the file format is in ``research.sweep``'s docstring.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pydantic import Field, ValidationError, model_validator

from quantlab_assets.common import settings
from quantlab_assets.common.calendar import trading_days
from quantlab_assets.common.versions import content_hash
from quantlab_assets.common.yaml_io import FrozenModel, describe_validation_error, read_yaml
from quantlab_assets.research.api import apply_overrides, history_start, spec_dict
from quantlab_assets.strategy_lab.core.spec import StrategyError, StrategySpec

SWEEPS_DIR = settings.DEFAULT_SWEEPS


class SweepError(ValueError):
    """A sweep file is invalid; the message names the file and the field."""


class _Model(FrozenModel):
    pass


class Period(_Model):
    start: date
    end: date

    @model_validator(mode="after")
    def _ordered(self) -> Period:
        if self.end < self.start:
            raise ValueError(f"end {self.end} is before start {self.start}")
        return self


class WalkForward(Period):
    folds: int = Field(ge=1, le=50)


class SweepFile(_Model):
    name: str = Field(pattern=r"^[a-z][a-z0-9_]{0,47}$")
    description: str = ""
    strategy: str | dict
    grid: dict[str, list[Any]]
    in_sample: Period | None = None
    out_of_sample: Period | None = None
    walk_forward: WalkForward | None = None

    @model_validator(mode="after")
    def _periods(self) -> SweepFile:
        if not self.grid:
            raise ValueError("grid: empty; give at least one field path with values")
        for path, values in self.grid.items():
            if not values:
                raise ValueError(f"grid.{path}: no values")
        split = self.in_sample is not None or self.out_of_sample is not None
        if split == (self.walk_forward is not None):
            raise ValueError("give either in_sample and out_of_sample, or walk_forward")
        if split:
            if self.in_sample is None or self.out_of_sample is None:
                raise ValueError("in_sample and out_of_sample go together")
            a, b = self.in_sample, self.out_of_sample
            if a.start <= b.end and b.start <= a.end:
                raise ValueError(f"out_of_sample {b.start}..{b.end} overlaps in_sample {a.start}..{a.end}")
        return self


@dataclass(frozen=True)
class Fold:
    in_sample: tuple[pd.Timestamp, pd.Timestamp]
    out_of_sample: tuple[pd.Timestamp, pd.Timestamp]


@dataclass(frozen=True)
class Variant:
    id: str
    params: dict
    spec: StrategySpec
    raw: dict  # the strategy fields with the overrides applied (what ``promote`` writes)

    @property
    def spec_hash(self) -> str:
        return content_hash(self.spec.version_json())


@dataclass(frozen=True)
class Sweep:
    name: str
    source: str
    description: str
    variants: list[Variant]
    folds: list[Fold]

    @property
    def start(self) -> pd.Timestamp:
        return min(f.in_sample[0] for f in self.folds)

    @property
    def end(self) -> pd.Timestamp:
        return max(f.out_of_sample[1] for f in self.folds)


def _folds(cfg: SweepFile) -> list[Fold]:
    if cfg.walk_forward is None:
        a, b = cfg.in_sample, cfg.out_of_sample
        assert a is not None and b is not None  # SweepFile._periods: no walk_forward means both periods
        return [Fold((pd.Timestamp(a.start), pd.Timestamp(a.end)), (pd.Timestamp(b.start), pd.Timestamp(b.end)))]
    wf = cfg.walk_forward
    days = trading_days(wf.start, wf.end)
    blocks = np.array_split(np.arange(len(days)), wf.folds + 1)
    if min(len(b) for b in blocks) < 2:
        raise ValueError(f"walk_forward: {len(days)} sessions are too few for {wf.folds} folds")
    return [
        Fold((days[0], days[blocks[i][-1]]), (days[blocks[i + 1][0]], days[blocks[i + 1][-1]])) for i in range(wf.folds)
    ]


def find_sweep(name_or_path: str | Path) -> Path:
    path = Path(name_or_path)
    if path.exists() or path.suffix in (".yaml", ".yml"):
        return path
    return settings.sweeps_dir() / f"{name_or_path}.yaml"  # QUANTLAB_SWEEPS, like the sweep assets


def check_size(path: Path, variants: int, cap: int | None = None) -> None:
    """``SweepError`` when the grid's size is above the cap (``QUANTLAB_SWEEP_MAX_VARIANTS``),
    counted before a single variant is built."""
    cap = settings.sweep_max_variants() if cap is None else cap
    if variants > cap:
        raise SweepError(
            f"{path}: the grid has {variants:,} variants, above the cap of {cap:,} "
            f"({settings.SWEEP_MAX_VARIANTS}): narrow the grid or raise the cap"
        )


def load_sweep(path: str | Path, max_variants: int | None = None) -> Sweep:
    """Load and validate a sweep file and every variant of its grid; errors name the file and
    the field (an unknown field path is the strategy schema's error for that path). A grid above
    ``max_variants`` (default ``QUANTLAB_SWEEP_MAX_VARIANTS``) is refused before it is built."""
    path = Path(path)
    raw = read_yaml(path, "sweep", SweepError)
    if not isinstance(raw, dict):
        raise SweepError(f"{path}: expected a mapping of sweep fields, got {type(raw).__name__}")
    try:
        cfg = SweepFile.model_validate(raw)
        folds = _folds(cfg)
    except ValidationError as exc:
        raise SweepError(f"{path}: {describe_validation_error(exc)}") from exc
    except ValueError as exc:
        raise SweepError(f"{path}: {exc}") from exc
    if isinstance(cfg.strategy, str):
        base_path = Path(cfg.strategy)
        base_path = base_path if base_path.is_absolute() else settings.PROJECT_ROOT / base_path
        try:
            base, _ = spec_dict(base_path)
        except StrategyError as exc:
            raise SweepError(f"{path}: field 'strategy': {exc}") from exc
    else:
        base = dict(cfg.strategy)
    paths = list(cfg.grid)
    check_size(path, math.prod(len(cfg.grid[p]) for p in paths), max_variants)
    variants = []
    for i, values in enumerate(itertools.product(*(cfg.grid[p] for p in paths))):
        params = dict(zip(paths, values))
        try:
            fields = apply_overrides(base, params, str(path))
            spec = StrategySpec.model_validate(fields)
        except ValidationError as exc:
            raise SweepError(f"{path}: grid {params}: {describe_validation_error(exc)}") from exc
        except StrategyError as exc:
            raise SweepError(f"{path}: grid {params}: {exc}") from exc
        variants.append(Variant(f"v{i:03d}", params, spec, fields))
    return Sweep(cfg.name, str(path), cfg.description, variants, folds)


def sweep_features(sweep: Sweep) -> list[str]:
    return list(dict.fromkeys(f for v in sweep.variants for f in v.spec.features_used()))


def sweep_history_from(sweep: Sweep) -> pd.Timestamp:
    return min(history_start(v.spec, sweep.start) for v in sweep.variants)
