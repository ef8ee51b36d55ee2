"""`hourly --source PATH`: land, incremental, rollup, then verify what this run changed."""

from __future__ import annotations

import argparse
from datetime import datetime

from orders_etl.arguments import CommandSpec, add_lookback, add_source, batch_files, lookback_days
from orders_etl.config import Config
from orders_etl.pipeline.hourly import HourlyParams, HourlyResult, run


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """`--source PATH` and `--lookback-days N`."""
    add_source(parser)
    add_lookback(parser)


def params(args: argparse.Namespace, config: Config, now: datetime) -> HourlyParams:
    """The batch, its files and the lookback."""
    return HourlyParams(args.source, batch_files(args.source), lookback_days(args, config))


SPEC = CommandSpec("hourly", "land, incremental, rollup, verify", params, run, add_arguments)
__all__ = ["SPEC", "HourlyParams", "HourlyResult", "run"]
