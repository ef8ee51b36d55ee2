"""Data-quality checks over a range of `order_date`; the run fails (exit 1) when any fails."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timedelta
from functools import partial
from typing import Any

from pyspark.sql import DataFrame

from orders_etl.context import CommandResult, RunContext, plain_metrics
from orders_etl.errors import UsageError
from orders_etl.io.history import commits, unpredicated_overwrites
from orders_etl.io.ledger import landing_accounting
from orders_etl.io.tables import read_table, table_exists
from orders_etl.schemas import DAILY_REVENUE, FCT_ORDERS, ORDERS_LANDING
from orders_etl.session import concurrently
from orders_etl.transforms.checks import (
    agg_rows_per_day,
    diff_day_counts,
    diff_revenue_with_fct,
    filter_duplicate_order_ids,
    filter_null_order_ids,
    filter_unbalanced_landings,
)
from orders_etl.transforms.lateness import agg_lateness
from orders_etl.transforms.latest import dedupe_latest_version
from orders_etl.transforms.revenue import filter_current
from orders_etl.transforms.stage import filter_event_time_from, filter_order_dates, stage_versions

EXAMPLES = 5
LATE_DATA_DAYS = 14


@dataclass(frozen=True)
class VerifyParams:
    """`verify`'s arguments: the `order_date` range (None: every day) or the given `dates`,
    the output format, and the history to check (None: all of it)."""

    start: date | None = None
    end: date | None = None
    as_json: bool = False
    history_after_version: int | None = None
    dates: tuple[date, ...] | None = None


@dataclass(frozen=True)
class CheckResult:
    """One check: passed or not, how many offending keys, and a few of them."""

    name: str
    passed: bool
    failing: int = 0
    examples: list[str] = field(default_factory=list)
    detail: str = ""


@dataclass(frozen=True)
class LateData:
    """Lateness (`effective_ingested_at - event_time`) of the events ingested in the last
    `days` days, in hours."""

    days: int
    events: int
    lateness_hours_p50: float | None
    lateness_hours_p95: float | None
    lateness_hours_max: float | None
    events_over_3_days_late: int
    events_over_14_days_late: int


@dataclass(frozen=True)
class VerifyResult(CommandResult):
    """Every check's outcome and the late-data report."""

    params: VerifyParams
    checks: tuple[CheckResult, ...]
    late_data: LateData

    @property
    def passed(self) -> bool:
        """Whether every check passed."""
        return all(c.passed for c in self.checks)

    @property
    def failed(self) -> list[str]:
        """The names of the checks that failed."""
        return [c.name for c in self.checks if not c.passed]

    @property
    def exit_code(self) -> int:
        return 0 if self.passed else 1

    def document(self) -> dict[str, Any]:
        """The checks and report as `verify --json` prints them (before JSON encoding)."""
        return {
            "passed": self.passed,
            "start": self.params.start,
            "end": self.params.end,
            "checks": [asdict(c) for c in self.checks],
            "late_data": asdict(self.late_data),
        }

    @property
    def metrics(self) -> Mapping[str, Any]:
        return plain_metrics(self.document())

    def summary(self) -> str:
        return "all checks passed" if self.passed else f"failed: {', '.join(self.failed)}"

    def stdout(self) -> str:
        if self.params.as_json:
            return json.dumps(self.document(), default=str, indent=2)
        return format_table(list(self.checks), self.late_data)


def _result(name: str, offending_df: DataFrame, key: str, detail: str) -> CheckResult:
    """Count the offending keys; read a few of them only when there are any (one Spark job
    for a check that passes)."""
    failing = offending_df.count()
    examples = (
        [str(r[0]) for r in offending_df.select(key).limit(EXAMPLES).collect()] if failing else []
    )
    return CheckResult(name, failing == 0, failing, examples, detail)


def check_not_null(fct_df: DataFrame) -> CheckResult:
    """`order_id` is never null."""
    return _result(
        "order_id_not_null",
        filter_null_order_ids(fct_df),
        "key",
        "rows with a null order_id (by date)",
    )


def check_unique(fct_all_df: DataFrame, scope_df: DataFrame) -> CheckResult:
    """Every `order_id` in scope has exactly one row in the whole table."""
    return _result(
        "order_id_unique",
        filter_duplicate_order_ids(fct_all_df, scope_df),
        "order_id",
        "order_ids with more than one row",
    )


def expected_per_day(landing_df: DataFrame, params: VerifyParams) -> DataFrame:
    """Distinct orders whose latest landed version falls on each day: (order_date, expected)."""
    versions_df = stage_versions(landing_df)
    if params.start is not None:
        versions_df = filter_event_time_from(versions_df, params.start)
    if params.dates:
        versions_df = filter_event_time_from(versions_df, min(params.dates))
    latest_df = filter_order_dates(
        dedupe_latest_version(versions_df), params.start, params.end, params.dates
    )
    return agg_rows_per_day(latest_df, "expected")


