"""The jobs on a real Spark standalone cluster: a master and one 2-core worker started from the
installed pyspark, the README's own spark-submit line (read from the README; `--jars` with the
Delta jars `make setup` cached in place of `--packages`, so nothing resolves through Ivy), the
package shipped as the zip `make dist` builds. Executors run in their own JVMs on the worker.

The warehouse the cluster leaves must equal the same batches run in local mode and the
plain-Python rule. The cluster is stopped (its process groups killed) before anything else
starts, in every case. Network: only 127.0.0.1.
"""

from __future__ import annotations

import contextlib
import json
import re
import shlex
import subprocess
import time
import urllib.request
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from pyspark.sql import SparkSession

from orders_etl import cli
from orders_etl.sample import generate_batches, write_batches
from orders_etl.session import cached_delta_jars
from tests.helpers import fct_rows, landing_dicts
from tests.processes import (
    SPARK_BIN,
    archive_java_options,
    free_port,
    run,
    spark_env,
    start,
    stop,
    tail,
    wait_for_port,
)
from tests.reference import expected_fct, expected_revenue, rows_to_versions

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
# Three days of sample batches, one file a day: late events, retries, newer versions, bad lines.
SAMPLE_START = datetime(2026, 3, 1, tzinfo=UTC)
BACKFILL = ("--start-date", "2026-03-01", "--end-date", "2026-03-04")
INTERPRETED = (
    "--conf",
    "spark.sql.codegen.factoryMode=NO_CODEGEN",
    "--conf",
    "spark.sql.codegen.wholeStage=false",
)


@dataclass(frozen=True)
class Job:
    """One command line of the schedule: the command, its flags, its processing time."""

    command: str
    flags: tuple[str, ...]
    at: datetime


@dataclass(frozen=True)
class ClusterRun:
    """What the cluster did: each job's completed spark-submit, the worker's work folder."""

    folder: Path
    warehouse: Path
    jobs: tuple[Job, ...]
    submits: tuple[subprocess.CompletedProcess[str], ...]
    work_dir: Path


def schedule(folder: Path) -> tuple[Job, ...]:
    """migrate, one `hourly` per sample batch, a backfill of the days, rollup, verify."""
    batches = write_batches(generate_batches(7, SAMPLE_START, 3, 2, batch_hours=24), folder)
    last = batches[-1][0]
    return (
        Job("migrate", (), batches[0][0]),
        *(Job("hourly", ("--source", str(path)), at) for at, path in batches),
        Job("backfill", BACKFILL, last),
        Job("rollup", (), last),
        Job("verify", ("--json",), last),
    )


def readme_submit_options() -> list[str]:
    """The options of the README's spark-submit line (between `spark-submit` and the job),
    with `--packages` replaced by `--jars` and the cached Delta jars."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Running on a cluster with spark-submit", 1)[1].split("\n## ", 1)[0]
    blocks: list[str] = re.findall(r"```sh\n(spark-submit .*?)```", section, re.S)
    assert blocks, "no spark-submit block in the README's cluster section"
    words = shlex.split(blocks[0].replace("\\\n", " "))
    job = next(i for i, w in enumerate(words) if w.startswith("jobs/"))
    options = words[1:job]
    assert "--py-files" in options and "--packages" in options, options
    jars = cached_delta_jars()
    assert jars, "no cached Delta jars: run make setup"
    packages = options.index("--packages")
    options[packages : packages + 2] = ["--jars", ",".join(jars)]
    return options


def build_dist_zip(folder: Path) -> Path:
    """`<folder>/dist/orders_etl.zip`, as `make dist` builds it: every orders_etl/**/*.py."""
    target = folder / "dist" / "orders_etl.zip"
    target.parent.mkdir(parents=True)
    with zipfile.ZipFile(target, "w") as archive:
        for path in sorted((ROOT / "orders_etl").rglob("*.py")):
            archive.write(path, path.relative_to(ROOT))
    return target


def alive_workers(ui_port: int) -> int:
    """The master's count of alive workers, from its JSON status page (0 while the page is not
    served yet: the UI's port opens before its pages answer)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{ui_port}/json/", timeout=5) as page:
            status: dict[str, Any] = json.load(page)
    except (OSError, ValueError):
        return 0
    return int(status.get("aliveworkers", 0))


@contextlib.contextmanager
def standalone_cluster(folder: Path) -> Iterator[tuple[str, Path]]:
    """A standalone master and one worker (2 cores, 2g) on 127.0.0.1; yields the master URL and
    the worker's work folder. Both process groups (executors included) are stopped on exit."""
    port, master_ui, worker_ui = free_port(), free_port(), free_port()
    work_dir = folder / "work"
    env = spark_env(
        SPARK_LOG_DIR=str(folder / "logs"),
        SPARK_WORKER_DIR=str(work_dir),
        # No REST submission server (it would listen on a fixed port, 6066).
        SPARK_MASTER_OPTS="-Dspark.master.rest.enabled=false",
    )
    spark_class = str(SPARK_BIN / "spark-class")
    master_log, worker_log = folder / "master.log", folder / "worker.log"
    master = start(
        [
            spark_class,
            "org.apache.spark.deploy.master.Master",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--webui-port",
            str(master_ui),
        ],
        master_log,
        env,
        folder,
    )
    worker = None
    try:
        wait_for_port(master, port, master_log, seconds=180)
        wait_for_port(master, master_ui, master_log, seconds=60)
        worker = start(
            [
                spark_class,
                "org.apache.spark.deploy.worker.Worker",
                f"spark://127.0.0.1:{port}",
                "--host",
                "127.0.0.1",
                "--cores",
                "2",
                "--memory",
                "2g",
                "--work-dir",
                str(work_dir),
                "--webui-port",
                str(worker_ui),
            ],
            worker_log,
            env,
            folder,
        )
        deadline = time.monotonic() + 180
        while alive_workers(master_ui) < 1:
            assert worker.poll() is None, tail(worker_log)
            assert time.monotonic() < deadline, f"no worker registered: {tail(worker_log)}"
            time.sleep(1)
        yield f"spark://127.0.0.1:{port}", work_dir
    finally:
        if worker is not None:
            stop(worker)
        stop(master)


