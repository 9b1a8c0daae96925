"""Where strategy files live, resolved at definition load (each file becomes its own assets)."""

from __future__ import annotations

import os
from pathlib import Path

from quantlab_assets.common import settings


def strategies_dir() -> Path:
    """``QUANTLAB_STRATEGIES`` or ``strategies/`` at the project root."""
    raw = os.environ.get("QUANTLAB_STRATEGIES", "").strip()
    path = Path(raw) if raw else Path("strategies")
    return path if path.is_absolute() else settings.PROJECT_ROOT / path
