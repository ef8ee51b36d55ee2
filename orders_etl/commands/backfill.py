"""`backfill`: rebuild the `fct_orders` partitions `start..end` from landing via replaceWhere.

The range is recomputed with the same latest-version rule as `incremental`, over every landed
version with `event_time` on or after `start` (an earlier version can never be the latest of
an order whose latest version is on or after `start`). Orders that moved across the range's
edge are corrected outside it in one MERGE, so `order_id` stays unique.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from orders_etl.commands.incremental import distinct_dates
from orders_etl.commands.migrate import prepare_landing
from orders_etl.context import CommandResult, RunContext
from orders_etl.errors import GuardRefused
from orders_etl.io.history import commits_of_run
from orders_etl.io.tables import ensure_table, read_table, table_version
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


def rebuild(ctx: RunContext, params: BackfillParams) -> dict[str, Any]:
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
    corrections = corrections_df.count()
    metrics: dict[str, Any] = {
        "start": params.start,
        "end": params.end,
        "days": [
            {
                "order_date": d.order_date,
                "currency": d.currency,
                "rows_now": d.current_rows,
                "rows_rebuilt": d.rebuilt_rows,
                "revenue_now": d.current_revenue,
                "revenue_rebuilt": d.rebuilt_revenue,
            }
            for d in days
        ],
        "rows_now": sum(d.current_rows for d in days),
        "rows_rebuilt": sum(d.rebuilt_rows for d in days),
        "corrections_outside_range": corrections,
        "dry_run": params.dry_run,
    }
    if params.dry_run:
        print(format_report(days, corrections), file=sys.stdout, flush=True)
        return metrics
    problems = shrink_violations(days, ctx.config.backfill.max_shrink_share)
    if problems and not params.allow_shrink:
        raise GuardRefused(
            f"backfill refused: {problems[0]}"
            + (f" (and {len(problems) - 1} more day(s))" if len(problems) > 1 else "")
            + "; pass --allow-shrink if that is intended"
        )
    if corrections:
        merge_corrections(spark, fct_path, corrections_df, outside_dates)
    predicate = overwrite_partitions(
        rebuilt_df.select(*FCT_ORDERS_COLUMNS), fct_path, "order_date", params.start, params.end
    )
    made = commits_of_run(spark, fct_path, ctx.run_id, version_before)
    metrics.update(
        predicate=predicate,
        commits=[c.version for c in made],
        files_added=sum(c.metric("numFiles") + c.metric("numTargetFilesAdded") for c in made),
        files_removed=sum(
            c.metric("numRemovedFiles") + c.metric("numTargetFilesRemoved") for c in made
        ),
        rows_written=sum(c.metric("numOutputRows") for c in made),
        fct_version=made[-1].version if made else version_before,
    )
    return metrics


def run(ctx: RunContext, params: BackfillParams) -> CommandResult:
    """Run `backfill`."""
    prepare_landing(ctx.spark, ctx.warehouse)
    ensure_table(ctx.spark, ctx.warehouse, FCT_ORDERS)
    metrics = retry_on_conflict(lambda: rebuild(ctx, params), ctx.config.retries, "backfill")
    verb = "would rebuild" if params.dry_run else "rebuilt"
    summary = (
        f"{verb} {params.start}..{params.end}: rows {metrics['rows_now']} -> "
        f"{metrics['rows_rebuilt']}, corrections outside the range "
        f"{metrics['corrections_outside_range']}"
    )
    return CommandResult(metrics=json.loads(json.dumps(metrics, default=str)), summary=summary)
