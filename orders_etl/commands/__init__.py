"""One module per CLI command, each exposing its `SPEC` (`orders_etl.arguments.CommandSpec`):
its arguments, its params, and the pipeline step it runs. `COMMANDS` is the registry."""

from __future__ import annotations

from orders_etl.arguments import AnySpec
from orders_etl.commands import (
    backfill,
    demo,
    hourly,
    incremental,
    land,
    maintain,
    migrate,
    revenue,
    rollup,
    verify,
)

COMMANDS: tuple[AnySpec, ...] = (
    migrate.SPEC,
    land.SPEC,
    incremental.SPEC,
    backfill.SPEC,
    rollup.SPEC,
    verify.SPEC,
    revenue.SPEC,
    hourly.SPEC,
    demo.SPEC,
    maintain.SPEC,
)
