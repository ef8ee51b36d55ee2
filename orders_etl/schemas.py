"""Schemas and fixed values of the contract: table columns, statuses, reason codes."""

from __future__ import annotations

from pyspark.sql import types as T

# --- table names (one folder each under the warehouse root) -----------------------------------
ORDERS_LANDING = "orders_landing"
ORDERS_QUARANTINE = "orders_quarantine"
FCT_ORDERS = "fct_orders"
DAILY_REVENUE = "daily_revenue"
REVENUE_REVISIONS = "revenue_revisions"
PIPELINE_RUNS = "pipeline_runs"

# --- input ------------------------------------------------------------------------------------
INPUT_FIELDS: tuple[str, ...] = (
    "order_id",
    "customer_id",
    "status",
    "amount",
    "currency",
    "event_time",
)
# Later lifecycle states rank higher; used only as a deterministic tie-break.
STATUSES: tuple[str, ...] = ("placed", "paid", "shipped", "delivered", "cancelled", "refunded")
REVENUE_STATUSES: tuple[str, ...] = ("placed", "paid", "shipped", "delivered")
ORDER_ID_MAX_LENGTH = 64
AMOUNT_MAX_INTEGER_DIGITS = 16  # 0 <= amount < 10^16
AMOUNT_TYPE = T.DecimalType(18, 2)
REVENUE_TYPE = T.DecimalType(28, 2)
MAX_EVENT_TIME_AHEAD_DAYS = 1
BATCH_FILE_SUFFIXES: tuple[str, ...] = (".jsonl", ".json", ".jsonl.gz", ".json.gz")


class Reason:
    """Quarantine reason codes: each names the rule of the input format that a line broke."""

    INVALID_JSON = "invalid_json"
    DUPLICATE_KEY = "duplicate_key"
    NOT_AN_OBJECT = "not_an_object"
    MISSING_ORDER_ID = "missing_order_id"
    MISSING_CUSTOMER_ID = "missing_customer_id"
    MISSING_STATUS = "missing_status"
    MISSING_AMOUNT = "missing_amount"
    MISSING_CURRENCY = "missing_currency"
    MISSING_EVENT_TIME = "missing_event_time"
    WRONG_TYPE_ORDER_ID = "wrong_type_order_id"
    WRONG_TYPE_CUSTOMER_ID = "wrong_type_customer_id"
    WRONG_TYPE_STATUS = "wrong_type_status"
    WRONG_TYPE_AMOUNT = "wrong_type_amount"
    WRONG_TYPE_CURRENCY = "wrong_type_currency"
    WRONG_TYPE_EVENT_TIME = "wrong_type_event_time"
    EMPTY_ORDER_ID = "empty_order_id"
    ORDER_ID_TOO_LONG = "order_id_too_long"
    EMPTY_CUSTOMER_ID = "empty_customer_id"
    INVALID_STATUS = "invalid_status"
    INVALID_AMOUNT = "invalid_amount"
    AMOUNT_OUT_OF_RANGE = "amount_out_of_range"
    AMOUNT_TOO_MANY_DECIMALS = "amount_too_many_decimals"
    INVALID_CURRENCY = "invalid_currency"
    INVALID_EVENT_TIME = "invalid_event_time"
    EVENT_TIME_WITHOUT_ZONE = "event_time_without_zone"
    EVENT_TIME_IN_FUTURE = "event_time_in_future"


# --- tables -----------------------------------------------------------------------------------
_INPUT_COLUMNS = [
    T.StructField("order_id", T.StringType(), True),
    T.StructField("customer_id", T.StringType(), True),
    T.StructField("status", T.StringType(), True),
    T.StructField("amount", AMOUNT_TYPE, True),
    T.StructField("currency", T.StringType(), True),
    T.StructField("event_time", T.TimestampType(), True),
]

# The six input fields as another Delta writer may have created orders_landing before us.
LEGACY_LANDING_SCHEMA = T.StructType(_INPUT_COLUMNS)

# Columns migrate adds to an existing orders_landing, all nullable (old rows read null).
LANDING_ADDED_COLUMNS = T.StructType(
    [
        T.StructField("event_ingested_at", T.TimestampType(), True),
        T.StructField("source_file", T.StringType(), True),
        T.StructField("run_id", T.StringType(), True),
        T.StructField("source_sha256", T.StringType(), True),
        T.StructField("line_number", T.LongType(), True),
    ]
)

LANDING_SCHEMA = T.StructType(_INPUT_COLUMNS + LANDING_ADDED_COLUMNS.fields)

QUARANTINE_SCHEMA = T.StructType(
    [
        T.StructField("raw", T.StringType(), True),
        T.StructField("reason", T.StringType(), True),
        T.StructField("source_file", T.StringType(), True),
        T.StructField("line_number", T.LongType(), True),
        T.StructField("event_ingested_at", T.TimestampType(), True),
        T.StructField("run_id", T.StringType(), True),
        T.StructField("source_sha256", T.StringType(), True),
    ]
)

FCT_ORDERS_SCHEMA = T.StructType(
    [
        T.StructField("order_id", T.StringType(), False),
        T.StructField("customer_id", T.StringType(), True),
        T.StructField("status", T.StringType(), True),
        T.StructField("amount", AMOUNT_TYPE, True),
        T.StructField("currency", T.StringType(), True),
        T.StructField("event_time", T.TimestampType(), True),
        T.StructField("event_ingested_at", T.TimestampType(), True),
        T.StructField("effective_ingested_at", T.TimestampType(), True),
        T.StructField("order_date", T.DateType(), True),
    ]
)
FCT_ORDERS_COLUMNS: tuple[str, ...] = tuple(f.name for f in FCT_ORDERS_SCHEMA.fields)

DAILY_REVENUE_SCHEMA = T.StructType(
    [
        T.StructField("order_date", T.DateType(), True),
        T.StructField("currency", T.StringType(), True),
        T.StructField("order_count", T.LongType(), True),
        T.StructField("revenue", REVENUE_TYPE, True),
        T.StructField("as_of", T.TimestampType(), True),
        T.StructField("superseded_at", T.TimestampType(), True),
        T.StructField("run_id", T.StringType(), True),
    ]
)

REVENUE_REVISIONS_SCHEMA = T.StructType(
    [
        T.StructField("order_date", T.DateType(), True),
        T.StructField("currency", T.StringType(), True),
        T.StructField("previous_order_count", T.LongType(), True),
        T.StructField("new_order_count", T.LongType(), True),
        T.StructField("previous_revenue", REVENUE_TYPE, True),
        T.StructField("new_revenue", REVENUE_TYPE, True),
        T.StructField("order_count_difference", T.LongType(), True),
        T.StructField("revenue_difference", REVENUE_TYPE, True),
        T.StructField("as_of", T.TimestampType(), True),
        T.StructField("run_id", T.StringType(), True),
    ]
)

PIPELINE_RUNS_SCHEMA = T.StructType(
    [
        T.StructField("run_id", T.StringType(), True),
        T.StructField("command", T.StringType(), True),
        T.StructField("arguments", T.StringType(), True),
        T.StructField("processing_time", T.TimestampType(), True),
        T.StructField("started_at", T.TimestampType(), True),
        T.StructField("ended_at", T.TimestampType(), True),
        T.StructField("outcome", T.StringType(), True),
        T.StructField("metrics", T.StringType(), True),
        T.StructField("table_versions", T.StringType(), True),
        T.StructField("error", T.StringType(), True),
    ]
)


class Outcome:
    """Values of `pipeline_runs.outcome`."""

    STARTED = "started"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    REFUSED = "refused"
    CHECK_FAILED = "check_failed"
