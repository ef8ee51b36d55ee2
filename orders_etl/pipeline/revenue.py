"""Daily revenue as known at a time (what finance saw then), as table, CSV or JSON, and a
chart of the revisions."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from pyspark.sql import functions as F

from orders_etl.context import CommandResult, RunContext
from orders_etl.errors import UsageError
from orders_etl.io.chart import Figure, write_revision_chart
from orders_etl.io.tables import read_table, table_exists
from orders_etl.schemas import DAILY_REVENUE
from orders_etl.transforms.revenue import FIGURE_COLUMNS, filter_as_of, filter_first_reported
from orders_etl.transforms.stage import filter_order_dates

FORMATS = ("table", "csv", "json")


@dataclass(frozen=True)
class RevenueParams:
    """`revenue`'s arguments, checked before Spark starts."""

    as_of: datetime | None = None
    start: date | None = None
    end: date | None = None
    output_format: str = "table"
    chart: str | None = None


@dataclass(frozen=True)
class RevenueResult(CommandResult):
    """The figures known at `as_of`, one mapping per (day, currency), sorted."""

    params: RevenueParams
    as_of: datetime
    rows: tuple[Mapping[str, Any], ...]

    @property
    def metrics(self) -> Mapping[str, Any]:
        metrics: dict[str, Any] = {"as_of": self.as_of.isoformat(), "rows": len(self.rows)}
        if self.params.chart:
            metrics["chart"] = self.params.chart
        return metrics

    def summary(self) -> str:
        return f"{len(self.rows)} row(s) as of {self.as_of.isoformat()}"

    def stdout(self) -> str:
        return render(self.rows, self.params.output_format)


def figures_as_of(
    ctx: RunContext, as_of: datetime, start: date | None, end: date | None
) -> list[dict[str, Any]]:
    """Return the figures known at `as_of`, one dict per (day, currency), sorted."""
    df = filter_order_dates(
        filter_as_of(read_table(ctx.spark, ctx.warehouse, DAILY_REVENUE), as_of), start, end
    )
    return [
        r.asDict() for r in df.select(*FIGURE_COLUMNS).orderBy("order_date", "currency").collect()
    ]


def _figures(rows: list[Any]) -> list[Figure]:
    return [Figure(r["order_date"], r["currency"], float(r["revenue"])) for r in rows]


def chart_revisions(ctx: RunContext, as_of: datetime, params: RevenueParams, out: str) -> None:
    """Chart per currency the revenue as first reported against as known at `as_of`."""
    versions_df = filter_order_dates(
        read_table(ctx.spark, ctx.warehouse, DAILY_REVENUE).filter(
            F.col("as_of") <= F.lit(as_of).cast("timestamp")
        ),
        params.start,
        params.end,
    )
    columns = ("order_date", "currency", "revenue")
    first = filter_first_reported(versions_df).select(*columns).collect()
    known = filter_as_of(versions_df, as_of).select(*columns).collect()
    write_revision_chart(_figures(first), _figures(known), as_of, out)


def render(rows: Sequence[Mapping[str, Any]], output_format: str) -> str:
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


def run(ctx: RunContext, params: RevenueParams) -> RevenueResult:
    """Read the figures known at the as-of time (default: the processing time)."""
    if not table_exists(ctx.spark, ctx.warehouse.path(DAILY_REVENUE)):
        raise UsageError(
            f"no daily_revenue table under {ctx.warehouse.root}; run `orders-etl rollup`"
        )
    as_of = params.as_of or ctx.processing_time
    rows = figures_as_of(ctx, as_of, params.start, params.end)
    if params.chart:
        chart_revisions(ctx, as_of, params, params.chart)
    return RevenueResult(params, as_of, tuple(rows))
