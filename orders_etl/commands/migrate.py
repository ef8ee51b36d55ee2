"""`migrate`: create missing tables; add missing nullable columns to an existing landing."""

from __future__ import annotations

from orders_etl.arguments import CommandSpec, no_params
from orders_etl.context import RunContext
from orders_etl.pipeline import migrate
from orders_etl.pipeline.migrate import MigrateResult


def run(ctx: RunContext, params: None = None) -> MigrateResult:
    """Run `migrate`."""
    return migrate.run(ctx)


SPEC = CommandSpec(
    "migrate",
    "create missing tables; add missing columns",
    no_params,
    run,
    opens_catalog=True,
)
