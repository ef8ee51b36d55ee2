"""`incremental [--lookback-days N]`: MERGE recent landing rows into `fct_orders`."""

from __future__ import annotations

import argparse
from datetime import datetime

from orders_etl.arguments import CommandSpec, add_lookback, lookback_days
from orders_etl.config import Config
from orders_etl.pipeline.incremental import IncrementalParams, IncrementalResult, run


def params(args: argparse.Namespace, config: Config, now: datetime) -> IncrementalParams:
    """The lookback."""
    return IncrementalParams(lookback_days(args, config))


SPEC = CommandSpec(
    "incremental", "MERGE recent landing rows into fct_orders", params, run, add_lookback
)
__all__ = ["SPEC", "IncrementalParams", "IncrementalResult", "run"]
