"""The write paths: append, MERGE and the one guarded overwrite (`replaceWhere`).

Nothing else in the project writes data to a Delta table. `overwrite_partitions` is the only
call that can replace data, and it refuses to run without a partition predicate.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Sequence
from datetime import date, datetime
from typing import TypeVar

from delta.exceptions import (
    ConcurrentAppendException,
    ConcurrentDeleteDeleteException,
    ConcurrentDeleteReadException,
    ConcurrentTransactionException,
    ConcurrentWriteException,
    DeltaConcurrentModificationException,
    MetadataChangedException,
    ProtocolChangedException,
)
from delta.tables import DeltaTable
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from orders_etl.config import RetrySettings
from orders_etl.errors import ConcurrentWriteError, GuardRefused
from orders_etl.io.tables import app_transaction
from orders_etl.schemas import FCT_ORDERS_COLUMNS
from orders_etl.session import session_conf
from orders_etl.transforms.latest import newer_than_sql

log = logging.getLogger(__name__)
Result = TypeVar("Result")


class SupersededWrite(Exception):
    """Delta skipped a write because another run of the same kind committed after the
    snapshot it was computed from; retried like a lost conflict."""


CONFLICTS: tuple[type[BaseException], ...] = (
    SupersededWrite,
    DeltaConcurrentModificationException,
    ConcurrentWriteException,
    MetadataChangedException,
    ProtocolChangedException,
    ConcurrentAppendException,
    ConcurrentDeleteReadException,
    ConcurrentDeleteDeleteException,
    ConcurrentTransactionException,
)
_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]*$")


class UnpredicatedOverwriteRefused(GuardRefused):
    """An overwrite was asked for without a valid partition predicate."""


def retry_on_conflict(action: Callable[[], Result], settings: RetrySettings, what: str) -> Result:
    """Run `action`; when it loses a Delta conflict, wait and run it again, a bounded number
    of times. `action` must re-read what it depends on, so each try decides afresh."""
    delay = settings.backoff_seconds
    for attempt in range(1, settings.attempts + 1):
        try:
            return action()
        except CONFLICTS as exc:
            if attempt == settings.attempts:
                raise ConcurrentWriteError(
                    f"{what} lost a concurrent-write conflict {attempt} times "
                    f"({type(exc).__name__}); rerun it"
                ) from exc
            log.warning(
                "%s lost a write conflict (%s); retry %d in %.1fs",
                what,
                type(exc).__name__,
                attempt,
                delay,
            )
            time.sleep(delay)
            delay *= 2
    raise AssertionError("unreachable")


def date_literal(day: date) -> str:
    """Return a SQL date literal built from a parsed date, never from raw argument text."""
    if not isinstance(day, date) or isinstance(day, datetime):
        raise UnpredicatedOverwriteRefused(f"not a date: {day!r}")
    return f"DATE'{day.isoformat()}'"


def dates_in_sql(column: str, days: Sequence[date]) -> str:
    """Return `column IN (DATE'...', ...)` for a non-empty list of parsed dates."""
    if not days:
        raise ValueError("dates_in_sql needs at least one date")
    return f"{column} IN ({', '.join(date_literal(d) for d in sorted(set(days)))})"


def dates_between_sql(column: str, start: date, end: date) -> str:
    """Return `column >= DATE'start' AND column <= DATE'end'` for parsed dates (inclusive)."""
    if not _IDENTIFIER.match(column):
        raise ValueError(f"not a plain column name: {column!r}")
    return f"{column} >= {date_literal(start)} AND {column} <= {date_literal(end)}"


def append_rows(df: DataFrame, path: str, txn_app_id: str | None = None) -> None:
    """Append `df` to the Delta table at `path`.

    With `txn_app_id`, the append is idempotent: Delta skips it when a commit with that
    application id was already made, and fails one of two concurrent appends with it.
    """
    writer = df.write.format("delta").mode("append")
    if txn_app_id is not None:
        writer = writer.option("txnAppId", txn_app_id).option("txnVersion", 1)
    writer.save(path)


def insert_new_rows(
    spark: SparkSession, path: str, rows_df: DataFrame, keys: Sequence[str]
) -> None:
    """Insert the rows of `rows_df` whose `keys` the table at `path` does not hold yet.

    An insert-only MERGE rather than a blind append: of two runs inserting the same keys at
    once, one loses a conflict and, on its retry, finds them written, so each key lands once.
    """
    if not keys or not all(_IDENTIFIER.match(k) for k in keys):
        raise ValueError(f"insert_new_rows needs plain column names as keys, got {keys!r}")
    condition = " AND ".join(f"t.{k} <=> s.{k}" for k in keys)
    (
        DeltaTable.forPath(spark, path)
        .alias("t")
        .merge(rows_df.alias("s"), condition)
        .whenNotMatchedInsertAll()
        .execute()
    )


def overwrite_partitions(
    df: DataFrame, path: str, partition_column: str, start: date, end: date
) -> str:
    """Replace the partitions `start..end` (inclusive) of the table at `path` with `df`.

    The only overwrite in the project. The predicate is built from parsed dates and the
    table's own partition column; without them the write is refused. Delta's replaceWhere
    constraint check stays on, so a row of `df` outside the range fails the write.
    Returns the predicate used.
    """
    if not partition_column or not _IDENTIFIER.match(partition_column):
        raise UnpredicatedOverwriteRefused(
            f"refusing to overwrite {path}: no valid partition column ({partition_column!r})"
        )
    if start is None or end is None:
        raise UnpredicatedOverwriteRefused(
            f"refusing to overwrite {path} without a partition predicate"
        )
    predicate = dates_between_sql(partition_column, start, end)
    if end < start:
        raise UnpredicatedOverwriteRefused(f"refusing to overwrite {path}: {end} is before {start}")
    spark = df.sparkSession
    partitions = DeltaTable.forPath(spark, path).detail().select("partitionColumns").first()
    if partitions is None or partition_column not in list(partitions[0]):
        raise UnpredicatedOverwriteRefused(
            f"refusing to overwrite {path}: {partition_column!r} is not a partition column"
        )
    (df.write.format("delta").mode("overwrite").option("replaceWhere", predicate).save(path))
    return predicate


def merge_latest_versions(
    spark: SparkSession, path: str, latest_df: DataFrame, dates: Sequence[date]
) -> None:
    """MERGE one-row-per-order versions into `fct_orders` on `order_id`.

    Inserts new orders and updates a stored order only when the incoming version is strictly
    newer, so a stale version never replaces a newer one. `dates` must hold every partition
    the MERGE can touch (the incoming rows' dates and the dates where those orders live now);
    they become literal target-only predicates, so Delta reads and locks only those partitions.
    An update that moves an order to another date rewrites it there and removes the old row.
    """
    source = latest_df.select(*FCT_ORDERS_COLUMNS)
    (
        DeltaTable.forPath(spark, path)
        .alias("t")
        .merge(
            source.alias("s"), f"t.order_id = s.order_id AND {dates_in_sql('t.order_date', dates)}"
        )
        .whenMatchedUpdateAll(condition=newer_than_sql("s", "t"))
        .whenNotMatchedInsertAll()
        .execute()
    )


def merge_corrections(
    spark: SparkSession, path: str, corrections_df: DataFrame, dates: Sequence[date]
) -> None:
    """Apply a backfill's corrections outside its range to `fct_orders`, in one MERGE.

    `corrections_df` holds the latest version of each order that moved across the range's
    edge plus a boolean `delete_outside`: true deletes the order's rows in `dates` (its latest
    version is inside the range, rewritten there), false upserts the latest version.
    """
    source = corrections_df.select(*FCT_ORDERS_COLUMNS, "delete_outside")
    differs = " OR ".join(f"NOT (t.{c} <=> s.{c})" for c in FCT_ORDERS_COLUMNS)
    (
        DeltaTable.forPath(spark, path)
        .alias("t")
        .merge(
            source.alias("s"), f"t.order_id = s.order_id AND {dates_in_sql('t.order_date', dates)}"
        )
        .whenMatchedDelete(condition="s.delete_outside")
        .whenMatchedUpdate(
            condition=f"NOT s.delete_outside AND ({differs})",
            set={c: F.col(f"s.{c}") for c in FCT_ORDERS_COLUMNS},
        )
        .whenNotMatchedInsert(
            condition="NOT s.delete_outside",
            values={c: F.col(f"s.{c}") for c in FCT_ORDERS_COLUMNS},
        )
        .execute()
    )


# Delta's idempotent-write settings: a write carrying (app id, number) is skipped when the
# table already holds that number or a higher one for the app id, and conflicts with a
# concurrent commit that records one.
TXN_APP_ID_CONF = "spark.databricks.delta.write.txnAppId"
TXN_VERSION_CONF = "spark.databricks.delta.write.txnVersion"
REVENUE_WRITER = "orders_etl.rollup"


def revenue_snapshot(spark: SparkSession, path: str) -> tuple[int, int]:
    """Return the `daily_revenue` version to compute changes from and the number of the last
    rollup MERGE in it, which `merge_revenue_versions` expects to still be the last."""
    return app_transaction(spark, path, REVENUE_WRITER)


def merge_revenue_versions(
    spark: SparkSession,
    path: str,
    changes_df: DataFrame,
    as_of: datetime,
    run_id: str,
    after_merge: int,
) -> None:
    """Version changed (day, currency) figures in `daily_revenue`, in one atomic MERGE.

    Each changed pair's current row is closed (`superseded_at = as_of`); a pair that still has
    orders gets a new current row (`as_of`, `superseded_at` null). Idempotent at one `as_of`:
    a row already published at `as_of` is neither closed nor added again.

    The changes were computed from the snapshot whose last rollup MERGE was `after_merge`
    (`revenue_snapshot`); this MERGE commits as number `after_merge + 1`. If another rollup
    has committed since, Delta skips this one (`SupersededWrite`) or fails it with a conflict,
    and the caller recomputes: stale changes never land on newer figures, so no pair gets two
    current rows and no version goes in before a later one.
    """
    moment = F.lit(as_of).cast("timestamp")
    closes = changes_df.select(
        "order_date",
        "currency",
        F.lit(True).alias("is_close"),
        F.col("new_order_count").alias("order_count"),
        F.col("new_revenue").alias("revenue"),
    )
    inserts = changes_df.filter(F.col("new_order_count").isNotNull()).select(
        "order_date",
        "currency",
        F.lit(False).alias("is_close"),
        F.col("new_order_count").alias("order_count"),
        F.col("new_revenue").alias("revenue"),
    )
    merge = (
        DeltaTable.forPath(spark, path)
        .alias("t")
        .merge(
            closes.unionByName(inserts).alias("s"),
            F.expr("t.order_date = s.order_date AND t.currency = s.currency")
            & (
                (F.expr("s.is_close AND t.superseded_at IS NULL") & (F.col("t.as_of") < moment))
                | (F.expr("NOT s.is_close") & (F.col("t.as_of") == moment))
            ),
        )
        .whenMatchedUpdate(condition="s.is_close", set={"superseded_at": moment})
        .whenNotMatchedInsert(
            condition="NOT s.is_close",
            values={
                "order_date": F.col("s.order_date"),
                "currency": F.col("s.currency"),
                "order_count": F.col("s.order_count"),
                "revenue": F.col("s.revenue"),
                "as_of": moment,
                "superseded_at": F.lit(None).cast("timestamp"),
                "run_id": F.lit(run_id),
            },
        )
    )
    numbered = {TXN_APP_ID_CONF: REVENUE_WRITER, TXN_VERSION_CONF: str(after_merge + 1)}
    with session_conf(spark, numbered):
        metrics = merge.execute().collect()
    if not metrics:
        raise SupersededWrite(
            f"daily_revenue: a rollup committed after MERGE number {after_merge}, "
            "the figures are recomputed"
        )
