"""Generate a week of hourly batches with late events and run the whole pipeline on them:
`hourly` per scheduler tick, then a backfill and the revenue report with its chart."""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from types import MappingProxyType
from typing import Any

from pyspark.sql import functions as F

from orders_etl.context import CommandResult, RunContext
from orders_etl.errors import UsageError
from orders_etl.io.migration import migrate_warehouse
from orders_etl.io.readers import list_batch_files
from orders_etl.io.tables import read_table
from orders_etl.pipeline import backfill, hourly, revenue
from orders_etl.runner import execute, new_run_id
from orders_etl.sample import generate_batches, write_batches
from orders_etl.schemas import ORDERS_LANDING, ORDERS_QUARANTINE, REVENUE_REVISIONS
from orders_etl.transforms.lateness import filter_dropped_by_event_time_model
from orders_etl.transforms.parse import agg_reasons

MARKER = ".orders_etl_demo"


@dataclass(frozen=True)
class DemoParams:
    """`demo`'s arguments."""

    days: int = 7
    seed: int = 7
    argv_env: str | None = None
    batch_hours: int = 24


@dataclass(frozen=True)
class DemoResult(CommandResult):
    """What the demo ran and what its warehouse shows."""

    batches: int
    hourly_failures: int
    landed: int
    dropped_by_event_time_model: int
    revisions: int
    quarantined: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({}))

    @property
    def exit_code(self) -> int:
        return 1 if self.hourly_failures else 0

    @property
    def metrics(self) -> Mapping[str, Any]:
        return {
            "batches": self.batches,
            "hourly_failures": self.hourly_failures,
            "landed": self.landed,
            "dropped_by_event_time_model": self.dropped_by_event_time_model,
            "revisions": self.revisions,
            "quarantined": dict(self.quarantined),
        }

    def summary(self) -> str:
        return f"{self.batches} batches, {self.hourly_failures} failed"


def check_warehouse_is_demo(root: str) -> None:
    """Refuse to run the demo in a folder that holds anything but an earlier demo."""
    if "://" in root:
        raise UsageError(f"demo runs on a local warehouse only, not {root!r}")
    path = Path(root)
    if path.exists() and any(path.iterdir()) and not (path / MARKER).exists():
        raise UsageError(
            f"demo refused: {root} is not empty and was not made by the demo; "
            "give an empty folder with --warehouse"
        )


def _say(ctx: RunContext, text: str) -> None:
    ctx.progress(f"demo: {text}")


def _fresh_warehouse(root: Path) -> None:
    if root.exists():
        shutil.rmtree(root)
    root.mkdir(parents=True)
    (root / MARKER).write_text("made by orders-etl demo; the demo may delete this folder\n")


def _write_ticks(
    params: DemoParams, inputs: Path, end: datetime
) -> tuple[int, list[tuple[datetime, Path]]]:
    """Write the sample's hourly batch files, `batch_hours` per scheduler tick; return how
    many hourly files there are and each tick's (processing time, folder)."""
    hourly_batches = generate_batches(
        params.seed, end - timedelta(days=params.days), params.days, batch_hours=1
    )
    ticks = []
    for first in range(0, len(hourly_batches), params.batch_hours):
        group = hourly_batches[first : first + params.batch_hours]
        tick = group[-1].processing_time
        write_batches(group, inputs / f"tick-{tick:%Y%m%dT%H%M}")
        ticks.append((tick, inputs / f"tick-{tick:%Y%m%dT%H%M}"))
    return len(hourly_batches), ticks


def _run_hourly(ctx: RunContext, processing_time: datetime, path: Path) -> int:
    run_ctx = ctx.child(processing_time, new_run_id())
    step = hourly.HourlyParams(
        str(path), tuple(list_batch_files(str(path))), ctx.config.incremental.lookback_days
    )
    return execute(run_ctx, "hourly", {"source": str(path)}, lambda: hourly.run(run_ctx, step))


def _run_backfill_and_report(ctx: RunContext, end: datetime, chart: Path) -> None:
    final_ctx = ctx.child(end, new_run_id())
    start = end.date() - timedelta(days=ctx.config.backfill.default_days - 1)
    bf = backfill.BackfillParams(start, end.date())
    execute(
        final_ctx,
        "backfill",
        {"start_date": str(start), "end_date": str(end.date())},
        lambda: backfill.run(final_ctx, bf),
    )
    report_ctx = ctx.child(end, new_run_id())
    rp = revenue.RevenueParams(chart=str(chart))
    execute(report_ctx, "revenue", {"chart": str(chart)}, lambda: revenue.run(report_ctx, rp))


def run(ctx: RunContext, params: DemoParams) -> DemoResult:
    """Run the demo on a fresh warehouse and tell its story."""
    root = Path(ctx.warehouse.root)
    _fresh_warehouse(root)
    inputs = root / "_demo_input"
    end = ctx.processing_time.replace(minute=0, second=0, microsecond=0)
    hourly_files, ticks = _write_ticks(params, inputs, end)
    migrate_warehouse(ctx.spark, ctx.warehouse)
    _say(
        ctx,
        f"{hourly_files} hourly batch files in {inputs}, {params.batch_hours} per "
        f"scheduler tick: running `hourly` {len(ticks)} times",
    )
    failures = 0
    for number, (processing_time, path) in enumerate(ticks, start=1):
        code = _run_hourly(ctx, processing_time, path)
        failures += code != 0
        _say(ctx, f"[{number}/{len(ticks)}] {path.name} exit {code}")
    chart = root / "_demo_output" / "revenue.png"
    _run_backfill_and_report(ctx, end, chart)

    spark, wh = ctx.spark, ctx.warehouse
    landing_df = read_table(spark, wh, ORDERS_LANDING)
    landed = landing_df.count()
    reasons = {
        r["reason"]: int(r["count"])
        for r in agg_reasons(read_table(spark, wh, ORDERS_QUARANTINE)).collect()
    }
    revisions_df = read_table(spark, wh, REVENUE_REVISIONS)
    revisions = revisions_df.count()
    revised_days = revisions_df.select("order_date").distinct().count()
    biggest = revisions_df.orderBy(F.abs(F.col("revenue_difference")).desc()).first()
    dropped = filter_dropped_by_event_time_model(landing_df).count()
    middle = ticks[len(ticks) // 2][0]
    story = [
        f"landed {landed} event versions from {hourly_files} hourly batch files "
        f"in {len(ticks)} `hourly` runs",
        f"{dropped} of them arrived after a newer event_time had already landed: an "
        "event_time-driven incremental would have dropped them; "
        "the processing-time MERGE kept them",
        f"{revisions} revisions of past days announced across {revised_days} day(s)"
        + (
            f"; the largest moved {biggest['order_date']} {biggest['currency']} revenue by "
            f"{biggest['revenue_difference']}"
            if biggest
            else ""
        ),
        f"{sum(reasons.values())} lines quarantined: "
        + (", ".join(f"{k} {v}" for k, v in sorted(reasons.items())) or "none"),
        f"tables: {root}/<table> (fct_orders, daily_revenue, revenue_revisions, pipeline_runs)",
        f"chart: {chart}",
        f"try: orders-etl revenue --warehouse {root} --as-of {middle.isoformat()}",
    ]
    for line in story:
        _say(ctx, line)
    return DemoResult(
        batches=len(ticks),
        hourly_failures=failures,
        landed=landed,
        dropped_by_event_time_model=dropped,
        revisions=revisions,
        quarantined=MappingProxyType(reasons),
    )
