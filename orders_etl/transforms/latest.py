"""The latest-version rule, shared by `incremental`, `backfill` and `verify`.

The latest version of an order is the one with the greatest `event_time`, then the greatest
`effective_ingested_at`, then a tie-break on the row's own content (later lifecycle status,
then customer, currency, amount, then a stamped row over an unstamped one). The tie-break
uses only columns that `fct_orders` stores, so the same set of versions always gives the
same row, whatever order they arrived in.
"""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from orders_etl.schemas import FCT_ORDERS_COLUMNS, STATUSES


def _status_rank_sql(prefix: str) -> str:
    cases = " ".join(f"WHEN '{status}' THEN {rank}" for rank, status in enumerate(STATUSES))
    return f"CASE {prefix}status {cases} ELSE -1 END"


def version_key_sql(alias: str | None = None) -> str:
    """Return the SQL struct that orders versions of one order; greater is newer.

    Every field is non-null on a staged row, so struct comparison is total.
    """
    prefix = f"{alias}." if alias else ""
    fields = [
        f"{prefix}event_time",
        f"{prefix}effective_ingested_at",
        _status_rank_sql(prefix),
        f"{prefix}customer_id",
        f"{prefix}currency",
        f"{prefix}amount",
        f"{prefix}event_ingested_at IS NOT NULL",
    ]
    return "struct(" + ", ".join(fields) + ")"


def newer_than_sql(new_alias: str, old_alias: str) -> str:
    """Return a SQL condition that holds when `new_alias`'s row is strictly newer."""
    return f"{version_key_sql(new_alias)} > {version_key_sql(old_alias)}"


def dedupe_latest_version(versions_df: DataFrame) -> DataFrame:
    """Keep the latest version of each order: one row per `order_id`.

    o1 @10:00 paid, o1 @11:00 shipped, o1 @10:30 (landed late) placed -> o1 @11:00 shipped
    """
    row = F.struct(*(F.col(name) for name in FCT_ORDERS_COLUMNS))
    return (
        versions_df.filter(F.col("order_id").isNotNull())
        .groupBy("order_id")
        .agg(F.max(F.struct(F.expr(version_key_sql()).alias("key"), row.alias("row"))).alias("m"))
        .select(*(F.col(f"m.row.{name}").alias(name) for name in FCT_ORDERS_COLUMNS))
    )
