"""The run ledger `pipeline_runs`: a `started` row when a command begins, an outcome row when
it ends. A run with a started row and no outcome row was interrupted (killed or crashed)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from orders_etl.io.tables import Warehouse, ensure_table, table_exists
from orders_etl.io.writes import append_rows
from orders_etl.schemas import PIPELINE_RUNS, PIPELINE_RUNS_SCHEMA, Outcome

# The `fct_orders` version a successful rollup brought `daily_revenue` up to: the next rollup
# reads the change data feed after it, and `maintain` keeps that feed from being vacuumed.
ROLLUP_CHECKPOINT_METRIC = "rollup_fct_version"


@dataclass(frozen=True)
class RunRecord:
    """What the ledger knows of one command run."""

    run_id: str
    command: str
    arguments: Mapping[str, Any]
    processing_time: datetime
    started_at: datetime


def _to_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def _append(spark: SparkSession, warehouse: Warehouse, row: tuple[Any, ...]) -> None:
    ensure_table(spark, warehouse, PIPELINE_RUNS)
    df = spark.createDataFrame([row], PIPELINE_RUNS_SCHEMA)
    append_rows(df, warehouse.path(PIPELINE_RUNS))


def record_start(spark: SparkSession, warehouse: Warehouse, run: RunRecord) -> None:
    """Append the run's `started` row."""
    _append(
        spark,
        warehouse,
        (
            run.run_id,
            run.command,
            _to_json(run.arguments),
            run.processing_time,
            run.started_at,
            None,
            Outcome.STARTED,
            None,
            None,
            None,
        ),
    )


def record_end(
    spark: SparkSession,
    warehouse: Warehouse,
    run: RunRecord,
    *,
    ended_at: datetime,
    outcome: str,
    metrics: Mapping[str, Any],
    table_versions: Mapping[str, int | None],
    error: str | None = None,
) -> None:
    """Append the run's outcome row: succeeded, failed, refused or check_failed."""
    _append(
        spark,
        warehouse,
        (
            run.run_id,
            run.command,
            _to_json(run.arguments),
            run.processing_time,
            run.started_at,
            ended_at,
            outcome,
            _to_json(metrics),
            _to_json(table_versions),
            error,
        ),
    )


def last_metric(
    spark: SparkSession, warehouse: Warehouse, key: str, outcome: str = Outcome.SUCCEEDED
) -> int | None:
    """Return the greatest integer value of metric `key` among runs with `outcome`."""
    path = warehouse.path(PIPELINE_RUNS)
    if not table_exists(spark, path):
        return None
    row = (
        spark.read.format("delta")
        .load(path)
        .filter(F.col("outcome") == outcome)
        .select(F.get_json_object("metrics", f"$.{key}").cast("long").alias("value"))
        .agg(F.max("value").alias("value"))
        .first()
    )
    return None if row is None or row["value"] is None else int(row["value"])


# The commands that land batches; `hourly` keeps its landing metrics under its `land` step.
LANDING_COMMANDS = ("land", "hourly")


def landing_accounting(spark: SparkSession, warehouse: Warehouse) -> DataFrame:
    """Read every successful landing run's accounting: one row per run, (`run_id`,
    `lines_read`, `rows_landed`, `rows_quarantined`); empty without a ledger."""
    path = warehouse.path(PIPELINE_RUNS)
    columns = ("lines_read", "rows_landed", "rows_quarantined")
    if not table_exists(spark, path):
        return spark.createDataFrame(
            [], ", ".join(["run_id string", *(f"{c} long" for c in columns)])
        )

    def metric(name: str) -> Column:
        return F.coalesce(
            F.get_json_object("metrics", f"$.{name}"),
            F.get_json_object("metrics", f"$.land.{name}"),
        ).cast("long")

    return (
        spark.read.format("delta")
        .load(path)
        .filter((F.col("outcome") == Outcome.SUCCEEDED) & F.col("command").isin(*LANDING_COMMANDS))
        .select("run_id", *(metric(c).alias(c) for c in columns))
    )
