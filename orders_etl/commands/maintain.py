"""`maintain [--start-date D] [--end-date D]`: the daily upkeep of the warehouse's files
(compaction, deletion-vector purges, VACUUM); never changes a row of any table."""

from __future__ import annotations

import argparse
from datetime import datetime

from orders_etl.arguments import CommandSpec, add_date_range, guarded_range
from orders_etl.config import Config
from orders_etl.pipeline.maintain import MaintainParams, MaintainResult, run


def params(args: argparse.Namespace, config: Config, now: datetime) -> MaintainParams:
    """Resolve and guard the `fct_orders` days to compact: by default the `[maintain] days`
    days ending on the processing date, at most `[backfill] max_days`."""
    start, end = guarded_range(
        "maintain",
        args.start_date,
        args.end_date,
        now.date(),
        config.maintain.days,
        config.backfill.max_days,
    )
    return MaintainParams(start, end)


SPEC = CommandSpec(
    "maintain",
    "daily: compact small files, purge deletion vectors, vacuum (rows unchanged)",
    params,
    run,
    add_date_range,
)
__all__ = ["SPEC", "MaintainParams", "MaintainResult", "run"]
