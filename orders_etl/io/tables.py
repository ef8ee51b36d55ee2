"""Table locations, creation and the in-place migration of `orders_landing`."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from delta.tables import DeltaTable
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import types as T

from orders_etl.errors import OrdersEtlError
from orders_etl.schemas import (
    DAILY_REVENUE,
    DAILY_REVENUE_SCHEMA,
    FCT_ORDERS,
    FCT_ORDERS_SCHEMA,
    LANDING_ADDED_COLUMNS,
    LANDING_SCHEMA,
    LEGACY_LANDING_SCHEMA,
    ORDERS_LANDING,
    ORDERS_QUARANTINE,
    PIPELINE_RUNS,
    PIPELINE_RUNS_SCHEMA,
    QUARANTINE_SCHEMA,
    REVENUE_REVISIONS,
    REVENUE_REVISIONS_SCHEMA,
)

DELETION_VECTORS_PROPERTY = "delta.enableDeletionVectors"
CHANGE_FEED_PROPERTY = "delta.enableChangeDataFeed"
DELETION_VECTORS_FEATURE = "deletionVectors"
# Only fct_orders uses deletion vectors (its MERGE then rewrites no unchanged row); every other
# table says so explicitly, so a reader without deletion-vector support can open it.
_NO_DELETION_VECTORS = MappingProxyType({DELETION_VECTORS_PROPERTY: "false"})
_APPEND_ONLY = MappingProxyType({"delta.appendOnly": "true", **_NO_DELETION_VECTORS})


class SchemaMismatch(OrdersEtlError):
    """An existing table has a column of the wrong type."""

    exit_code = 3


@dataclass(frozen=True)
class TableSpec:
    """A contract table: schema, partitioning and Delta table properties."""

    name: str
    schema: T.StructType
    partition_columns: tuple[str, ...] = ()
    properties: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))


TABLES: tuple[TableSpec, ...] = (
    # The change feed of landing lets `incremental` read only the rows landed since the
    # landing version its last MERGE read (io/window.py `merged_through`).
    TableSpec(
        ORDERS_LANDING,
        LANDING_SCHEMA,
        properties=MappingProxyType({**_APPEND_ONLY, CHANGE_FEED_PROPERTY: "true"}),
    ),
    TableSpec(ORDERS_QUARANTINE, QUARANTINE_SCHEMA, properties=_APPEND_ONLY),
    TableSpec(
        FCT_ORDERS,
        FCT_ORDERS_SCHEMA,
        partition_columns=("order_date",),
        properties=MappingProxyType(
            {DELETION_VECTORS_PROPERTY: "true", CHANGE_FEED_PROPERTY: "true"}
        ),
    ),
    TableSpec(DAILY_REVENUE, DAILY_REVENUE_SCHEMA, properties=_NO_DELETION_VECTORS),
    TableSpec(REVENUE_REVISIONS, REVENUE_REVISIONS_SCHEMA, properties=_APPEND_ONLY),
    TableSpec(PIPELINE_RUNS, PIPELINE_RUNS_SCHEMA, properties=_APPEND_ONLY),
)
TABLES_BY_NAME: Mapping[str, TableSpec] = MappingProxyType({t.name: t for t in TABLES})


@dataclass(frozen=True)
class Warehouse:
    """A warehouse root: one Delta table folder per table, `<root>/<table>`."""

    root: str

    def path(self, table: str) -> str:
        """Return the folder of `table`."""
        return f"{self.root.rstrip('/')}/{table}"


def delta_path_sql(path: str) -> str:
    """Return the SQL name of the Delta table at `path`: delta.`<path>`.

    A backtick would end the quoted name early, so a path holding one is refused (the
    warehouse root is checked for it before Spark starts, too).
    """
    if "`" in path:
        raise ValueError(f"refusing a table path with a backtick in SQL: {path!r}")
    return f"delta.`{path}`"


def table_exists(spark: SparkSession, path: str) -> bool:
    """Tell whether `path` holds a Delta table with at least one commit.

    `DeltaTable.isDeltaTable` answers from the JVM's cached Delta log, which does not see a
    table that another process created after the cache was filled; a "no" is asked again of
    the log itself.
    """
    if DeltaTable.isDeltaTable(spark, path):
        return True
    try:
        return _log_version(spark, path) >= 0
    except Exception:
        return False


def read_table(
    spark: SparkSession, warehouse: Warehouse, table: str, version: int | None = None
) -> DataFrame:
    """Read a warehouse table: its current snapshot, or the snapshot at `version`."""
    reader = spark.read.format("delta")
    if version is not None:
        reader = reader.option("versionAsOf", version)
    return reader.load(warehouse.path(table))


def _snapshot(spark: SparkSession, path: str) -> Any:
    """The latest snapshot of the Delta log at `path`, read afresh (a JVM object)."""
    jvm = spark.sparkContext._jvm
    assert jvm is not None
    delta_log = jvm.org.apache.spark.sql.delta.DeltaLog.forTable(spark._jsparkSession, path)
    empty = jvm.scala.Option.empty()
    return delta_log.update(False, empty, empty)


def app_transaction(spark: SparkSession, path: str, app_id: str) -> tuple[int, int]:
    """Return the latest version of the table at `path` and, in that snapshot, the last
    transaction number application `app_id` committed to it (0 when none): Delta's
    `SetTransaction` record, read from the log (no Spark job)."""
    snapshot = _snapshot(spark, path)
    recorded = snapshot.transactions().get(app_id)
    return int(snapshot.version()), int(recorded.get()) if recorded.isDefined() else 0


def _log_version(spark: SparkSession, path: str) -> int:
    """The latest version in the Delta log at `path`, read afresh (-1 when it has no commit)."""
    return int(_snapshot(spark, path).version())


def table_property(spark: SparkSession, path: str, key: str) -> str | None:
    """Return a table property of the latest snapshot at `path` (None when unset).

    Read from the snapshot's metadata in the Delta log (no Spark job); falls back to
    `DESCRIBE DETAIL` if that internal call is not available in this Delta build.
    """
    try:
        value = _snapshot(spark, path).metadata().configuration().get(key)
        return str(value.get()) if value.isDefined() else None
    except Exception:
        return table_detail(spark, path).properties.get(key)


def table_version(spark: SparkSession, path: str) -> int | None:
    """Return the latest committed version of the table at `path`, or None if absent.

    Asks the Delta log directly (milliseconds); falls back to `history(1)`, a Spark job, if
    that internal call is not available in this Delta build.
    """
    if not table_exists(spark, path):
        return None
    try:
        return _log_version(spark, path)
    except Exception:
        row = DeltaTable.forPath(spark, path).history(1).select("version").first()
        return None if row is None else int(row["version"])


def table_id(spark: SparkSession, path: str) -> str:
    """Return the Delta table id of the table at `path` (a new id when it is recreated).

    Read from the snapshot's metadata in the Delta log (no Spark job); falls back to
    `DESCRIBE DETAIL` if that internal call is not available in this Delta build.
    """
    try:
        return str(_snapshot(spark, path).metadata().id())
    except Exception:
        row = DeltaTable.forPath(spark, path).detail().select("id").first()
        assert row is not None
        return str(row["id"])


def change_feed_on(spark: SparkSession, path: str) -> bool:
    """Tell whether the table at `path` records its change data feed."""
    return (table_property(spark, path, CHANGE_FEED_PROPERTY) or "false").lower() == "true"


def enable_change_feed(spark: SparkSession, path: str) -> bool:
    """Turn the change data feed on for the table at `path` (one metadata-only commit);
    return whether the property had to change."""
    if change_feed_on(spark, path):
        return False
    spark.sql(
        f"ALTER TABLE {delta_path_sql(path)} SET TBLPROPERTIES ('{CHANGE_FEED_PROPERTY}' = 'true')"
    )
    return True


def deletion_vectors_on(value: str | None) -> bool:
    """Tell whether a `delta.enableDeletionVectors` value (None: unset) turns them on."""
    return (value or "false").lower() == "true"


@dataclass(frozen=True)
class TableDetail:
    """What `DESCRIBE DETAIL` tells of a table's current snapshot."""

    num_files: int
    size_in_bytes: int
    features: frozenset[str]
    properties: Mapping[str, str]

    @property
    def has_deletion_vectors_feature(self) -> bool:
        """Tell whether the protocol still names deletion vectors (readers must support them)."""
        return DELETION_VECTORS_FEATURE in self.features

    @property
    def deletion_vectors_enabled(self) -> bool:
        """Tell whether new writes may still add deletion vectors."""
        return deletion_vectors_on(self.properties.get(DELETION_VECTORS_PROPERTY))


