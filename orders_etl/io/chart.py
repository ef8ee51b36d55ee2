"""Render daily revenue per currency, first reported against as known at a time, to PNG."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

from pyspark.sql import Window
from pyspark.sql import functions as F

from orders_etl.context import RunContext
from orders_etl.io.tables import read_table
from orders_etl.schemas import DAILY_REVENUE
from orders_etl.transforms.revenue import filter_as_of


def write_revision_chart(
    ctx: RunContext, as_of: datetime, start: date | None, end: date | None, out: str
) -> None:
    """Plot per currency: revenue as first reported (dashed) and as known at `as_of` (solid)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    versions = read_table(ctx.spark, ctx.warehouse, DAILY_REVENUE).filter(
        F.col("as_of") <= F.lit(as_of).cast("timestamp")
    )
    if start is not None:
        versions = versions.filter(F.col("order_date") >= F.lit(start))
    if end is not None:
        versions = versions.filter(F.col("order_date") <= F.lit(end))
    first_window = Window.partitionBy("order_date", "currency").orderBy("as_of")
    first = versions.withColumn("n", F.row_number().over(first_window)).filter(F.col("n") == 1)
    known = filter_as_of(versions, as_of)
    first_rows = first.select("order_date", "currency", "revenue").collect()
    known_rows = known.select("order_date", "currency", "revenue").collect()
    currencies = sorted({r["currency"] for r in known_rows} | {r["currency"] for r in first_rows})
    figure, axes = plt.subplots(
        len(currencies) or 1, 1, figsize=(10, 3 * max(len(currencies), 1)), squeeze=False
    )
    for axis, currency in zip(axes[:, 0], currencies, strict=False):
        for rows, style, label in (
            (first_rows, "--o", "first reported"),
            (known_rows, "-o", f"as of {as_of:%Y-%m-%d %H:%M}"),
        ):
            points = sorted(
                (r["order_date"], float(r["revenue"])) for r in rows if r["currency"] == currency
            )
            axis.plot([p[0] for p in points], [p[1] for p in points], style, label=label)
        axis.set_title(f"Daily revenue, {currency}")
        axis.set_ylabel(currency)
        axis.legend()
        axis.grid(alpha=0.3)
    figure.autofmt_xdate()
    figure.tight_layout()
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out, dpi=100)
    plt.close(figure)
