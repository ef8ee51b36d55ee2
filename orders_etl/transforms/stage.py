"""Landing rows -> staged versions: typed, with `effective_ingested_at` and `order_date`."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, time

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from orders_etl.schemas import AMOUNT_TYPE, FCT_ORDERS_COLUMNS

# A staged version has exactly the columns of a `fct_orders` row.
STAGED_COLUMNS: tuple[str, ...] = FCT_ORDERS_COLUMNS


def with_effective_ingested_at(df: DataFrame) -> DataFrame:
    """Add `effective_ingested_at = coalesce(event_ingested_at, event_time)`.

    Rows landed before the stamp existed (null `event_ingested_at`) count as on time.
    """
    return df.withColumn(
        "effective_ingested_at", F.coalesce(F.col("event_ingested_at"), F.col("event_time"))
    )


def with_order_date(df: DataFrame) -> DataFrame:
    """Add `order_date`, the UTC date of `event_time` (the session time zone is UTC)."""
    return df.withColumn("order_date", F.to_date(F.col("event_time")))


def stage_versions(landing_df: DataFrame) -> DataFrame:
    """Type landing rows and add the derived columns: one row per landed version."""
    typed_df = landing_df.select(
        F.col("order_id").cast("string").alias("order_id"),
        F.col("customer_id").cast("string").alias("customer_id"),
        F.col("status").cast("string").alias("status"),
        F.col("amount").cast(AMOUNT_TYPE).alias("amount"),
        F.col("currency").cast("string").alias("currency"),
        F.col("event_time").cast("timestamp").alias("event_time"),
        F.col("event_ingested_at").cast("timestamp").alias("event_ingested_at"),
    )
    return with_order_date(with_effective_ingested_at(typed_df)).select(*STAGED_COLUMNS)


def filter_ingested_since(df: DataFrame, since: datetime | None) -> DataFrame:
    """Keep versions with `effective_ingested_at >= since` (all of them when `since` is None).

    Written on the stored columns, not on the coalesce, so Delta can skip landing files by
    their min/max statistics.
    """
    if since is None:
        return df.select(*df.columns)
    bound = F.lit(since).cast("timestamp")
    return df.filter(
        (F.col("event_ingested_at") >= bound)
        | (F.col("event_ingested_at").isNull() & (F.col("event_time") >= bound))
    ).select(*df.columns)


def start_of_day(day: date) -> datetime:
    """Return midnight UTC at the start of `day`."""
    return datetime.combine(day, time.min, tzinfo=UTC)


def filter_event_time_from(df: DataFrame, day: date) -> DataFrame:
    """Keep versions whose `event_time` is on or after midnight UTC of `day`.

    Versions before `day` can never be the latest version of an order whose latest version
    falls on `day` or later (the latest version has the greatest `event_time`), so a
    recomputation of days `day..` needs only these.
    """
    return df.filter(F.col("event_time") >= F.lit(start_of_day(day)).cast("timestamp")).select(
        *df.columns
    )


def filter_order_dates(
    df: DataFrame,
    start: date | None = None,
    end: date | None = None,
    dates: Sequence[date] | None = None,
) -> DataFrame:
    """Keep rows with `start <= order_date <= end` (an open side when None) and, when
    `dates` is given, `order_date` among them (none when it is empty)."""
    if dates is not None:
        df = df.filter(F.col("order_date").isin(*dates)) if dates else df.limit(0)
    if start is not None:
        df = df.filter(F.col("order_date") >= F.lit(start))
    if end is not None:
        df = df.filter(F.col("order_date") <= F.lit(end))
    return df.select(*df.columns)
