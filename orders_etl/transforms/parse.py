"""Raw batch files -> lines -> typed order rows, each with a reason code when a rule is broken.

Every rule of the input format is a Spark column expression (no Python UDF), so a batch is
checked on the executors and never collected to the driver.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from orders_etl.schemas import (
    AMOUNT_MAX_INTEGER_DIGITS,
    AMOUNT_TYPE,
    INPUT_FIELDS,
    MAX_EVENT_TIME_AHEAD_DAYS,
    ORDER_ID_MAX_LENGTH,
    STATUSES,
    Reason,
)

_NUMERIC_TYPE_PREFIXES = ("DECIMAL", "BIGINT", "INT", "SMALLINT", "TINYINT", "DOUBLE", "FLOAT")
# Java regex: `\z` is the end of the text; `$` would also match before a final line break,
# so "EUR\n" would pass as a currency.
_ISO_WITH_ZONE = r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:\d{2})\z"
_ISO_WITHOUT_ZONE = r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?\z"
_DECIMAL_TEXT = r"^-?[0-9]+(\.[0-9]+)?\z"
_CURRENCY = r"^[A-Z]{3}\z"
_BLANK = r"^\s*$"

PARSED_COLUMNS: tuple[str, ...] = (
    "source_file",
    "source_sha256",
    "line_number",
    "raw",
    "reason",
    *INPUT_FIELDS,
    "unknown_field_count",
)


def agg_line_blocks(lines_df: DataFrame) -> DataFrame:
    """Count the lines of each block of each file and number the first line of each block:
    one row per (`source_file`, `block_start`).

    (source_file, block_start, row_id, line) -> (source_file, block_start, first_row_id,
    first_line_number). Blocks of 3 and 2 lines at offsets 0 and 90 of `a.jsonl` ->
    (a.jsonl, 0, id, 1), (a.jsonl, 90, id', 4).
    """
    earlier = Window.partitionBy("source_file").orderBy("block_start")
    return (
        lines_df.groupBy("source_file", "block_start")
        .agg(F.count(F.lit(1)).alias("lines"), F.min("row_id").alias("first_row_id"))
        .select(
            "source_file",
            "block_start",
            "first_row_id",
            (F.sum("lines").over(earlier) - F.col("lines") + 1)
            .cast("long")
            .alias("first_line_number"),
        )
    )


def with_line_numbers(lines_df: DataFrame, blocks_df: DataFrame) -> DataFrame:
    """Number each line within its file, from 1, and add its file's `source_sha256`: one row
    per line, blank ones included.

    `blocks_df` holds one row per block (`agg_line_blocks`) with the file's `source_sha256`;
    a line's number is its block's first line number plus its position in the block.
    """
    return lines_df.join(blocks_df, on=["source_file", "block_start"], how="inner").select(
        "source_file",
        "source_sha256",
        (F.col("first_line_number") + F.col("row_id") - F.col("first_row_id"))
        .cast("long")
        .alias("line_number"),
        "line",
    )


def clean_lines(lines_df: DataFrame) -> DataFrame:
    """Remove a trailing carriage return (CRLF endings) from each line, and a byte-order mark
    from the start of each file's first line; everything else of the line is kept as it was.

    (source_file, source_sha256, line_number, line) -> (..., line_number, raw)
    """
    no_cr = F.regexp_replace(F.col("line"), "\r$", "")
    return lines_df.select(
        "source_file",
        "source_sha256",
        "line_number",
        F.when(F.col("line_number") == 1, F.regexp_replace(no_cr, "^\ufeff", ""))
        .otherwise(no_cr)
        .alias("raw"),
    )


def filter_non_blank_lines(lines_df: DataFrame) -> DataFrame:
    """Drop lines that are empty or only white space: the contract ignores them."""
    return lines_df.filter(~F.col("raw").rlike(_BLANK)).select(*lines_df.columns)


def _stage_fields(lines_df: DataFrame) -> DataFrame:
    """Add each line's parsed JSON and, per input field, its value, type and text, as columns
    (`_variant`, `_keys`, `_top_type`, `_field_<name>`, `_type_<name>`, `_text_<name>`),
    the trimmed amount (`_amount_text`) and the event time as a timestamp (`_event_time`).

    The checks refer to these columns, so each line is parsed once. Written inline, every
    check repeated `try_parse_json` (Spark does not share an expression between the branches
    of a `coalesce` of `when`s), which made parsing the bulk of a large `land`.
    """
    variant = F.col("_variant")
    with_variant_df = lines_df.select(
        *lines_df.columns,
        F.try_parse_json(F.col("raw")).alias("_variant"),
        F.json_object_keys(F.col("raw")).alias("_keys"),
    )
    with_fields_df = with_variant_df.select(
        *with_variant_df.columns,
        F.schema_of_variant(variant).alias("_top_type"),
        *(
            F.try_variant_get(variant, f"$.{n}", "variant").alias(f"_field_{n}")
            for n in INPUT_FIELDS
        ),
        *(F.try_variant_get(variant, f"$.{n}", "string").alias(f"_text_{n}") for n in INPUT_FIELDS),
    )
    # ISO-8601 may leave out the seconds ("10:30Z"); Spark's cast needs them.
    with_seconds = F.regexp_replace(
        F.col("_text_event_time"),
        r"^(\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2})(Z|[+-]\d{2}:\d{2})\z",
        "$1:00$2",
    )
    return with_fields_df.select(
        *with_fields_df.columns,
        *(F.schema_of_variant(F.col(f"_field_{n}")).alias(f"_type_{n}") for n in INPUT_FIELDS),
        F.trim(F.col("_text_amount")).alias("_amount_text"),
        with_seconds.try_cast("timestamp").alias("_event_time"),
    )


def _is_numeric_type(type_name: Column) -> Column:
    condition = F.lit(False)
    for prefix in _NUMERIC_TYPE_PREFIXES:
        condition = condition | type_name.startswith(prefix)
    return condition


def _is_single_value(raw: Column) -> Column:
    """Tell whether `raw` is one JSON value and nothing after it.

    `try_parse_json` reads the first value and ignores the rest ("{...} x", "{...}{...}").
    Wrapped as the only element of an array and as the value of an object, a text with
    anything after its first value fails one of the two.
    """
    as_element = F.json_array_length(F.concat(F.lit("["), raw, F.lit("]"))) == 1
    as_member = F.try_parse_json(F.concat(F.lit('{"v":'), raw, F.lit("}"))).isNotNull()
    return F.coalesce(as_element & as_member, F.lit(False))


def _first_reason(checks: list[tuple[Column, str]]) -> Column:
    """Return the code of the first check that holds, or null when none does."""
    return F.coalesce(*(F.when(check, F.lit(code)) for check, code in checks), F.lit(None))


def parse_order_lines(lines_df: DataFrame, processing_time: datetime) -> DataFrame:
    """Check every rule of the input format: one row per line, `reason` null when valid.

    Typed fields (`amount` as decimal(18,2), `event_time` as a UTC timestamp) are filled only
    on valid rows. `processing_time` bounds `event_time` (at most one day ahead).

    {"order_id":"o1","customer_id":"c1","status":"paid","amount":"12.5","currency":"EUR",
     "event_time":"2026-03-01T00:30:00+02:00"} -> reason null, amount 12.50,
     event_time 2026-02-28 22:30:00 UTC
    {"order_id":"o1", ...,"currency":"eur", ...} -> reason "invalid_currency"
    """
    variant, keys, top_type = F.col("_variant"), F.col("_keys"), F.col("_top_type")
    text = {name: F.col(f"_text_{name}") for name in INPUT_FIELDS}
    amount_text = F.col("_amount_text")
    amount_integer = F.regexp_replace(
        F.regexp_extract(amount_text, r"^-?([0-9]+)", 1), "^0+(?=[0-9])", ""
    )
    amount_fraction = F.regexp_replace(F.regexp_extract(amount_text, r"\.([0-9]+)$", 1), "0+$", "")
    event_time_text = text["event_time"]
    staged_df = _stage_fields(lines_df)
    event_time_value = F.col("_event_time")
    latest_allowed = processing_time + timedelta(days=MAX_EVENT_TIME_AHEAD_DAYS)

    checks: list[tuple[Column, str]] = [
        (
            variant.isNull() & keys.isNotNull() & (F.size(keys) != F.size(F.array_distinct(keys))),
            Reason.DUPLICATE_KEY,
        ),
        (variant.isNull(), Reason.INVALID_JSON),
        (~_is_single_value(F.col("raw")), Reason.INVALID_JSON),
        (~top_type.startswith("OBJECT"), Reason.NOT_AN_OBJECT),
    ]
    for name in INPUT_FIELDS:
        field_type = F.col(f"_type_{name}")
        checks.append(
            (F.col(f"_field_{name}").isNull() | (field_type == "VOID"), f"missing_{name}")
        )
        type_ok = (
            (field_type == "STRING") | _is_numeric_type(field_type)
            if name == "amount"
            else field_type == "STRING"
        )
        checks.append((~type_ok, f"wrong_type_{name}"))
    checks += [
        (F.trim(text["order_id"]) == "", Reason.EMPTY_ORDER_ID),
        (F.length(text["order_id"]) > ORDER_ID_MAX_LENGTH, Reason.ORDER_ID_TOO_LONG),
        (F.trim(text["customer_id"]) == "", Reason.EMPTY_CUSTOMER_ID),
        (~text["status"].isin(*STATUSES), Reason.INVALID_STATUS),
        (~amount_text.rlike(_DECIMAL_TEXT), Reason.INVALID_AMOUNT),
        (amount_text.startswith("-"), Reason.AMOUNT_OUT_OF_RANGE),
        (F.length(amount_integer) > AMOUNT_MAX_INTEGER_DIGITS, Reason.AMOUNT_OUT_OF_RANGE),
        (F.length(amount_fraction) > 2, Reason.AMOUNT_TOO_MANY_DECIMALS),
        (~text["currency"].rlike(_CURRENCY), Reason.INVALID_CURRENCY),
        (event_time_text.rlike(_ISO_WITHOUT_ZONE), Reason.EVENT_TIME_WITHOUT_ZONE),
        (
            ~event_time_text.rlike(_ISO_WITH_ZONE) | event_time_value.isNull(),
            Reason.INVALID_EVENT_TIME,
        ),
        (event_time_value > F.lit(latest_allowed), Reason.EVENT_TIME_IN_FUTURE),
    ]
    reason = _first_reason(checks)
    known = F.array(*(F.lit(name) for name in INPUT_FIELDS))
    return (
        staged_df.withColumn("reason", reason)
        .select(
            "source_file",
            "source_sha256",
            "line_number",
            "raw",
            "reason",
            F.when(F.col("reason").isNull(), text["order_id"]).alias("order_id"),
            F.when(F.col("reason").isNull(), text["customer_id"]).alias("customer_id"),
            F.when(F.col("reason").isNull(), text["status"]).alias("status"),
            F.when(F.col("reason").isNull(), amount_text.try_cast(AMOUNT_TYPE)).alias("amount"),
            F.when(F.col("reason").isNull(), text["currency"]).alias("currency"),
            F.when(F.col("reason").isNull(), event_time_value).alias("event_time"),
            F.coalesce(F.size(F.array_except(keys, known)), F.lit(0))
            .cast("int")
            .alias("unknown_field_count"),
        )
        .select(*PARSED_COLUMNS)
    )


def filter_valid_rows(parsed_df: DataFrame) -> DataFrame:
    """Keep the lines that broke no rule."""
    return parsed_df.filter(F.col("reason").isNull()).select(*parsed_df.columns)


def filter_rejected_rows(parsed_df: DataFrame) -> DataFrame:
    """Keep the lines that broke a rule."""
    return parsed_df.filter(F.col("reason").isNotNull()).select(*parsed_df.columns)


def with_ingested_at(df: DataFrame, ingested_at: datetime) -> DataFrame:
    """Stamp `event_ingested_at` (processing time) on every row."""
    return df.withColumn("event_ingested_at", F.lit(ingested_at).cast("timestamp"))


def agg_file_reasons(parsed_df: DataFrame) -> DataFrame:
    """Count each file's parsed lines per outcome: one row per (`source_file`,
    `source_sha256`, `reason`) (`reason` null for valid lines) with `lines` and `unknown`
    (lines with unknown fields).

    (a.jsonl, sha, null) x 3 and (a.jsonl, sha, "invalid_json") x 1 -> (a.jsonl, sha, null,
    3, 0), (a.jsonl, sha, invalid_json, 1, 0).
    """
    return (
        parsed_df.groupBy("source_file", "source_sha256", "reason")
        .agg(
            F.count(F.lit(1)).alias("lines"),
            F.count(F.when(F.col("unknown_field_count") > 0, 1)).alias("unknown"),
        )
        .select("source_file", "source_sha256", "reason", "lines", "unknown")
    )


def agg_reasons(rejected_df: DataFrame) -> DataFrame:
    """Count rejected lines per reason: one row per `reason` with `count`."""
    return rejected_df.groupBy("reason").count().select("reason", "count")
