"""Transform tests of daily revenue: aggregation, as-of and current filters, figure diffs."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

import pytest
from chispa import assert_df_equality
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import types as T

from orders_etl.schemas import AMOUNT_TYPE, REVENUE_TYPE
from orders_etl.transforms.revenue import (
    agg_daily_revenue,
    diff_figures,
    filter_as_of,
    filter_current,
)

D1, D2 = date(2026, 2, 28), date(2026, 3, 1)
T1, T2, T3 = datetime(2026, 3, 1, 6), datetime(2026, 3, 2, 6), datetime(2026, 3, 3, 6)

FCT_SCHEMA = T.StructType(
    [
        T.StructField("order_id", T.StringType()),
        T.StructField("status", T.StringType()),
        T.StructField("amount", AMOUNT_TYPE),
        T.StructField("currency", T.StringType()),
        T.StructField("event_time", T.TimestampType()),
        T.StructField("order_date", T.DateType()),
    ]
)
FIGURES_SCHEMA = T.StructType(
    [
        T.StructField("order_date", T.DateType()),
        T.StructField("currency", T.StringType()),
        T.StructField("order_count", T.LongType()),
        T.StructField("revenue", REVENUE_TYPE),
    ]
)
VERSIONS_SCHEMA = T.StructType(
    [
        *FIGURES_SCHEMA.fields,
        T.StructField("as_of", T.TimestampType()),
        T.StructField("superseded_at", T.TimestampType()),
        T.StructField("run_id", T.StringType()),
    ]
)
CHANGES_SCHEMA = T.StructType(
    [
        T.StructField("order_date", T.DateType()),
        T.StructField("currency", T.StringType()),
        T.StructField("previous_order_count", T.LongType()),
        T.StructField("new_order_count", T.LongType()),
        T.StructField("previous_revenue", REVENUE_TYPE),
        T.StructField("new_revenue", REVENUE_TYPE),
    ]
)


def _fct(
    spark: SparkSession, rows: list[tuple[str | None, str | None, str | None, str | None, str]]
) -> DataFrame:
    """fct rows from (order_id, status, amount, currency, event_time 'YYYY-MM-DD HH:MM:SS')."""
    typed = []
    for order_id, status, amount, currency, event_time in rows:
        moment = datetime.fromisoformat(event_time)
        typed.append(
            (
                order_id,
                status,
                None if amount is None else Decimal(amount),
                currency,
                moment,
                moment.date(),
            )
        )
    return spark.createDataFrame(typed, FCT_SCHEMA)


def _figures(
    spark: SparkSession, rows: list[tuple[date, str | None, int, str | None]]
) -> DataFrame:
    return spark.createDataFrame(
        [(d, c, n, None if r is None else Decimal(r)) for d, c, n, r in rows], FIGURES_SCHEMA
    )


def _versions(
    spark: SparkSession,
    rows: list[tuple[date, str, int, str, datetime, datetime | None]],
) -> DataFrame:
    return spark.createDataFrame(
        [(d, c, n, Decimal(r), a, s, "run") for d, c, n, r, a, s in rows], VERSIONS_SCHEMA
    )


def test_agg_daily_revenue_counts_every_order_and_sums_only_revenue_statuses(
    spark: SparkSession,
) -> None:
    fct_df = _fct(
        spark,
        [
            ("o1", "placed", "1.50", "EUR", "2026-02-28 00:00:00"),
            ("o2", "paid", "10.00", "EUR", "2026-02-28 12:00:00"),
            ("o3", "shipped", "2.25", "EUR", "2026-02-28 13:00:00"),
            ("o4", "delivered", "4.00", "EUR", "2026-02-28 14:00:00"),
            ("o5", "cancelled", "100.00", "EUR", "2026-02-28 15:00:00"),
            ("o6", "refunded", "200.00", "EUR", "2026-02-28 23:59:59"),
            # the next second is the next UTC day
            ("o7", "paid", "3.00", "EUR", "2026-03-01 00:00:00"),
            ("o8", "paid", "7.77", "USD", "2026-02-28 10:00:00"),
        ],
    )
    expected = _figures(
        spark,
        [
            (D1, "EUR", 6, "17.75"),
            (D2, "EUR", 1, "3.00"),
            (D1, "USD", 1, "7.77"),
        ],
    )
    assert_df_equality(
        agg_daily_revenue(fct_df), expected, ignore_row_order=True, ignore_nullable=True
    )


def test_agg_daily_revenue_day_with_only_cancelled_and_refunded_orders_is_zero_not_null(
    spark: SparkSession,
) -> None:
    fct_df = _fct(
        spark,
        [
            ("o1", "cancelled", "5.00", "GBP", "2026-02-28 08:00:00"),
            ("o2", "refunded", "6.00", "GBP", "2026-02-28 09:00:00"),
        ],
    )
    expected = _figures(spark, [(D1, "GBP", 2, "0.00")])
    assert_df_equality(
        agg_daily_revenue(fct_df), expected, ignore_row_order=True, ignore_nullable=True
    )


def test_agg_daily_revenue_nulls_count_as_orders_and_add_nothing(spark: SparkSession) -> None:
    fct_df = _fct(
        spark,
        [
            ("o1", "paid", "10.00", "EUR", "2026-02-28 08:00:00"),
            ("o2", "paid", None, "EUR", "2026-02-28 09:00:00"),
            ("o3", None, "99.00", "EUR", "2026-02-28 10:00:00"),
            ("o4", "paid", "1.00", None, "2026-02-28 11:00:00"),
        ],
    )
    expected = _figures(
        spark,
        [
            (D1, "EUR", 3, "10.00"),
            (D1, None, 1, "1.00"),
        ],
    )
    assert_df_equality(
        agg_daily_revenue(fct_df), expected, ignore_row_order=True, ignore_nullable=True
    )


def test_agg_daily_revenue_does_not_overflow_on_the_largest_amounts(spark: SparkSession) -> None:
    top = "9999999999999999.99"
    fct_df = _fct(
        spark,
        [
            ("o1", "paid", top, "JPY", "2026-02-28 08:00:00"),
            ("o2", "delivered", top, "JPY", "2026-02-28 09:00:00"),
            ("o3", "refunded", top, "JPY", "2026-02-28 10:00:00"),
        ],
    )
    result = agg_daily_revenue(fct_df)
    assert result.schema["revenue"].dataType == REVENUE_TYPE
    assert result.schema["order_count"].dataType == T.LongType()
    expected = _figures(spark, [(D1, "JPY", 3, "19999999999999999.98")])
    assert_df_equality(result, expected, ignore_row_order=True, ignore_nullable=True)


def test_agg_daily_revenue_of_no_orders_is_empty(spark: SparkSession) -> None:
    result = agg_daily_revenue(_fct(spark, []))
    assert result.columns == ["order_date", "currency", "order_count", "revenue"]
    assert result.count() == 0


# Two versions of D1 EUR (closed at T2), and D2 EUR that lost all its orders at T3.
HISTORY = [
    (D1, "EUR", 2, "20.00", T1, T2),
    (D1, "EUR", 3, "25.00", T2, None),
    (D2, "EUR", 1, "5.00", T1, T3),
]


@pytest.mark.parametrize(
    ("moment", "expected"),
    [
        (datetime(2026, 3, 1, 5, 59, 59), []),
        (T1, [HISTORY[0], HISTORY[2]]),
        (datetime(2026, 3, 2, 5, 59, 59), [HISTORY[0], HISTORY[2]]),
        (T2, [HISTORY[1], HISTORY[2]]),
        (T3, [HISTORY[1]]),
        (datetime(2030, 1, 1), [HISTORY[1]]),
    ],
    ids=["before-first", "at-first", "just-before-revision", "at-revision", "at-close", "later"],
)
def test_filter_as_of_keeps_versions_known_at_that_time(
    spark: SparkSession,
    moment: datetime,
    expected: list[tuple[date, str, int, str, datetime, datetime | None]],
) -> None:
    assert_df_equality(
        filter_as_of(_versions(spark, HISTORY), moment),
        _versions(spark, expected),
        ignore_row_order=True,
    )


def test_filter_current_keeps_only_open_versions(spark: SparkSession) -> None:
    assert_df_equality(
        filter_current(_versions(spark, HISTORY)),
        _versions(spark, [HISTORY[1]]),
        ignore_row_order=True,
    )


def test_diff_figures_lists_only_changed_pairs_with_nulls_for_missing_sides(
    spark: SparkSession,
) -> None:
    published_df = _figures(
        spark,
        [
            (D1, "EUR", 2, "20.00"),  # unchanged
            (D1, "USD", 2, "20.00"),  # revenue changes
            (D2, "EUR", 2, "20.00"),  # count changes, same revenue (a cancelled order arrives)
            (D2, "USD", 1, "4.00"),  # lost all its orders
            (D2, "GBP", 1, None),  # null revenue becomes 0.00
        ],
    )
    recomputed_df = _figures(
        spark,
        [
            (D1, "EUR", 2, "20.0"),
            (D1, "USD", 2, "21.00"),
            (D2, "EUR", 3, "20.00"),
            (D2, "GBP", 1, "0.00"),
            (D1, "JPY", 1, "9.00"),  # new pair
        ],
    )
    expected = spark.createDataFrame(
        [
            (D1, "USD", 2, 2, Decimal("20.00"), Decimal("21.00")),
            (D2, "EUR", 2, 3, Decimal("20.00"), Decimal("20.00")),
            (D2, "USD", 1, None, Decimal("4.00"), None),
            (D2, "GBP", 1, 1, None, Decimal("0.00")),
            (D1, "JPY", None, 1, None, Decimal("9.00")),
        ],
        CHANGES_SCHEMA,
    )
    assert_df_equality(
        diff_figures(published_df, recomputed_df),
        expected,
        ignore_row_order=True,
        ignore_nullable=True,
    )


def test_diff_figures_of_identical_figures_is_empty(spark: SparkSession) -> None:
    figures_df = _figures(spark, [(D1, "EUR", 2, "20.00"), (D2, "EUR", 1, "0.00")])
    assert diff_figures(figures_df, figures_df).count() == 0
