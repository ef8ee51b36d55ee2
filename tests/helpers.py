"""Small builders shared by the tests: event lines, batch files, running commands in-process."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pyspark.sql import SparkSession
from pyspark.sql import types as T

from orders_etl.context import CommandResult, RunContext
from orders_etl.io.readers import list_batch_files
from orders_etl.pipeline import incremental, land
from orders_etl.runner import execute
from orders_etl.schemas import FCT_ORDERS_COLUMNS

# The raw-lines frame the parser reads, and one valid input event.
LINES_SCHEMA = T.StructType(
    [
        T.StructField("source_file", T.StringType()),
        T.StructField("source_sha256", T.StringType()),
        T.StructField("line_number", T.LongType()),
        T.StructField("raw", T.StringType()),
    ]
)
VALID = {
    "order_id": "o1",
    "customer_id": "c1",
    "status": "paid",
    "amount": "12.50",
    "currency": "EUR",
    "event_time": "2026-03-01T10:00:00Z",
}
# An environment file with fast retries and a short webhook timeout.
NOTIFY_TOML = """
[warehouse]
root = "./unused"

[retries]
attempts = 2
backoff_seconds = 0.1

[notify]
timeout_seconds = 2.0
attempts = 2
"""


def event(
    order_id: str,
    event_time: str,
    status: str = "paid",
    amount: str | float = "10.00",
    currency: str = "EUR",
    customer_id: str = "c1",
    **extra: Any,
) -> str:
    """One input line as JSON."""
    body = {
        "order_id": order_id,
        "customer_id": customer_id,
        "status": status,
        "amount": amount,
        "currency": currency,
        "event_time": event_time,
        **extra,
    }
    return json.dumps(body)


def write_batch(folder: Path, name: str, lines: list[str]) -> Path:
    """Write lines as one batch file and return its path."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def land_path(ctx: RunContext, path: Path | str) -> CommandResult:
    """Run `land` on a file or folder, in-process."""
    files = tuple(list_batch_files(str(path)))
    return land.run(ctx, land.LandParams(str(path), files))


def run_incremental(ctx: RunContext, lookback_days: int = 3) -> CommandResult:
    """Run `incremental` in-process."""
    return incremental.run(ctx, incremental.IncrementalParams(lookback_days))


def recorded(
    ctx: RunContext, command: str, action: Callable[[RunContext], CommandResult]
) -> CommandResult:
    """Run a command through the runner, as the CLI does, so the run ledger records it."""
    results: list[CommandResult] = []

    def keep() -> CommandResult:
        results.append(action(ctx))
        return results[-1]

    exit_code = execute(ctx, command, {}, keep)
    assert exit_code == 0, f"{command} exited {exit_code}"
    return results[-1]


def fct_rows(spark: SparkSession, warehouse: Path | str) -> set[tuple[object, ...]]:
    """fct_orders as a set of tuples in FCT_ORDERS_COLUMNS order."""
    df = spark.read.format("delta").load(f"{warehouse}/fct_orders")
    return {tuple(r) for r in df.select(*FCT_ORDERS_COLUMNS).collect()}


def landing_dicts(spark: SparkSession, warehouse: Path | str) -> list[dict[str, Any]]:
    """orders_landing rows as dicts."""
    df = spark.read.format("delta").load(f"{warehouse}/orders_landing")
    return [r.asDict() for r in df.collect()]


def append_landing(spark: SparkSession, warehouse: Path | str, rows: list[dict[str, Any]]) -> None:
    """Append rows straight to orders_landing (created if missing), bypassing `land`.

    Each row gives the six input fields (`amount` a Decimal, `event_time` a datetime) and
    optionally `event_ingested_at`; a row without it is a legacy row (null stamp).
    """
    from orders_etl.io.migration import prepare_landing
    from orders_etl.io.tables import Warehouse
    from orders_etl.schemas import LANDING_SCHEMA

    prepare_landing(spark, Warehouse(str(warehouse)))
    names = [f.name for f in LANDING_SCHEMA.fields]
    values = [tuple(row.get(name) for name in names) for row in rows]
    spark.createDataFrame(values, LANDING_SCHEMA).write.format("delta").mode("append").save(
        f"{warehouse}/orders_landing"
    )


def fct_list(spark: SparkSession, warehouse: Path | str) -> list[tuple[object, ...]]:
    """fct_orders as a list of tuples in FCT_ORDERS_COLUMNS order (duplicates kept)."""
    df = spark.read.format("delta").load(f"{warehouse}/fct_orders")
    return [tuple(r) for r in df.select(*FCT_ORDERS_COLUMNS).collect()]


def commit_actions(table_path: Path | str, version: int) -> list[dict[str, Any]]:
    """The actions of one Delta commit, read from its `_delta_log` JSON file (no Spark)."""
    log_file = Path(table_path) / "_delta_log" / f"{version:020d}.json"
    return [json.loads(line) for line in log_file.read_text().splitlines() if line.strip()]


def last_version(table_path: Path | str) -> int:
    """The latest commit version of a Delta table, from its `_delta_log` folder (no Spark)."""
    log_files = (Path(table_path) / "_delta_log").glob("*.json")
    return max(int(p.stem) for p in log_files if p.stem.isdigit())


def live_files(table_path: Path | str) -> dict[str, dict[str, Any]]:
    """The live data files of a Delta table, path -> its `add` action (no Spark).

    Replays the JSON commits; each `add` carries `partitionValues` and any `deletionVector`.
    Within one commit the removes apply first: a file that gets a deletion vector is removed
    and re-added under the same path.
    """
    files: dict[str, dict[str, Any]] = {}
    for version in range(last_version(table_path) + 1):
        actions = commit_actions(table_path, version)
        for action in actions:
            if "remove" in action:
                files.pop(action["remove"]["path"], None)
        for action in actions:
            if "add" in action:
                files[action["add"]["path"]] = action["add"]
    return files
