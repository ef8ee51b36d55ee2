"""`demo`: generate a week of hourly batches with late events and run the whole pipeline."""

from __future__ import annotations

import argparse
from datetime import datetime

from orders_etl.arguments import CommandSpec, parse_count
from orders_etl.config import Config
from orders_etl.pipeline.demo import DemoParams, DemoResult, check_warehouse_is_demo, run


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """`--days`, `--seed`, `--batch-hours`."""
    parser.add_argument("--days", default="7", metavar="N", help="days of sample data (default 7)")
    parser.add_argument("--seed", default="7", metavar="N", help="random seed of the sample")
    parser.add_argument(
        "--batch-hours",
        default="24",
        metavar="N",
        help="hourly batch files landed per `hourly` run (default 24; 1 = one run per hour)",
    )


def params(args: argparse.Namespace, config: Config, now: datetime) -> DemoParams:
    """The sample's size and seed; refuses a warehouse the demo did not make."""
    demo_params = DemoParams(
        days=max(1, parse_count(args.days, "--days", 7)),
        seed=parse_count(args.seed, "--seed", 7),
        argv_env=args.env,
        batch_hours=max(1, parse_count(args.batch_hours, "--batch-hours", 24)),
    )
    check_warehouse_is_demo(config.warehouse)
    return demo_params


SPEC = CommandSpec("demo", "run the pipeline on generated sample data", params, run, add_arguments)
__all__ = ["SPEC", "DemoParams", "DemoResult", "run"]
