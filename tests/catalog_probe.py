"""Runs of `orders-etl` and Spark sessions on a warehouse's catalog, each in its own process:
the embedded metastore takes one JVM at a time, and the suite's own session has no catalog.

As a program, `python -m tests.catalog_probe WAREHOUSE DATABASE [SQL ...]` runs each statement in
order on a session built by the project's factory with that warehouse's catalog, then prints one
JSON document on stdout: `rows`, the rows of each statement (lists of strings), and `entries`,
the names in DATABASE with their type, provider, location and view text.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

from orders_etl.config import SparkSettings
from orders_etl.io.catalog import catalog_entries
from orders_etl.session import get_spark
from tests.conftest import TEST_SPARK

ROOT = Path(__file__).resolve().parent.parent
ENV_NAME = "catalog"
PROBE_SPARK = SparkSettings("orders_etl-catalog-probe", "local[1]", TEST_SPARK.conf)


def catalog_toml(database: str) -> str:
    """An environment with `[catalog] database = DATABASE`, small Spark settings, fast retries."""
    return f"""
[warehouse]
root = "./unused"

[catalog]
database = "{database}"

[retries]
attempts = 2
backoff_seconds = 0.1

[spark]
app_name = "orders_etl-catalog-tests"
master = "local[1]"

[spark.conf]
"spark.sql.shuffle.partitions" = "2"
"spark.default.parallelism" = "2"
"spark.ui.enabled" = "false"
"spark.ui.showConsoleProgress" = "false"
"spark.databricks.delta.snapshotPartitions" = "2"
"spark.sql.adaptive.enabled" = "false"
"spark.driver.memory" = "1g"
"""


def write_conf(folder: Path, database: str = "orders") -> Path:
    """Write `<folder>/catalog.toml` and return the folder (for ORDERS_ETL_CONF_DIR)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{ENV_NAME}.toml").write_text(catalog_toml(database), encoding="utf-8")
    return folder


def process_env(conf_dir: Path, log_dir: Path) -> dict[str, str]:
    """The environment of a child process: this conf folder, its own log folder, no webhook."""
    env = {
        **os.environ,
        "ORDERS_ETL_CONF_DIR": str(conf_dir),
        "ORDERS_ETL_LOG_DIR": str(log_dir),
        "PYTHONPATH": str(ROOT),
    }
    for key in ("PYSPARK_GATEWAY_PORT", "PYSPARK_GATEWAY_SECRET", "ORDERS_ETL_REVISION_WEBHOOK"):
        env.pop(key, None)
    return env


def run_etl(
    conf_dir: Path, warehouse: Path, at: str, *argv: str
) -> subprocess.CompletedProcess[str]:
    """Run `orders-etl ARGV --env catalog --warehouse W --processing-time AT` in a process."""
    return subprocess.run(
        [
            str(Path(sys.executable).parent / "orders-etl"),
            *argv,
            "--env",
            ENV_NAME,
            "--warehouse",
            str(warehouse),
            "--processing-time",
            at,
        ],
        env=process_env(conf_dir, conf_dir / "logs"),
        cwd=conf_dir,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def probe(warehouse: Path, database: str, *statements: str) -> dict[str, Any]:
    """Run statements on the warehouse's catalog in a process; return its JSON document."""
    completed = subprocess.run(
        [sys.executable, "-m", "tests.catalog_probe", str(warehouse), database, *statements],
        env=process_env(warehouse.parent, warehouse.parent / "probe-logs"),
        cwd=warehouse.parent,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    document: dict[str, Any] = json.loads(completed.stdout)
    return document


def main(argv: list[str]) -> None:
    """Run the statements and print what they returned and what the catalog holds."""
    warehouse, database, *statements = argv
    spark = get_spark(PROBE_SPARK, catalog_root=warehouse)
    try:
        rows = [
            [[None if v is None else str(v) for v in r] for r in spark.sql(sql).collect()]
            for sql in statements
        ]
        entries = {name: asdict(e) for name, e in catalog_entries(spark, database).items()}
    finally:
        spark.stop()
    print(json.dumps({"rows": rows, "entries": entries}))


if __name__ == "__main__":
    main(sys.argv[1:])
