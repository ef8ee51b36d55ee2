"""`revenue [--as-of TS] [--start-date D] [--end-date D] [--format F] [--chart FILE.png]`:
daily revenue as known at a time (what finance saw then)."""

from __future__ import annotations

import argparse
from datetime import datetime

from orders_etl.arguments import CommandSpec, add_date_range, optional_range, parse_timestamp
from orders_etl.config import Config
from orders_etl.errors import UsageError
from orders_etl.pipeline.revenue import FORMATS, RevenueParams, RevenueResult, run


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """`--as-of`, the range, `--format`, `--chart`."""
    parser.add_argument("--as-of", metavar="TS")
    add_date_range(parser)
    parser.add_argument("--format", default="table", metavar="{table,csv,json}")
    parser.add_argument("--chart", metavar="FILE.png")


def params(args: argparse.Namespace, config: Config, now: datetime) -> RevenueParams:
    """The as-of time, range, format and chart file."""
    if args.format not in FORMATS:
        raise UsageError(f"--format must be one of {', '.join(FORMATS)}, got {args.format!r}")
    if args.chart is not None and not args.chart.endswith(".png"):
        raise UsageError(f"--chart must name a .png file, got {args.chart!r}")
    start, end = optional_range(args)
    return RevenueParams(
        as_of=parse_timestamp(args.as_of, "--as-of") if args.as_of else None,
        start=start,
        end=end,
        output_format=args.format,
        chart=args.chart,
    )


SPEC = CommandSpec("revenue", "daily revenue as known at a time", params, run, add_arguments)
__all__ = ["FORMATS", "SPEC", "RevenueParams", "RevenueResult", "run"]
