"""``quantlab models compare``: model kinds side by side on the same features, labels and range,
printed as qlib prints its benchmark table (docs/models.md).

Data: the warehouse (default; what ``research.load_data`` reads), ``--source demo`` (the demo
universe's synthetic bars, features and labels computed in memory) or ``--source planted``
(features with a planted nonlinear signal, ``model_compare.planted_data``).
"""

from __future__ import annotations

import argparse
import sys
import time

import pandas as pd

from quantlab_assets.strategy_lab.core.spec import StrategyError

KINDS = ("ridge", "elastic_net", "lightgbm")
DEFAULT_FEATURES = (
    "ret_5",
    "ret_20",
    "ret_60",
    "mom_12_1",
    "vol_20",
    "vol_60",
    "rsi_14",
    "bb_pctb_20",
    "volume_z_20",
    "dist_52w_high",
    "beta_60",
    "gap_1",
)
PLANTED_FEATURES = tuple(f"f{j}" for j in range(6))


def register_models(sub: argparse._SubParsersAction) -> None:
    models = sub.add_parser("models", help="model kinds of signal.kind: model (docs/models.md)")
    models_sub = models.add_subparsers(dest="models_command", required=True)
    cmp = models_sub.add_parser("compare", help="compare model kinds on the same features, labels and range")
    cmp.add_argument("--start", required=True, help="first session judged (training reaches back before it)")
    cmp.add_argument("--end", required=True)
    cmp.add_argument("--source", choices=("warehouse", "demo", "planted"), default="warehouse")
    cmp.add_argument("--strategy", help="take features, label, schedule and preprocessing from this file's model")
    cmp.add_argument("--models", default=",".join(KINDS), help=f"comma-separated kinds (default {','.join(KINDS)})")
    cmp.add_argument("--features", help="comma-separated features (default: a dozen of the preset's)")
    cmp.add_argument("--label", choices=("fwd_ret_1", "fwd_ret_5", "fwd_ret_20"), default=None)
    cmp.add_argument("--train-sessions", type=int, default=252)
    cmp.add_argument("--refit-every", type=int, default=21)
    cmp.add_argument("--names", type=int, default=200, help="--source planted: number of names")
    cmp.add_argument("--k", type=int, default=10, help="top-k book: names held")
    cmp.add_argument("--n-drop", type=int, default=2, help="top-k book: names replaced per session at most")
    cmp.add_argument("--cost-bps", type=float, default=10.0, help="cost per unit of traded weight, bps")
    cmp.add_argument("--record", action="store_true", help="record every trained model in the experiments table")
    cmp.set_defaults(handler=cmd_models_compare)


def build_models(args) -> dict:
    """The compared models: one per kind, sharing the base's inputs, label, schedule and preprocessing."""
    from pydantic import TypeAdapter, ValidationError

    from quantlab_assets.strategy_lab.core.spec import ModelSignal, load_strategy

    base: dict = {}
    own: dict = {}
    if args.strategy:
        spec = load_strategy(args.strategy)
        if spec.signal.model is None:
            raise StrategyError(f"{args.strategy}: field 'signal.kind' is {spec.signal.kind!r}; compare needs a model")
        own = spec.signal.model.model_dump()
        shared = ("features", "label", "train_sessions", "refit_every", "embargo", "transform", "clip_quantile")
        base = {k: own[k] for k in (*shared, "missing")}
    else:
        planted = args.source == "planted"
        feats = args.features.split(",") if args.features else (PLANTED_FEATURES if planted else DEFAULT_FEATURES)
        base = {
            "features": tuple(feats),
            "label": args.label or ("fwd_ret_1" if planted else "fwd_ret_5"),
            "train_sessions": args.train_sessions,
            "refit_every": args.refit_every,
        }
    adapter = TypeAdapter(ModelSignal)
    out = {}
    for kind in [k.strip() for k in args.models.split(",") if k.strip()]:
        if kind not in KINDS:
            raise StrategyError(f"--models: unknown kind {kind!r}; valid kinds: {', '.join(KINDS)}")
        params = dict(own) if own.get("kind") == kind else {**base, "kind": kind}
        try:
            out[kind] = adapter.validate_python(params)
        except ValidationError as exc:
            raise StrategyError(f"--models {kind}: {exc.errors()[0]['loc']}: {exc.errors()[0]['msg']}") from exc
    return out


def load_rows(args, models: dict) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Long features and labels from the training window's first session to ``--end``."""
    from quantlab_assets.common.calendar import shift_sessions
    from quantlab_assets.research.model_compare import planted_data

    history = max(m.history for m in models.values())
    lo = shift_sessions(args.start, -history)
    if args.source == "planted":
        return planted_data(n_symbols=args.names, start=lo, end=args.end)
    names = sorted({f for m in models.values() for f in m.features})
    if args.source == "demo":
        return demo_rows(lo, pd.Timestamp(args.end))
    from quantlab_assets import research

    data = research.load_data(lo, args.end, names)
    return data.features, data.labels


def demo_rows(lo: pd.Timestamp, end: pd.Timestamp) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The demo universe's synthetic bars, then the default preset's features and the labels, in memory."""
    from quantlab_assets.common import settings
    from quantlab_assets.common.calendar import shift_sessions
    from quantlab_assets.data_curator.core.registry import load_registry
    from quantlab_assets.data_curator.core.synthetic import SyntheticProvider
    from quantlab_assets.feature_store.core.features import compute_features, load_preset
    from quantlab_assets.feature_store.core.labels import MAX_FORWARD_SESSIONS, compute_labels

    registry = load_registry(settings.symbols_file())
    preset = load_preset(settings.feature_preset_file())
    first = shift_sessions(lo, -(preset.lookback_sessions + 5))
    last = shift_sessions(end, MAX_FORWARD_SESSIONS + 2)
    bars = SyntheticProvider(sectors=dict(registry.sector_of())).fetch(registry.tickers, first.date(), last.date()).bars
    return compute_features(bars, preset, lo, end), compute_labels(bars, lo, end)


def cmd_models_compare(args) -> int:
    from quantlab_assets.research.model_compare import Book, compare_models, table_markdown

    try:
        models = build_models(args)
        t0 = time.perf_counter()
        features, labels = load_rows(args, models)
        t1 = time.perf_counter()
        result = compare_models(
            features, labels, models, args.start, args.end, Book(args.k, args.n_drop, args.cost_bps)
        )
    except (StrategyError, FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    t2 = time.perf_counter()
    m0 = next(iter(models.values()))
    print(
        f"models compare: source {args.source}, {features['symbol'].nunique()} names, {args.start} .. {args.end}, "
        f"label {m0.label}, {len(m0.features)} features, train {m0.train_sessions} sessions, "
        f"refit every {m0.refit_every}; top-{args.k} drop-{args.n_drop}, {args.cost_bps:g} bps per unit traded"
    )
    print(table_markdown(result.table))
    print(f"(data {t1 - t0:.1f} s, training and scoring {t2 - t1:.1f} s)")
    if args.record:
        from quantlab_assets.common import settings
        from quantlab_assets.common.warehouse import connect
        from quantlab_assets.research.experiments import model_rows, record

        with connect(settings.db_path()) as con:  # a short-lived writer, only to record
            n = 0
            for kind, wf in result.fits.items():
                rows = model_rows(f"compare:{kind}", models[kind], wf, args.source)
                n += len(rows)
                if len(rows):
                    record(con, rows)
        print(f"recorded {n} trained models in experiments (kind model)")
    return 0
