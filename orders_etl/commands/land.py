"""`land --source PATH`: land one batch into `orders_landing` and `orders_quarantine`."""

from __future__ import annotations

import argparse
from datetime import datetime

from orders_etl.arguments import CommandSpec, add_source, batch_files
from orders_etl.config import Config
from orders_etl.pipeline.land import LandParams, LandResult, run


def params(args: argparse.Namespace, config: Config, now: datetime) -> LandParams:
    """The batch and its files."""
    return LandParams(args.source, batch_files(args.source))


SPEC = CommandSpec("land", "land one batch of order events", params, run, add_source)
__all__ = ["SPEC", "LandParams", "LandResult", "run"]
