"""The data-quality checks of `verify` as DataFrames of offending keys: one row per key that
breaks the check (an empty result passes)."""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from orders_etl.transforms.revenue import agg_daily_revenue, diff_figures


def filter_null_order_ids(fct_df: DataFrame) -> DataFrame:
    """Keep the dates of rows with a null `order_id`: one row per such row, as `key`."""
    return fct_df.filter(F.col("order_id").isNull()).select(
        F.col("order_date").cast("string").alias("key")
    )


def filter_duplicate_order_ids(fct_all_df: DataFrame, scope_df: DataFrame) -> DataFrame:
    """Keep the `order_id`s of `scope_df` with more than one row in the whole table: one row
    per such `order_id`."""
    ids = scope_df.select("order_id").filter(F.col("order_id").isNotNull())
    return (
        fct_all_df.select("order_id")
        .join(ids.distinct(), on="order_id", how="left_semi")
        .groupBy("order_id")
        .count()
        .filter(F.col("count") > 1)
        .select("order_id")
    )


def agg_rows_per_day(df: DataFrame, name: str) -> DataFrame:
    """Count rows per day: one row per `order_date`, the count as `name`."""
    return df.groupBy("order_date").agg(F.count(F.lit(1)).alias(name)).select("order_date", name)


def diff_day_counts(expected_df: DataFrame, actual_df: DataFrame) -> DataFrame:
    """Keep the days whose `actual` count differs from the `expected` one (a missing side
    counts 0): one row per day, as `key` "<date> fct=<actual> source=<expected>"."""
    return (
        expected_df.join(actual_df, on="order_date", how="full_outer")
        .filter(~F.coalesce("expected", F.lit(0)).eqNullSafe(F.coalesce("actual", F.lit(0))))
        .select(
            F.concat_ws(
                " ",
                F.col("order_date").cast("string"),
                F.concat(F.lit("fct="), F.coalesce("actual", F.lit(0)).cast("string")),
                F.concat(F.lit("source="), F.coalesce("expected", F.lit(0)).cast("string")),
            ).alias("key")
        )
        .orderBy("key")
    )


def diff_revenue_with_fct(current_df: DataFrame, fct_df: DataFrame) -> DataFrame:
    """Keep the (day, currency) whose current figures differ from a recomputation from
    `fct_df`: one row per pair, as `key` "<date> <currency>"."""
    return (
        diff_figures(current_df, agg_daily_revenue(fct_df))
        .select(F.concat_ws(" ", F.col("order_date").cast("string"), "currency").alias("key"))
        .orderBy("key")
    )


def filter_unbalanced_landings(accounting_df: DataFrame) -> DataFrame:
    """Keep the landing runs whose lines read differ from rows landed plus quarantined: one
    row per `run_id`."""
    return accounting_df.filter(
        F.col("lines_read") != F.col("rows_landed") + F.col("rows_quarantined")
    ).select("run_id")
