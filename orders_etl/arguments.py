"""The shape of a command for the CLI, and the argument checks the commands share.

A command module exposes one `CommandSpec`: its name and help, how it adds its arguments,
how it turns the parsed arguments, config and processing time into a frozen params object
(before Spark starts: a bad argument fails alone, exit 2, nothing written), and the `run`
that takes a run context and those params to a result.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, Generic, NoReturn, TypeVar

from orders_etl.config import Config
from orders_etl.context import CommandResult, RunContext
from orders_etl.errors import GuardRefused, UsageError
from orders_etl.io.readers import list_batch_files

Params = TypeVar("Params")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line and exit 2."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(message)


def _no_arguments(parser: argparse.ArgumentParser) -> None:
    del parser


@dataclass(frozen=True)
class CommandSpec(Generic[Params]):
    """One command of the CLI."""

    name: str
    help: str
    params: Callable[[argparse.Namespace, Config, datetime], Params]
    run: Callable[[RunContext, Params], CommandResult]
    add_arguments: Callable[[argparse.ArgumentParser], None] = _no_arguments
    # Whether the run's session opens the `[catalog]` (registering names); every other
    # command works by path and never starts a metastore client.
    opens_catalog: bool = False


AnySpec = CommandSpec[Any]


def add_date_range(parser: argparse.ArgumentParser) -> None:
    """Add `--start-date` and `--end-date`."""
    parser.add_argument("--start-date", metavar="YYYY-MM-DD")
    parser.add_argument("--end-date", metavar="YYYY-MM-DD")


def parse_timestamp(text: str, flag: str) -> datetime:
    """Parse an ISO-8601 timestamp with a zone into an aware UTC datetime."""
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise UsageError(f"{flag} {text!r} is not an ISO-8601 timestamp") from None
    if value.tzinfo is None:
        raise UsageError(f"{flag} {text!r} has no time zone (add Z or +hh:mm)")
    return value.astimezone(UTC)


def parse_date(text: str | None, flag: str) -> date | None:
    """Parse a YYYY-MM-DD date (None stays None)."""
    if text is None:
        return None
    if not _DATE.match(text):
        raise UsageError(f"{flag} {text!r} is not a date in YYYY-MM-DD form")
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise UsageError(f"{flag} {text!r} is not a valid date") from None


def parse_count(text: str | None, flag: str, default: int) -> int:
    """Parse a whole number >= 0 (None gives `default`)."""
    if text is None:
        return default
    if not re.fullmatch(r"\d{1,6}", text.strip()):
        raise UsageError(f"{flag} must be a whole number >= 0, got {text!r}")
    return int(text)


def optional_range(args: argparse.Namespace) -> tuple[date | None, date | None]:
    """Parse an optional `--start-date`/`--end-date` range (either side open); refuse an
    end before the start."""
    start = parse_date(args.start_date, "--start-date")
    end = parse_date(args.end_date, "--end-date")
    if start and end and end < start:
        raise UsageError(f"--end-date {end} is before --start-date {start}")
    return start, end


def guarded_range(
    command: str,
    start_text: str | None,
    end_text: str | None,
    today: date,
    default_days: int,
    max_days: int,
) -> tuple[date, date]:
    """Resolve a command's `--start-date`/`--end-date` into an inclusive range and guard it.

    The one date policy of the commands that work on a range of `fct_orders` days (`backfill`,
    `maintain`). Without `--end-date` the range ends on the processing date (`today`), or
    `default_days` after `--start-date` if that is earlier; without `--start-date` it is the
    `default_days` days ending on the end date. Refused (exit 2): a malformed date, an end
    before the start, more than `max_days` days, an end after the processing date.
    """
    start = parse_date(start_text, "--start-date")
    end = parse_date(end_text, "--end-date")
    if end is None:
        end = min(today, start + timedelta(days=default_days - 1)) if start else today
    if start is None:
        start = end - timedelta(days=default_days - 1)
    if end < start:
        raise GuardRefused(f"{command} refused: --end-date {end} is before --start-date {start}")
    length = (end - start).days + 1
    if length > max_days:
        raise GuardRefused(
            f"{command} refused: {start}..{end} is {length} days, more than the maximum of "
            f"{max_days}"
        )
    if end > today:
        raise GuardRefused(
            f"{command} refused: --end-date {end} is after the processing date {today}"
        )
    return start, end


def batch_files(source: str) -> tuple[str, ...]:
    """List a batch's files (checked before Spark starts)."""
    return tuple(list_batch_files(source))


def no_params(args: argparse.Namespace, config: Config, now: datetime) -> None:
    """The params of a command without arguments of its own."""
    del args, config, now


def add_source(parser: argparse.ArgumentParser) -> None:
    """`--source PATH`: the batch, a file or a folder."""
    parser.add_argument("--source", required=True, metavar="PATH")


def add_lookback(parser: argparse.ArgumentParser) -> None:
    """`--lookback-days N`."""
    parser.add_argument("--lookback-days", metavar="N")


def lookback_days(args: argparse.Namespace, config: Config) -> int:
    """`--lookback-days`, or the config's `[incremental] lookback_days`."""
    return parse_count(args.lookback_days, "--lookback-days", config.incremental.lookback_days)
