"""`verify`: data-quality checks over a range of `order_date`, exit 1 when any fails."""

from __future__ import annotations

import json
import sys
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from orders_etl.context import CommandResult, RunContext
from orders_etl.errors import UsageError
from orders_etl.io.history import commits, unpredicated_overwrites
from orders_etl.io.tables import read_table, table_exists
from orders_etl.schemas import (
    DAILY_REVENUE,
    FCT_ORDERS,
    ORDERS_LANDING,
    PIPELINE_RUNS,
    Outcome,
)
from orders_etl.transforms.latest import dedupe_latest_version
from orders_etl.transforms.revenue import agg_daily_revenue, diff_figures, filter_current
from orders_etl.transforms.stage import filter_event_time_from, stage_versions

EXAMPLES = 5


@dataclass(frozen=True)
class VerifyParams:
    """`verify`'s arguments: the `order_date` range (None: every day) and the output format."""

    start: date | None = None
    end: date | None = None
    as_json: bool = False
    history_after_version: int | None = None
    print_output: bool = True
    dates: tuple[date, ...] | None = None


@dataclass(frozen=True)
class CheckResult:
    """One check: passed or not, how many offending keys, and a few of them."""

    name: str
    passed: bool
    failing: int = 0
    examples: list[str] = field(default_factory=list)
    detail: str = ""


def _in_range(
    df: DataFrame, start: date | None, end: date | None, dates: tuple[date, ...] | None = None
) -> DataFrame:
    if dates is not None:
        df = df.filter(F.col("order_date").isin(*dates)) if dates else df.limit(0)
    if start is not None:
        df = df.filter(F.col("order_date") >= F.lit(start))
    if end is not None:
        df = df.filter(F.col("order_date") <= F.lit(end))
    return df


def _result(name: str, offending_df: DataFrame, key: str, detail: str) -> CheckResult:
    failing = offending_df.count()
    examples = [str(r[0]) for r in offending_df.select(key).limit(EXAMPLES).collect()]
    return CheckResult(name, failing == 0, failing, examples, detail)


def check_not_null(fct_df: DataFrame) -> CheckResult:
    """`order_id` is never null."""
    offending = fct_df.filter(F.col("order_id").isNull()).select(
        F.col("order_date").cast("string").alias("key")
    )
    return _result("order_id_not_null", offending, "key", "rows with a null order_id (by date)")


def check_unique(fct_all_df: DataFrame, scope_df: DataFrame) -> CheckResult:
    """Every `order_id` in scope has exactly one row in the whole table."""
    ids = scope_df.select("order_id").filter(F.col("order_id").isNotNull())
    offending = (
        fct_all_df.select("order_id")
        .join(ids.distinct(), on="order_id", how="left_semi")
        .groupBy("order_id")
        .count()
        .filter(F.col("count") > 1)
    )
    return _result("order_id_unique", offending, "order_id", "order_ids with more than one row")


def expected_per_day(
    spark: SparkSession,
    landing_df: DataFrame,
    start: date | None,
    end: date | None,
    dates: tuple[date, ...] | None = None,
) -> DataFrame:
    """Distinct orders whose latest landed version falls on each day: (order_date, expected)."""
    versions_df = stage_versions(landing_df)
    if start is not None:
        versions_df = filter_event_time_from(versions_df, start)
    if dates:
        versions_df = filter_event_time_from(versions_df, min(dates))
    latest_df = _in_range(dedupe_latest_version(versions_df), start, end, dates)
    return latest_df.groupBy("order_date").agg(F.count(F.lit(1)).alias("expected"))


