"""Synthetic order history and one hourly batch, generated with Spark column expressions.

Every random choice is a hash of the order number and a salt, so a shape always gives the same
data, whatever the partitioning. Nothing is generated in a Python loop.

History: `orders` orders placed uniformly over `days` days before the batch's processing time
P. Each has 1 to 4 versions (placed, paid, shipped, delivered; one in ten ends cancelled), 10
minutes to 30 hours apart, so some move to another `order_date`. A version lands in the run of
the hour after its `event_time` (3% arrive 1 to 240 hours later still, 2% are resent unchanged
an hour later) and is stamped with that run's processing time. Only versions landed by P - 1h
are in the history.

Batch (processing time P): on-time new orders, late events (5% by default: seven in ten new
orders whose first event happened 1 to 10 days ago, three in ten stale versions of orders
placed 2 to 10 days ago) and newer versions of existing orders (2% by default: orders placed
in the last 30 days, delivered or refunded in the last hour).
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from pipeline import (
    AMOUNT_TYPE,
    FCT_ORDERS_COLUMNS,
    INPUT_FIELDS,
    LANDING_SCHEMA,
    dedupe_latest_version,
    stage_versions,
)
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

CURRENCIES: tuple[str, ...] = ("EUR", "USD", "GBP")
LIFECYCLE: tuple[str, ...] = ("placed", "paid", "shipped", "delivered")
MAX_VERSIONS = 4
HISTORY_LATE_PERCENT = 3
HISTORY_LATE_MAX_HOURS = 240
HISTORY_RESENT_PERCENT = 2
ROWS_PER_LANDING_FILE_MIN = 1_000
UPDATE_LOOKBACK_DAYS = 30
STALE_DAYS = (2, 10)
LATE_DAYS = (1, 10)

KIND_NEW = "new_on_time"
KIND_LATE_NEW = "late_new_order"
KIND_LATE_STALE = "late_stale_version"
KIND_UPDATE = "newer_version"
BATCH_KINDS: tuple[str, ...] = (KIND_NEW, KIND_LATE_NEW, KIND_LATE_STALE, KIND_UPDATE)


@dataclass(frozen=True)
class Shape:
    """What to generate: the history's size and span, and the hourly batch's mix."""

    orders: int
    days: int
    batch_events: int
    processing_time: datetime
    late_share: float = 0.05
    update_share: float = 0.02
    seed: int = 7

    @property
    def history_end(self) -> datetime:
        """The processing time of the last hourly run before the batch's."""
        return self.processing_time - timedelta(hours=1)

    @property
    def history_start(self) -> datetime:
        """The earliest `event_time` of the history."""
        return self.processing_time - timedelta(days=self.days)

    def batch_counts(self) -> dict[str, int]:
        """Return how many lines of each kind the batch asks for."""
        updates = round(self.batch_events * self.update_share)
        late = round(self.batch_events * self.late_share)
        stale = late * 3 // 10
        return {
            KIND_NEW: self.batch_events - late - updates,
            KIND_LATE_NEW: late - stale,
            KIND_LATE_STALE: stale,
            KIND_UPDATE: updates,
        }


def _draw(shape: Shape, salt: int, modulo: int, *columns: Column) -> Column:
    """Return a deterministic pseudo-random whole number in `[0, modulo)`."""
    return F.pmod(F.xxhash64(*columns, F.lit(shape.seed * 1_000 + salt)), F.lit(max(modulo, 1)))


def _pick(values: tuple[str, ...], index: Column) -> Column:
    """Return `values[index]` as a column."""
    return F.element_at(F.array(*(F.lit(v) for v in values)), (index + 1).cast("int"))


def _plus_seconds(moment: Column, seconds: Column) -> Column:
    return F.timestamp_seconds(F.unix_seconds(moment) + seconds)


def _epoch(moment: datetime) -> Column:
    return F.lit(int(moment.timestamp())).cast("long")


