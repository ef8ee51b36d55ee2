"""Compare the tables the phases left, untimed: files the MERGEs touched outside the window,
what the backfill rewrote and changed, what the old `event_time` model got wrong, and whether
the incremental, the backfill and the MERGE without predicates equal the full refresh.

Every check is one entry of `SizeResult.checks`: a count, or a yes/no for the equalities.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

import datagen
from baselines import read_version, window_since
from measure import CommitStats
from pipeline import (
    FCT_ORDERS,
    FCT_ORDERS_COLUMNS,
    ORDERS_LANDING,
    current_dates,
    dedupe_latest_version,
    distinct_dates,
    filter_ingested_since,
    stage_versions,
    table_version,
)
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from results import BACKFILL, EVENT_TIME, FULL_REFRESH, INCREMENTAL, NO_PREDICATES, SizeResult
from scratch import Scratch


@dataclass(frozen=True)
class CheckInputs:
    """What the checks need to know of the commands' runs."""

    land_run_id: str
    fct_version_before_incremental: int
    fct_version_before_backfill: int
    backfill_start: date
    backfill_end: date


def check_size(
    spark: SparkSession,
    scratch: Scratch,
    result: SizeResult,
    inputs: CheckInputs,
    compare_with_full_refresh: bool,
) -> None:
    """Fill `result.checks` from the tables of one size, after all its phases ran."""
    checks = result.checks
    fct_path = scratch.path(FCT_ORDERS)
    window = window_dates(
        spark,
        scratch.path(ORDERS_LANDING),
        fct_path,
        inputs.fct_version_before_incremental,
        scratch.lookback_days,
    )
    checks["window_partitions"] = len(window)
    checks["table_partitions"] = result.facts["fct_orders_partitions"]
    for label, name, path in (
        ("incremental", INCREMENTAL, fct_path),
        ("no_predicates", NO_PREDICATES, scratch.copy_path(NO_PREDICATES)),
    ):
        checks.update(merge_checks(spark, label, result.phases[name].commits, path, window))
    fct_after = table_version(spark, fct_path)
    checks.update(backfill_checks(result.phases[BACKFILL].commits, inputs))
    checks["backfill_rows_changed"] = backfill_rows_changed(
        spark, fct_path, result.phases[BACKFILL].commits, inputs, fct_after
    )
    checks.update(event_time_checks(spark, scratch, result, inputs.land_run_id))
    if compare_with_full_refresh:
        merged_version = max(
            (c.version for c in result.phases[INCREMENTAL].commits),
            default=inputs.fct_version_before_incremental,
        )
        checks.update(full_refresh_equalities(spark, scratch, merged_version, fct_after))


def merge_checks(
    spark: SparkSession,
    label: str,
    commits: tuple[CommitStats, ...],
    path: str,
    window: set[str],
) -> dict[str, int]:
    """Count the partitions and files the phase's last MERGE touched, changed, or touched for
    nothing (outside the window, or without a changed row); nothing when it made no MERGE."""
    merges = [c for c in commits if c.operation == "MERGE"]
    if not merges:
        return {}
    commit = merges[-1]
    changed = changed_dates(spark, path, commit.version, commit.version)
    files = commit.files_by_date
    return {
        f"{label}_partitions_touched": len(files),
        f"{label}_partitions_changed": len(changed),
        f"{label}_files_touched": sum(files.values()),
        f"{label}_files_outside_window": sum(n for d, n in files.items() if d not in window),
        f"{label}_files_without_change": sum(n for d, n in files.items() if d not in changed),
    }


def backfill_checks(commits: tuple[CommitStats, ...], inputs: CheckInputs) -> dict[str, int]:
    """Count the files the backfill's replaceWhere wrote outside its days, and the files its
    corrections MERGE touched."""
    start, end = inputs.backfill_start, inputs.backfill_end
    in_range = {(start + timedelta(days=i)).isoformat() for i in range((end - start).days + 1)}
    writes = [c for c in commits if c.operation == "WRITE"]
    corrections = [c for c in commits if c.operation == "MERGE"]
    return {
        "backfill_files_outside_range": sum(
            n for c in writes for d, n in c.files_by_date.items() if d not in in_range
        ),
        "backfill_correction_files": sum(n for c in corrections for n in c.files_by_date.values()),
    }


def backfill_rows_changed(
    spark: SparkSession,
    fct_path: str,
    commits: tuple[CommitStats, ...],
    inputs: CheckInputs,
    fct_after: int | None,
) -> int:
    """Count the orders whose row the backfill changed, in the partitions it touched."""
    touched = sorted({d for c in commits for d in c.files_by_date if d is not None})
    in_touched = F.col("order_date").cast("string").isin(*touched) if touched else F.lit(False)
    return rows_differing(
        read_version(spark, fct_path, inputs.fct_version_before_backfill).filter(in_touched),
        read_version(spark, fct_path, fct_after).filter(in_touched),
    )


