"""Rebuild the `fct_orders` partitions `start..end` from landing via replaceWhere.

The range is recomputed with the same latest-version rule as `incremental`, over every landed
version with `event_time` on or after `start` (an earlier version can never be the latest of
an order whose latest version is on or after `start`). Orders that moved across the range's
edge are corrected outside it in one MERGE, so `order_id` stays unique.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import date
from decimal import Decimal
from typing import Any

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from orders_etl.context import CommandResult, RunContext, plain_metrics
from orders_etl.errors import GuardRefused
from orders_etl.io.history import commits_of_run
from orders_etl.io.migration import prepare_landing
from orders_etl.io.tables import ensure_table, read_table, table_version
from orders_etl.io.window import distinct_dates
from orders_etl.io.writes import merge_corrections, overwrite_partitions, retry_on_conflict
from orders_etl.schemas import FCT_ORDERS, FCT_ORDERS_COLUMNS, ORDERS_LANDING
from orders_etl.transforms.latest import dedupe_latest_version
from orders_etl.transforms.revenue import agg_daily_revenue
from orders_etl.transforms.stage import filter_event_time_from, filter_order_dates, stage_versions


@dataclass(frozen=True)
class BackfillParams:
    """`backfill`'s arguments, parsed and checked before Spark starts."""

    start: date
    end: date
    dry_run: bool = False
    allow_shrink: bool = False


@dataclass(frozen=True)
class DayComparison:
    """One (day, currency) of the range: figures now and after the rebuild."""

    order_date: date
    current_rows: int
    current_revenue: Decimal
    rebuilt_rows: int
    rebuilt_revenue: Decimal
    currency: str = ""


def _per_day(df: DataFrame) -> dict[tuple[date, str], tuple[int, Decimal]]:
    rows = agg_daily_revenue(df).collect()
    return {
        (r["order_date"], r["currency"]): (int(r["order_count"]), r["revenue"] or Decimal("0.00"))
        for r in rows
    }


def compare_days(current_df: DataFrame, rebuilt_df: DataFrame) -> list[DayComparison]:
    """Compare the range before and after: one entry per (day, currency) with rows on any
    side. Revenue is never added across currencies."""
    now, after = _per_day(current_df), _per_day(rebuilt_df)
    zero = (0, Decimal("0.00"))
    return [
        DayComparison(key[0], *now.get(key, zero), *after.get(key, zero), currency=key[1])
        for key in sorted(set(now) | set(after))
    ]


def shrink_violations(days: list[DayComparison], max_share: float) -> list[str]:
    """Describe each day the rebuild would empty or shrink by more than `max_share` (rows of
    all currencies of the day together)."""
    totals: dict[date, list[int]] = {}
    for d in days:
        now_and_after = totals.setdefault(d.order_date, [0, 0])
        now_and_after[0] += d.current_rows
        now_and_after[1] += d.rebuilt_rows
    problems = []
    for day, (now, after) in sorted(totals.items()):
        if now > 0 and after == 0:
            problems.append(f"{day} would lose all {now} rows")
        elif now > 0 and (now - after) / now > max_share:
            problems.append(f"{day} would shrink from {now} to {after} rows")
    return problems


def format_report(days: list[DayComparison], corrections: int) -> str:
    """Render the dry-run report: one line per day and currency, current against rebuilt."""
    header = (
        f"{'order_date':<10}  {'currency':<8}  {'rows_now':>9}  {'rows_rebuilt':>12}  "
        f"{'revenue_now':>16}  {'revenue_rebuilt':>16}"
    )
    lines = [header]
    for d in days:
        lines.append(
            f"{d.order_date.isoformat():<10}  {d.currency:<8}  {d.current_rows:>9}  "
            f"{d.rebuilt_rows:>12}  {d.current_revenue:>16}  {d.rebuilt_revenue:>16}"
        )
    lines.append(f"orders moved across the range's edge (corrected outside it): {corrections}")
    return "\n".join(lines)