def table_detail(spark: SparkSession, path: str) -> TableDetail:
    """Return the file count, size, protocol features and properties of the table at `path`."""
    row = DeltaTable.forPath(spark, path).detail().first()
    assert row is not None
    return TableDetail(
        num_files=int(row["numFiles"] or 0),
        size_in_bytes=int(row["sizeInBytes"] or 0),
        features=frozenset(row["tableFeatures"] or ()),
        properties=MappingProxyType(dict(row["properties"] or {})),
    )


def disable_deletion_vectors(spark: SparkSession, path: str) -> bool:
    """Stop new deletion vectors on the table at `path` (one metadata-only commit, no data
    file touched); return whether the property had to change. The ones already written stay
    until `maintain` purges them and drops the feature."""
    if not deletion_vectors_on(table_property(spark, path, DELETION_VECTORS_PROPERTY)):
        return False
    spark.sql(
        f"ALTER TABLE {delta_path_sql(path)} "
        f"SET TBLPROPERTIES ('{DELETION_VECTORS_PROPERTY}' = 'false')"
    )
    return True


def create_table(spark: SparkSession, warehouse: Warehouse, spec: TableSpec) -> bool:
    """Create `spec` if it does not exist yet; return whether it was created."""
    path = warehouse.path(spec.name)
    if table_exists(spark, path):
        return False
    builder = DeltaTable.createIfNotExists(spark).location(path).addColumns(spec.schema)
    if spec.partition_columns:
        builder = builder.partitionedBy(*spec.partition_columns)
    for key, value in spec.properties.items():
        builder = builder.property(key, value)
    try:
        builder.execute()
    except Exception:
        # Another run is creating it at the same moment: once its commit 0 lands, use it.
        for pause in (0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 0.0):
            if table_exists(spark, path):
                return False
            time.sleep(pause)
        raise
    return True


