"""Bring a warehouse's tables into existence and shape: create what is missing, add the
columns an older `orders_landing` lacks, stop deletion vectors where they do not pay."""

from __future__ import annotations

from dataclasses import dataclass

from pyspark.sql import SparkSession

from orders_etl.io.tables import (
    DELETION_VECTORS_PROPERTY,
    TABLES,
    TABLES_BY_NAME,
    Warehouse,
    add_landing_columns,
    create_table,
    disable_deletion_vectors,
    enable_change_feed,
    table_exists,
)
from orders_etl.schemas import ORDERS_LANDING


@dataclass(frozen=True)
class Migration:
    """What one migration changed: tables created, landing columns added, tables whose new
    deletion vectors it stopped."""

    tables_created: tuple[str, ...]
    landing_columns_added: tuple[str, ...]
    deletion_vectors_stopped: tuple[str, ...]


def prepare_landing(spark: SparkSession, warehouse: Warehouse) -> list[str]:
    """Create `orders_landing`, or add the columns an older one lacks and turn its change
    feed on; return the columns added."""
    path = warehouse.path(ORDERS_LANDING)
    if table_exists(spark, path):
        added = add_landing_columns(spark, path)
        enable_change_feed(spark, path)
        return added
    create_table(spark, warehouse, TABLES_BY_NAME[ORDERS_LANDING])
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


def migrate_warehouse(spark: SparkSession, warehouse: Warehouse) -> Migration:
    """Bring every contract table into existence and shape; idempotent."""
    landing_existed = table_exists(spark, warehouse.path(ORDERS_LANDING))
    added = prepare_landing(spark, warehouse)
    created = [] if landing_existed else [ORDERS_LANDING]
    created += [
        t.name for t in TABLES if t.name != ORDERS_LANDING and create_table(spark, warehouse, t)
    ]
    stopped = stop_deletion_vectors(spark, warehouse)
    return Migration(tuple(created), tuple(added), tuple(stopped))
