"""Refused input of the orchestrator's CLI, checked before anything is done: ``CliError`` (printed
as one line by ``cli.main``, exit 2), the partition flags (a real date, a weekday, inside the
partitions; a session where a supervision day is meant) and a ``DAGSTER_HOME`` Dagster's storage
can live in.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from quantlab_assets.common import settings


class CliError(Exception):
    """Refused input: printed as one line, nothing done."""


def partition_day(text: str, flag: str, *, session: bool = False) -> str:
    """A partition key Dagster would accept: a real date written YYYY-MM-DD, a weekday, not before
    the first partition nor after today's; with ``session`` also an exchange session."""
    from quantlab_assets.common.calendar import is_trading_day
    from quantlab_assets.partitions import PARTITION_FMT, trading_day_partitions

    try:
        day = datetime.strptime(text, PARTITION_FMT).date()
    except ValueError:
        raise CliError(f"{flag} {text!r}: not a date (YYYY-MM-DD)") from None
    key = day.isoformat()
    first, last = trading_day_partitions.get_first_partition_key(), trading_day_partitions.get_last_partition_key()
    if first is None or last is None:
        raise CliError(f"no trading-day partition exists yet ({settings.START_DATE} is too recent)")
    if key > last:
        raise CliError(f"{flag} {key}: in the future (the latest partition is {last})")
    if key < first:
        raise CliError(f"{flag} {key}: before the first partition {first} (QUANTLAB_START_DATE)")
    if day.weekday() >= 5:
        raise CliError(f"{flag} {key}: a {day:%A}, not a trading-day partition")
    if session and not is_trading_day(day):
        raise CliError(f"{flag} {key}: not a trading session (exchange holiday)")
    return key


def partition_args(args) -> tuple[dict, str]:
    if args.partition_range:
        start, _, end = args.partition_range.partition("...")
        if not end:
            raise CliError("--partition-range takes START...END")
        start, end = partition_day(start, "--partition-range start"), partition_day(end, "--partition-range end")
        if start > end:
            raise CliError(f"--partition-range {start}...{end}: the start is after the end")
        return (
            {"dagster/asset_partition_range_start": start, "dagster/asset_partition_range_end": end},
            f"{start}...{end}",
        )
    if args.partition:
        key = partition_day(args.partition, "--partition")
        return {"dagster/partition": key}, key
    raise CliError("give --partition or --partition-range")


def check_dagster_home() -> None:
    """One line naming DAGSTER_HOME when Dagster's storage cannot live there (Dagster itself would
    raise a raw sqlite or "is not a directory" error)."""
    from quantlab_assets.common.artifacts import unwritable

    home = settings.dagster_home()
    if not home:
        return  # Dagster says itself that DAGSTER_HOME is unset
    path = Path(home)
    if path.exists() and not path.is_dir():
        raise CliError(f"DAGSTER_HOME={home} is a file, not a folder; point it at Dagster's folder")
    why = unwritable(path / "storage") if path.is_dir() else f"{path} does not exist"
    if why:
        raise CliError(f"DAGSTER_HOME={home}: Dagster's run storage cannot be written ({why})")
