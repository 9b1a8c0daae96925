"""The feature store's resource: which preset, and the limits of its quality gate."""

from __future__ import annotations

import dagster as dg
from pydantic import Field

from quantlab_assets.common import settings
from quantlab_assets.feature_store.core.preset import FeaturePreset, load_preset
from quantlab_assets.feature_store.core.step import FeatureLimits


class FeatureStoreResource(dg.ConfigurableResource):
    """Preset file (unset: ``QUANTLAB_FEATURE_PRESET``, else the packaged default) and gate limits."""

    preset_file: str | None = Field(
        default=None, description="feature preset YAML; unset: QUANTLAB_FEATURE_PRESET, else the packaged default"
    )
    max_missing_rate: float = Field(default=0.0, description="largest share of NaN per feature after warm-up")
    corr_threshold: float = 0.95
    psi_threshold: float = 0.25
    drift_reference_sessions: int = 126
    check_sample_dates: int = Field(default=4, description="dates re-derived by the leakage and incremental checks")

    def preset(self) -> FeaturePreset:
        return load_preset(self.preset_file if self.preset_file is not None else settings.feature_preset_file())

    def limits(self) -> FeatureLimits:
        return FeatureLimits(
            max_missing_rate=self.max_missing_rate,
            sample_dates=self.check_sample_dates,
            corr_threshold=self.corr_threshold,
            psi_threshold=self.psi_threshold,
            drift_reference_sessions=self.drift_reference_sessions,
        )
