"""One job through the real spark-submit (local mode), packaged as for a cluster."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from orders_etl.session import DELTA_CATALOG, DELTA_EXTENSION

ROOT = Path(__file__).resolve().parent.parent
DELTA_PACKAGE = "io.delta:delta-spark_4.2_2.13:4.4.0"


@pytest.mark.slow
def test_migrate_job_runs_under_spark_submit(tmp_path: Path) -> None:
    spark_submit = Path(sys.executable).parent / "spark-submit"
    zipped = shutil.make_archive(str(tmp_path / "orders_etl"), "zip", ROOT, "orders_etl")
    warehouse = tmp_path / "warehouse"
    env = {
        **os.environ,
        "PYSPARK_PYTHON": sys.executable,
        "ORDERS_ETL_CONF_DIR": str(ROOT / "conf"),
    }
    env.pop("PYSPARK_GATEWAY_PORT", None)
    env.pop("PYSPARK_GATEWAY_SECRET", None)
    completed = subprocess.run(
        [
            str(spark_submit),
            "--master",
            "local[1]",
            "--packages",
            DELTA_PACKAGE,
            "--conf",
            f"spark.sql.extensions={DELTA_EXTENSION}",
            "--conf",
            f"spark.sql.catalog.spark_catalog={DELTA_CATALOG}",
            "--conf",
            "spark.ui.enabled=false",
            "--py-files",
            zipped,
            str(ROOT / "jobs" / "migrate.py"),
            "--warehouse",
            str(warehouse),
            "--processing-time",
            "2026-03-02T00:00:00Z",
        ],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-2000:]
    # spark-submit's PythonRunner merges the driver's stderr into its stdout.
    assert "orders-etl migrate: succeeded" in completed.stdout + completed.stderr
    for table in ("orders_landing", "orders_quarantine", "fct_orders", "daily_revenue"):
        assert (warehouse / table / "_delta_log" / "00000000000000000000.json").is_file()