def job_flags(job: Job, warehouse: Path) -> list[str]:
    """The job's own flags, then the common ones: local env, this warehouse, its time."""
    return [
        *job.flags,
        "--env",
        "local",
        "--warehouse",
        str(warehouse),
        "--processing-time",
        job.at.isoformat(),
    ]


@pytest.fixture(scope="module")
def cluster_run(tmp_path_factory: pytest.TempPathFactory) -> ClusterRun:
    """Every job of the schedule submitted to the cluster, one after another, from a folder
    holding `dist/orders_etl.zip` (the README's relative `--py-files` path); the cluster is
    stopped before this returns."""
    folder = tmp_path_factory.mktemp("cluster")
    jobs = schedule(folder / "batches")
    build_dist_zip(folder)
    options = readme_submit_options()
    warehouse = folder / "warehouse"
    env = spark_env(ORDERS_ETL_CONF_DIR=str(ROOT / "conf"), ORDERS_ETL_LOG_DIR=str(folder / "logs"))
    env.pop("ORDERS_ETL_REVISION_WEBHOOK", None)
    env.pop("ORDERS_ETL_ENV", None)
    executor_options = f"spark.executor.extraJavaOptions={archive_java_options()}"
    submits = []
    with standalone_cluster(folder) as (master_url, work_dir):
        for job in jobs:
            argv = [
                str(SPARK_BIN / "spark-submit"),
                "--master",
                master_url,
                *options,
                "--conf",
                "spark.ui.enabled=false",
                # Interpreted expressions, as in the fault tests' subprocesses: for these small
                # batches, compiling generated code (driver and executor) costs more than it
                # saves. The spark-submit and Thrift tests run with code generation on.
                *INTERPRETED,
                "--conf",
                executor_options,
                str(ROOT / "jobs" / f"{job.command}.py"),
                *job_flags(job, warehouse),
            ]
            completed = run(argv, env, folder, timeout=900)
            submits.append(completed)
            if completed.returncode != 0:
                break
    return ClusterRun(folder, warehouse, jobs, tuple(submits), work_dir)


def current_revenue(spark: SparkSession, warehouse: Path) -> set[tuple[Any, ...]]:
    """The current `daily_revenue` rows: (order_date, currency, order_count, revenue, as_of)."""
    df = spark.read.format("delta").load(str(warehouse / "daily_revenue"))
    columns = ("order_date", "currency", "order_count", "revenue", "as_of")
    return {tuple(r) for r in df.filter("superseded_at IS NULL").select(*columns).collect()}


def test_every_job_succeeds_on_the_cluster_with_executors_on_the_worker(
    cluster_run: ClusterRun,
) -> None:
    for job, completed in zip(cluster_run.jobs, cluster_run.submits, strict=False):
        # spark-submit's PythonRunner merges the driver's stderr into its stdout.
        output = completed.stdout + completed.stderr
        assert completed.returncode == 0, (job, output[-3000:])
        assert f"orders-etl {job.command}: succeeded" in output, (job, output[-3000:])
    assert len(cluster_run.submits) == len(cluster_run.jobs)
    report = re.search(r"^\{$.*?^\}$", cluster_run.submits[-1].stdout, re.M | re.S)
    assert report is not None, cluster_run.submits[-1].stdout[-3000:]
    verify = json.loads(report.group(0))
    assert verify["passed"] is True, verify
    # One application per job, each with an executor JVM of its own on the worker, which
    # fetched the package zip (--py-files) into its folder and ran Python workers.
    apps = sorted(cluster_run.work_dir.glob("app-*"))
    assert len(apps) == len(cluster_run.jobs)
    for app in apps:
        executors = [d for d in app.iterdir() if d.is_dir()]
        assert executors, app
        assert any((d / "orders_etl.zip").is_file() for d in executors), app
        logs = "".join((d / "stderr").read_text(errors="replace") for d in executors)
        assert "org.apache.spark.executor.CoarseGrainedExecutorBackend" in logs, app
        assert "PythonRunner: Starting Python task execution" in logs, app


def test_the_cluster_warehouse_equals_local_mode_and_the_plain_python_rule(
    cluster_run: ClusterRun, spark: SparkSession, tmp_path: Path
) -> None:
    assert len(cluster_run.submits) == len(cluster_run.jobs), "a cluster job failed"
    local = tmp_path / "local-warehouse"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("ORDERS_ETL_CONF_DIR", str(ROOT / "conf"))
        patch.delenv("ORDERS_ETL_REVISION_WEBHOOK", raising=False)
        codes = [cli.main([job.command, *job_flags(job, local)]) for job in cluster_run.jobs]
    assert codes == [0] * len(cluster_run.jobs)

    on_cluster = fct_rows(spark, cluster_run.warehouse)
    assert on_cluster == fct_rows(spark, local)
    versions = rows_to_versions(landing_dicts(spark, cluster_run.warehouse))
    assert len(versions) > 100
    assert on_cluster == expected_fct(versions)

    revenue = current_revenue(spark, cluster_run.warehouse)
    assert revenue == current_revenue(spark, local)
    expected = expected_revenue(versions)
    assert {(d, c, n, r) for d, c, n, r, _ in revenue} == {
        (day, currency, count, Decimal(amount).quantize(Decimal("0.01")))
        for (day, currency), (count, amount) in expected.items()
    }
