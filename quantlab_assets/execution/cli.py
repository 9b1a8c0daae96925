"""The execution commands of ``quantlab`` (registered by ``batch_orchestrator.cli``):

halt STRATEGY --reason "..." [--by NAME]
                   the kill switch: refuse every new order of the strategy (cancels still pass)
resume STRATEGY --reason "..." [--by NAME] [--reducing]
                   orders again (``--reducing``: only orders bringing a position closer to 0)
execution status [STRATEGY]
                   the switch, unresolved breaks and the last paper book row per strategy
execution resolve STRATEGY --decision accept_broker|ledger_correct --reason "..." [--by NAME] [--broker B]
                   a person's decision on reconciliation breaks; new orders may go out again
execution cancel STRATEGY --reason "..." [--by NAME] [--broker B]
                   cancel every open order (the one action a HALTED strategy still takes)
Every decision is appended to a log (``exec_switch_log``, ``exec_resolutions``); nothing is updated.
"""

from __future__ import annotations

import argparse
import getpass
import sys

import duckdb
import pandas as pd

from quantlab_assets.execution.core import store
from quantlab_assets.execution.core.cycle import DECISIONS, resolve_breaks
from quantlab_assets.execution.core.recon import describe_breaks
from quantlab_assets.execution.core.schema import ACTIVE, HALTED, REDUCING


def _who(args) -> str:
    return (args.by or getpass.getuser()).strip()


def _fail(command: str, message: str) -> int:
    print(f"quantlab {command}: {message}", file=sys.stderr)
    return 2


def _strategy_problem(name: str) -> str | None:
    """Why ``name`` is not a strategy a switch or a resolution may name (None: it is one)."""
    from quantlab_assets.common.settings import strategies_dir
    from quantlab_assets.strategy_lab.core.spec import discover

    specs, errors = discover(strategies_dir())
    names = sorted(s.name for s in specs)
    if name in names:
        return None
    invalid = [msg for path, msg in errors.items() if str(path).endswith((f"{name}.yaml", f"{name}.yml"))]
    if invalid:
        return f"{name}: its strategy file is invalid: {invalid[0]}"
    return f"{name}: no such strategy (strategies: {', '.join(names) or 'none'}); nothing recorded"


def _switch(args, state: str) -> int:
    from quantlab_assets.resources import WarehouseResource

    problem = _strategy_problem(args.strategy)
    if problem:
        return _fail(args.command, problem)
    try:
        with WarehouseResource().get_connection() as con:
            store.ensure_all(con)
            store.record_switch(con, args.strategy, state, args.reason, _who(args))
    except (ValueError, OSError, duckdb.Error) as exc:
        return _fail(args.command, f"nothing recorded: {exc}")
    print(f"{args.strategy}: kill switch {state} by {_who(args)}: {args.reason.strip()}")
    return 0


def cmd_halt(args) -> int:
    return _switch(args, HALTED)


def cmd_resume(args) -> int:
    return _switch(args, REDUCING if args.reducing else ACTIVE)


def cmd_status(args) -> int:
    from quantlab_assets.resources import WarehouseResource

    with WarehouseResource().get_connection() as con:
        store.ensure_all(con)
        names = (
            [args.strategy]
            if args.strategy
            else sorted(r[0] for r in con.execute("SELECT DISTINCT strategy FROM exec_ledger").fetchall())
        )
        if not names:
            print("no strategy has traded on paper yet")
        for name in names:
            state, why = store.switch_state(con, name)
            breaks = store.open_breaks(con, name)
            book = store.read_paper_book(con, name)
            last = book.iloc[-1] if len(book) else None
            print(f"{name}: switch {state} ({why})")
            print(f"  unresolved breaks: {describe_breaks(breaks) if len(breaks) else 'none'}")
            if len(breaks):
                print(f"  new orders are halted until `quantlab execution resolve {name} --decision ...`")
            if last is not None:
                print(
                    f"  {pd.Timestamp(last['date']).date()}: paper equity {last['equity']:,.2f}, reference "
                    f"{last['reference_equity']:,.2f}, open orders {int(last['open_orders'])}"
                )
    return 0


