"""Daily revenue: aggregation of `fct_orders` and comparison with published figures."""

from __future__ import annotations

from datetime import datetime

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from orders_etl.schemas import REVENUE_STATUSES, REVENUE_TYPE

FIGURE_COLUMNS: tuple[str, ...] = ("order_date", "currency", "order_count", "revenue")
CHANGE_COLUMNS: tuple[str, ...] = (
    "order_date",
    "currency",
    "previous_order_count",
    "new_order_count",
    "previous_revenue",
    "new_revenue",
)


def agg_daily_revenue(fct_df: DataFrame) -> DataFrame:
    """Sum orders per day and currency: one row per (`order_date`, `currency`).

    `order_count` counts every order; `revenue` sums `amount` over placed, paid, shipped and
    delivered orders (cancelled and refunded add 0).
    """
    counted = F.when(F.col("status").isin(*REVENUE_STATUSES), F.col("amount")).otherwise(
        F.lit(0).cast(REVENUE_TYPE)
    )
    return (
        fct_df.groupBy("order_date", "currency")
        .agg(
            F.count(F.lit(1)).cast("long").alias("order_count"),
            F.sum(counted).cast(REVENUE_TYPE).alias("revenue"),
        )
        .select(*FIGURE_COLUMNS)
    )


def filter_as_of(daily_revenue_df: DataFrame, as_of: datetime) -> DataFrame:
    """Keep the versions known at `as_of`: `as_of <= T` and not superseded by `T`."""
    moment = F.lit(as_of).cast("timestamp")
    return daily_revenue_df.filter(
        (F.col("as_of") <= moment)
        & (F.col("superseded_at").isNull() | (F.col("superseded_at") > moment))
    ).select(*daily_revenue_df.columns)


def filter_current(daily_revenue_df: DataFrame) -> DataFrame:
    """Keep the current versions (`superseded_at` is null)."""
    return daily_revenue_df.filter(F.col("superseded_at").isNull()).select(
        *daily_revenue_df.columns
    )


def diff_figures(current_df: DataFrame, recomputed_df: DataFrame) -> DataFrame:
    """Compare published figures with recomputed ones: one row per changed (day, currency).

    A side that is missing reads null: a new day-currency has null `previous_*`, one that lost
    all its orders has null `new_*`.
    """
    previous = current_df.select(
        "order_date",
        "currency",
        F.col("order_count").alias("previous_order_count"),
        F.col("revenue").alias("previous_revenue"),
    )
    new = recomputed_df.select(
        "order_date",
        "currency",
        F.col("order_count").alias("new_order_count"),
        F.col("revenue").alias("new_revenue"),
    )
    return (
        previous.join(new, on=["order_date", "currency"], how="full_outer")
        .filter(
            ~F.col("previous_order_count").eqNullSafe(F.col("new_order_count"))
            | ~F.col("previous_revenue").eqNullSafe(F.col("new_revenue"))
        )
        .select(*CHANGE_COLUMNS)
    )


def _as_revisions(changed_df: DataFrame, revenue_df: DataFrame, at: Column) -> DataFrame:
    """Keep the changed (`order_date`, `currency`) pairs that are revisions at `at`: on a day
    before `at`'s date that had figures published before `at` in `revenue_df`."""
    published = revenue_df.filter(F.col("as_of") < at).select("order_date").distinct()
    return (
        changed_df.join(published, on="order_date", how="left_semi")
        .filter(F.col("order_date") < F.to_date(at))
        .select(
            *CHANGE_COLUMNS,
            (F.coalesce("new_order_count", F.lit(0)) - F.coalesce("previous_order_count", F.lit(0)))
            .cast("long")
            .alias("order_count_difference"),
            (F.coalesce("new_revenue", F.lit(0)) - F.coalesce("previous_revenue", F.lit(0)))
            .cast(REVENUE_TYPE)
            .alias("revenue_difference"),
            at.alias("as_of"),
        )
    )


def diff_revisions_at(revenue_df: DataFrame, moment: datetime) -> DataFrame:
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
    changed = closed.join(opened, on=["order_date", "currency"], how="full_outer")
    return _as_revisions(changed, revenue_df, at)


def revisions_of_changes(
    changes_df: DataFrame, revenue_df: DataFrame, moment: datetime
) -> DataFrame:
    """The revisions that versioning `changes_df` (`diff_figures` of `revenue_df`'s current
    figures) at `moment` makes, when `revenue_df` holds no version opened or closed at or
    after `moment`: the rows `diff_revisions_at` reads back after that MERGE, without reading
    `daily_revenue` again."""
    return _as_revisions(changes_df, revenue_df, F.lit(moment).cast("timestamp"))


def filter_first_reported(versions_df: DataFrame) -> DataFrame:
    """Keep each (`order_date`, `currency`)'s first published version: one row per
    (`order_date`, `currency`)."""
    first = Window.partitionBy("order_date", "currency").orderBy("as_of")
    return (
        versions_df.withColumn("_n", F.row_number().over(first))
        .filter(F.col("_n") == 1)
        .select(*versions_df.columns)
    )
