"""Transform tests of staging and the latest-version rule: nulls, ties, stale versions, midnight."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

from chispa import assert_df_equality
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import types as T

from orders_etl.schemas import FCT_ORDERS_COLUMNS, FCT_ORDERS_SCHEMA
from orders_etl.transforms.latest import dedupe_latest_version, newer_than_sql
from orders_etl.transforms.stage import (
    filter_ingested_since,
    stage_versions,
    with_effective_ingested_at,
    with_order_date,
)
from tests.reference import LandedVersion, expected_fct

STAGED_SCHEMA = T.StructType(
    [
        T.StructField("order_id", T.StringType()),
        T.StructField("customer_id", T.StringType()),
        T.StructField("status", T.StringType()),
        T.StructField("amount", T.DecimalType(18, 2)),
        T.StructField("currency", T.StringType()),
        T.StructField("event_time", T.TimestampType()),
        T.StructField("event_ingested_at", T.TimestampType()),
        T.StructField("effective_ingested_at", T.TimestampType()),
        T.StructField("order_date", T.DateType()),
    ]
)
FCT_SCHEMA = T.StructType([T.StructField(f.name, f.dataType) for f in FCT_ORDERS_SCHEMA.fields])
TIMES_SCHEMA = T.StructType(
    [
        T.StructField("order_id", T.StringType()),
        T.StructField("event_time", T.TimestampType()),
        T.StructField("event_ingested_at", T.TimestampType()),
    ]
)


def ts(text: str) -> datetime:
    """A naive UTC timestamp, as Spark returns it in a UTC session."""
    return datetime.fromisoformat(text)


def staged(
    order_id: str | None,
    event_time: str,
    ingested_at: str | None,
    status: str = "paid",
    amount: str = "10.00",
    customer_id: str = "c1",
    currency: str = "EUR",
) -> tuple[object, ...]:
    """One staged version as a row of STAGED_SCHEMA."""
    moment = ts(event_time)
    stamp = None if ingested_at is None else ts(ingested_at)
    return (
        order_id,
        customer_id,
        status,
        Decimal(amount),
        currency,
        moment,
        stamp,
        stamp or moment,
        moment.date(),
    )


def effective(row: tuple[object, ...]) -> datetime:
    """The effective_ingested_at of a staged row."""
    value = row[7]
    assert isinstance(value, datetime)
    return value


def staged_df(spark: SparkSession, rows: list[tuple[object, ...]]) -> DataFrame:
    return spark.createDataFrame(rows, STAGED_SCHEMA)


def fct_df(spark: SparkSession, rows: list[tuple[object, ...]]) -> DataFrame:
    return spark.createDataFrame(rows, FCT_SCHEMA)


# --- stage_versions / with_effective_ingested_at / with_order_date ---------------------------


def test_stage_versions_types_rows_and_counts_unstamped_rows_as_on_time(
    spark: SparkSession,
) -> None:
    landing_schema = T.StructType(
        [
            T.StructField("order_id", T.StringType()),
            T.StructField("customer_id", T.StringType()),
            T.StructField("status", T.StringType()),
            T.StructField("amount", T.StringType()),
            T.StructField("currency", T.StringType()),
            T.StructField("event_time", T.StringType()),
            T.StructField("event_ingested_at", T.TimestampType()),
            T.StructField("source_file", T.StringType()),
        ]
    )
    landing_df = spark.createDataFrame(
        [
            # legacy row: no stamp, counts as landed at its event time
            ("o1", "c1", "placed", "5", "EUR", "2026-03-01T10:00:00Z", None, "old"),
            # +02:00 moves the UTC date back to the previous day
            ("o2", "c2", "paid", "7.5", "USD", "2026-03-02T01:30:00+02:00", ts("2026-03-02"), "b"),
            # -05:00 moves the UTC date forward to the next day
            ("o3", "c3", "shipped", "1.25", "GBP", "2026-03-01T21:00:00-05:00", None, "b"),
            # last microsecond of a UTC day stays on that day
            ("o4", "c4", "paid", "0", "EUR", "2026-03-01T23:59:59.999999Z", ts("2026-03-05"), "b"),
        ],
        landing_schema,
    )
    expected = staged_df(
        spark,
        [
            staged("o1", "2026-03-01T10:00:00", None, "placed", "5.00"),
            staged("o2", "2026-03-01T23:30:00", "2026-03-02", "paid", "7.50", "c2", "USD"),
            staged("o3", "2026-03-02T02:00:00", None, "shipped", "1.25", "c3", "GBP"),
            staged("o4", "2026-03-01T23:59:59.999999", "2026-03-05", "paid", "0", "c4"),
        ],
    )
    assert_df_equality(stage_versions(landing_df), expected, ignore_row_order=True)


def test_with_effective_ingested_at_prefers_the_stamp_and_falls_back_to_event_time(
    spark: SparkSession,
) -> None:
    df = spark.createDataFrame(
        [
            ("on_time", ts("2026-03-01T10:00"), ts("2026-03-01T10:05")),
            ("weeks_late", ts("2026-02-01T10:00"), ts("2026-03-01T10:00")),
            ("legacy", ts("2026-02-01T10:00"), None),
            ("clock_skew", ts("2026-03-01T10:00"), ts("2026-03-01T09:59")),
        ],
        TIMES_SCHEMA,
    )
    expected = spark.createDataFrame(
        [
            ("on_time", ts("2026-03-01T10:00"), ts("2026-03-01T10:05"), ts("2026-03-01T10:05")),
            ("weeks_late", ts("2026-02-01T10:00"), ts("2026-03-01T10:00"), ts("2026-03-01T10:00")),
            ("legacy", ts("2026-02-01T10:00"), None, ts("2026-02-01T10:00")),
            ("clock_skew", ts("2026-03-01T10:00"), ts("2026-03-01T09:59"), ts("2026-03-01T09:59")),
        ],
        T.StructType(
            [*TIMES_SCHEMA.fields, T.StructField("effective_ingested_at", T.TimestampType())]
        ),
    )
    assert_df_equality(with_effective_ingested_at(df), expected, ignore_row_order=True)


def test_with_order_date_is_the_utc_date_of_event_time(spark: SparkSession) -> None:
    plus_two = timezone(timedelta(hours=2))
    minus_five = timezone(timedelta(hours=-5))
    df = spark.createDataFrame(
        [
            ("midnight", datetime(2026, 3, 2, 0, 0, tzinfo=UTC), None),
            ("before_midnight", datetime(2026, 3, 1, 23, 59, 59, 999999, tzinfo=UTC), None),
            ("local_next_day", datetime(2026, 3, 2, 1, 30, tzinfo=plus_two), None),
            ("local_previous_day", datetime(2026, 3, 1, 21, 0, tzinfo=minus_five), None),
            ("leap_day", datetime(2024, 2, 29, 23, 0, tzinfo=timezone(-timedelta(hours=12))), None),
            ("no_time", None, None),
        ],
        TIMES_SCHEMA,
    )
    result = with_order_date(df).select("order_id", "order_date")
    expected = spark.createDataFrame(
        [
            ("midnight", datetime(2026, 3, 2).date()),
            ("before_midnight", datetime(2026, 3, 1).date()),
            ("local_next_day", datetime(2026, 3, 1).date()),
            ("local_previous_day", datetime(2026, 3, 2).date()),
            ("leap_day", datetime(2024, 3, 1).date()),
            ("no_time", None),
        ],
        "order_id string, order_date date",
    )
    assert_df_equality(result, expected, ignore_row_order=True)


# --- filter_ingested_since --------------------------------------------------------------------

WINDOW_ROWS = [
    staged("in_window", "2026-03-01T10:00", "2026-03-05T00:00"),
    staged("on_bound", "2026-03-01T10:00", "2026-03-04T00:00"),
    staged("before_bound", "2026-03-03T10:00", "2026-03-03T23:59:59.999999"),
    staged("weeks_late_event", "2026-02-01T10:00", "2026-03-04T00:00:01"),
    staged("legacy_recent", "2026-03-04T08:00", None),
    staged("legacy_on_bound", "2026-03-04T00:00", None),
    staged("legacy_old", "2026-02-20T08:00", None),
]


def test_filter_ingested_since_keeps_versions_landed_on_or_after_the_bound(
    spark: SparkSession,
) -> None:
    versions_df = staged_df(spark, WINDOW_ROWS)
    result = filter_ingested_since(versions_df, datetime(2026, 3, 4, tzinfo=UTC))
    kept = {"in_window", "on_bound", "weeks_late_event", "legacy_recent", "legacy_on_bound"}
    expected = staged_df(spark, [r for r in WINDOW_ROWS if r[0] in kept])
    assert_df_equality(result, expected, ignore_row_order=True)


def test_filter_ingested_since_equals_a_filter_on_effective_ingested_at(
    spark: SparkSession,
) -> None:
    versions_df = staged_df(spark, WINDOW_ROWS)
    for since in (datetime(2026, 2, 1), datetime(2026, 3, 4, 0, 0, 1)):
        kept = [r for r in WINDOW_ROWS if effective(r) >= since]
        result = filter_ingested_since(versions_df, since.replace(tzinfo=UTC))
        assert_df_equality(result, staged_df(spark, kept), ignore_row_order=True)


def test_filter_ingested_since_none_keeps_everything(spark: SparkSession) -> None:
    versions_df = staged_df(spark, WINDOW_ROWS)
    assert_df_equality(filter_ingested_since(versions_df, None), versions_df, ignore_row_order=True)


# --- dedupe_latest_version --------------------------------------------------------------------

VERSIONS = [
    # o1: the stale `placed` lands a day after the newer `paid`; `shipped` is the latest
    staged("o1", "2026-03-01T10:30", "2026-03-02T12:00", "placed"),
    staged("o1", "2026-03-01T10:00", "2026-03-01T10:05", "paid"),
    staged("o1", "2026-03-01T11:00", "2026-03-01T11:05", "shipped"),
    # o2: tie on event_time, the later landing wins even with an "earlier" status
    staged("o2", "2026-03-01T12:00", "2026-03-01T12:10", "shipped"),
    staged("o2", "2026-03-01T12:00", "2026-03-01T13:00", "paid", amount="11.00"),
    # o3: tie on event_time and effective_ingested_at: the later lifecycle status wins
    staged("o3", "2026-03-01T09:00", "2026-03-01T09:30", "paid"),
    staged("o3", "2026-03-01T09:00", "2026-03-01T09:30", "cancelled"),
    # o4: a legacy row and a stamped row with the same event_time and effective time:
    # the stamped row wins
    staged("o4", "2026-03-01T08:00", None, "paid"),
    staged("o4", "2026-03-01T08:00", "2026-03-01T08:00", "paid"),
    # o5: a retry, the same version twice
    staged("o5", "2026-03-01T07:00", "2026-03-01T07:01", "placed"),
    staged("o5", "2026-03-01T07:00", "2026-03-01T07:01", "placed"),
    # o6: only a legacy row, kept with its null stamp
    staged("o6", "2026-02-20T07:00", None, "delivered"),
    # o7: the newer version crosses midnight UTC and moves the order to the next day
    staged("o7", "2026-03-01T23:59:59", "2026-03-02T00:00:30", "placed"),
    staged("o7", "2026-03-02T00:00:01", "2026-03-02T00:00:30", "paid"),
    # o8: a legacy row that is newer than a stamped one by event_time
    staged("o8", "2026-03-01T06:00", "2026-03-01T06:05", "placed"),
    staged("o8", "2026-03-01T06:30", None, "paid"),
    # a row with no order_id is not an order
    staged(None, "2026-03-01T06:00", "2026-03-01T06:05"),
]
LATEST = [
    VERSIONS[2],
    VERSIONS[4],
    VERSIONS[6],
    VERSIONS[8],
    VERSIONS[9],
    VERSIONS[11],
    VERSIONS[13],
    VERSIONS[15],
]


def test_dedupe_latest_version_keeps_one_latest_row_per_order(spark: SparkSession) -> None:
    result = dedupe_latest_version(staged_df(spark, VERSIONS))
    assert_df_equality(result, fct_df(spark, LATEST), ignore_row_order=True)


def test_dedupe_latest_version_does_not_depend_on_arrival_order(spark: SparkSession) -> None:
    forward = dedupe_latest_version(staged_df(spark, VERSIONS))
    backward = dedupe_latest_version(staged_df(spark, VERSIONS[::-1]).repartition(3))
    assert_df_equality(forward, backward, ignore_row_order=True)


def test_dedupe_latest_version_agrees_with_the_plain_python_rule(spark: SparkSession) -> None:
    versions = [
        LandedVersion(*row[:7])  # type: ignore[arg-type]
        for row in VERSIONS
        if row[0] is not None
    ]
    result_df = dedupe_latest_version(staged_df(spark, VERSIONS))
    assert tuple(result_df.columns) == FCT_ORDERS_COLUMNS
    assert {tuple(r) for r in result_df.collect()} == expected_fct(versions)


def test_dedupe_latest_version_of_nothing_is_empty(spark: SparkSession) -> None:
    result = dedupe_latest_version(staged_df(spark, [staged(None, "2026-03-01T06:00", None)]))
    assert_df_equality(result, fct_df(spark, []), ignore_row_order=True)


# --- newer_than_sql (the MERGE's update condition) ---------------------------------------------


PAIRS = [
    # (new, old, new is strictly newer)
    (VERSIONS[2], VERSIONS[0], True),
    (VERSIONS[0], VERSIONS[2], False),
    (VERSIONS[4], VERSIONS[3], True),
    (VERSIONS[3], VERSIONS[4], False),
    (VERSIONS[6], VERSIONS[5], True),
    (VERSIONS[8], VERSIONS[7], True),
    (VERSIONS[7], VERSIONS[8], False),
    (VERSIONS[9], VERSIONS[10], False),
    (VERSIONS[13], VERSIONS[12], True),
    (VERSIONS[15], VERSIONS[14], True),
]


def test_newer_than_sql_is_strict_and_follows_the_rule(spark: SparkSession) -> None:
    pair_schema = T.StructType(
        [
            T.StructField("s", FCT_SCHEMA),
            T.StructField("t", FCT_SCHEMA),
            T.StructField("expected", T.BooleanType()),
        ]
    )
    pair_df = spark.createDataFrame(PAIRS, pair_schema)
    result = pair_df.selectExpr(f"{newer_than_sql('s', 't')} AS newer", "expected")
    assert [(r["newer"], r["expected"]) for r in result.collect()] == [
        (newer, newer) for _, _, newer in PAIRS
    ]
