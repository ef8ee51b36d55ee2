"""`migrate`: create missing tables; add missing nullable columns to an existing landing;
stop new deletion vectors on every table but `fct_orders`; with a `[catalog] database`,
register every table and the current-figures view by name."""

from __future__ import annotations

from typing import Any

from pyspark.sql import SparkSession

from orders_etl.context import CommandResult, RunContext
from orders_etl.io.catalog import CURRENT_VIEW, plan_registration, register
from orders_etl.io.tables import (
    DELETION_VECTORS_PROPERTY,
    TABLES,
    Warehouse,
    add_landing_columns,
    create_table,
    disable_deletion_vectors,
    table_exists,
)
from orders_etl.schemas import ORDERS_LANDING


def prepare_landing(spark: SparkSession, warehouse: Warehouse) -> list[str]:
    """Create `orders_landing`, or add the columns an older one lacks; return columns added."""
    path = warehouse.path(ORDERS_LANDING)
    if table_exists(spark, path):
        return add_landing_columns(spark, path)
    create_table(spark, warehouse, next(t for t in TABLES if t.name == ORDERS_LANDING))
    return []


def stop_deletion_vectors(spark: SparkSession, warehouse: Warehouse) -> list[str]:
    """Turn deletion vectors off on each table whose spec has them off but that has them on
    (made by an earlier version, or by another writer); return the tables changed.

    Metadata-only: the deletion vectors already written stay readable by Spark until
    `maintain` purges them and drops the reader feature.
    """
    return [
        t.name
        for t in TABLES
        if t.properties.get(DELETION_VECTORS_PROPERTY) == "false"
        and disable_deletion_vectors(spark, warehouse.path(t.name))
    ]


def migrate_warehouse(spark: SparkSession, warehouse: Warehouse) -> dict[str, list[str]]:
    """Bring every contract table into existence and shape; idempotent."""
    landing_existed = table_exists(spark, warehouse.path(ORDERS_LANDING))
    added = prepare_landing(spark, warehouse)
    created = [] if landing_existed else [ORDERS_LANDING]
    created += [
        t.name for t in TABLES if t.name != ORDERS_LANDING and create_table(spark, warehouse, t)
    ]
    stopped = stop_deletion_vectors(spark, warehouse)
    return {
        "tables_created": created,
        "landing_columns_added": added,
        "deletion_vectors_stopped": stopped,
    }


def run(ctx: RunContext) -> CommandResult:
    """Run `migrate`: every catalog name is checked before any table or name is written."""
    database = ctx.config.catalog.database
    registration = plan_registration(ctx.spark, ctx.warehouse, database) if database else None
    metrics: dict[str, Any] = dict(migrate_warehouse(ctx.spark, ctx.warehouse))
    summary = (
        f"created {len(metrics['tables_created'])} table(s)"
        f"{': ' + ', '.join(metrics['tables_created']) if metrics['tables_created'] else ''}; "
        f"added {len(metrics['landing_columns_added'])} column(s) to orders_landing"
        + (
            f"; stopped new deletion vectors on {', '.join(metrics['deletion_vectors_stopped'])}"
            if metrics["deletion_vectors_stopped"]
            else ""
        )
    )
    if registration is not None:
        metrics.update(register(ctx.spark, registration))
        summary += (
            f"; registered {len(metrics['catalog_registered'])} table(s) in {database}, "
            f"view {database}.{CURRENT_VIEW} {metrics['catalog_view']}"
        )
    return CommandResult(metrics=metrics, summary=summary)
