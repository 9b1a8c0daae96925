"""``quantlab delta``: the Delta warehouse's tables, a contract's version history, and restoring a
version (issue 27; the DuckDB file's backups are ``quantlab warehouse``).

    quantlab delta tables                                   # every table and its current version
    quantlab delta history targets [--strategy S] [--limit N]
    quantlab delta restore targets 12 [--strategy S]        # a new version with version 12's rows

Every published slice is one Delta version, so the history lists what each run replaced. A
restore is itself a new commit (nothing is lost: restore again to undo it). With ``--strategy``
only that strategy's rows go back, the other strategies' rows stay as they are. The warehouse
is ``QUANTLAB_DELTA_URL`` (``--url`` overrides it; S3 options from the AWS_* variables).
"""

from __future__ import annotations

import argparse

from quantlab_assets.common import settings


def _store(args):
    from quantlab_assets.common.delta_store import DeltaStore  # the `scale` extra

    url = args.url or settings.delta_url()
    return DeltaStore(url, settings.delta_storage_options(url), settings.delta_commit_retries())


def cmd_tables(args) -> int:
    store = _store(args)
    names = store.tables()
    if not names:
        print(f"no Delta tables under {store.url}: nothing has been published on the delta backend there")
        return 1
    for name in names:
        table = store.table(name)
        print(f"{name:<24} version {table.version() if table is not None else '?'}")
    return 0


def cmd_history(args) -> int:
    store = _store(args)
    try:
        history = store.history(args.table, args.limit)
    except ValueError as exc:
        print(f"quantlab delta history: {exc}")
        return 2
    if args.strategy:
        needle = f"'{args.strategy}'"
        history = history[history["slice"].str.contains(needle, regex=False) | (history["operation"] != "WRITE")]
    if history.empty:
        print(f"{args.table}: no versions" + (f" for strategy {args.strategy!r}" if args.strategy else ""))
        return 1
    for row in history.itertuples(index=False):
        print(f"{row.version:>6}  {row.timestamp:%Y-%m-%d %H:%M:%S}  {row.operation:<10} {row.slice}")
    return 0


def cmd_restore(args) -> int:
    store = _store(args)
    try:
        if args.strategy:
            version = store.restore_key(args.table, args.version, "strategy", args.strategy)
            what = f"{args.table} strategy {args.strategy!r}"
        else:
            version = store.restore(args.table, args.version)
            what = args.table
    except ValueError as exc:
        print(f"quantlab delta restore: {exc}")
        return 2
    print(f"restored {what} to version {args.version}'s rows: now version {version} (restore again to undo)")
    return 0


def register_delta(sub: argparse._SubParsersAction) -> None:
    delta = sub.add_parser("delta", help="the Delta warehouse: tables, version history, restore a version")
    cmds = delta.add_subparsers(dest="delta_command", required=True)
    url_help = "Delta warehouse URL (default QUANTLAB_DELTA_URL)"
    tables = cmds.add_parser("tables", help="every Delta table and its current version")
    tables.add_argument("--url", help=url_help)
    tables.set_defaults(handler=cmd_tables)
    history = cmds.add_parser("history", help="a table's versions, newest first, with the slice each replaced")
    history.add_argument("table")
    history.add_argument("--strategy", help="only the versions that wrote this strategy's slices")
    history.add_argument("--limit", type=int, default=None)
    history.add_argument("--url", help=url_help)
    history.set_defaults(handler=cmd_history)
    restore = cmds.add_parser("restore", help="a new version holding an earlier version's rows")
    restore.add_argument("table")
    restore.add_argument("version", type=int)
    restore.add_argument("--strategy", help="restore only this strategy's rows")
    restore.add_argument("--url", help=url_help)
    restore.set_defaults(handler=cmd_restore)
