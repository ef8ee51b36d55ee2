"""Concurrent runs: two drivers write the same warehouse at the same moment.

Two processes, not two threads. Two scheduler jobs are two spark-submit drivers: separate JVMs,
each with its own Delta log cache and its own in-JVM commit lock, so only the storage-level
commit protocol (put-if-absent of `_delta_log/<version>.json`) arbitrates between them. Two
threads in one session would share that lock and the session-wide `userMetadata` setting,
and so test less. To make the runs truly overlap, each process is a warm worker: it starts its
JVM once, then for every race waits on a shared start file and runs `orders_etl.cli.main`
(the entry point of `orders-etl` and of `jobs/*.py`) the moment the file appears.

Races: incremental with backfill on disjoint dates (both commit); on overlapping dates (the
loser of the Delta conflict retries with backoff, or exits 4; never a wrong table); the same
batch landed twice at once (its lines land once); two rollups at once (at most one current row
per day and currency, no revision recorded twice). After each race the warehouse is checked
against the plain-Python rule and `verify`.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import pytest
from delta.tables import DeltaTable
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from orders_etl.schemas import Outcome
from tests import test_faults_kill
from tests.helpers import event
from tests.test_faults_kill import (
    ENV_NAME,
    assert_lines_accounted,
    assert_warehouse_correct,
    build_land,
    etl,
    run_ok,
    subprocess_env,
    write_lines,
)

pytestmark = pytest.mark.slow

# The crash tests' conf folder fixture (faults.toml, exported as ORDERS_ETL_CONF_DIR), reused.
conf_dir = test_faults_kill.conf_dir

WORKER = r"""
import contextlib, io, json, logging, os, sys, time
logging.basicConfig(level=logging.WARNING, format="orders-etl: %(levelname)s %(message)s")
from orders_etl import cli
from orders_etl.config import load_config
from orders_etl.session import get_spark
get_spark(load_config(sys.argv[2]).spark)
open(sys.argv[1], "w").close()
for line in sys.stdin:
    job = json.loads(line)
    while not os.path.exists(job["go"]):
        time.sleep(0.002)
    err = io.StringIO()
    for handler in logging.getLogger().handlers:
        handler.setStream(err)
    started = time.time()
    with contextlib.redirect_stderr(err):
        try:
            code = cli.main(job["argv"])
        except BaseException as exc:
            code = -1
            print(f"worker: {type(exc).__name__}: {exc}", file=err)
    result = {"code": code, "stderr": err.getvalue(), "started": started, "ended": time.time()}
    with open(job["out"] + ".tmp", "w") as handle:
        json.dump(result, handle)
    os.replace(job["out"] + ".tmp", job["out"])
