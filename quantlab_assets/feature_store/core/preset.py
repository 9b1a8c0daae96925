"""Feature presets: a preset file (``presets/*.yaml``) is a named, ordered list of
``{name, kind, params}``, validated against the kinds' parameter models; it is the declared
schema of the ``features`` table. ``load_preset`` reads and validates one file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

from pydantic import Field, PrivateAttr, ValidationError, model_validator

from quantlab_assets.common.yaml_io import FrozenModel, describe_validation_error, read_yaml
from quantlab_assets.feature_store.core.kinds import KINDS, CrossSectionParams

DEFAULT_PRESET_FILE = Path(__file__).resolve().parents[1] / "presets" / "default.yaml"


class PresetError(ValueError):
    """A preset file is unreadable or invalid; the message names the file, feature and field."""


RESERVED_NAMES = ("date", "symbol", "warm")
"""Key and flag columns of the ``features`` table (and of labels/targets joins): no feature may take them."""


class FeatureSpec(FrozenModel):
    """One output column: ``name`` computed by registry kind ``kind`` with ``params``."""

    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$", max_length=63)
    kind: str
    params: dict[str, Any] = Field(default_factory=dict)
    _parsed: FrozenModel = PrivateAttr()

    @model_validator(mode="after")
    def _parse_params(self) -> FeatureSpec:
        kind = KINDS.get(self.kind)
        if kind is None:
            raise ValueError(f"kind: unknown kind {self.kind!r} (valid kinds: {', '.join(sorted(KINDS))})")
        try:
            self._parsed = kind.params.model_validate(self.params)
        except ValidationError as exc:
            raise ValueError(
                "; ".join(f"params{''.join(f'.{part}' for part in err['loc'])}: {err['msg']}" for err in exc.errors())
            ) from None
        return self

    @property
    def parsed_params(self) -> FrozenModel:
        """``params`` validated by the kind's model, defaults filled in."""
        return self._parsed

    @property
    def source_feature(self) -> str:
        """A cross-sectional feature's source: ``params.of`` (its kinds all take CrossSectionParams)."""
        return cast(CrossSectionParams, self._parsed).of


class FeaturePreset(FrozenModel):
    """A named, ordered list of features: the declared schema of the ``features`` table."""

    name: str = Field(min_length=1)
    description: str = ""
    # Not Field(min_length=1): pydantic would repeat it whenever a feature fails to validate.
    features: tuple[FeatureSpec, ...]

    @model_validator(mode="after")
    def _names_and_sources(self) -> FeaturePreset:
        if not self.features:
            raise ValueError("features: a preset needs at least one feature")
        seen: dict[str, FeatureSpec] = {}
        for spec in self.features:
            if spec.name in RESERVED_NAMES:
                raise ValueError(
                    f"feature {spec.name!r}: name: reserved for a column of the features table "
                    f"({', '.join(RESERVED_NAMES)}); rename the feature"
                )
            if spec.name in seen:
                raise ValueError(f"feature {spec.name!r}: name: declared twice")
            if KINDS[spec.kind].cross_sectional:
                source = seen.get(spec.source_feature)
                if source is None or KINDS[source.kind].cross_sectional:
                    raise ValueError(
                        f"feature {spec.name!r}: params.of: {spec.source_feature!r} is not "
                        "a non-cross-sectional feature declared before it"
                    )
            seen[spec.name] = spec
        return self

    @property
    def feature_names(self) -> list[str]:
        """Output feature columns in declared order."""
        return [spec.name for spec in self.features]

    def window_of(self, name: str) -> int:
        """Sessions (up to and including D) that feature ``name`` reads."""
        spec = next(s for s in self.features if s.name == name)
        kind = KINDS[spec.kind]
        if kind.cross_sectional:
            return self.window_of(spec.source_feature)
        return kind.window(spec.parsed_params)

    @property
    def lookback_sessions(self) -> int:
        """The longest window any feature reads, in sessions up to and including D."""
        return max(self.window_of(name) for name in self.feature_names)

    @property
    def warmup_sessions(self) -> int:
        """Sessions of history a date needs before it: a symbol's first ``warmup_sessions``
        bars are never warm."""
        return self.lookback_sessions - 1


def load_preset(path: str | Path | None = None) -> FeaturePreset:
    """Load and validate a preset file (default: the packaged ``presets/default.yaml``).

    Raises
    ------
    PresetError
        The file is missing, not YAML, or invalid; the message names the file, the feature
        and the field.
    """
    path = Path(path) if path else DEFAULT_PRESET_FILE
    raw = read_yaml(path, "feature preset", PresetError)
    if not isinstance(raw, dict):
        raise PresetError(f"{path}: expected a mapping with 'name' and 'features'")
    try:
        return FeaturePreset.model_validate(raw)
    except ValidationError as exc:
        raise PresetError(f"{path}: {describe_validation_error(exc, raw, {'features': 'name'})}") from exc