def cmd_resolve(args) -> int:
    from quantlab_assets.execution.resources import ExecutionResource
    from quantlab_assets.resources import WarehouseResource

    problem = _strategy_problem(args.strategy)
    if problem:
        return _fail("execution resolve", problem)
    try:
        with WarehouseResource().get_connection() as con:
            store.ensure_all(con)
            breaks = store.open_breaks(con, args.strategy)
            if breaks.empty:
                return _fail("execution resolve", f"{args.strategy} has no unresolved break: nothing recorded")
            broker = ExecutionResource(broker=args.broker).make_broker(con, args.strategy)
            day = pd.Timestamp(breaks["date"].max())
            adjusted = resolve_breaks(con, broker, args.strategy, args.decision, args.reason, _who(args), day)
    except (ValueError, OSError, duckdb.Error, RuntimeError) as exc:
        return _fail("execution resolve", f"nothing recorded: {exc}")
    print(
        f"{args.strategy}: {len(breaks)} break(s) resolved ({args.decision}) by {_who(args)}: {args.reason.strip()}; "
        f"{len(adjusted)} ledger adjustment(s)"
    )
    return 0


def cmd_cancel(args) -> int:
    from quantlab_assets.execution.core.cycle import Cycle, cancel_open_orders
    from quantlab_assets.execution.resources import ExecutionResource
    from quantlab_assets.resources import WarehouseResource

    problem = _strategy_problem(args.strategy)
    if problem or not args.reason.strip():
        return _fail("execution cancel", problem or "--reason: a cancel needs a reason")
    resource = ExecutionResource(broker=args.broker)
    try:
        with WarehouseResource().get_connection() as con:
            store.ensure_all(con)
            cycle = Cycle(args.strategy, resource.policy(), resource.limits(), f"cli-{_who(args)}")
            n = cancel_open_orders(con, resource.make_broker(con, args.strategy), cycle, args.reason.strip())
    except (ValueError, OSError, duckdb.Error, RuntimeError) as exc:
        return _fail("execution cancel", str(exc))
    print(f"{args.strategy}: {n} open order(s) canceled by {_who(args)}: {args.reason.strip()}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``halt``, ``resume`` and ``execution status|resolve``; each sets ``handler``."""
    for name, handler, text in (
        ("halt", cmd_halt, "kill switch: refuse every new order of a strategy"),
        ("resume", cmd_resume, "lift the kill switch (--reducing: only reducing orders)"),
    ):
        p = sub.add_parser(name, help=text)
        p.add_argument("strategy")
        p.add_argument("--reason", required=True)
        p.add_argument("--by", help="who decided (default: the login name)")
        if name == "resume":
            p.add_argument("--reducing", action="store_true", help="REDUCING instead of ACTIVE")
        p.set_defaults(handler=handler)
    ex = sub.add_parser("execution", help="paper trading: status, resolve a reconciliation break")
    ex_sub = ex.add_subparsers(dest="execution_command", required=True)
    st = ex_sub.add_parser("status", help="kill switch, unresolved breaks, last paper book row")
    st.add_argument("strategy", nargs="?")
    st.set_defaults(handler=cmd_status)
    rs = ex_sub.add_parser("resolve", help="record a person's decision on reconciliation breaks")
    rs.add_argument("strategy")
    rs.add_argument("--decision", required=True, choices=DECISIONS)
    rs.add_argument("--reason", required=True)
    rs.add_argument("--by", help="who decided (default: the login name)")
    rs.add_argument("--broker", default="simulated", choices=["simulated", "alpaca"])
    rs.set_defaults(handler=cmd_resolve)
    cn = ex_sub.add_parser("cancel", help="cancel every open order of a strategy (allowed when HALTED)")
    cn.add_argument("strategy")
    cn.add_argument("--reason", required=True)
    cn.add_argument("--by", help="who decided (default: the login name)")
    cn.add_argument("--broker", default="simulated", choices=["simulated", "alpaca"])
    cn.set_defaults(handler=cmd_cancel)
