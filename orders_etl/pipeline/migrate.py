"""Create missing tables; add missing nullable columns to an existing landing; stop new
deletion vectors on every table but `fct_orders`; with a `[catalog] database`, register
every table and the current-figures view by name."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from orders_etl.context import CommandResult, RunContext
from orders_etl.io.catalog import CURRENT_VIEW, plan_registration, register
from orders_etl.io.migration import Migration, migrate_warehouse


@dataclass(frozen=True)
class MigrateResult(CommandResult):
    """What the migration changed, and what it registered in the catalog (if configured)."""

    migration: Migration
    database: str = ""
    registered: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))

    @property
    def metrics(self) -> Mapping[str, Any]:
        return {
            "tables_created": list(self.migration.tables_created),
            "landing_columns_added": list(self.migration.landing_columns_added),
            "deletion_vectors_stopped": list(self.migration.deletion_vectors_stopped),
            **self.registered,
        }

    def summary(self) -> str:
        m = self.migration
        summary = (
            f"created {len(m.tables_created)} table(s)"
            f"{': ' + ', '.join(m.tables_created) if m.tables_created else ''}; "
            f"added {len(m.landing_columns_added)} column(s) to orders_landing"
            + (
                f"; stopped new deletion vectors on {', '.join(m.deletion_vectors_stopped)}"
                if m.deletion_vectors_stopped
                else ""
            )
        )
        if self.database:
            summary += (
                f"; registered {len(self.registered['catalog_registered'])} table(s) in "
                f"{self.database}, view {self.database}.{CURRENT_VIEW} "
                f"{self.registered['catalog_view']}"
            )
        return summary


def run(ctx: RunContext) -> MigrateResult:
    """Migrate the warehouse: every catalog name is checked before any table or name is
    written."""
    database = ctx.config.catalog.database
    registration = plan_registration(ctx.spark, ctx.warehouse, database) if database else None
    migration = migrate_warehouse(ctx.spark, ctx.warehouse)
    if registration is None:
        return MigrateResult(migration)
    return MigrateResult(migration, database, MappingProxyType(register(ctx.spark, registration)))
