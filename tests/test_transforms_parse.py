"""Transform tests of the landing parser: every rule, a valid and a broken case each."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from chispa import assert_df_equality
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from orders_etl.schemas import Reason
from orders_etl.transforms.parse import (
    agg_line_blocks,
    clean_lines,
    filter_non_blank_lines,
    filter_rejected_rows,
    filter_valid_rows,
    parse_order_lines,
    with_ingested_at,
    with_line_numbers,
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


# Each rule's valid and broken case: (line, the reason it is quarantined for, None if valid).
RULE_CASES: list[tuple[str, str | None]] = [
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
]


@pytest.fixture(scope="module")
def rule_reasons(spark: SparkSession) -> dict[str, str | None]:
    """Every rule case parsed in one batch, one line each (one Spark job, not one a case):
    line -> reason."""
    lines = [line for line, _ in RULE_CASES]
    assert len(set(lines)) == len(lines)
    return dict(zip(lines, _reasons(spark, lines), strict=True))


@pytest.mark.parametrize(("line", "reason"), RULE_CASES)
def test_each_rule_has_a_valid_and_a_broken_case(
    rule_reasons: dict[str, str | None], line: str, reason: str | None
) -> None:
    assert rule_reasons[line] == reason


def test_a_line_is_judged_alone_as_among_the_other_cases(
    spark: SparkSession, rule_reasons: dict[str, str | None]
) -> None:
    """The rule cases share one batch: a line's reason does not depend on its neighbours."""
    alone = [RULE_CASES[0][0], RULE_CASES[2][0], RULE_CASES[-2][0]]
    assert _reasons(spark, alone) == [rule_reasons[line] for line in alone]
    assert _reasons(spark, alone[1:2]) == [rule_reasons[alone[1]]]


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
    lines = ["\ufeff" + _with() + "\r", "\r", "   ", _with(order_id="o2") + "\r", "\ufeffx"]
    rows = [("a.jsonl", "sha-a", n, line) for n, line in enumerate(lines, start=1)]
    numbered = spark.createDataFrame(
        rows, "source_file string, source_sha256 string, line_number long, line string"
    )
    kept = filter_non_blank_lines(clean_lines(numbered)).orderBy("line_number").collect()
    assert [r["line_number"] for r in kept] == [1, 4, 5]
    assert [json.loads(r["raw"])["order_id"] for r in kept[:2]] == ["o1", "o2"]
    assert kept[2]["raw"] == "\ufeffx", "a byte-order mark is removed only at a file's start"


def test_lines_are_numbered_across_the_blocks_of_a_file(spark: SparkSession) -> None:
    """Blocks of one file, read by different tasks (row ids far apart), out of order, and a
    second file in the same task: each line gets its number within its own file."""
    raw_lines = [
        ("a.jsonl", 200, 9_000_000_000, "a4"),
        ("a.jsonl", 200, 9_000_000_001, ""),
        ("a.jsonl", 0, 5, "a1"),
        ("a.jsonl", 0, 6, "a2"),
        ("a.jsonl", 0, 7, "a3"),
        ("b.jsonl", 0, 8, "b1"),
        ("b.jsonl", 0, 9, "b2"),
        ("a.jsonl", 500, 17_000_000_000, "a6"),
    ]
    lines_df = spark.createDataFrame(
        raw_lines, "source_file string, block_start long, row_id long, line string"
    )
    blocks_df = agg_line_blocks(lines_df).withColumn(
        "source_sha256", F.concat(F.lit("sha-"), F.col("source_file"))
    )
    numbered = with_line_numbers(lines_df, blocks_df).collect()
    got = {(r["source_file"], r["line_number"]): (r["line"], r["source_sha256"]) for r in numbered}
    assert got == {
        ("a.jsonl", 1): ("a1", "sha-a.jsonl"),
        ("a.jsonl", 2): ("a2", "sha-a.jsonl"),
        ("a.jsonl", 3): ("a3", "sha-a.jsonl"),
        ("a.jsonl", 4): ("a4", "sha-a.jsonl"),
        ("a.jsonl", 5): ("", "sha-a.jsonl"),
        ("a.jsonl", 6): ("a6", "sha-a.jsonl"),
        ("b.jsonl", 1): ("b1", "sha-b.jsonl"),
        ("b.jsonl", 2): ("b2", "sha-b.jsonl"),
    }


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