@dataclass(frozen=True)
class BackfillResult(CommandResult):
    """What a backfill compared and, unless a dry run, wrote (Delta's commit metrics)."""

    params: BackfillParams
    days: tuple[DayComparison, ...]
    corrections_outside_range: int
    predicate: str | None = None
    commits: tuple[int, ...] = ()
    files_added: int = 0
    files_removed: int = 0
    rows_written: int = 0
    fct_version: int | None = None

    @property
    def rows_now(self) -> int:
        """Rows of the range before the rebuild."""
        return sum(d.current_rows for d in self.days)

    @property
    def rows_rebuilt(self) -> int:
        """Rows of the range after the rebuild."""
        return sum(d.rebuilt_rows for d in self.days)

    @property
    def metrics(self) -> Mapping[str, Any]:
        metrics: dict[str, Any] = {
            "start": self.params.start,
            "end": self.params.end,
            "days": [
                {
                    "order_date": d.order_date,
                    "currency": d.currency,
                    "rows_now": d.current_rows,
                    "rows_rebuilt": d.rebuilt_rows,
                    "revenue_now": d.current_revenue,
                    "revenue_rebuilt": d.rebuilt_revenue,
                }
                for d in self.days
            ],
            "rows_now": self.rows_now,
            "rows_rebuilt": self.rows_rebuilt,
            "corrections_outside_range": self.corrections_outside_range,
            "dry_run": self.params.dry_run,
        }
        if not self.params.dry_run:
            metrics.update(
                predicate=self.predicate,
                commits=list(self.commits),
                files_added=self.files_added,
                files_removed=self.files_removed,
                rows_written=self.rows_written,
                fct_version=self.fct_version,
            )
        return plain_metrics(metrics)

    def summary(self) -> str:
        verb = "would rebuild" if self.params.dry_run else "rebuilt"
        return (
            f"{verb} {self.params.start}..{self.params.end}: rows {self.rows_now} -> "
            f"{self.rows_rebuilt}, corrections outside the range "
            f"{self.corrections_outside_range}"
        )

    def stdout(self) -> str | None:
        if not self.params.dry_run:
            return None
        return format_report(list(self.days), self.corrections_outside_range)


def _corrections(
    fct_df: DataFrame, latest_df: DataFrame, start: date, end: date
) -> tuple[DataFrame, list[date]]:
    """Orders whose rows must change outside the range, and the outside dates involved."""
    in_range = F.col("order_date").between(F.lit(start), F.lit(end))
    current_ids = fct_df.filter(in_range).select("order_id")
    outside_df = fct_df.filter(~in_range).select("order_id", "order_date")
    moved_in = (
        latest_df.filter(in_range)
        .join(outside_df.select("order_id"), on="order_id", how="left_semi")
        .withColumn("delete_outside", F.lit(True))
    )
    moved_out = (
        latest_df.filter(~in_range)
        .join(current_ids, on="order_id", how="left_semi")
        .withColumn("delete_outside", F.lit(False))
    )
    corrections_df = moved_in.unionByName(moved_out).localCheckpoint()
    ids = corrections_df.select("order_id")
    dates = set(distinct_dates(outside_df.join(ids, on="order_id", how="left_semi")))
    dates |= set(distinct_dates(corrections_df.filter(~F.col("delete_outside"))))
    return corrections_df, sorted(dates)


def rebuild(ctx: RunContext, params: BackfillParams) -> BackfillResult:
    """One try of the backfill: recompute, guard, correct outside, replace the range."""
    spark = ctx.spark
    fct_path = ctx.warehouse.path(FCT_ORDERS)
    version_before = table_version(spark, fct_path)
    fct_df = read_table(spark, ctx.warehouse, FCT_ORDERS)
    versions_df = filter_event_time_from(
        stage_versions(read_table(spark, ctx.warehouse, ORDERS_LANDING)), params.start
    )
    latest_df = dedupe_latest_version(versions_df).localCheckpoint()
    rebuilt_df = filter_order_dates(latest_df, params.start, params.end)
    days = compare_days(filter_order_dates(fct_df, params.start, params.end), rebuilt_df)
    corrections_df, outside_dates = _corrections(fct_df, latest_df, params.start, params.end)
    result = BackfillResult(params, tuple(days), corrections_df.count())
    if params.dry_run:
        return result
    problems = shrink_violations(days, ctx.config.backfill.max_shrink_share)
    if problems and not params.allow_shrink:
        raise GuardRefused(
            f"backfill refused: {problems[0]}"
            + (f" (and {len(problems) - 1} more day(s))" if len(problems) > 1 else "")
            + "; pass --allow-shrink if that is intended"
        )
    if result.corrections_outside_range:
        merge_corrections(spark, fct_path, corrections_df, outside_dates)
    predicate = overwrite_partitions(
        rebuilt_df.select(*FCT_ORDERS_COLUMNS), fct_path, "order_date", params.start, params.end
    )
    made = commits_of_run(spark, fct_path, ctx.run_id, version_before)
    return replace(
        result,
        predicate=predicate,
        commits=tuple(c.version for c in made),
        files_added=sum(c.metric("numFiles") + c.metric("numTargetFilesAdded") for c in made),
        files_removed=sum(
            c.metric("numRemovedFiles") + c.metric("numTargetFilesRemoved") for c in made
        ),
        rows_written=sum(c.metric("numOutputRows") for c in made),
        fct_version=made[-1].version if made else version_before,
    )


def run(ctx: RunContext, params: BackfillParams) -> BackfillResult:
    """Rebuild the range, retried on a concurrent write."""
    prepare_landing(ctx.spark, ctx.warehouse)
    ensure_table(ctx.spark, ctx.warehouse, FCT_ORDERS)
    return retry_on_conflict(lambda: rebuild(ctx, params), ctx.config.retries, "backfill")
