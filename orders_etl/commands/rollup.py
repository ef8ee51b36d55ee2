"""`rollup`: bring `daily_revenue` up to date with `fct_orders`, versioned with as-of times.

Only days whose orders changed are recomputed: the change data feed of `fct_orders` since
the version the last successful rollup reached (kept in the run ledger) names them. Without
that checkpoint, or when the feed cannot be read (vacuumed, or past the log's retention),
every day is recomputed, and the run says so. A recomputed day is compared with its published
figures, so a repeated or crashed-and-rerun rollup adds no version where nothing changed.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from orders_etl.context import CommandResult, RunContext
from orders_etl.errors import GuardRefused
from orders_etl.io.ledger import ROLLUP_CHECKPOINT_METRIC, last_metric
from orders_etl.io.notify import WEBHOOK_VARIABLE, post_json, revision_payload
from orders_etl.io.tables import ensure_table, read_table, table_exists, table_version
from orders_etl.io.writes import insert_new_rows, merge_revenue_versions, retry_on_conflict
from orders_etl.schemas import (
    DAILY_REVENUE,
    FCT_ORDERS,
    REVENUE_REVISIONS,
    REVENUE_REVISIONS_SCHEMA,
    REVENUE_TYPE,
)
from orders_etl.transforms.revenue import agg_daily_revenue, diff_figures, filter_current

log = logging.getLogger(__name__)
CHECKPOINT_METRIC = ROLLUP_CHECKPOINT_METRIC


class ChangeFeed:
    """How a rollup learned which days changed: the `change_feed` metric."""

    READ = "read"
    NO_CHECKPOINT = "no checkpoint"
    UNAVAILABLE = "unavailable"


@dataclass(frozen=True)
class ChangedDays:
    """The days a rollup recomputes (None: every day) and how it learned them."""

    dates: list[date] | None
    change_feed: str
    error: str | None = None


def changed_dates(
    spark: SparkSession, fct_path: str, after_version: int | None, to_version: int
) -> ChangedDays:
    """Return the `order_date`s changed in `fct_orders` after `after_version` up to
    `to_version`, from its change data feed; every day when there is no checkpoint or the
    feed cannot be read (its files vacuumed, its commits past the log's retention)."""
    if after_version is None:
        return ChangedDays(None, ChangeFeed.NO_CHECKPOINT)
    if after_version >= to_version:
        return ChangedDays([], ChangeFeed.READ)
    try:
        rows = (
            spark.read.format("delta")
            .option("readChangeFeed", "true")
            .option("startingVersion", after_version + 1)
            .option("endingVersion", to_version)
            .load(fct_path)
            .select("order_date")
            .distinct()
            .collect()
        )
    except Exception as exc:
        log.warning(
            "change data feed of fct_orders unavailable after version %d (%s); "
            "recomputing every day",
            after_version,
            type(exc).__name__,
        )
        return ChangedDays(None, ChangeFeed.UNAVAILABLE, type(exc).__name__)
    dates = sorted(r["order_date"] for r in rows if r["order_date"] is not None)
    return ChangedDays(dates, ChangeFeed.READ)


def _scope(df: DataFrame, dates: list[date] | None) -> DataFrame:
    if dates is None:
        return df
    return df.filter(F.col("order_date").isin(*dates)) if dates else df.limit(0)


def revisions_at(revenue_df: DataFrame, moment: datetime) -> DataFrame:
    """Read back from `daily_revenue`'s versions the revisions made at `moment`: one row per
    (`order_date`, `currency`) whose figures changed at `moment`, on a day before `moment`'s
    date that had figures published before `moment`.

    Derived from the versions, not from a run's own changes, so a rollup rerun after a crash
    between its versioning MERGE and its revisions write still records them.
    """
    at = F.lit(moment).cast("timestamp")
    closed = revenue_df.filter(F.col("superseded_at") == at).select(
        "order_date",
        "currency",
        F.col("order_count").alias("previous_order_count"),
        F.col("revenue").alias("previous_revenue"),
    )
    opened = revenue_df.filter(F.col("as_of") == at).select(
        "order_date",
        "currency",
        F.col("order_count").alias("new_order_count"),
        F.col("revenue").alias("new_revenue"),
    )
    published = revenue_df.filter(F.col("as_of") < at).select("order_date").distinct()
    return (
        closed.join(opened, on=["order_date", "currency"], how="full_outer")
        .join(published, on="order_date", how="left_semi")
        .filter(F.col("order_date") < F.to_date(at))
        .select(
            "order_date",
            "currency",
            "previous_order_count",
            "new_order_count",
            "previous_revenue",
            "new_revenue",
            (F.coalesce("new_order_count", F.lit(0)) - F.coalesce("previous_order_count", F.lit(0)))
            .cast("long")
            .alias("order_count_difference"),
            (F.coalesce("new_revenue", F.lit(0)) - F.coalesce("previous_revenue", F.lit(0)))
            .cast(REVENUE_TYPE)
            .alias("revenue_difference"),
            at.alias("as_of"),
        )
    )


def check_timeline(ctx: RunContext) -> None:
    """Refuse a processing time earlier than the newest published version: the new versions
    would break the as-of timeline. Writes nothing."""
    path = ctx.warehouse.path(DAILY_REVENUE)
    if not table_exists(ctx.spark, path):
        return
    row = ctx.spark.read.format("delta").load(path).agg(F.max("as_of").alias("m")).first()
    newest: datetime | None = None if row is None else row["m"]
    if newest is not None and newest > ctx.processing_time.replace(tzinfo=None):
        raise GuardRefused(
            f"rollup refused: --processing-time {ctx.processing_time.isoformat()} is before "
            f"the newest published version ({newest.isoformat()}Z)"
        )


def bring_up_to_date(ctx: RunContext) -> dict[str, Any]:
    """One try of the rollup; returns its metrics (rows of revisions included)."""
    spark = ctx.spark
    fct_path = ctx.warehouse.path(FCT_ORDERS)
    revenue_path = ctx.warehouse.path(DAILY_REVENUE)
    to_version = table_version(spark, fct_path)
    assert to_version is not None
    last = last_metric(spark, ctx.warehouse, CHECKPOINT_METRIC)
    changed = changed_dates(spark, fct_path, last, to_version)
    dates = changed.dates
    fct_df = spark.read.format("delta").option("versionAsOf", to_version).load(fct_path)
    published_all = read_table(spark, ctx.warehouse, DAILY_REVENUE)
    check_timeline(ctx)
    published_df = _scope(filter_current(published_all), dates)
    recomputed_df = agg_daily_revenue(_scope(fct_df, dates))
    changes_df = diff_figures(published_df, recomputed_df).localCheckpoint()
    changes = changes_df.count()
    if changes:
        merge_revenue_versions(spark, revenue_path, changes_df, ctx.processing_time, ctx.run_id)
    revisions_path = ctx.warehouse.path(REVENUE_REVISIONS)
    recorded = spark.read.format("delta").load(revisions_path)
    new_revisions_df = (
        revisions_at(spark.read.format("delta").load(revenue_path), ctx.processing_time)
        .join(recorded, on=["order_date", "currency", "as_of"], how="left_anti")
        .withColumn("run_id", F.lit(ctx.run_id))
        .select(*(f.name for f in REVENUE_REVISIONS_SCHEMA.fields))
        .localCheckpoint()
    )
    ordered = new_revisions_df.drop("as_of", "run_id").orderBy("order_date", "currency")
    revisions = [r.asDict() for r in ordered.collect()]
    if revisions:
        keys = ("order_date", "currency", "as_of")
        insert_new_rows(spark, revisions_path, new_revisions_df, keys)
    return {
        CHECKPOINT_METRIC: to_version,
        "fct_version_from": last,
        "days_recomputed": "all" if dates is None else len(dates),
        "change_feed": changed.change_feed,
        "change_feed_error": changed.error,
        "figures_changed": changes,
        "revisions": revisions,
        "daily_revenue_version": table_version(spark, revenue_path),
    }


def announce(ctx: RunContext, revisions: list[dict[str, Any]]) -> str:
    """Log each revision and POST them once to the webhook, when one is configured."""
    for r in revisions:
        log.warning(
            "revision %s %s: revenue %s -> %s, orders %s -> %s",
            r["order_date"],
            r["currency"],
            r["previous_revenue"],
            r["new_revenue"],
            r["previous_order_count"],
            r["new_order_count"],
        )
    url = os.environ.get(WEBHOOK_VARIABLE, "").strip()
    if not revisions:
        return "nothing to announce"
    if not url:
        return "logged (no webhook configured)"
    payload = revision_payload(ctx.run_id, ctx.processing_time.isoformat(), revisions)
    return post_json(url, payload, ctx.config.notify)


def run(ctx: RunContext) -> CommandResult:
    """Run `rollup`."""
    for table in (FCT_ORDERS, DAILY_REVENUE, REVENUE_REVISIONS):
        ensure_table(ctx.spark, ctx.warehouse, table)
    metrics = retry_on_conflict(lambda: bring_up_to_date(ctx), ctx.config.retries, "rollup")
    metrics["announcement"] = announce(ctx, metrics["revisions"])
    unavailable = (
        f"change data feed unavailable after version {metrics['fct_version_from']} "
        f"({metrics['change_feed_error']}), every day recomputed; "
        if metrics["change_feed"] == ChangeFeed.UNAVAILABLE
        else ""
    )
    summary = (
        f"{unavailable}days_recomputed={metrics['days_recomputed']} "
        f"figures_changed={metrics['figures_changed']} "
        f"revisions={len(metrics['revisions'])} announcement: {metrics['announcement']}"
    )
    return CommandResult(metrics=metrics, summary=summary)
