"""Baselines the incremental is compared with, each run on a scratch copy of `fct_orders`.

- full refresh: recompute every order from all of landing and overwrite the copy;
- MERGE without partition predicates: the incremental's own window and MERGE clauses, joined
  on `order_id` alone, so Delta reads every partition of the target;
- the old `event_time`-driven incremental: versions with `event_time > max(event_time in
  fct_orders)`, MERGEd on `order_id`; an event that arrives late is never read.

They call the project's transforms, so they differ from the incremental only where they say.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from datagen import latest_from_landing, write_fct
from delta.tables import DeltaTable
from measure import Probe, measure
from pipeline import (
    FCT_ORDERS_COLUMNS,
    dedupe_latest_version,
    filter_ingested_since,
    newer_than_sql,
    stage_versions,
    watermark,
)
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F


def read_version(spark: SparkSession, path: str, version: int | None = None) -> DataFrame:
    """Read a Delta table, optionally at a version."""
    reader = spark.read.format("delta")
    if version is not None:
        reader = reader.option("versionAsOf", version)
    return reader.load(path)


def merge_on_order_id(spark: SparkSession, path: str, latest_df: DataFrame) -> None:
    """MERGE one-row-per-order versions on `order_id` alone, with the incremental's clauses."""
    (
        DeltaTable.forPath(spark, path)
        .alias("t")
        .merge(latest_df.select(*FCT_ORDERS_COLUMNS).alias("s"), "t.order_id = s.order_id")
        .whenMatchedUpdateAll(condition=newer_than_sql("s", "t"))
        .whenNotMatchedInsertAll()
        .execute()
    )


def full_refresh(spark: SparkSession, landing_path: str, copy_path: str) -> dict[str, Any]:
    """Recompute `fct_orders` from all of landing and overwrite the scratch copy."""
    write_fct(latest_from_landing(spark, landing_path), copy_path, "overwrite")
    return {}


def window_since(fct_df: DataFrame, lookback_days: int) -> datetime | None:
    """Return the incremental's window start for a `fct_orders` snapshot."""
    high = watermark(fct_df)
    return None if high is None else high - timedelta(days=lookback_days)


def merge_without_predicates(
    spark: SparkSession, probe: Probe, landing_path: str, copy_path: str, lookback_days: int
) -> dict[str, Any]:
    """Run the incremental's window and MERGE on the copy, without `order_date` predicates;
    the MERGE step is also timed on its own."""
    since = window_since(read_version(spark, copy_path), lookback_days)
    window_df = filter_ingested_since(
        stage_versions(read_version(spark, landing_path)), since
    ).localCheckpoint()
    latest_df = dedupe_latest_version(window_df).localCheckpoint()
    metrics: dict[str, Any] = {"source_rows": window_df.count(), "deduped_rows": latest_df.count()}
    _, usage = measure(probe, lambda: merge_on_order_id(spark, copy_path, latest_df))
    metrics.update(merge_seconds=usage.seconds, merge_jvm_cpu_seconds=usage.jvm_cpu_seconds)
    return metrics


def event_time_incremental(
    spark: SparkSession, landing_path: str, copy_path: str
) -> dict[str, Any]:
    """Run the old model on the copy: MERGE versions newer than the newest `event_time`."""
    row = read_version(spark, copy_path).agg(F.max("event_time").alias("m")).first()
    high = None if row is None else row["m"]
    versions_df = stage_versions(read_version(spark, landing_path))
    if high is not None:
        versions_df = versions_df.filter(F.col("event_time") > F.lit(high))
    latest_df = dedupe_latest_version(versions_df).localCheckpoint()
    metrics = {"max_event_time": high, "deduped_rows": latest_df.count()}
    merge_on_order_id(spark, copy_path, latest_df)
    return metrics
