"""What the incremental's window reads back from `fct_orders`: its watermark, and the dates
where a window's orders have rows now."""

from __future__ import annotations

from datetime import date, datetime

from pyspark.sql import DataFrame
from pyspark.sql import functions as F


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
    """Return the distinct `order_date` values of `df` (one row per date is collected)."""
    return [r["order_date"] for r in df.select("order_date").distinct().collect()]
