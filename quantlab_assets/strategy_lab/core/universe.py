"""A strategy's universe: the registry symbols its ``universe`` block (include, exclude, sectors)
selects. A name or sector the registry does not know is an error naming the field, and so is a
filter that leaves no symbol.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from quantlab_assets.strategy_lab.core.spec import StrategyError, StrategySpec

if TYPE_CHECKING:
    from quantlab_assets.data_curator.core.registry import SymbolRegistry


def universe_filter(symbols: Sequence[str], sectors: Mapping[str, str], spec: StrategySpec) -> list[str]:
    """The registry symbols the strategy trades. A name or sector the registry does not know is
    an error naming the field (a typo would otherwise narrow or empty the universe silently), and
    so is a filter that leaves no symbol."""
    u = spec.universe
    unknown = [s for s in (*u.include, *u.exclude) if s not in symbols]
    if unknown:
        field = "include" if unknown[0] in u.include else "exclude"
        raise StrategyError(
            f"strategy {spec.name!r}: field 'universe.{field}': {unknown} not in the symbol "
            f"registry ({len(symbols)} symbols)"
        )
    known_sectors = set(sectors.get(s) for s in symbols)
    bad_sectors = [s for s in u.sectors if s not in known_sectors]
    if bad_sectors:
        raise StrategyError(
            f"strategy {spec.name!r}: field 'universe.sectors': {bad_sectors} matches no "
            f"registry sector (sectors: {', '.join(sorted(map(str, known_sectors)))})"
        )
    chosen = [
        s
        for s in symbols
        if (not u.include or s in u.include) and s not in u.exclude and (not u.sectors or sectors.get(s) in u.sectors)
    ]
    if not chosen:
        raise StrategyError(
            f"strategy {spec.name!r}: field 'universe': include/exclude/sectors leave no "
            f"symbol of the registry's {len(symbols)}"
        )
    return sorted(chosen)


def universe_of(registry: SymbolRegistry, spec: StrategySpec) -> list[str]:
    """The strategy's universe in the symbol registry (``universe_filter`` on its tickers and sectors)."""
    return universe_filter(registry.tickers, registry.sector_of(), spec)
