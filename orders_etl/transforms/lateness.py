"""How late events arrive: lateness statistics, and what an event-time incremental drops."""

from __future__ import annotations

from datetime import datetime

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

DAY_SECONDS = 86400


def agg_lateness(staged_df: DataFrame, since: datetime) -> DataFrame:
    """Summarize the lateness (`effective_ingested_at - event_time`, seconds) of versions
    ingested since `since`: one row with `events`, `p50`, `p95`, `max`, `over_3_days`,
    `over_14_days`."""
    late = F.col("effective_ingested_at").cast("long") - F.col("event_time").cast("long")
    return (
        staged_df.filter(F.col("effective_ingested_at") >= F.lit(since).cast("timestamp"))
        .select(late.alias("s"))
        .agg(
            F.count(F.lit(1)).alias("events"),
            F.percentile_approx("s", 0.5).alias("p50"),
            F.percentile_approx("s", 0.95).alias("p95"),
            F.max("s").alias("max"),
            F.count(F.when(F.col("s") > 3 * DAY_SECONDS, 1)).alias("over_3_days"),
            F.count(F.when(F.col("s") > 14 * DAY_SECONDS, 1)).alias("over_14_days"),
        )
        .select("events", "p50", "p95", "max", "over_3_days", "over_14_days")
    )


def filter_dropped_by_event_time_model(landing_df: DataFrame) -> DataFrame:
    """Keep the landed versions an `event_time > max(event_time)` incremental would have
    dropped: those not newer than every version landed by earlier runs (one landing run per
    `event_ingested_at`). One row per dropped version."""
    per_run = landing_df.groupBy("event_ingested_at").agg(F.max("event_time").alias("run_max"))
    earlier = Window.orderBy("event_ingested_at").rowsBetween(Window.unboundedPreceding, -1)
    bounds = per_run.withColumn("seen_max", F.max("run_max").over(earlier))
    return (
        landing_df.join(bounds, on="event_ingested_at", how="inner")
        .filter(F.col("event_time") <= F.col("seen_max"))
        .select(*landing_df.columns)
    )
