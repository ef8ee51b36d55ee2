"""The `orders-etl` command line: arguments, common flags, exit codes; dispatches to commands.

Arguments are parsed and checked before Spark starts, so a bad one fails fast, alone, with
exit 2 and one line on stderr, and writes nothing.
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, NoReturn

from orders_etl.config import Config, load_config
from orders_etl.context import CommandResult, RunContext
from orders_etl.errors import GuardRefused, OrdersEtlError, UsageError

COMMANDS = (
    "migrate",
    "land",
    "incremental",
    "backfill",
    "rollup",
    "verify",
    "revenue",
    "hourly",
    "demo",
    "maintain",
)
# The commands whose session opens the `[catalog]` (registering names); every other command
# works by path and never starts a metastore client.
CATALOG_COMMANDS = ("migrate",)
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line and exit 2."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(message)


def _common() -> _Parser:
    common = _Parser(add_help=False)
    common.add_argument(
        "--env", help="config name: conf/<NAME>.toml (default: local, or $ORDERS_ETL_ENV)"
    )
    common.add_argument("--warehouse", help="warehouse root; overrides the config")
    common.add_argument(
        "--processing-time",
        metavar="TS",
        help="the run's 'now', ISO-8601 with a zone (default: current UTC time)",
    )
    common.add_argument(
        "--verbose",
        action="store_true",
        help="Spark's own output on the console and full stack traces",
    )
    return common


def _dates(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--start-date", metavar="YYYY-MM-DD")
    parser.add_argument("--end-date", metavar="YYYY-MM-DD")


def build_parser() -> argparse.ArgumentParser:
    """Build the parser of every command and flag of the contract."""
    parser = _Parser(prog="orders-etl", description="Late-arrival-correct orders fact table.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    common = [_common()]
    sub.add_parser("migrate", parents=common, help="create missing tables; add missing columns")
    p = sub.add_parser("land", parents=common, help="land one batch of order events")
    p.add_argument("--source", required=True, metavar="PATH")
    p = sub.add_parser(
        "incremental", parents=common, help="MERGE recent landing rows into fct_orders"
    )
    p.add_argument("--lookback-days", metavar="N")
    p = sub.add_parser("backfill", parents=common, help="rebuild fct_orders days via replaceWhere")
    _dates(p)
    p.add_argument("--dry-run", action="store_true", help="report per day, write nothing")
    p.add_argument(
        "--allow-shrink",
        action="store_true",
        help="allow a rebuild that empties a day or shrinks it past the configured share",
    )
    p.add_argument("--full-refresh", action="store_true", help=argparse.SUPPRESS)
    sub.add_parser("rollup", parents=common, help="bring daily_revenue up to date")
    p = sub.add_parser("verify", parents=common, help="data-quality checks (exit 1 on failure)")
    _dates(p)
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p = sub.add_parser("revenue", parents=common, help="daily revenue as known at a time")
    p.add_argument("--as-of", metavar="TS")
    _dates(p)
    p.add_argument("--format", default="table", metavar="{table,csv,json}")
    p.add_argument("--chart", metavar="FILE.png")
    p = sub.add_parser("hourly", parents=common, help="land, incremental, rollup, verify")
    p.add_argument("--source", required=True, metavar="PATH")
    p.add_argument("--lookback-days", metavar="N")
    p = sub.add_parser(
        "maintain",
        parents=common,
        help="daily: compact small files, purge deletion vectors, vacuum (rows unchanged)",
    )
    _dates(p)
    p = sub.add_parser("demo", parents=common, help="run the pipeline on generated sample data")
    p.add_argument("--days", default="7", metavar="N", help="days of sample data (default 7)")
    p.add_argument("--seed", default="7", metavar="N", help="random seed of the sample")
    p.add_argument(
        "--batch-hours",
        default="24",
        metavar="N",
        help="hourly batch files landed per `hourly` run (default 24; 1 = one run per hour)",
    )
    return parser


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


def check_warehouse(root: str) -> str:
    """Refuse an empty warehouse root or the file system root."""
    if not root or not root.strip() or "\x00" in root:
        raise UsageError("the warehouse root is empty; set --warehouse or [warehouse] root")
    # Spelled as Hadoop reads it ("file:" + "/<table>" is "/<table>"), symlinks resolved.
    local = "/" + root[len("file:") :].lstrip("/") if root.startswith("file:") else root
    if "://" not in local and os.path.realpath(local) in (os.sep, "//"):
        raise UsageError(f"refusing warehouse root {root!r}: it is the file system root")
    if "`" in root:
        # Delta's table builder quotes the location as delta.`<path>` and parses it as SQL.
        raise UsageError(f"refusing warehouse root {root!r}: it contains a backtick (`)")
    if re.fullmatch(r"[a-z0-9]+://[^/]*/?", root):
        raise UsageError(f"refusing warehouse root {root!r}: it is the root of a bucket")
    return root


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


def backfill_range(args: argparse.Namespace, config: Config, now: datetime) -> tuple[date, date]:
    """Resolve and guard the backfill range (exit 2 on any violation)."""
    if args.full_refresh:
        raise GuardRefused(
            "a full refresh of fct_orders is not supported; give a date range with "
            "--start-date and --end-date"
        )
    return guarded_range(
        "backfill",
        args.start_date,
        args.end_date,
        now.date(),
        config.backfill.default_days,
        config.backfill.max_days,
    )


def maintain_range(args: argparse.Namespace, config: Config, now: datetime) -> tuple[date, date]:
    """Resolve and guard the range of `fct_orders` days `maintain` compacts: by default the
    `[maintain] days` days ending on the processing date, at most `[backfill] max_days`."""
    return guarded_range(
        "maintain",
        args.start_date,
        args.end_date,
        now.date(),
        config.maintain.days,
        config.backfill.max_days,
    )


@dataclass(frozen=True)
class Invocation:
    """A parsed, checked command line: ready to run once Spark starts."""

    command: str
    config: Config
    processing_time: datetime
    verbose: bool
    arguments: dict[str, Any]
    action: Callable[[RunContext], CommandResult]


def _files(source: str) -> tuple[str, ...]:
    from orders_etl.io.readers import list_batch_files

    return tuple(list_batch_files(source))


def prepare(argv: Sequence[str]) -> Invocation:
    """Parse and check a command line without starting Spark."""
    args = build_parser().parse_args(list(argv))
    config = load_config(args.env, args.warehouse)
    check_warehouse(config.warehouse)
    now = (
        parse_timestamp(args.processing_time, "--processing-time")
        if args.processing_time
        else datetime.now(UTC)
    )
    arguments = {
        k: v for k, v in vars(args).items() if k not in ("command",) and v not in (None, False)
    }
    command: str = args.command
    action: Callable[[RunContext], CommandResult]
    if command == "migrate":
        from orders_etl.commands import migrate

        action = migrate.run
    elif command == "land":
        from orders_etl.commands import land

        land_params = land.LandParams(args.source, _files(args.source))
        action = lambda ctx: land.run(ctx, land_params)  # noqa: E731
    elif command == "incremental":
        from orders_etl.commands import incremental

        inc_params = incremental.IncrementalParams(
            parse_count(args.lookback_days, "--lookback-days", config.incremental.lookback_days)
        )
        action = lambda ctx: incremental.run(ctx, inc_params)  # noqa: E731
    elif command == "backfill":
        from orders_etl.commands import backfill

        start, end = backfill_range(args, config, now)
        bf_params = backfill.BackfillParams(start, end, args.dry_run, args.allow_shrink)
        action = lambda ctx: backfill.run(ctx, bf_params)  # noqa: E731
    elif command == "rollup":
        from orders_etl.commands import rollup

        action = rollup.run
    elif command == "verify":
        from orders_etl.commands import verify

        v_start = parse_date(args.start_date, "--start-date")
        v_end = parse_date(args.end_date, "--end-date")
        if v_start and v_end and v_end < v_start:
            raise UsageError(f"--end-date {v_end} is before --start-date {v_start}")
        v_params = verify.VerifyParams(start=v_start, end=v_end, as_json=args.json)
        action = lambda ctx: verify.run(ctx, v_params)  # noqa: E731
    elif command == "revenue":
        from orders_etl.commands import revenue

        if args.format not in revenue.FORMATS:
            raise UsageError(
                f"--format must be one of {', '.join(revenue.FORMATS)}, got {args.format!r}"
            )
        if args.chart is not None and not args.chart.endswith(".png"):
            raise UsageError(f"--chart must name a .png file, got {args.chart!r}")
        r_start = parse_date(args.start_date, "--start-date")
        r_end = parse_date(args.end_date, "--end-date")
        if r_start and r_end and r_end < r_start:
            raise UsageError(f"--end-date {r_end} is before --start-date {r_start}")
        r_params = revenue.RevenueParams(
            as_of=parse_timestamp(args.as_of, "--as-of") if args.as_of else None,
            start=r_start,
            end=r_end,
            output_format=args.format,
            chart=args.chart,
        )
        action = lambda ctx: revenue.run(ctx, r_params)  # noqa: E731
    elif command == "hourly":
        from orders_etl.commands import hourly

        h_params = hourly.HourlyParams(
            args.source,
            _files(args.source),
            parse_count(args.lookback_days, "--lookback-days", config.incremental.lookback_days),
        )
        action = lambda ctx: hourly.run(ctx, h_params)  # noqa: E731
    elif command == "maintain":
        from orders_etl.commands import maintain

        m_start, m_end = maintain_range(args, config, now)
        m_params = maintain.MaintainParams(m_start, m_end)
        action = lambda ctx: maintain.run(ctx, m_params)  # noqa: E731
    else:
        from orders_etl.commands import demo

        d_params = demo.DemoParams(
            days=max(1, parse_count(args.days, "--days", 7)),
            seed=parse_count(args.seed, "--seed", 7),
            argv_env=args.env,
            batch_hours=max(1, parse_count(args.batch_hours, "--batch-hours", 24)),
        )
        demo.check_warehouse_is_demo(config.warehouse)
        action = lambda ctx: demo.run(ctx, d_params)  # noqa: E731
    return Invocation(command, config, now, args.verbose, arguments, action)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of `orders-etl` and of every `jobs/<command>.py`; returns the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    verbose = "--verbose" in argv
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="orders-etl: %(levelname)s %(message)s",
        stream=sys.stderr,
    )
    logging.getLogger("py4j").setLevel(logging.WARNING)
    try:
        invocation = prepare(argv)
    except OrdersEtlError as exc:
        command = next((a for a in argv if a in COMMANDS), "")
        print(
            f"orders-etl{' ' + command if command else ''}: error: {exc}",
            file=sys.stderr,
            flush=True,
        )
        return exc.exit_code
    from orders_etl.runner import execute, new_run_id

    ctx = RunContext(
        invocation.config,
        invocation.processing_time,
        new_run_id(),
        verbose=invocation.verbose,
        opens_catalog=invocation.command in CATALOG_COMMANDS,
    )
    try:
        return execute(
            ctx, invocation.command, invocation.arguments, lambda: invocation.action(ctx)
        )
    except KeyboardInterrupt:
        print(f"orders-etl {invocation.command}: error: interrupted", file=sys.stderr)
        return 130


def run_job(command: str) -> NoReturn:
    """Run one command as a spark-submit entry point: `jobs/<command>.py [flags]`."""
    sys.exit(main([command, *sys.argv[1:]]))
