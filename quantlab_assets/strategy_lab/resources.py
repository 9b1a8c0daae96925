"""Where strategy files live, resolved at definition load (each file becomes its own assets).

``strategies_dir`` is ``common.settings.strategies_dir`` (``QUANTLAB_STRATEGIES``, else
``strategies/``), named here for the modules that import it from the strategy lab.
"""

from __future__ import annotations

from quantlab_assets.common.settings import strategies_dir

__all__ = ["strategies_dir"]
