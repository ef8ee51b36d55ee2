"""`rollup`: bring `daily_revenue` up to date with `fct_orders`, versioned with as-of times."""

from __future__ import annotations

from orders_etl.arguments import CommandSpec, no_params
from orders_etl.context import RunContext
from orders_etl.pipeline import rollup
from orders_etl.pipeline.rollup import RollupResult


def run(ctx: RunContext, params: None = None) -> RollupResult:
    """Run `rollup`."""
    return rollup.run(ctx)


SPEC = CommandSpec("rollup", "bring daily_revenue up to date", no_params, run)
