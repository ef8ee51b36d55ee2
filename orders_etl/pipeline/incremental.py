"""MERGE the processing-time window of landing into `fct_orders`.

Window: landing versions with `effective_ingested_at >= max(effective_ingested_at in
fct_orders) - lookback` (all of landing while `fct_orders` is empty). A version that arrives
weeks after its `event_time` is still inside the window of the run after it lands, because
the window follows arrival, not event time. The lookback covers a landing run that commits
after a later-stamped one and clocks that disagree.

Only the window's rows landed since the last MERGE are read when that gives the same
`fct_orders` (io/window.py explains when); `whole_window` reads the whole window always.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from orders_etl.context import CommandResult, RunContext
from orders_etl.io.history import commits_of_run, run_tag, touched_partitions
from orders_etl.io.migration import prepare_landing
from orders_etl.io.tables import ensure_table, read_table, table_version
from orders_etl.io.window import (
    current_dates,
    distinct_dates,
    landing_rows,
    merged_through,
    watermark,
    window_mark,
)
from orders_etl.io.writes import merge_latest_versions, retry_on_conflict
from orders_etl.schemas import FCT_ORDERS, ORDERS_LANDING
from orders_etl.session import commits_tagged, concurrently
from orders_etl.transforms.latest import dedupe_latest_version
from orders_etl.transforms.stage import filter_ingested_since, stage_versions


@dataclass(frozen=True)
class IncrementalParams:
    """`incremental`'s arguments."""

    lookback_days: int
    whole_window: bool = False


@dataclass(frozen=True)
class IncrementalResult(CommandResult):
    """What one MERGE of the window read and changed (Delta's commit metrics)."""

    watermark: datetime | None
    window_since: datetime | None
    source_rows: int
    deduped_rows: int
    fct_version: int | None
    inserted: int = 0
    updated: int = 0
    files_added: int = 0
    files_removed: int = 0
    rows_copied: int = 0
    deletion_vectors_added: int = 0
    partitions_touched: tuple[str, ...] = ()
    merge_dates_read: int | None = None
    landing_version: int | None = None
    read_after_landing_version: int | None = None

    @property
    def left_alone(self) -> int:
        """Window orders the MERGE left as they were."""
        return self.deduped_rows - self.inserted - self.updated

    @property
    def metrics(self) -> Mapping[str, Any]:
        metrics: dict[str, Any] = {
            "watermark": self.watermark,
            "window_since": self.window_since,
            "source_rows": self.source_rows,
            "deduped_rows": self.deduped_rows,
            "inserted": self.inserted,
            "updated": self.updated,
            "left_alone": self.left_alone,
            "files_added": self.files_added,
            "files_removed": self.files_removed,
            "rows_copied": self.rows_copied,
            "deletion_vectors_added": self.deletion_vectors_added,
            "partitions_touched": list(self.partitions_touched),
            "fct_version": self.fct_version,
        }
        if self.merge_dates_read is not None:
            metrics["merge_dates_read"] = self.merge_dates_read
        metrics["landing_version"] = self.landing_version
        metrics["read_after_landing_version"] = self.read_after_landing_version
        return metrics

    def summary(self) -> str:
        return (
            f"window_rows={self.source_rows} deduped={self.deduped_rows} "
            f"inserted={self.inserted} updated={self.updated} "
            f"left_alone={self.left_alone} files_added={self.files_added} "
            f"files_removed={self.files_removed} "
            f"partitions_touched={len(self.partitions_touched)}"
        )


def merge_window(
    ctx: RunContext, lookback_days: int, whole_window: bool = False
) -> IncrementalResult:
    """One try of the incremental: read the window, dedupe, MERGE; return what it did."""
    spark = ctx.spark
    fct_path, landing_path = ctx.warehouse.path(FCT_ORDERS), ctx.warehouse.path(ORDERS_LANDING)
    landing_version = table_version(spark, landing_path)
    version_before = table_version(spark, fct_path)
    assert landing_version is not None and version_before is not None
    fct_df = read_table(spark, ctx.warehouse, FCT_ORDERS, version_before)
    high = watermark(fct_df)
    since = None if high is None else high - timedelta(days=lookback_days)
    read = window_mark(spark, landing_path, landing_version, since)
    after = (
        None
        if whole_window
        else merged_through(spark, fct_path, version_before, landing_path, read)
    )
    result = IncrementalResult(
        watermark=high,
        window_since=since,
        source_rows=0,
        deduped_rows=0,
        fct_version=version_before,
        landing_version=landing_version,
        read_after_landing_version=after,
    )
    if after == landing_version:
        return result
    window_df = filter_ingested_since(
        stage_versions(landing_rows(spark, landing_path, landing_version, after)), since
    ).localCheckpoint()
    latest_df = dedupe_latest_version(window_df).localCheckpoint()
    source_rows, deduped_rows = concurrently([window_df.count, latest_df.count])
    result = replace(result, source_rows=source_rows, deduped_rows=deduped_rows)
    if result.deduped_rows == 0:
        return result
    dates_in_window, dates_now = concurrently(
        [partial(distinct_dates, latest_df), partial(current_dates, fct_df, latest_df)]
    )
    dates = sorted(set(dates_in_window) | set(dates_now))
    with commits_tagged(spark, run_tag(ctx.run_id, read.as_state())):
        merge_latest_versions(spark, fct_path, latest_df, dates)
    merge = [
        c
        for c in commits_of_run(spark, fct_path, ctx.run_id, version_before)
        if c.operation == "MERGE"
    ]
    if not merge:
        return result
    commit = merge[-1]
    return replace(
        result,
        inserted=commit.metric("numTargetRowsInserted"),
        updated=commit.metric("numTargetRowsUpdated"),
        files_added=commit.metric("numTargetFilesAdded"),
        files_removed=commit.metric("numTargetFilesRemoved"),
        rows_copied=commit.metric("numTargetRowsCopied"),
        deletion_vectors_added=commit.metric("numTargetDeletionVectorsAdded"),
        partitions_touched=tuple(
            touched_partitions(spark, fct_path, [commit.version], "order_date")
        ),
        fct_version=commit.version,
        merge_dates_read=len(dates),
    )


def run(ctx: RunContext, params: IncrementalParams) -> IncrementalResult:
    """MERGE the window into `fct_orders`, retried on a concurrent write."""
    prepare_landing(ctx.spark, ctx.warehouse)
    ensure_table(ctx.spark, ctx.warehouse, FCT_ORDERS)
    return retry_on_conflict(
        lambda: merge_window(ctx, params.lookback_days, params.whole_window),
        ctx.config.retries,
        "incremental MERGE",
    )