def ensure_table(spark: SparkSession, warehouse: Warehouse, name: str) -> None:
    """Create the named contract table when it is missing."""
    create_table(spark, warehouse, TABLES_BY_NAME[name])


def _type_compatible(expected: T.DataType, actual: T.DataType) -> bool:
    return expected.simpleString() == actual.simpleString()


def missing_landing_columns(spark: SparkSession, path: str) -> list[T.StructField]:
    """Check an existing `orders_landing` and list the contract columns it still lacks."""
    existing = {f.name: f for f in spark.read.format("delta").load(path).schema.fields}
    for wanted in LEGACY_LANDING_SCHEMA.fields:
        have = existing.get(wanted.name)
        if have is None:
            raise SchemaMismatch(
                f"{path} has no column {wanted.name!r}; orders_landing needs the six input fields"
            )
        if not _type_compatible(wanted.dataType, have.dataType):
            raise SchemaMismatch(
                f"{path} column {wanted.name!r} is {have.dataType.simpleString()}, "
                f"expected {wanted.dataType.simpleString()}"
            )
    return [f for f in LANDING_ADDED_COLUMNS.fields if f.name not in existing]


def add_landing_columns(spark: SparkSession, path: str) -> list[str]:
    """Add the missing nullable columns to an existing `orders_landing`, in place.

    Delta schema evolution on an empty append: one metadata-only commit, no data file written
    or rewritten, old rows read null. Returns the names added (empty when nothing was missing).
    """
    missing = missing_landing_columns(spark, path)
    if not missing:
        return []
    current = spark.read.format("delta").load(path).schema
    evolved = T.StructType(list(current.fields) + missing)
    (
        spark.createDataFrame([], evolved)
        .write.format("delta")
        .mode("append")
        .option("mergeSchema", "true")
        .save(path)
    )
    return [f.name for f in missing]