"""


@dataclass
class Worker:
    """A warm `orders_etl` driver process that runs command lines on a start signal."""

    name: str
    process: subprocess.Popen[str]
    ready: Path
    log: TextIO

    def submit(self, argv: list[str], go: Path, out: Path) -> None:
        assert self.process.stdin is not None and self.process.poll() is None
        self.process.stdin.write(json.dumps({"argv": argv, "go": str(go), "out": str(out)}) + "\n")
        self.process.stdin.flush()

    def result(self, out: Path, timeout: float = 600) -> dict[str, Any]:
        give_up = time.monotonic() + timeout
        while not out.exists():
            assert self.process.poll() is None, f"worker {self.name} died"
            assert time.monotonic() < give_up, f"worker {self.name} took too long"
            time.sleep(0.05)
        value: dict[str, Any] = json.loads(out.read_text())
        return value


@pytest.fixture(scope="module")
def workers(conf_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[Worker]]:
    """Two driver processes, their JVMs started in parallel."""
    folder = tmp_path_factory.mktemp("workers")
    env = subprocess_env(conf_dir, folder / "logs")
    started: list[Worker] = []
    for name in ("one", "two"):
        ready = folder / f"{name}.ready"
        log = (folder / f"{name}.log").open("w")
        process = subprocess.Popen(
            [sys.executable, "-c", WORKER, str(ready), ENV_NAME],
            env=env,
            stdin=subprocess.PIPE,
            stdout=log,
            stderr=log,
            text=True,
            start_new_session=True,
        )
        started.append(Worker(name, process, ready, log))
    give_up = time.monotonic() + 600
    while not all(w.ready.exists() for w in started):
        assert all(w.process.poll() is None for w in started), "a worker failed to start"
        assert time.monotonic() < give_up, "the workers' JVMs did not start"
        time.sleep(0.1)
    yield started
    for w in started:
        assert w.process.stdin is not None
        w.process.stdin.close()
    for w in started:
        try:
            w.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(w.process.pid, signal.SIGKILL)
            w.process.wait()
        w.log.close()


@dataclass
class Figures:
    """What the races did, printed at the end of each test."""

    races: int = 0
    runs: int = 0
    codes: Counter[int] = field(default_factory=Counter)
    retries: int = 0


FIGURES = Figures()


def race(workers: list[Worker], folder: Path, argvs: list[list[str]]) -> list[dict[str, Any]]:
    """Start one command line on each worker at the same moment; return their results."""
    FIGURES.races += 1
    go = folder / f"go-{FIGURES.races}"
    outs = [folder / f"result-{FIGURES.races}-{w.name}.json" for w in workers]
    for worker, argv, out in zip(workers, argvs, outs, strict=True):
        worker.submit(argv, go, out)
    time.sleep(0.3)
    go.touch()
    results = [w.result(out) for w, out in zip(workers, outs, strict=True)]
    for result in results:
        FIGURES.runs += 1
        FIGURES.codes[result["code"]] += 1
        FIGURES.retries += result["stderr"].count("lost a write conflict")
        errors = [line for line in result["stderr"].splitlines() if ": error: " in line]
        assert len(errors) == (0 if result["code"] == 0 else 1), result["stderr"]
        assert "\tat " not in result["stderr"], "a Java stack trace reached stderr"
    overlap = min(r["ended"] for r in results) - max(r["started"] for r in results)
    assert overlap > 0, "the two runs did not overlap in time"
    return results


def report(capsys: pytest.CaptureFixture[str], name: str, results: list[dict[str, Any]]) -> None:
    with capsys.disabled():
        print(
            f"\nconcurrent {name}: exit codes {[r['code'] for r in results]}; so far "
            f"{FIGURES.races} races, {FIGURES.runs} runs, exit codes {dict(FIGURES.codes)}, "
            f"{FIGURES.retries} conflict retries"
        )


def cli_args(warehouse: Path, *argv: str) -> list[str]:
    return [*argv, "--env", ENV_NAME, "--warehouse", str(warehouse)]


def ledger_outcomes(spark: SparkSession, warehouse: Path, command: str) -> list[list[str]]:
    rows = (
        spark.read.format("delta")
        .load(str(warehouse / "pipeline_runs"))
        .filter(F.col("command") == command)
        .select("run_id", "outcome")
        .collect()
    )
    runs: dict[str, list[str]] = {}
    for r in rows:
        runs.setdefault(r["run_id"], []).append(r["outcome"])
    return [sorted(v) for v in runs.values()]


def fct_operations_after(spark: SparkSession, warehouse: Path, version: int) -> list[str]:
    history = DeltaTable.forPath(spark, str(warehouse / "fct_orders")).history()
    rows = history.filter(F.col("version") > version).select("operation").collect()
    return sorted(r["operation"] for r in rows)


def fct_version(spark: SparkSession, warehouse: Path) -> int:
    row = DeltaTable.forPath(spark, str(warehouse / "fct_orders")).history(1).first()
    assert row is not None
    return int(row["version"])


# --- base warehouses -----------------------------------------------------------------------------

RACE_TIME = "2026-03-20T13:00:00Z"


def _orders(prefix: str, days: range, per_day: int, hour: int = 10) -> list[str]:
    return [
        event(
            f"{prefix}{day:02d}-{n}",
            f"2026-03-{day:02d}T{hour:02d}:{7 * n:02d}:00Z",
            status=("paid", "shipped", "cancelled", "placed")[(day + n) % 4],
            amount=f"{day * 10 + n}.{n * 11 % 100:02d}",
            currency=("EUR", "USD")[n % 2],
        )
        for day in days
        for n in range(per_day)
    ]


def build_two_writers(warehouse: Path, inputs: Path) -> None:
    """fct_orders holds 2026-03-01..10 (stamped 03-11) and 03-14 (stamped 03-15), so the
    incremental's window (since 03-12) holds only 03-14 and a waiting batch for 03-14, 18..20:
    its MERGE touches 14, 18, 19, 20; a backfill of 01..10 touches nothing of that."""
    first = write_lines(inputs / "c-1" / "batch.jsonl", _orders("A", range(1, 11), 4))
    second = write_lines(inputs / "c-2" / "batch.jsonl", _orders("D", range(14, 15), 2))
    waiting = write_lines(
        inputs / "c-3" / "batch.jsonl",
        [
            *_orders("C", range(18, 21), 3),
            event("D14-0", "2026-03-14T23:00:00Z", status="refunded"),
        ],
    )
    run_ok(warehouse, "land", "--source", str(first), "--processing-time", "2026-03-11T00:00:00Z")
    run_ok(warehouse, "incremental", "--processing-time", "2026-03-11T00:00:00Z")
    run_ok(warehouse, "rollup", "--processing-time", "2026-03-11T00:00:00Z")
    run_ok(warehouse, "land", "--source", str(second), "--processing-time", "2026-03-15T00:00:00Z")
    run_ok(warehouse, "incremental", "--processing-time", "2026-03-15T00:00:00Z")
    run_ok(warehouse, "land", "--source", str(waiting), "--processing-time", "2026-03-20T12:00:00Z")


def build_two_rollups(warehouse: Path, inputs: Path) -> None:
    """As above with the incremental done and a late order for the published 2026-03-05:
    the next rollup publishes new days and revises a past one."""
    build_two_writers(warehouse, inputs)
    late = write_lines(
        inputs / "c-4" / "batch.jsonl", [event("late-05", "2026-03-05T15:00:00Z", amount="7.00")]
    )
    run_ok(warehouse, "land", "--source", str(late), "--processing-time", RACE_TIME)
    run_ok(warehouse, "incremental", "--processing-time", RACE_TIME)


def build_migrated_land(warehouse: Path, inputs: Path) -> None:
    build_land(warehouse, inputs)
    run_ok(warehouse, "migrate", "--processing-time", "2026-03-10T00:00:00Z")


@pytest.fixture(scope="module")
def bases(
    spark: SparkSession, conf_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Callable[[str, Path], tuple[Path, Path]]:
    """Build each base warehouse once; hand out fresh copies: (warehouse, inputs)."""
    builders: dict[str, Callable[[Path, Path], None]] = {
        "two_writers": build_two_writers,
        "two_rollups": build_two_rollups,
        "land_empty": build_land,
        "land_migrated": build_migrated_land,
    }
    built: dict[str, tuple[Path, Path]] = {}

    def copy(name: str, target: Path) -> tuple[Path, Path]:
        if name not in built:
            root = tmp_path_factory.mktemp(f"concurrent-{name}")
            (root / "inputs").mkdir()
            builders[name](root / "warehouse", root / "inputs")
            built[name] = (root / "warehouse", root / "inputs")
        base, inputs = built[name]
        if base.exists():
            shutil.copytree(base, target)
        else:
            target.mkdir(parents=True)
        return target, inputs

    return copy


# --- the races ----------------------------------------------------------------------------------


def test_incremental_and_backfill_on_disjoint_dates_both_commit(
    spark: SparkSession,
    workers: list[Worker],
    bases: Callable[[str, Path], tuple[Path, Path]],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    warehouse, _ = bases("two_writers", tmp_path / "warehouse")
    before = fct_version(spark, warehouse)
    results = race(
        workers,
        tmp_path,
        [
            cli_args(warehouse, "incremental", "--processing-time", RACE_TIME),
            cli_args(
                warehouse,
                "backfill",
                "--start-date",
                "2026-03-01",
                "--end-date",
                "2026-03-10",
                "--processing-time",
                RACE_TIME,
            ),
        ],
    )
    report(capsys, "incremental || backfill, disjoint dates", results)
    assert [r["code"] for r in results] == [0, 0], [r["stderr"] for r in results]
    assert fct_operations_after(spark, warehouse, before) == ["MERGE", "WRITE"]
    for command in ("incremental", "backfill"):
        assert ledger_outcomes(spark, warehouse, command)[-1:] == [
            [Outcome.STARTED, Outcome.SUCCEEDED]
        ]
    run_ok(warehouse, "rollup", "--processing-time", "2026-03-20T14:00:00Z")
    assert_warehouse_correct(spark, warehouse)


@pytest.mark.parametrize("round_", [1, 2])
def test_incremental_and_backfill_on_overlapping_dates_never_corrupt(
    spark: SparkSession,
    workers: list[Worker],
    bases: Callable[[str, Path], tuple[Path, Path]],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    round_: int,
) -> None:
    warehouse, _ = bases("two_writers", tmp_path / "warehouse")
    incremental = cli_args(warehouse, "incremental", "--processing-time", RACE_TIME)
    backfill = cli_args(
        warehouse,
        "backfill",
        "--start-date",
        "2026-03-12",
        "--end-date",
        "2026-03-20",
        "--processing-time",
        RACE_TIME,
    )
    argvs = [incremental, backfill] if round_ == 1 else [backfill, incremental]
    results = race(workers, tmp_path, argvs)
    report(capsys, f"incremental || backfill, overlapping dates (round {round_})", results)
    codes = sorted(r["code"] for r in results)
    assert codes in ([0, 0], [0, 4]), [r["stderr"] for r in results]
    for result in results:
        if result["code"] == 4:
            assert "ConcurrentWriteError" in result["stderr"] or "conflict" in result["stderr"]
    run_ok(warehouse, "incremental", "--processing-time", "2026-03-20T13:30:00Z")
    run_ok(warehouse, "rollup", "--processing-time", "2026-03-20T14:00:00Z")
    assert_warehouse_correct(spark, warehouse)


@pytest.mark.parametrize("base", ["land_empty", "land_migrated"])
def test_the_same_batch_landed_twice_at_once_lands_once(
    spark: SparkSession,
    workers: list[Worker],
    bases: Callable[[str, Path], tuple[Path, Path]],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    base: str,
) -> None:
    warehouse, inputs = bases(base, tmp_path / "warehouse")
    argv = cli_args(
        warehouse,
        "land",
        "--source",
        str(inputs / "land-batch"),
        "--processing-time",
        "2026-03-10T12:00:00Z",
    )
    results = race(workers, tmp_path, [argv, list(argv)])
    report(capsys, f"land || land, same batch ({base})", results)
    codes = sorted(r["code"] for r in results)
    assert codes in ([0, 0], [0, 4]), [r["stderr"] for r in results]
    assert_lines_accounted(spark, warehouse, inputs / "land-batch")
    for outcomes in ledger_outcomes(spark, warehouse, "land"):
        assert Outcome.STARTED in outcomes and len(outcomes) == 2, outcomes
    run_ok(warehouse, "incremental", "--processing-time", "2026-03-10T12:10:00Z")
    run_ok(warehouse, "rollup", "--processing-time", "2026-03-10T12:20:00Z")
    assert_warehouse_correct(spark, warehouse)


@pytest.mark.parametrize("times", [("14:00", "14:00"), ("14:00", "14:05")])
def test_two_rollups_at_once_keep_one_current_version(
    spark: SparkSession,
    workers: list[Worker],
    bases: Callable[[str, Path], tuple[Path, Path]],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    times: tuple[str, str],
) -> None:
    warehouse, _ = bases("two_rollups", tmp_path / "warehouse")
    argvs = [
        cli_args(warehouse, "rollup", "--processing-time", f"2026-03-20T{t}:00Z") for t in times
    ]
    results = race(workers, tmp_path, argvs)
    report(capsys, f"rollup || rollup at {' and '.join(times)}", results)
    codes = sorted(r["code"] for r in results)
    # The later rollup may win; the earlier one then refuses to publish before it (exit 2).
    assert 0 in codes and set(codes) <= {0, 2, 4}, [r["stderr"] for r in results]
    revenue = spark.read.format("delta").load(str(warehouse / "daily_revenue"))
    versions = Counter(
        (r["order_date"], r["currency"], r["as_of"])
        for r in revenue.select("order_date", "currency", "as_of").collect()
    )
    assert max(versions.values()) == 1, "one day and currency got two versions at one time"
    revisions = spark.read.format("delta").load(str(warehouse / "revenue_revisions"))
    keys = Counter((r["order_date"], r["currency"]) for r in revisions.collect())
    assert keys, "the scenario must revise a published day"
    assert max(keys.values()) == 1, "a revision was recorded twice"
    assert etl(warehouse, "rollup", "--processing-time", "2026-03-20T15:00:00Z") == 0
    assert spark.read.format("delta").load(str(warehouse / "revenue_revisions")).count() == sum(
        keys.values()
    ), "a rollup after the race found something left to revise"
    assert_warehouse_correct(spark, warehouse)
