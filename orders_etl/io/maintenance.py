"""Table maintenance: compaction, deletion-vector purge and drop, VACUUM.

None of these changes a row of any table. OPTIMIZE and REORG rewrite files with the rows they
hold, in commits marked `dataChange=false` (the change data feed skips them, so `rollup` sees
nothing); dropping a feature changes only the protocol; VACUUM deletes only files that no
snapshot within the retention refers to. Predicates are built from parsed dates only.
"""

from __future__ import annotations

from datetime import date

from delta.tables import DeltaTable
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from orders_etl.config import MIN_RETENTION_HOURS
from orders_etl.io.tables import DELETION_VECTORS_FEATURE, delta_path_sql

MAX_DELETED_ROWS_RATIO_CONF = "spark.databricks.delta.optimize.maxDeletedRowsRatio"
DEFAULT_MAX_DELETED_ROWS_RATIO = 0.05  # Delta's own default


def compact(spark: SparkSession, path: str, predicate: str | None = None) -> None:
    """Bin-pack the small files of the table at `path` (OPTIMIZE), in the partitions that
    `predicate` selects when one is given.

    Files with more than `max_deleted_rows_share` of their rows deleted count as small, so
    compacting them also drops their deletion vectors. A partition with a single candidate
    file is left alone: Delta never rewrites a bin of one file (see `purge_deletion_vectors`).
    """
    builder = DeltaTable.forPath(spark, path).optimize()
    if predicate is not None:
        builder = builder.where(predicate)
    builder.executeCompaction()


def max_deleted_rows_share(spark: SparkSession) -> float:
    """Return the share of deleted rows above which a file's deletion vector no longer pays:
    Delta's `optimize.maxDeletedRowsRatio`, which OPTIMIZE itself applies."""
    value = spark.conf.get(MAX_DELETED_ROWS_RATIO_CONF, None)
    return DEFAULT_MAX_DELETED_ROWS_RATIO if value is None else float(value)


def snapshot_files(spark: SparkSession, path: str) -> DataFrame:
    """The `add` actions of the table's current snapshot (path, partitionValues, stats,
    deletionVector), from the Delta log; no data file is read."""
    jvm = spark.sparkContext._jvm
    assert jvm is not None
    delta_log = jvm.org.apache.spark.sql.delta.DeltaLog.forTable(spark._jsparkSession, path)
    empty = jvm.scala.Option.empty()
    snapshot = delta_log.update(False, empty, empty)
    return DataFrame(snapshot.allFiles().toDF(), spark)


def days_over_deleted_share(
    spark: SparkSession, path: str, column: str, start: date, end: date, share: float
) -> list[date] | None:
    """Return the days `start..end` of the table at `path` (partitioned by the date `column`)
    that hold a file whose deletion vector marks more than `share` of its rows deleted.

    Read from the Delta log (each file's deletion-vector cardinality against its row count).
    None when this Delta build does not expose its snapshot's files: the caller then treats
    every day of the range as one.
    """
    try:
        files_df = snapshot_files(spark, path)
    except Exception:
        return None
    day = F.to_date(F.col("partitionValues").getItem(column))
    rows_in_file = F.get_json_object("stats", "$.numRecords").cast("long")
    deleted_share = F.col("deletionVector.cardinality") / rows_in_file
    rows = (
        files_df.filter(F.col("deletionVector").isNotNull())
        .select(day.alias("day"), deleted_share.alias("share"))
        .filter(F.col("day").between(F.lit(start), F.lit(end)))
        .filter(F.col("share").isNull() | (F.col("share") > F.lit(share)))
        .select("day")
        .distinct()
        .collect()
    )
    return sorted(r["day"] for r in rows)


def purge_deletion_vectors(spark: SparkSession, path: str, predicate: str | None = None) -> None:
    """Rewrite each file of the table at `path` that has a deletion vector without it
    (REORG TABLE ... APPLY (PURGE)), in the partitions `predicate` selects when one is given."""
    where = f" WHERE {predicate}" if predicate is not None else ""
    spark.sql(f"REORG TABLE {delta_path_sql(path)}{where} APPLY (PURGE)")


def drop_deletion_vectors(spark: SparkSession, path: str) -> None:
    """Drop the deletion-vector feature from the table at `path`, so readers without it open
    the table.

    Delta 4.4 does it at once, without truncating history or waiting out the log retention:
    it turns the property off, purges what is left, protects the deletion-vector files of the
    history, writes three barrier checkpoints and adds the writer-only feature
    `checkpointProtection` in the commit that removes `deletionVectors` from the protocol.
    """
    DeltaTable.forPath(spark, path).dropFeatureSupport(DELETION_VECTORS_FEATURE)


def vacuum(spark: SparkSession, path: str, retention_hours: int) -> None:
    """Delete the files of the table at `path` that no snapshot of the last `retention_hours`
    refers to (VACUUM). Delta's retention check stays on; less than its default is refused."""
    if retention_hours < MIN_RETENTION_HOURS:
        raise ValueError(
            f"refusing VACUUM of {path} with {retention_hours} h: less than {MIN_RETENTION_HOURS}"
        )
    DeltaTable.forPath(spark, path).vacuum(float(retention_hours))