def check_reconciles(
    spark: SparkSession,
    fct_df: DataFrame,
    landing_df: DataFrame,
    start: date | None,
    end: date | None,
    dates: tuple[date, ...] | None = None,
) -> CheckResult:
    """Per day, rows in `fct_orders` equal the orders whose latest version is on that day."""
    actual = fct_df.groupBy("order_date").agg(F.count(F.lit(1)).alias("actual"))
    offending = (
        expected_per_day(spark, landing_df, start, end, dates)
        .join(actual, on="order_date", how="full_outer")
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
    return _result(
        "reconciles_with_source",
        offending,
        "key",
        "days whose row count differs from the latest landed versions",
    )


def check_revenue(
    fct_df: DataFrame,
    revenue_df: DataFrame,
    start: date | None,
    end: date | None,
    dates: tuple[date, ...] | None = None,
) -> CheckResult:
    """Current `daily_revenue` equals a recomputation from `fct_orders`."""
    current_df = _in_range(filter_current(revenue_df), start, end, dates)
    offending = (
        diff_figures(current_df, agg_daily_revenue(fct_df))
        .select(F.concat_ws(" ", F.col("order_date").cast("string"), "currency").alias("key"))
        .orderBy("key")
    )
    return _result(
        "daily_revenue_matches_fct",
        offending,
        "key",
        "(day, currency) whose current figures differ from fct_orders",
    )


def check_landing_accounting(spark: SparkSession, runs_path: str) -> CheckResult:
    """Every landing run's lines read equal its rows landed plus rows quarantined."""
    if not table_exists(spark, runs_path):
        return CheckResult("landing_accounting", True, detail="no landing runs recorded")
    runs = (
        spark.read.format("delta")
        .load(runs_path)
        .filter((F.col("outcome") == Outcome.SUCCEEDED) & F.col("command").isin("land", "hourly"))
    )

    def metric(name: str) -> Any:
        return F.coalesce(
            F.get_json_object("metrics", f"$.{name}"),
            F.get_json_object("metrics", f"$.land.{name}"),
        ).cast("long")

    offending = runs.filter(
        metric("lines_read") != metric("rows_landed") + metric("rows_quarantined")
    ).select("run_id")
    return _result(
        "landing_accounting",
        offending,
        "run_id",
        "landing runs where landed + quarantined != lines read",
    )


def check_no_unpredicated_overwrite(
    spark: SparkSession, fct_path: str, after_version: int | None
) -> CheckResult:
    """No commit in `fct_orders`'s history overwrote the table without a partition predicate."""
    bad = unpredicated_overwrites(commits(spark, fct_path, after_version))
    return CheckResult(
        "no_unpredicated_overwrite",
        not bad,
        len(bad),
        [f"version {c.version} {c.operation}" for c in bad[:EXAMPLES]],
        "commits that overwrote fct_orders without a partition predicate",
    )


def late_data_report(landing_df: DataFrame, now: datetime, days: int = 14) -> dict[str, Any]:
    """Lateness (`effective_ingested_at - event_time`) of events ingested in the last `days`."""
    since = F.lit(now - timedelta(days=days)).cast("timestamp")
    staged = stage_versions(landing_df).filter(F.col("effective_ingested_at") >= since)
    late = F.col("effective_ingested_at").cast("long") - F.col("event_time").cast("long")
    row = (
        staged.select(late.alias("s"))
        .agg(
            F.count(F.lit(1)).alias("events"),
            F.percentile_approx("s", 0.5).alias("p50"),
            F.percentile_approx("s", 0.95).alias("p95"),
            F.max("s").alias("max"),
            F.count(F.when(F.col("s") > 3 * 86400, 1)).alias("over_3_days"),
            F.count(F.when(F.col("s") > 14 * 86400, 1)).alias("over_14_days"),
        )
        .first()
    )
    assert row is not None

    def hours(seconds: Any) -> float | None:
        return None if seconds is None else round(max(int(seconds), 0) / 3600, 2)

    return {
        "days": days,
        "events": int(row["events"]),
        "lateness_hours_p50": hours(row["p50"]),
        "lateness_hours_p95": hours(row["p95"]),
        "lateness_hours_max": hours(row["max"]),
        "events_over_3_days_late": int(row["over_3_days"]),
        "events_over_14_days_late": int(row["over_14_days"]),
    }


def run_checks(ctx: RunContext, params: VerifyParams) -> tuple[list[CheckResult], dict[str, Any]]:
    """Run every check over the range and build the late-data report."""
    spark = ctx.spark
    wh = ctx.warehouse
    for table in (FCT_ORDERS, ORDERS_LANDING):
        if not table_exists(spark, wh.path(table)):
            raise UsageError(f"no {table} table under {wh.root}; run `orders-etl migrate` first")
    fct_all_df = read_table(spark, wh, FCT_ORDERS)
    fct_df = _in_range(fct_all_df, params.start, params.end, params.dates)
    landing_df = read_table(spark, wh, ORDERS_LANDING)
    checks = [
        check_not_null(fct_df),
        check_unique(fct_all_df, fct_df),
        check_reconciles(spark, fct_df, landing_df, params.start, params.end, params.dates),
    ]
    if table_exists(spark, wh.path(DAILY_REVENUE)):
        checks.append(
            check_revenue(
                fct_df, read_table(spark, wh, DAILY_REVENUE), params.start, params.end, params.dates
            )
        )
    checks.append(check_landing_accounting(spark, wh.path(PIPELINE_RUNS)))
    checks.append(
        check_no_unpredicated_overwrite(spark, wh.path(FCT_ORDERS), params.history_after_version)
    )
    return checks, late_data_report(landing_df, ctx.processing_time)


def format_table(checks: list[CheckResult], report: dict[str, Any]) -> str:
    """Render checks and the late-data report for a terminal."""
    width = max(len(c.name) for c in checks)
    lines = []
    for c in checks:
        status = "PASS" if c.passed else f"FAIL ({c.failing})"
        example = f"  e.g. {', '.join(c.examples)}" if c.examples and not c.passed else ""
        lines.append(f"{c.name:<{width}}  {status}{example}")
    lines.append(
        f"late data, last {report['days']} days: {report['events']} events, lateness p50 "
        f"{report['lateness_hours_p50']}h, p95 {report['lateness_hours_p95']}h, max "
        f"{report['lateness_hours_max']}h; >3 days late: {report['events_over_3_days_late']}, "
        f">14 days late: {report['events_over_14_days_late']}"
    )
    return "\n".join(lines)


def run(ctx: RunContext, params: VerifyParams) -> CommandResult:
    """Run `verify`: print the checks (table or JSON) and exit 1 when any fails."""
    checks, report = run_checks(ctx, params)
    passed = all(c.passed for c in checks)
    document = {
        "passed": passed,
        "start": params.start,
        "end": params.end,
        "checks": [asdict(c) for c in checks],
        "late_data": report,
    }
    if not params.print_output:
        pass
    elif params.as_json:
        print(json.dumps(document, default=str, indent=2), file=sys.stdout, flush=True)
    else:
        print(format_table(checks, report), file=sys.stdout, flush=True)
    failed = [c.name for c in checks if not c.passed]
    summary = "all checks passed" if passed else f"failed: {', '.join(failed)}"
    return CommandResult(
        metrics=json.loads(json.dumps(document, default=str)),
        exit_code=0 if passed else 1,
        summary=summary,
    )
