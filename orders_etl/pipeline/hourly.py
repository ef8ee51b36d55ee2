"""The scheduled hourly job: land, incremental, rollup, then verify what this run changed.

One Spark session for all four steps; the verify covers only the days this run's MERGE
touched and this run's commits, so its cost follows the batch, not the table.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

from orders_etl.context import CommandResult, RunContext
from orders_etl.io.migration import migrate_warehouse
from orders_etl.io.tables import table_version
from orders_etl.pipeline import incremental, land, rollup, verify
from orders_etl.schemas import FCT_ORDERS


@dataclass(frozen=True)
class HourlyParams:
    """`hourly`'s arguments, checked before Spark starts."""

    source: str
    files: tuple[str, ...]
    lookback_days: int


@dataclass(frozen=True)
class HourlyResult(CommandResult):
    """The four steps' results."""

    landed: land.LandResult
    merged: incremental.IncrementalResult
    rolled: rollup.RollupResult
    checked: verify.VerifyResult

    @property
    def exit_code(self) -> int:
        return self.checked.exit_code

    @property
    def metrics(self) -> Mapping[str, Any]:
        return {
            "land": dict(self.landed.metrics),
            "incremental": dict(self.merged.metrics),
            "rollup": dict(self.rolled.metrics),
            "verify": {
                "passed": self.checked.passed,
                "days_checked": len(self.checked.params.dates or ()),
                "failed": self.checked.failed,
            },
            rollup.CHECKPOINT_METRIC: self.rolled.fct_version,
        }

    def summary(self) -> str:
        return (
            f"landed={self.landed.rows_landed} quarantined={self.landed.rows_quarantined} "
            f"inserted={self.merged.inserted} updated={self.merged.updated} "
            f"revisions={len(self.rolled.revisions)} verify={self.checked.summary()}"
        )


def _step(ctx: RunContext, name: str, result: CommandResult) -> None:
    ctx.progress(f"orders-etl hourly: {name}: {result.summary()}")


def run(ctx: RunContext, params: HourlyParams) -> HourlyResult:
    """Run the four steps in one session, reporting each as it ends."""
    migrate_warehouse(ctx.spark, ctx.warehouse)
    rollup.check_timeline(ctx)
    fct_before = table_version(ctx.spark, ctx.warehouse.path(FCT_ORDERS))
    landed = land.run(ctx, land.LandParams(params.source, params.files))
    _step(ctx, "land", landed)
    merged = incremental.run(ctx, incremental.IncrementalParams(params.lookback_days))
    _step(ctx, "incremental", merged)
    rolled = rollup.run(ctx)
    _step(ctx, "rollup", rolled)
    touched = tuple(sorted(date.fromisoformat(d) for d in merged.partitions_touched))
    checked = verify.run(ctx, verify.VerifyParams(dates=touched, history_after_version=fct_before))
    _step(ctx, "verify", checked)
    return HourlyResult(landed, merged, rolled, checked)
