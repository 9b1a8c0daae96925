"""vectorbt's ``Portfolio.from_orders(size_type='targetpercent')`` as a baseline for the engine.

vectorbt 1.2 needs pandas 3 and the project stays on pandas 2, so it only runs in a separate venv
(``python -m venv /tmp/vbt && /tmp/vbt/bin/pip install vectorbt``). This file imports nothing from
the project: the benches either call :func:`run` in-process (when vectorbt is importable there) or
:func:`run_in` to run this file under that venv's python on arrays saved to a temporary ``.npz``.

    /tmp/vbt/bin/python bench/vbt_baseline.py ARRAYS.npz   # prints one JSON line
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np


def run(open_, close, sizes, fees: float, capital: float) -> dict:
    """Final equity and seconds of one ``from_orders`` call, plus a warm call's seconds.

    Same convention as the engine: ``sizes`` row t is the target weight filled at the open of
    session t (the decision at close t-1 shifted by one row; NaN: no order); valued at the open;
    one cash pool; ``call_seq='auto'`` puts sells before buys. ``fees`` is a fraction per trade.
    """
    import pandas as pd
    import vectorbt as vbt

    def call():
        pf = vbt.Portfolio.from_orders(
            close=pd.DataFrame(close),
            size=pd.DataFrame(sizes),
            size_type="targetpercent",
            price=pd.DataFrame(open_),
            val_price=pd.DataFrame(open_),
            fees=fees,
            init_cash=capital,
            group_by=True,
            cash_sharing=True,
            call_seq="auto",
        )
        return float(pf.value().iloc[-1])

    t0 = time.perf_counter()
    equity = call()
    first = time.perf_counter() - t0
    t0 = time.perf_counter()
    again = call()
    warm = time.perf_counter() - t0
    return {
        "equity": equity,
        "first_seconds": first,  # includes numba compilation
        "seconds": warm,
        "same_again": again == equity,
        "version": vbt.__version__,
        "pandas": pd.__version__,
    }


def run_in(python: str, open_, close, sizes, fees: float, capital: float, tmp: Path) -> dict | str:
    """:func:`run` under another interpreter; the result, or why it could not run."""
    arrays = tmp / "vbt_arrays.npz"
    np.savez(arrays, open=open_, close=close, sizes=sizes, fees=fees, capital=capital)
    try:
        out = subprocess.run(
            [python, str(Path(__file__).resolve()), str(arrays)],
            capture_output=True,
            text=True,
            timeout=1800,  # bounded: a 500 x 10-year run takes well under a minute; a hang is a broken venv
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"could not run {python}: {exc}"
    if out.returncode:
        return f"{python} failed: {out.stderr.strip().splitlines()[-1] if out.stderr.strip() else out.returncode}"
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    with np.load(sys.argv[1]) as a:
        result = run(a["open"], a["close"], a["sizes"], float(a["fees"]), float(a["capital"]))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