def event_time_checks(
    spark: SparkSession, scratch: Scratch, result: SizeResult, land_run_id: str
) -> dict[str, int]:
    """Count the batch's late lines, those the old `event_time` model never reads, and the
    batch's orders it leaves different from the full refresh."""
    landing_path = scratch.path(ORDERS_LANDING)
    kinds = result.facts["batch_kinds"]
    batch_ids_df = (
        read_version(spark, landing_path)
        .filter(F.col("run_id") == land_run_id)
        .select("order_id")
        .distinct()
    )
    return {
        "late_lines_in_batch": kinds[datagen.KIND_LATE_NEW] + kinds[datagen.KIND_LATE_STALE],
        "event_time_model_dropped": late_events_dropped(
            spark,
            landing_path,
            land_run_id,
            result.phases[EVENT_TIME].metrics.get("max_event_time"),
        ),
        "event_time_model_orders_wrong": rows_differing(
            read_version(spark, scratch.copy_path(EVENT_TIME)).join(
                batch_ids_df, on="order_id", how="left_semi"
            ),
            read_version(spark, scratch.copy_path(FULL_REFRESH)).join(
                batch_ids_df, on="order_id", how="left_semi"
            ),
        ),
    }


def full_refresh_equalities(
    spark: SparkSession, scratch: Scratch, merged_version: int, fct_after: int | None
) -> dict[str, bool]:
    """Say whether `fct_orders` after the incremental, after the backfill, and the MERGE
    without predicates' copy each equal the full refresh's copy."""
    truth = fingerprint(read_version(spark, scratch.copy_path(FULL_REFRESH)))
    fct_path = scratch.path(FCT_ORDERS)
    found: dict[str, bool] = {}
    for label, path, version in (
        ("incremental", fct_path, merged_version),
        ("backfill", fct_path, fct_after),
        ("no_predicates", scratch.copy_path(NO_PREDICATES), None),
    ):
        found[f"{label}_equals_full_refresh"] = (
            fingerprint(read_version(spark, path, version)) == truth
        )
    return found


def window_dates(
    spark: SparkSession,
    landing_path: str,
    fct_path: str,
    fct_version: int,
    lookback_days: int,
) -> set[str]:
    """Return the partitions the incremental's window may change: where its orders' latest
    versions fall and where those orders live in `fct_orders` at `fct_version`."""
    fct_df = read_version(spark, fct_path, fct_version)
    since = window_since(fct_df, lookback_days)
    latest_df = dedupe_latest_version(
        filter_ingested_since(stage_versions(read_version(spark, landing_path)), since)
    ).localCheckpoint()
    days = set(distinct_dates(latest_df)) | set(current_dates(fct_df, latest_df))
    return {d.isoformat() for d in days}


def changed_dates(spark: SparkSession, path: str, first: int, last: int) -> set[str]:
    """Return the `order_date`s of rows the commits `first..last` changed (change data feed)."""
    rows = (
        spark.read.format("delta")
        .option("readChangeFeed", "true")
        .option("startingVersion", first)
        .option("endingVersion", last)
        .load(path)
        .select("order_date")
        .distinct()
        .collect()
    )
    return {r["order_date"].isoformat() for r in rows if r["order_date"] is not None}


def late_events_dropped(
    spark: SparkSession, landing_path: str, run_id: str, max_event_time: datetime | None
) -> int:
    """Count the rows a landing run added that the old model never reads."""
    if max_event_time is None:
        return 0
    return (
        read_version(spark, landing_path)
        .filter(F.col("run_id") == run_id)
        .filter(F.col("event_time") <= F.lit(max_event_time))
        .count()
    )


def rows_differing(left_df: DataFrame, right_df: DataFrame) -> int:
    """Count orders whose row differs between two `fct_orders` snapshots, or is on one side."""
    left = left_df.select("order_id", F.struct(*FCT_ORDERS_COLUMNS).alias("l"))
    right = right_df.select("order_id", F.struct(*FCT_ORDERS_COLUMNS).alias("r"))
    return (
        left.join(right, on="order_id", how="full_outer")
        .filter(~F.col("l").eqNullSafe(F.col("r")))
        .count()
    )


def fingerprint(fct_df: DataFrame) -> tuple[int, int]:
    """Return (rows, sum of row hashes): equal for equal tables, whatever the files."""
    row = fct_df.agg(
        F.count(F.lit(1)).alias("rows"),
        F.sum(F.xxhash64(*FCT_ORDERS_COLUMNS).cast("decimal(38,0)")).alias("hashes"),
    ).first()
    assert row is not None
    return int(row["rows"]), int(row["hashes"] or 0)
