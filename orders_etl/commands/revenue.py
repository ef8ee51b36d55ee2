"""`revenue`: daily revenue as known at a time (what finance saw then), as table, CSV or JSON."""

from __future__ import annotations

import csv
import io
import json
import sys
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from pyspark.sql import functions as F

from orders_etl.context import CommandResult, RunContext
from orders_etl.errors import UsageError
from orders_etl.io.tables import read_table, table_exists
from orders_etl.schemas import DAILY_REVENUE
from orders_etl.transforms.revenue import FIGURE_COLUMNS, filter_as_of

FORMATS = ("table", "csv", "json")


@dataclass(frozen=True)
class RevenueParams:
    """`revenue`'s arguments, checked before Spark starts."""

    as_of: datetime | None = None
    start: date | None = None
    end: date | None = None
    output_format: str = "table"
    chart: str | None = None


def figures_as_of(
    ctx: RunContext, as_of: datetime, start: date | None, end: date | None
) -> list[dict[str, Any]]:
    """Return the figures known at `as_of`, one dict per (day, currency), sorted."""
    df = filter_as_of(read_table(ctx.spark, ctx.warehouse, DAILY_REVENUE), as_of)
    if start is not None:
        df = df.filter(F.col("order_date") >= F.lit(start))
    if end is not None:
        df = df.filter(F.col("order_date") <= F.lit(end))
    return [
        r.asDict() for r in df.select(*FIGURE_COLUMNS).orderBy("order_date", "currency").collect()
    ]


def render(rows: list[dict[str, Any]], output_format: str) -> str:
    """Render figures as an aligned table, CSV (with header) or JSON."""
    if output_format == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(FIGURE_COLUMNS)
        for r in rows:
            writer.writerow(
                [
                    r["order_date"].isoformat(),
                    r["currency"],
                    r["order_count"],
                    f"{r['revenue']:.2f}",
                ]
            )
        return buffer.getvalue().rstrip("\n")
    if output_format == "json":
        return json.dumps(
            [
                {
                    "order_date": r["order_date"].isoformat(),
                    "currency": r["currency"],
                    "order_count": r["order_count"],
                    "revenue": f"{r['revenue']:.2f}",
                }
                for r in rows
            ],
            indent=2,
        )
    header = f"{'order_date':<10}  {'currency':<8}  {'order_count':>11}  {'revenue':>20}"
    body = [
        f"{r['order_date'].isoformat():<10}  {r['currency']:<8}  {r['order_count']:>11}  "
        f"{r['revenue']:>20.2f}"
        for r in rows
    ]
    return "\n".join([header, *body])


def run(ctx: RunContext, params: RevenueParams) -> CommandResult:
    """Run `revenue`."""
    if not table_exists(ctx.spark, ctx.warehouse.path(DAILY_REVENUE)):
        raise UsageError(
            f"no daily_revenue table under {ctx.warehouse.root}; run `orders-etl rollup`"
        )
    as_of = params.as_of or ctx.processing_time
    rows = figures_as_of(ctx, as_of, params.start, params.end)
    print(render(rows, params.output_format), file=sys.stdout, flush=True)
    metrics: dict[str, Any] = {"as_of": as_of.isoformat(), "rows": len(rows)}
    if params.chart:
        from orders_etl.io.chart import write_revision_chart

        write_revision_chart(ctx, as_of, params.start, params.end, params.chart)
        metrics["chart"] = params.chart
    return CommandResult(metrics=metrics, summary=f"{len(rows)} row(s) as of {as_of.isoformat()}")
