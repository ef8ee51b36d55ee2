"""`incremental`: MERGE the processing-time window of landing into `fct_orders`.

Window: landing versions with `effective_ingested_at >= max(effective_ingested_at in
fct_orders) - lookback` (all of landing while `fct_orders` is empty). A version that arrives
weeks after its `event_time` is still inside the window of the run after it lands, because
the window follows arrival, not event time. The lookback covers a landing run that commits
after a later-stamped one and clocks that disagree.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from orders_etl.commands.migrate import prepare_landing
from orders_etl.context import CommandResult, RunContext
from orders_etl.io.history import commits_of_run, touched_partitions
from orders_etl.io.tables import ensure_table, read_table, table_version
from orders_etl.io.writes import merge_latest_versions, retry_on_conflict
from orders_etl.schemas import FCT_ORDERS, ORDERS_LANDING
from orders_etl.transforms.latest import dedupe_latest_version
from orders_etl.transforms.stage import filter_ingested_since, stage_versions


@dataclass(frozen=True)
class IncrementalParams:
    """`incremental`'s arguments."""

    lookback_days: int


def watermark(fct_df: DataFrame) -> datetime | None:
    """Return `max(effective_ingested_at)` of `fct_orders`, None when it is empty."""
    row = fct_df.agg(F.max("effective_ingested_at").alias("m")).first()
    return None if row is None else row["m"]


def current_dates(fct_df: DataFrame, orders_df: DataFrame) -> list[date]:
    """Return the dates where the given orders have rows in `fct_orders` now.

    Reads only `order_id` and `order_date` of `fct_orders`. The join is Spark's choice: the
    window's orders grow with the data (a first build, a catch-up), so they are never forced
    into a broadcast. What is collected is one row per date.
    """
    rows = (
        fct_df.select("order_id", "order_date")
        .join(orders_df.select("order_id"), on="order_id", how="left_semi")
        .select("order_date")
        .distinct()
        .collect()
    )
    return [r["order_date"] for r in rows]


def distinct_dates(df: DataFrame) -> list[date]:
    """Return the distinct `order_date` values of `df`."""
    return [r["order_date"] for r in df.select("order_date").distinct().collect()]


def merge_window(ctx: RunContext, lookback_days: int) -> dict[str, Any]:
    """One try of the incremental: read the window, dedupe, MERGE; return its metrics."""
    spark: SparkSession = ctx.spark
    fct_path = ctx.warehouse.path(FCT_ORDERS)
    version_before = table_version(spark, fct_path)
    fct_df = read_table(spark, ctx.warehouse, FCT_ORDERS)
    high = watermark(fct_df)
    since = None if high is None else high - timedelta(days=lookback_days)
    window_df = filter_ingested_since(
        stage_versions(read_table(spark, ctx.warehouse, ORDERS_LANDING)), since
    ).localCheckpoint()
    latest_df = dedupe_latest_version(window_df).localCheckpoint()
    source_rows = window_df.count()
    deduped_rows = latest_df.count()
    metrics: dict[str, Any] = {
        "watermark": high,
        "window_since": since,
        "source_rows": source_rows,
        "deduped_rows": deduped_rows,
        "inserted": 0,
        "updated": 0,
        "left_alone": deduped_rows,
        "files_added": 0,
        "files_removed": 0,
        "rows_copied": 0,
        "deletion_vectors_added": 0,
        "partitions_touched": [],
        "fct_version": version_before,
    }
    if deduped_rows == 0:
        return metrics
    dates = sorted(set(distinct_dates(latest_df)) | set(current_dates(fct_df, latest_df)))
    merge_latest_versions(spark, fct_path, latest_df, dates)
    made = commits_of_run(spark, fct_path, ctx.run_id, version_before)
    merge = [c for c in made if c.operation == "MERGE"]
    if merge:
        commit = merge[-1]
        inserted = commit.metric("numTargetRowsInserted")
        updated = commit.metric("numTargetRowsUpdated")
        metrics.update(
            inserted=inserted,
            updated=updated,
            left_alone=deduped_rows - inserted - updated,
            files_added=commit.metric("numTargetFilesAdded"),
            files_removed=commit.metric("numTargetFilesRemoved"),
            rows_copied=commit.metric("numTargetRowsCopied"),
            deletion_vectors_added=commit.metric("numTargetDeletionVectorsAdded"),
            partitions_touched=touched_partitions(spark, fct_path, [commit.version], "order_date"),
            fct_version=commit.version,
            merge_dates_read=len(dates),
        )
    return metrics


def run(ctx: RunContext, params: IncrementalParams) -> CommandResult:
    """Run `incremental`."""
    prepare_landing(ctx.spark, ctx.warehouse)
    ensure_table(ctx.spark, ctx.warehouse, FCT_ORDERS)
    metrics = retry_on_conflict(
        lambda: merge_window(ctx, params.lookback_days), ctx.config.retries, "incremental MERGE"
    )
    summary = (
        f"window_rows={metrics['source_rows']} deduped={metrics['deduped_rows']} "
        f"inserted={metrics['inserted']} updated={metrics['updated']} "
        f"left_alone={metrics['left_alone']} files_added={metrics['files_added']} "
        f"files_removed={metrics['files_removed']} "
        f"partitions_touched={len(metrics['partitions_touched'])}"
    )
    return CommandResult(metrics=metrics, summary=summary)
