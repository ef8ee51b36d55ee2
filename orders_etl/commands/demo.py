"""`demo`: generate a week of hourly batches with late events and run the whole pipeline."""

from __future__ import annotations

import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from pyspark.sql import Window
from pyspark.sql import functions as F

from orders_etl.commands import backfill, hourly, revenue
from orders_etl.commands.migrate import migrate_warehouse
from orders_etl.context import CommandResult, RunContext
from orders_etl.errors import UsageError
from orders_etl.io.readers import list_batch_files
from orders_etl.io.tables import read_table
from orders_etl.runner import execute, new_run_id
from orders_etl.sample import generate_batches, write_batches
from orders_etl.schemas import ORDERS_LANDING, ORDERS_QUARANTINE, REVENUE_REVISIONS

MARKER = ".orders_etl_demo"


@dataclass(frozen=True)
class DemoParams:
    """`demo`'s arguments."""

    days: int = 7
    seed: int = 7
    argv_env: str | None = None
    batch_hours: int = 24


def check_warehouse_is_demo(root: str) -> None:
    """Refuse to run the demo in a folder that holds anything but an earlier demo."""
    if "://" in root:
        raise UsageError(f"demo runs on a local warehouse only, not {root!r}")
    path = Path(root)
    if path.exists() and any(path.iterdir()) and not (path / MARKER).exists():
        raise UsageError(
            f"demo refused: {root} is not empty and was not made by the demo; "
            "give an empty folder with --warehouse"
        )


def _say(text: str) -> None:
    print(f"demo: {text}", file=sys.stderr, flush=True)


def _dropped_by_event_time_model(ctx: RunContext) -> int:
    """Count landed versions an `event_time > max(event_time)` incremental would have dropped:
    those not newer than every version landed in earlier runs."""
    landing = read_table(ctx.spark, ctx.warehouse, ORDERS_LANDING)
    per_run = landing.groupBy("event_ingested_at").agg(F.max("event_time").alias("run_max"))
    earlier = Window.orderBy("event_ingested_at").rowsBetween(Window.unboundedPreceding, -1)
    bounds = per_run.withColumn("seen_max", F.max("run_max").over(earlier))
    row = (
        landing.join(bounds, on="event_ingested_at", how="inner")
        .filter(F.col("event_time") <= F.col("seen_max"))
        .agg(F.count(F.lit(1)).alias("n"))
        .first()
    )
    return 0 if row is None else int(row["n"])


def _bind(ctx: RunContext, params: hourly.HourlyParams) -> Callable[[], CommandResult]:
    return lambda: hourly.run(ctx, params)


def run(ctx: RunContext, params: DemoParams) -> CommandResult:
    """Run `demo`."""
    root = Path(ctx.warehouse.root)
    if root.exists():
        shutil.rmtree(root)
    root.mkdir(parents=True)
    (root / MARKER).write_text("made by orders-etl demo; the demo may delete this folder\n")
    inputs = root / "_demo_input"
    end = ctx.processing_time.replace(minute=0, second=0, microsecond=0)
    hourly_batches = generate_batches(
        params.seed, end - timedelta(days=params.days), params.days, batch_hours=1
    )
    batches = []
    for first in range(0, len(hourly_batches), params.batch_hours):
        group = hourly_batches[first : first + params.batch_hours]
        tick = group[-1].processing_time
        write_batches(group, inputs / f"tick-{tick:%Y%m%dT%H%M}")
        batches.append((tick, inputs / f"tick-{tick:%Y%m%dT%H%M}"))
    migrate_warehouse(ctx.spark, ctx.warehouse)
    _say(
        f"{len(hourly_batches)} hourly batch files in {inputs}, {params.batch_hours} per "
        f"scheduler tick: running `hourly` {len(batches)} times"
    )
    failures = 0
    for number, (processing_time, path) in enumerate(batches, start=1):
        run_ctx = RunContext(ctx.config, processing_time, new_run_id(), ctx.verbose, ctx.spark)
        files = tuple(list_batch_files(str(path)))
        step = hourly.HourlyParams(str(path), files, ctx.config.incremental.lookback_days)
        code = execute(run_ctx, "hourly", {"source": str(path)}, _bind(run_ctx, step))
        failures += code != 0
        _say(f"[{number}/{len(batches)}] {path.name} exit {code}")
    final_ctx = RunContext(ctx.config, end, new_run_id(), ctx.verbose, ctx.spark)
    start = end.date() - timedelta(days=ctx.config.backfill.default_days - 1)
    execute(
        final_ctx,
        "backfill",
        {"start_date": str(start), "end_date": str(end.date())},
        lambda: backfill.run(final_ctx, backfill.BackfillParams(start, end.date())),
    )
    chart = root / "_demo_output" / "revenue.png"
    report_ctx = RunContext(ctx.config, end, new_run_id(), ctx.verbose, ctx.spark)
    execute(
        report_ctx,
        "revenue",
        {"chart": str(chart)},
        lambda: revenue.run(report_ctx, revenue.RevenueParams(chart=str(chart))),
    )

    spark = ctx.spark
    landed = read_table(spark, ctx.warehouse, ORDERS_LANDING).count()
    reasons = {
        r["reason"]: int(r["count"])
        for r in read_table(spark, ctx.warehouse, ORDERS_QUARANTINE)
        .groupBy("reason")
        .count()
        .collect()
    }
    revisions = read_table(spark, ctx.warehouse, REVENUE_REVISIONS)
    revised_days = revisions.select("order_date").distinct().count()
    biggest = revisions.orderBy(F.abs(F.col("revenue_difference")).desc()).first()
    dropped = _dropped_by_event_time_model(ctx)
    middle = batches[len(batches) // 2][0]
    story = [
        f"landed {landed} event versions from {len(hourly_batches)} hourly batch files "
        f"in {len(batches)} `hourly` runs",
        f"{dropped} of them arrived after a newer event_time had already landed: an "
        "event_time-driven incremental would have dropped them; "
        "the processing-time MERGE kept them",
        f"{revisions.count()} revisions of past days announced across {revised_days} day(s)"
        + (
            f"; the largest moved {biggest['order_date']} {biggest['currency']} revenue by "
            f"{biggest['revenue_difference']}"
            if biggest
            else ""
        ),
        f"{sum(reasons.values())} lines quarantined: "
        + (", ".join(f"{k} {v}" for k, v in sorted(reasons.items())) or "none"),
        f"tables: {root}/<table> (fct_orders, daily_revenue, revenue_revisions, pipeline_runs)",
        f"chart: {chart}",
        f"try: orders-etl revenue --warehouse {root} --as-of {middle.isoformat()}",
    ]
    for line in story:
        _say(line)
    metrics: dict[str, Any] = {
        "batches": len(batches),
        "hourly_failures": failures,
        "landed": landed,
        "dropped_by_event_time_model": dropped,
        "revisions": revisions.count(),
        "quarantined": reasons,
    }
    return CommandResult(
        metrics=metrics,
        exit_code=1 if failures else 0,
        summary=f"{len(batches)} batches, {failures} failed",
    )
