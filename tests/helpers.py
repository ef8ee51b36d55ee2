"""Small builders shared by the tests: event lines, batch files, running commands in-process."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pyspark.sql import SparkSession

from orders_etl.commands import incremental, land
from orders_etl.context import CommandResult, RunContext
from orders_etl.io.readers import list_batch_files
from orders_etl.schemas import FCT_ORDERS_COLUMNS


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


def fct_rows(spark: SparkSession, warehouse: Path | str) -> set[tuple[object, ...]]:
    """fct_orders as a set of tuples in FCT_ORDERS_COLUMNS order."""
    df = spark.read.format("delta").load(f"{warehouse}/fct_orders")
    return {tuple(r) for r in df.select(*FCT_ORDERS_COLUMNS).collect()}


def landing_dicts(spark: SparkSession, warehouse: Path | str) -> list[dict[str, Any]]:
    """orders_landing rows as dicts."""
    df = spark.read.format("delta").load(f"{warehouse}/orders_landing")
    return [r.asDict() for r in df.collect()]
