"""`hourly --source PATH`: land, incremental, rollup, then verify what this run changed.

One Spark session for all four steps; the verify covers only the days this run's MERGE
touched and this run's commits, so its cost follows the batch, not the table.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from datetime import date
from typing import Any

from orders_etl.commands import incremental, land, rollup, verify
from orders_etl.commands.migrate import migrate_warehouse
from orders_etl.context import CommandResult, RunContext
from orders_etl.io.tables import table_version
from orders_etl.schemas import FCT_ORDERS


@dataclass(frozen=True)
class HourlyParams:
    """`hourly`'s arguments, checked before Spark starts."""

    source: str
    files: tuple[str, ...]
    lookback_days: int


def _step(name: str, result: CommandResult) -> None:
    print(f"orders-etl hourly: {name}: {result.summary}", file=sys.stderr, flush=True)


def run(ctx: RunContext, params: HourlyParams) -> CommandResult:
    """Run `hourly`."""
    migrate_warehouse(ctx.spark, ctx.warehouse)
    rollup.check_timeline(ctx)
    fct_before = table_version(ctx.spark, ctx.warehouse.path(FCT_ORDERS))
    landed = land.run(ctx, land.LandParams(params.source, params.files))
    _step("land", landed)
    merged = incremental.run(ctx, incremental.IncrementalParams(params.lookback_days))
    _step("incremental", merged)
    rolled = rollup.run(ctx)
    _step("rollup", rolled)
    touched = tuple(sorted(date.fromisoformat(d) for d in merged.metrics["partitions_touched"]))
    checked = verify.run(
        ctx,
        verify.VerifyParams(dates=touched, history_after_version=fct_before, print_output=False),
    )
    _step("verify", checked)
    metrics: dict[str, Any] = {
        "land": dict(landed.metrics),
        "incremental": dict(merged.metrics),
        "rollup": dict(rolled.metrics),
        "verify": {
            "passed": checked.metrics["passed"],
            "days_checked": len(touched),
            "failed": [c["name"] for c in checked.metrics["checks"] if not c["passed"]],
        },
        rollup.CHECKPOINT_METRIC: rolled.metrics[rollup.CHECKPOINT_METRIC],
    }
    summary = (
        f"landed={landed.metrics['rows_landed']} quarantined={landed.metrics['rows_quarantined']} "
        f"inserted={merged.metrics['inserted']} updated={merged.metrics['updated']} "
        f"revisions={len(rolled.metrics['revisions'])} verify={checked.summary}"
    )
    return CommandResult(metrics=metrics, exit_code=checked.exit_code, summary=summary)
