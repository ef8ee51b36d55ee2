"""Everything bench uses from orders_etl, in one place.

The rest of bench imports the project from here only, so that when a project module moves,
this file is the one to change. The commands come wrapped as `RunContext -> CommandResult`
functions, which keeps their params classes here too.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import date

import orders_etl.session as _session
from orders_etl.config import Config, SparkSettings, load_config
from orders_etl.context import CommandResult, RunContext
from orders_etl.io.history import Commit, commits, commits_of_run, touched_partitions
from orders_etl.io.maintenance import snapshot_files
from orders_etl.io.migration import migrate_warehouse
from orders_etl.io.readers import list_batch_files
from orders_etl.io.tables import TABLES, Warehouse, table_version
from orders_etl.io.window import current_dates, distinct_dates, watermark
from orders_etl.io.writes import merge_latest_versions
from orders_etl.pipeline import backfill, hourly, incremental, land, maintain, rollup, verify
from orders_etl.runner import execute
from orders_etl.sample import generate_batches, write_batches
from orders_etl.schemas import (
    AMOUNT_TYPE,
    DAILY_REVENUE,
    FCT_ORDERS,
    FCT_ORDERS_COLUMNS,
    INPUT_FIELDS,
    LANDING_SCHEMA,
    ORDERS_LANDING,
    ORDERS_QUARANTINE,
    REVENUE_REVISIONS,
)
from orders_etl.session import CONCURRENT_JOBS, get_spark, run_session
from orders_etl.transforms.latest import dedupe_latest_version, newer_than_sql
from orders_etl.transforms.stage import filter_ingested_since, stage_versions

__all__ = [
    "AMOUNT_TYPE",
    "CONCURRENT_JOBS",
    "DAILY_REVENUE",
    "FCT_ORDERS",
    "FCT_ORDERS_COLUMNS",
    "INPUT_FIELDS",
    "LANDING_SCHEMA",
    "ORDERS_LANDING",
    "ORDERS_QUARANTINE",
    "REVENUE_REVISIONS",
    "TABLES",
    "CommandResult",
    "Commit",
    "Config",
    "RunContext",
    "SparkSettings",
    "Warehouse",
    "commits",
    "commits_of_run",
    "current_dates",
    "dedupe_latest_version",
    "distinct_dates",
    "execute",
    "filter_ingested_since",
    "generate_batches",
    "get_spark",
    "land_files",
    "list_batch_files",
    "load_config",
    "merge_latest_versions",
    "migrate_warehouse",
    "newer_than_sql",
    "quiet",
    "run_backfill",
    "run_hourly",
    "run_incremental",
    "run_maintain",
    "run_rollup",
    "run_session",
    "run_verify",
    "set_concurrent_jobs",
    "snapshot_files",
    "stage_versions",
    "table_version",
    "timed_command",
    "touched_partitions",
    "watermark",
    "write_batches",
]


def quiet(_: str) -> None:
    """A progress sink that drops the lines a composed command reports."""


def timed_command(
    ctx: RunContext, command: str, step: Callable[[RunContext], CommandResult]
) -> tuple[float, int]:
    """Run one command through the runner (ledger rows included); its seconds and exit code."""
    started = time.monotonic()
    code = execute(ctx, command, {}, lambda: step(ctx))
    return time.monotonic() - started, code


def land_files(ctx: RunContext, source: str, files: tuple[str, ...]) -> CommandResult:
    """Run `land` on the given batch files of `source`."""
    return land.run(ctx, land.LandParams(source, files))


def run_incremental(ctx: RunContext, lookback_days: int) -> CommandResult:
    """Run `incremental` with a lookback window of `lookback_days`."""
    return incremental.run(ctx, incremental.IncrementalParams(lookback_days))


def run_backfill(ctx: RunContext, start: date, end: date) -> CommandResult:
    """Run `backfill` over the days `start..end`."""
    return backfill.run(ctx, backfill.BackfillParams(start, end))


def run_rollup(ctx: RunContext) -> CommandResult:
    """Run `rollup`."""
    return rollup.run(ctx)


def run_hourly(ctx: RunContext, source: str, lookback_days: int) -> CommandResult:
    """Run `hourly` on the batch files of `source`."""
    files = tuple(list_batch_files(source))
    return hourly.run(ctx, hourly.HourlyParams(source, files, lookback_days))


def run_maintain(ctx: RunContext, start: date, end: date) -> CommandResult:
    """Run `maintain` over the `fct_orders` days `start..end`."""
    return maintain.run(ctx, maintain.MaintainParams(start, end))


def run_verify(ctx: RunContext) -> CommandResult:
    """Run `verify` over every day and the whole history."""
    return verify.run(ctx, verify.VerifyParams())


def set_concurrent_jobs(jobs: int) -> None:
    """Let a step submit up to `jobs` of its read-only Spark jobs at once (1: one after
    another), as `orders_etl.session.concurrently` reads it on each call."""
    _session.CONCURRENT_JOBS = jobs