def check_reconciles(fct_df: DataFrame, landing_df: DataFrame, params: VerifyParams) -> CheckResult:
    """Per day, rows in `fct_orders` equal the orders whose latest version is on that day."""
    return _result(
        "reconciles_with_source",
        diff_day_counts(expected_per_day(landing_df, params), agg_rows_per_day(fct_df, "actual")),
        "key",
        "days whose row count differs from the latest landed versions",
    )


def check_revenue(fct_df: DataFrame, revenue_df: DataFrame, params: VerifyParams) -> CheckResult:
    """Current `daily_revenue` equals a recomputation from `fct_orders`."""
    current_df = filter_order_dates(
        filter_current(revenue_df), params.start, params.end, params.dates
    )
    return _result(
        "daily_revenue_matches_fct",
        diff_revenue_with_fct(current_df, fct_df),
        "key",
        "(day, currency) whose current figures differ from fct_orders",
    )


def check_landing_accounting(ctx: RunContext) -> CheckResult:
    """Every landing run's lines read equal its rows landed plus rows quarantined."""
    return _result(
        "landing_accounting",
        filter_unbalanced_landings(landing_accounting(ctx.spark, ctx.warehouse)),
        "run_id",
        "landing runs where landed + quarantined != lines read",
    )


def check_no_unpredicated_overwrite(ctx: RunContext, after_version: int | None) -> CheckResult:
    """No commit in `fct_orders`'s history overwrote the table without a partition predicate."""
    fct_path = ctx.warehouse.path(FCT_ORDERS)
    bad = unpredicated_overwrites(commits(ctx.spark, fct_path, after_version))
    return CheckResult(
        "no_unpredicated_overwrite",
        not bad,
        len(bad),
        [f"version {c.version} {c.operation}" for c in bad[:EXAMPLES]],
        "commits that overwrote fct_orders without a partition predicate",
    )


def late_data_report(landing_df: DataFrame, now: datetime, days: int = LATE_DATA_DAYS) -> LateData:
    """Lateness of the events ingested in the `days` days before `now`."""
    row = agg_lateness(stage_versions(landing_df), now - timedelta(days=days)).first()
    assert row is not None

    def hours(seconds: Any) -> float | None:
        return None if seconds is None else round(max(int(seconds), 0) / 3600, 2)

    return LateData(
        days=days,
        events=int(row["events"]),
        lateness_hours_p50=hours(row["p50"]),
        lateness_hours_p95=hours(row["p95"]),
        lateness_hours_max=hours(row["max"]),
        events_over_3_days_late=int(row["over_3_days"]),
        events_over_14_days_late=int(row["over_14_days"]),
    )


def format_table(checks: list[CheckResult], report: LateData) -> str:
    """Render checks and the late-data report for a terminal."""
    width = max(len(c.name) for c in checks)
    lines = []
    for c in checks:
        status = "PASS" if c.passed else f"FAIL ({c.failing})"
        example = f"  e.g. {', '.join(c.examples)}" if c.examples and not c.passed else ""
        lines.append(f"{c.name:<{width}}  {status}{example}")
    lines.append(
        f"late data, last {report.days} days: {report.events} events, lateness p50 "
        f"{report.lateness_hours_p50}h, p95 {report.lateness_hours_p95}h, max "
        f"{report.lateness_hours_max}h; >3 days late: {report.events_over_3_days_late}, "
        f">14 days late: {report.events_over_14_days_late}"
    )
    return "\n".join(lines)


def run(ctx: RunContext, params: VerifyParams) -> VerifyResult:
    """Run every check over the range and build the late-data report."""
    spark, wh = ctx.spark, ctx.warehouse
    for table in (FCT_ORDERS, ORDERS_LANDING):
        if not table_exists(spark, wh.path(table)):
            raise UsageError(f"no {table} table under {wh.root}; run `orders-etl migrate` first")
    fct_all_df = read_table(spark, wh, FCT_ORDERS)
    fct_df = filter_order_dates(fct_all_df, params.start, params.end, params.dates)
    landing_df = read_table(spark, wh, ORDERS_LANDING)
    actions: list[Callable[[], CheckResult | LateData]] = [
        partial(check_not_null, fct_df),
        partial(check_unique, fct_all_df, fct_df),
        partial(check_reconciles, fct_df, landing_df, params),
    ]
    if table_exists(spark, wh.path(DAILY_REVENUE)):
        revenue_df = read_table(spark, wh, DAILY_REVENUE)
        actions.append(partial(check_revenue, fct_df, revenue_df, params))
    actions.append(partial(check_landing_accounting, ctx))
    actions.append(partial(check_no_unpredicated_overwrite, ctx, params.history_after_version))
    actions.append(partial(late_data_report, landing_df, ctx.processing_time))
    *checks, late_data = concurrently(actions)
    assert isinstance(late_data, LateData)
    return VerifyResult(params, tuple(c for c in checks if isinstance(c, CheckResult)), late_data)
