"""Transform tests of the landing parser: every rule, a valid and a broken case each."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from chispa import assert_df_equality
from pyspark.sql import DataFrame, SparkSession

from orders_etl.schemas import Reason
from orders_etl.transforms.parse import (
    explode_lines,
    filter_non_blank_lines,
    filter_rejected_rows,
    filter_valid_rows,
    parse_order_lines,
    with_content_sha256,
    with_ingested_at,
)
from tests.helpers import LINES_SCHEMA, VALID

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


def _lines(spark: SparkSession, raws: list[str | None]) -> DataFrame:
    rows = [("f.jsonl", "sha", i + 1, raw) for i, raw in enumerate(raws)]
    return spark.createDataFrame(rows, LINES_SCHEMA)


def _reasons(spark: SparkSession, raws: list[str]) -> list[str | None]:
    parsed = parse_order_lines(_lines(spark, list(raws)), NOW).orderBy("line_number")
    return [r["reason"] for r in parsed.select("reason").collect()]


def _with(**changes: object) -> str:
    body = {**VALID, **changes}
    return json.dumps({k: v for k, v in body.items() if v is not _MISSING})


_MISSING = object()


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        (_with(), None),
        ("{not json", Reason.INVALID_JSON),
        ('{"order_id": "a", "order_id": "b"}', Reason.DUPLICATE_KEY),
        ("[1, 2]", Reason.NOT_AN_OBJECT),
        ('"just a string"', Reason.NOT_AN_OBJECT),
        (_with(order_id=_MISSING), Reason.MISSING_ORDER_ID),
        (_with(order_id=None), Reason.MISSING_ORDER_ID),
        (_with(order_id=42), Reason.WRONG_TYPE_ORDER_ID),
        (_with(order_id=""), Reason.EMPTY_ORDER_ID),
        (_with(order_id="x" * 64), None),
        (_with(order_id="x" * 65), Reason.ORDER_ID_TOO_LONG),
        (_with(customer_id=_MISSING), Reason.MISSING_CUSTOMER_ID),
        (_with(customer_id=" "), Reason.EMPTY_CUSTOMER_ID),
        (_with(customer_id=["c1"]), Reason.WRONG_TYPE_CUSTOMER_ID),
        (_with(status=_MISSING), Reason.MISSING_STATUS),
        (_with(status="Paid"), Reason.INVALID_STATUS),
        (_with(status="refunded"), None),
        (_with(amount=_MISSING), Reason.MISSING_AMOUNT),
        (_with(amount=True), Reason.WRONG_TYPE_AMOUNT),
        (_with(amount="abc"), Reason.INVALID_AMOUNT),
        (_with(amount="1e3"), Reason.INVALID_AMOUNT),
        (_with(amount=-1), Reason.AMOUNT_OUT_OF_RANGE),
        (_with(amount="10000000000000000"), Reason.AMOUNT_OUT_OF_RANGE),
        (_with(amount="9999999999999999.99"), None),
        (_with(amount=1.005), Reason.AMOUNT_TOO_MANY_DECIMALS),
        (_with(amount="1.005"), Reason.AMOUNT_TOO_MANY_DECIMALS),
        (_with(amount="1.500"), None),
        (_with(amount=0), None),
        (_with(currency=_MISSING), Reason.MISSING_CURRENCY),
        (_with(currency="eur"), Reason.INVALID_CURRENCY),
        (_with(currency="EURO"), Reason.INVALID_CURRENCY),
        (_with(event_time=_MISSING), Reason.MISSING_EVENT_TIME),
        (_with(event_time=1700000000), Reason.WRONG_TYPE_EVENT_TIME),
        (_with(event_time="2026-03-01T10:00:00"), Reason.EVENT_TIME_WITHOUT_ZONE),
        (_with(event_time="2026-02-30T10:00:00Z"), Reason.INVALID_EVENT_TIME),
        (_with(event_time="yesterday"), Reason.INVALID_EVENT_TIME),
        (_with(event_time="2024-02-29T23:00:00-12:00"), None),
        (_with(event_time="2026-03-03T12:00:00Z"), None),
        (_with(event_time="2026-03-03T12:00:01Z"), Reason.EVENT_TIME_IN_FUTURE),
        (_with(event_time="2026-03-04T00:00:00+14:00"), None),
    ],
)
def test_each_rule_has_a_valid_and_a_broken_case(
    spark: SparkSession, line: str, reason: str | None
) -> None:
    assert _reasons(spark, [line]) == [reason]


def test_valid_rows_are_typed_and_converted_to_utc(spark: SparkSession) -> None:
    lines = [
        _with(event_time="2026-03-01T00:30:00+02:00", amount=12.5),
        _with(order_id="o2", event_time="2026-02-28T23:30:00-01:00", amount="7"),
        _with(order_id="o3", currency="eur"),
    ]
    parsed = parse_order_lines(_lines(spark, list(lines)), NOW)
    expected = spark.createDataFrame(
        [
            ("o1", Decimal("12.50"), datetime(2026, 2, 28, 22, 30)),
            ("o2", Decimal("7.00"), datetime(2026, 3, 1, 0, 30)),
            (None, None, None),
        ],
        "order_id string, amount decimal(18,2), event_time timestamp",
    )
    assert_df_equality(
        parsed.select("order_id", "amount", "event_time"),
        expected,
        ignore_row_order=True,
        ignore_nullable=True,
    )


def test_unknown_fields_are_counted_not_rejected(spark: SparkSession) -> None:
    parsed = parse_order_lines(_lines(spark, [_with(sdk="ios", x=1), _with()]), NOW)
    rows = parsed.orderBy("line_number").select("reason", "unknown_field_count").collect()
    assert [(r["reason"], r["unknown_field_count"]) for r in rows] == [(None, 2), (None, 0)]


def test_lines_are_numbered_blank_lines_dropped_crlf_and_bom_removed(spark: SparkSession) -> None:
    content = "\ufeff" + _with() + "\r\n\r\n   \n" + _with(order_id="o2") + "\r\n"
    files = spark.createDataFrame([("a.jsonl", content)], "source_file string, content string")
    lines = filter_non_blank_lines(explode_lines(with_content_sha256(files)))
    rows = lines.orderBy("line_number").collect()
    assert [r["line_number"] for r in rows] == [1, 4]
    assert [json.loads(r["raw"])["order_id"] for r in rows] == ["o1", "o2"]
    assert all(r["source_sha256"] == rows[0]["source_sha256"] for r in rows)
    assert len(rows[0]["source_sha256"]) == 64


def test_every_non_blank_line_is_valid_or_rejected_exactly_once(spark: SparkSession) -> None:
    raws = [_with(), "{bad", _with(order_id=""), "[]", _with(order_id="o9")]
    parsed = parse_order_lines(_lines(spark, list(raws)), NOW)
    valid = {r["line_number"] for r in filter_valid_rows(parsed).collect()}
    rejected = {r["line_number"] for r in filter_rejected_rows(parsed).collect()}
    assert valid == {1, 5}
    assert rejected == {2, 3, 4}
    assert valid.isdisjoint(rejected)


def test_with_ingested_at_stamps_every_row(spark: SparkSession) -> None:
    df = spark.createDataFrame([("o1",), (None,)], "order_id string")
    stamped = with_ingested_at(df, NOW)
    assert {r["event_ingested_at"] for r in stamped.collect()} == {datetime(2026, 3, 2, 12, 0)}
