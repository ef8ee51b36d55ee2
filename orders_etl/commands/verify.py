"""`verify [--start-date D] [--end-date D] [--json]`: data-quality checks, exit 1 on failure."""

from __future__ import annotations

import argparse
from datetime import datetime

from orders_etl.arguments import CommandSpec, add_date_range, optional_range
from orders_etl.config import Config
from orders_etl.pipeline.verify import VerifyParams, VerifyResult, run


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The range and `--json`."""
    add_date_range(parser)
    parser.add_argument("--json", action="store_true", help="machine-readable output")


def params(args: argparse.Namespace, config: Config, now: datetime) -> VerifyParams:
    """The range (either side open) and the output format."""
    start, end = optional_range(args)
    return VerifyParams(start=start, end=end, as_json=args.json)


SPEC = CommandSpec("verify", "data-quality checks (exit 1 on failure)", params, run, add_arguments)
__all__ = ["SPEC", "VerifyParams", "VerifyResult", "run"]
