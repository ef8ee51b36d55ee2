"""`backfill`: rebuild `fct_orders` days via replaceWhere; never the whole table."""

from __future__ import annotations

import argparse
from datetime import datetime

from orders_etl.arguments import CommandSpec, add_date_range, guarded_range
from orders_etl.config import Config
from orders_etl.errors import GuardRefused
from orders_etl.pipeline.backfill import BackfillParams, BackfillResult, run


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The range, `--dry-run`, `--allow-shrink` (and a hidden `--full-refresh`, refused)."""
    add_date_range(parser)
    parser.add_argument("--dry-run", action="store_true", help="report per day, write nothing")
    parser.add_argument(
        "--allow-shrink",
        action="store_true",
        help="allow a rebuild that empties a day or shrinks it past the configured share",
    )
    parser.add_argument("--full-refresh", action="store_true", help=argparse.SUPPRESS)


def params(args: argparse.Namespace, config: Config, now: datetime) -> BackfillParams:
    """Resolve and guard the range (exit 2 on any violation)."""
    if args.full_refresh:
        raise GuardRefused(
            "a full refresh of fct_orders is not supported; give a date range with "
            "--start-date and --end-date"
        )
    start, end = guarded_range(
        "backfill",
        args.start_date,
        args.end_date,
        now.date(),
        config.backfill.default_days,
        config.backfill.max_days,
    )
    return BackfillParams(start, end, args.dry_run, args.allow_shrink)


SPEC = CommandSpec(
    "backfill", "rebuild fct_orders days via replaceWhere", params, run, add_arguments
)
__all__ = ["SPEC", "BackfillParams", "BackfillResult", "run"]