def with_order_attributes(numbers_df: DataFrame, shape: Shape) -> DataFrame:
    """Derive an order's fixed attributes from its number `n`: one row per order.

    n=42 -> order_id o0000000042, customer, currency, amount, placed_at, versions, gap_seconds
    """
    n = F.col("n")
    span = int((shape.history_end - shape.history_start).total_seconds())
    return numbers_df.select(
        n,
        F.concat(F.lit("o"), F.lpad(n.cast("string"), 10, "0")).alias("order_id"),
        F.concat(F.lit("c"), _draw(shape, 1, max(shape.orders // 4, 1), n).cast("string")).alias(
            "customer_id"
        ),
        _pick(CURRENCIES, _draw(shape, 2, len(CURRENCIES), n)).alias("currency"),
        ((_draw(shape, 3, 50_000, n) + 100) / 100).cast(AMOUNT_TYPE).alias("amount"),
        F.timestamp_seconds(_epoch(shape.history_start) + _draw(shape, 4, span, n)).alias(
            "placed_at"
        ),
        (_draw(shape, 5, MAX_VERSIONS, n) + 1).cast("int").alias("versions"),
        (600 + _draw(shape, 6, 30 * 3600, n)).alias("gap_seconds"),
        (_draw(shape, 7, 10, n) == 0).alias("cancels"),
    )


def history_orders(spark: SparkSession, shape: Shape) -> DataFrame:
    """Return the history's orders: one row per order number `0 .. orders - 1`."""
    return with_order_attributes(spark.range(shape.orders).withColumnRenamed("id", "n"), shape)


def landing_history(spark: SparkSession, shape: Shape) -> DataFrame:
    """Return every landed version of the history: one row per landed event line."""
    n, k = F.col("n"), F.col("k")
    versions_df = history_orders(spark, shape).select(
        "*", F.explode(F.sequence(F.lit(0), F.col("versions") - 1)).alias("k")
    )
    event_time = _plus_seconds(F.col("placed_at"), k * F.col("gap_seconds"))
    last = (k == F.col("versions") - 1) & (F.col("versions") > 1)
    late = _draw(shape, 8, 100, n, k) < HISTORY_LATE_PERCENT
    delay_hours = F.lit(1) + F.when(
        late, 1 + _draw(shape, 9, HISTORY_LATE_MAX_HOURS, n, k)
    ).otherwise(0)
    resent = F.when(_draw(shape, 10, 100, n, k) < HISTORY_RESENT_PERCENT, 1).otherwise(0)
    staged_df = versions_df.select(
        "n",
        "k",
        "order_id",
        "customer_id",
        F.when(F.col("cancels") & last, F.lit("cancelled"))
        .otherwise(_pick(LIFECYCLE, k))
        .alias("status"),
        "amount",
        "currency",
        event_time.alias("event_time"),
        _plus_seconds(F.date_trunc("hour", event_time), delay_hours * 3600).alias("arrives_at"),
        F.explode(F.sequence(F.lit(0), resent)).alias("resend"),
    )
    ingested_at = _plus_seconds(F.col("arrives_at"), F.col("resend") * 3600)
    hour = F.date_format(F.col("event_ingested_at"), "yyyy-MM-dd'T'HH")
    source_file = F.concat(F.lit("bench/history/"), hour, F.lit(".jsonl"))
    return (
        staged_df.withColumn("event_ingested_at", ingested_at)
        .filter(F.col("event_ingested_at") <= F.lit(shape.history_end).cast("timestamp"))
        .select(
            *INPUT_FIELDS,
            "event_ingested_at",
            source_file.alias("source_file"),
            F.concat(F.lit("bench-history-"), hour).alias("run_id"),
            F.sha2(source_file, 256).alias("source_sha256"),
            (F.col("n") * 16 + k * 2 + F.col("resend")).alias("line_number"),
        )
        .select(*(F.col(f.name).cast(f.dataType).alias(f.name) for f in LANDING_SCHEMA.fields))
    )


def landing_files(shape: Shape) -> int:
    """Return how many files to write landing in: one per hourly run, fewer for tiny sizes."""
    expected_rows = shape.orders * (MAX_VERSIONS + 1) // 2
    return max(1, min(shape.days * 24, expected_rows // ROWS_PER_LANDING_FILE_MIN))


def write_landing(spark: SparkSession, shape: Shape, path: str) -> None:
    """Append the history to `orders_landing`, clustered by ingestion hour as `land` writes it."""
    (
        landing_history(spark, shape)
        .repartitionByRange(landing_files(shape), "event_ingested_at")
        .write.format("delta")
        .mode("append")
        .save(path)
    )


def latest_from_landing(spark: SparkSession, landing_path: str) -> DataFrame:
    """Recompute `fct_orders` from all of landing: one row per `order_id`."""
    landing_df = spark.read.format("delta").load(landing_path)
    return dedupe_latest_version(stage_versions(landing_df)).select(*FCT_ORDERS_COLUMNS)


def write_fct(latest_df: DataFrame, path: str, mode: str) -> None:
    """Write `fct_orders` rows partitioned by `order_date`, one file per date."""
    (
        latest_df.repartition("order_date")
        .write.format("delta")
        .mode(mode)
        .partitionBy("order_date")
        .save(path)
    )


def _existing_orders(
    spark: SparkSession, shape: Shape, salt: int, days_ago: tuple[int, int], count: int
) -> DataFrame:
    """Pick `count` history orders placed between `days_ago` days before P."""
    newest = F.lit(shape.processing_time - timedelta(days=days_ago[0])).cast("timestamp")
    oldest = F.lit(shape.processing_time - timedelta(days=days_ago[1])).cast("timestamp")
    return (
        history_orders(spark, shape)
        .filter(F.col("placed_at").between(oldest, newest))
        .orderBy(_draw(shape, salt, 2**31, F.col("n")))
        .limit(count)
    )


def _new_orders(spark: SparkSession, shape: Shape, first: int, count: int) -> DataFrame:
    numbers_df = spark.range(count).select((F.col("id") + F.lit(first)).alias("n"))
    return with_order_attributes(numbers_df, shape)


def batch_events(spark: SparkSession, shape: Shape) -> DataFrame:
    """Return the hourly batch: one row per event line, with its `kind`."""
    counts = shape.batch_counts()
    n = F.col("n")
    last_hour = _plus_seconds(
        _epoch(shape.history_end).cast("timestamp"), _draw(shape, 11, 3600, n)
    )
    late_span = (LATE_DAYS[1] - LATE_DAYS[0]) * 86_400
    late_time = F.timestamp_seconds(
        _epoch(shape.processing_time - timedelta(days=LATE_DAYS[0]))
        - _draw(shape, 12, late_span, n)
    )
    columns = ("order_id", "customer_id", "status", "amount", "currency", "event_time", "kind")
    new_df = _new_orders(spark, shape, shape.orders, counts[KIND_NEW]).select(
        "*",
        F.lit("placed").alias("status"),
        last_hour.alias("event_time"),
        F.lit(KIND_NEW).alias("kind"),
    )
    late_new_df = _new_orders(
        spark, shape, shape.orders + counts[KIND_NEW], counts[KIND_LATE_NEW]
    ).select(
        "*",
        F.lit("placed").alias("status"),
        late_time.alias("event_time"),
        F.lit(KIND_LATE_NEW).alias("kind"),
    )
    stale_df = _existing_orders(spark, shape, 13, STALE_DAYS, counts[KIND_LATE_STALE]).select(
        "*",
        F.lit("paid").alias("status"),
        _plus_seconds(F.col("placed_at"), F.lit(1)).alias("event_time"),
        F.lit(KIND_LATE_STALE).alias("kind"),
    )
    update_df = _existing_orders(
        spark, shape, 14, (1, UPDATE_LOOKBACK_DAYS), counts[KIND_UPDATE]
    ).select(
        "*",
        F.when(_draw(shape, 15, 10, n) == 0, F.lit("refunded"))
        .otherwise(F.lit("delivered"))
        .alias("status"),
        last_hour.alias("event_time"),
        F.lit(KIND_UPDATE).alias("kind"),
    )
    return (
        new_df.select(*columns)
        .unionByName(late_new_df.select(*columns))
        .unionByName(stale_df.select(*columns))
        .unionByName(update_df.select(*columns))
    )


def write_batch(events_df: DataFrame, folder: Path, shape: Shape) -> Path:
    """Write the batch as one `.jsonl` file of the contract's format; return its path."""
    lines_df = events_df.select(
        F.to_json(
            F.struct(
                "order_id",
                "customer_id",
                "status",
                F.col("amount").cast("string").alias("amount"),
                "currency",
                F.date_format("event_time", "yyyy-MM-dd'T'HH:mm:ss'Z'").alias("event_time"),
                F.lit("mobile-4.2").alias("sdk"),
            )
        ).alias("value")
    )
    staging = folder / "_spark_output"
    lines_df.coalesce(1).write.mode("overwrite").text(str(staging))
    parts = sorted(staging.glob("part-*"))
    if len(parts) != 1:
        raise RuntimeError(f"expected one part file in {staging}, found {len(parts)}")
    target = folder / f"{shape.processing_time:%Y-%m-%dT%H}.jsonl"
    parts[0].replace(target)
    shutil.rmtree(staging)
    return target
