"""End-to-end tests through the command line: one per command, in-process on the suite's
Spark session, plus the argument checks that must fail before Spark starts."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from delta.tables import DeltaTable
from pyspark.sql import SparkSession

from orders_etl import cli
from orders_etl.arguments import guarded_range
from orders_etl.context import RunContext
from orders_etl.io.tables import TABLES, table_exists, table_version
from orders_etl.pipeline import rollup
from tests.conftest import ContextFactory, make_config
from tests.helpers import event, fct_rows, land_path, landing_dicts, run_incremental, write_batch
from tests.reference import expected_fct, expected_revenue, rows_to_versions

T0 = "2026-03-02T12:00:00Z"
T1 = "2026-03-03T12:00:00Z"
AT_T0 = datetime(2026, 3, 2, 12, 0)
AT_T1 = datetime(2026, 3, 3, 12, 0)
MAR_1, MAR_2 = date(2026, 3, 1), date(2026, 3, 2)
FIRST_BATCH = [
    event("o1", "2026-03-01T10:00:00Z", amount="10.00"),
    event("o2", "2026-03-01T11:00:00Z", status="cancelled", amount="5.00"),
    event("o3", "2026-03-02T09:00:00Z", amount="7.50", currency="USD"),
    "{bad",
]
# A late refund of o1, landed a day after the first batch.
LATE_BATCH = [event("o1", "2026-03-01T15:00:00Z", status="refunded", amount="10.00")]
CONTRACT_CHECKS = (
    "order_id_not_null",
    "order_id_unique",
    "reconciles_with_source",
    "daily_revenue_matches_fct",
    "no_unpredicated_overwrite",
)
DATA_TABLES = ("orders_landing", "orders_quarantine", "fct_orders", "daily_revenue")


@pytest.fixture(autouse=True)
def _no_outside_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep the runner's environment out of the tests: default env, no revision webhook."""
    monkeypatch.delenv("ORDERS_ETL_ENV", raising=False)
    monkeypatch.delenv("ORDERS_ETL_REVISION_WEBHOOK", raising=False)


def run_cli(
    capsys: pytest.CaptureFixture[str], warehouse: Path, at: str, *argv: str
) -> tuple[int, str, str]:
    """Run `orders-etl ARGV --warehouse W --processing-time AT` in-process: code, out, err."""
    code = cli.main([*argv, "--warehouse", str(warehouse), "--processing-time", at])
    out, err = capsys.readouterr()
    return code, out, err


def _versions(spark: SparkSession, warehouse: Path) -> dict[str, int | None]:
    return {t: table_version(spark, str(warehouse / t)) for t in DATA_TABLES}


def _revenue_rows(spark: SparkSession, warehouse: Path) -> set[tuple[Any, ...]]:
    df = spark.read.format("delta").load(str(warehouse / "daily_revenue"))
    columns = ("order_date", "currency", "order_count", "revenue", "as_of", "superseded_at")
    return {tuple(r) for r in df.select(*columns).collect()}


@pytest.fixture(scope="module")
def merged_base(spark: SparkSession, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The first batch landed and merged into fct_orders at T0, in-process, once a module."""
    root = tmp_path_factory.mktemp("merged") / "warehouse"
    batch = write_batch(root.parent / "in", "b0.jsonl", FIRST_BATCH)
    config, moment = make_config(root), datetime.fromisoformat(T0)
    land_path(RunContext(config, moment, "base-land", spark=spark), batch)
    run_incremental(RunContext(config, moment, "base-incremental", spark=spark))
    return root


@pytest.fixture
def merged(merged_base: Path, warehouse: Path) -> Path:
    """This test's own copy of the landed and merged base, at the test's `warehouse` root."""
    shutil.copytree(merged_base, warehouse, dirs_exist_ok=True)
    return warehouse


def test_migrate_creates_the_tables_then_changes_nothing(
    spark: SparkSession, warehouse: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run_cli(capsys, warehouse, T0, "migrate")

    assert (code, out) == (0, "")
    assert "orders-etl migrate: succeeded" in err
    assert all(table_exists(spark, str(warehouse / t.name)) for t in TABLES)
    versions = _versions(spark, warehouse)

    code, out, err = run_cli(capsys, warehouse, T0, "migrate")

    assert (code, out) == (0, "")
    assert "created 0 table(s); added 0 column(s) to orders_landing" in err
    assert _versions(spark, warehouse) == versions
    runs = spark.read.format("delta").load(str(warehouse / "pipeline_runs"))
    assert sorted(r["outcome"] for r in runs.collect()) == ["started"] * 2 + ["succeeded"] * 2


def test_land_lands_a_batch_and_records_its_accounting(
    spark: SparkSession, warehouse: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    batch = write_batch(tmp_path / "in", "b0.jsonl", FIRST_BATCH)

    code, out, err = run_cli(capsys, warehouse, T0, "land", "--source", str(batch))

    assert (code, out) == (0, "")
    assert "lines_read=4 landed=3 quarantined=1" in err
    assert sorted(r["order_id"] for r in landing_dicts(spark, warehouse)) == ["o1", "o2", "o3"]
    runs = spark.read.format("delta").load(str(warehouse / "pipeline_runs"))
    done = [r for r in runs.collect() if r["outcome"] == "succeeded"]
    assert len(done) == 1
    metrics = json.loads(done[0]["metrics"])
    assert metrics["lines_read"] == metrics["rows_landed"] + metrics["rows_quarantined"] == 4


def test_incremental_merges_landing_into_fct_orders(
    spark: SparkSession,
    make_ctx: ContextFactory,
    warehouse: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    land_path(make_ctx(T0), write_batch(tmp_path / "in", "b0.jsonl", FIRST_BATCH))

    code, out, err = run_cli(capsys, warehouse, T0, "incremental", "--lookback-days", "1")

    assert (code, out) == (0, "")
    assert "inserted=3 updated=0" in err
    assert fct_rows(spark, warehouse) == expected_fct(
        rows_to_versions(landing_dicts(spark, warehouse))
    )


def test_backfill_dry_run_reports_and_the_rebuild_applies_a_late_version(
    spark: SparkSession,
    merged: Path,
    make_ctx: ContextFactory,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    land_path(make_ctx(T1), write_batch(tmp_path / "in", "b1.jsonl", LATE_BATCH))
    before = fct_rows(spark, merged)
    fct_version = table_version(spark, str(merged / "fct_orders"))
    dates = ("--start-date", "2026-03-01", "--end-date", "2026-03-02")

    code, out, err = run_cli(capsys, merged, T1, "backfill", *dates, "--dry-run")

    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == [
        "order_date",
        "currency",
        "rows_now",
        "rows_rebuilt",
        "revenue_now",
        "revenue_rebuilt",
    ]
    assert [line.split() for line in lines[1:3]] == [
        ["2026-03-01", "EUR", "2", "2", "10.00", "0.00"],
        ["2026-03-02", "USD", "1", "1", "7.50", "7.50"],
    ]
    assert "would rebuild 2026-03-01..2026-03-02" in err
    assert table_version(spark, str(merged / "fct_orders")) == fct_version
    assert fct_rows(spark, merged) == before

    code, out, err = run_cli(capsys, merged, T1, "backfill", *dates)

    assert (code, out) == (0, "")
    assert fct_rows(spark, merged) == expected_fct(rows_to_versions(landing_dicts(spark, merged)))
    last = DeltaTable.forPath(spark, str(merged / "fct_orders")).history(1).first()
    assert last is not None
    assert "order_date" in last["operationParameters"]["predicate"]


def test_rollup_versions_a_revised_day_and_refuses_to_go_back_in_time(
    spark: SparkSession,
    merged: Path,
    make_ctx: ContextFactory,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert run_cli(capsys, merged, T0, "rollup")[0] == 0

    assert _revenue_rows(spark, merged) == {
        (MAR_1, "EUR", 2, Decimal("10.00"), AT_T0, None),
        (MAR_2, "USD", 1, Decimal("7.50"), AT_T0, None),
    }
    land_path(make_ctx(T1), write_batch(tmp_path / "in", "b1.jsonl", LATE_BATCH))
    run_incremental(make_ctx(T1))

    code, out, err = run_cli(capsys, merged, T1, "rollup")

    assert (code, out) == (0, "")
    assert "revisions=1" in err
    assert _revenue_rows(spark, merged) == {
        (MAR_1, "EUR", 2, Decimal("10.00"), AT_T0, AT_T1),
        (MAR_1, "EUR", 2, Decimal("0.00"), AT_T1, None),
        (MAR_2, "USD", 1, Decimal("7.50"), AT_T0, None),
    }
    current = {(r[0], r[1]): (r[2], r[3]) for r in _revenue_rows(spark, merged) if r[5] is None}
    assert current == expected_revenue(rows_to_versions(landing_dicts(spark, merged)))
    versions = _versions(spark, merged)

    code, out, err = run_cli(capsys, merged, T0, "rollup")

    assert (code, out) == (2, "")
    errors = [line for line in err.splitlines() if ": error: " in line]
    assert len(errors) == 1
    assert "--processing-time" in errors[0]
    assert _versions(spark, merged) == versions


def test_verify_passes_on_a_consistent_warehouse_and_exits_1_on_a_lost_order(
    spark: SparkSession,
    merged: Path,
    make_ctx: ContextFactory,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    rollup.run(make_ctx(T0))

    code, out, _ = run_cli(capsys, merged, T0, "verify")

    assert code == 0
    status = {line.split()[0]: line.split()[1] for line in out.splitlines() if "  " in line}
    for check in CONTRACT_CHECKS:
        assert status.get(check) == "PASS", out
    assert "FAIL" not in out

    DeltaTable.forPath(spark, str(merged / "fct_orders")).delete("order_id = 'o3'")
    code, out, err = run_cli(capsys, merged, T0, "verify", "--json")

    assert code == 1
    report = json.loads(out)
    assert report["passed"] is False
    failed = {c["name"]: c for c in report["checks"] if not c["passed"]}
    assert set(failed) == {"reconciles_with_source", "daily_revenue_matches_fct"}
    assert failed["reconciles_with_source"]["examples"] == ["2026-03-02 fct=0 source=1"]
    assert "failed: reconciles_with_source, daily_revenue_matches_fct" in err
    assert {c["name"] for c in report["checks"]} >= set(CONTRACT_CHECKS)


def test_revenue_prints_the_figures_known_at_a_time(
    spark: SparkSession,
    merged: Path,
    make_ctx: ContextFactory,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    rollup.run(make_ctx(T0))
    versions = _versions(spark, merged)

    code, out, err = run_cli(capsys, merged, T0, "revenue", "--format", "csv")

    assert code == 0
    assert out.splitlines() == [
        "order_date,currency,order_count,revenue",
        "2026-03-01,EUR,2,10.00",
        "2026-03-02,USD,1,7.50",
    ]
    assert "order_date" not in err

    code, out, _ = run_cli(
        capsys, merged, T0, "revenue", "--format", "json", "--start-date", "2026-03-02"
    )

    assert code == 0
    assert json.loads(out) == [
        {"order_date": "2026-03-02", "currency": "USD", "order_count": 1, "revenue": "7.50"}
    ]

    code, out, _ = run_cli(
        capsys, merged, T0, "revenue", "--format", "csv", "--as-of", "2026-03-02T11:59:59Z"
    )

    assert (code, out.splitlines()) == (0, ["order_date,currency,order_count,revenue"])
    assert _versions(spark, merged) == versions


def test_hourly_lands_merges_rolls_up_and_verifies_one_batch(
    spark: SparkSession, warehouse: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    retried = event("o1", "2026-03-01T10:00:00Z", amount="10.00")
    batch = write_batch(tmp_path / "in", "b0.jsonl", [*FIRST_BATCH, retried])

    code, out, err = run_cli(capsys, warehouse, T0, "hourly", "--source", str(batch))

    assert (code, out) == (0, "")
    for step in ("land", "incremental", "rollup"):
        assert f"orders-etl hourly: {step}: " in err
    assert "orders-etl hourly: verify: all checks passed" in err
    assert "landed=4 quarantined=1 inserted=3" in err
    versions = rows_to_versions(landing_dicts(spark, warehouse))
    assert fct_rows(spark, warehouse) == expected_fct(versions)
    assert _revenue_rows(spark, warehouse) == {
        (day, currency, count, revenue, AT_T0, None)
        for (day, currency), (count, revenue) in expected_revenue(versions).items()
    }


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["backfill", "--start-date", "2026-3-01"], "not a date in YYYY-MM-DD form"),
        (["backfill", "--start-date", "2026-02-30"], "not a valid date"),
        (
            ["backfill", "--start-date", "2026-03-02", "--end-date", "2026-03-01"],
            "--end-date 2026-03-01 is before --start-date 2026-03-02",
        ),
        (
            ["backfill", "--start-date", "2026-01-01", "--end-date", "2026-02-15"],
            "46 days, more than the maximum of 31",
        ),
        (["backfill", "--end-date", "2026-03-03"], "after the processing date 2026-03-02"),
        (["backfill", "--full-refresh"], "full refresh"),
        (["maintain", "--end-date", "2026-03-32"], "not a valid date"),
        (["maintain", "--start-date", "2026-3-01"], "not a date in YYYY-MM-DD form"),
        (
            ["maintain", "--start-date", "2026-03-02", "--end-date", "2026-03-01"],
            "maintain refused: --end-date 2026-03-01 is before --start-date 2026-03-02",
        ),
        (
            ["maintain", "--start-date", "2026-01-01", "--end-date", "2026-02-15"],
            "46 days, more than the maximum of 31",
        ),
        (["maintain", "--end-date", "2026-03-03"], "after the processing date 2026-03-02"),
        (["verify", "--start-date", "2026-03-02", "--end-date", "2026-03-01"], "before"),
        (["revenue", "--format", "xml"], "--format must be one of"),
        (["incremental", "--lookback-days", "-1"], "--lookback-days must be a whole number"),
        (["hourly", "--source", "/no/such/batch"], "does not exist"),
        (["migrate", "--env", "no-such-env"], "no config for --env 'no-such-env'"),
        (["migrate", "--processing-time", "2026-03-02T12:00:00"], "has no time zone"),
        (["migrate", "--warehouse", "/"], "it is the file system root"),
    ],
)
def test_bad_arguments_exit_2_with_one_line_before_spark_starts(
    argv: list[str],
    message: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def must_not_run(*args: Any, **kwargs: Any) -> int:
        raise AssertionError("the command ran: the argument was not refused before Spark")

    monkeypatch.setattr("orders_etl.runner.execute", must_not_run)
    root = tmp_path / "wh"
    # The case's own flags come last, so they win over these defaults.
    defaults = ["--warehouse", str(root), "--processing-time", T0]

    code = cli.main([argv[0], *defaults, *argv[1:]])
    out, err = capsys.readouterr()

    assert (code, out) == (2, "")
    lines = err.splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(f"orders-etl {argv[0]}: error: ")
    assert message in lines[0]
    assert not root.exists()


def test_maintain_and_backfill_share_one_date_policy_with_their_own_default_length() -> None:
    today = date(2026, 3, 12)
    at = ["--warehouse", "/tmp/unused", "--processing-time", "2026-03-12T06:00:00Z"]
    maintain = cli.prepare(["maintain", *at]).params
    assert (maintain.start, maintain.end) == (date(2026, 3, 6), today)
    backfill = cli.prepare(["backfill", *at]).params
    assert (backfill.start, backfill.end) == (date(2026, 2, 27), today)
    # a start alone: the default length from there, never past the processing date
    assert guarded_range("maintain", "2026-03-01", None, today, 7, 31) == (
        date(2026, 3, 1),
        date(2026, 3, 7),
    )
    assert guarded_range("maintain", "2026-03-10", None, today, 7, 31) == (
        date(2026, 3, 10),
        today,
    )


@pytest.mark.parametrize(
    "argv",
    [
        ["backfill", "--start-date", "2026-03-10", "--end-date", "2026-03-01"],
        ["land", "--source", "/no/such/batch.jsonl", "--processing-time", "2026-03-02T12:00"],
    ],
)
def test_the_console_script_refuses_bad_arguments_without_starting_a_jvm(
    argv: list[str], tmp_path: Path
) -> None:
    root, logs = tmp_path / "wh", tmp_path / "spark-logs"
    script = Path(sys.executable).parent / "orders-etl"
    env = {"PATH": "/usr/bin:/bin", "ORDERS_ETL_LOG_DIR": str(logs), "JAVA_HOME": "/no/java"}
    started = time.monotonic()

    done = subprocess.run(
        [str(script), *argv, "--warehouse", str(root)],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=tmp_path,
        check=False,
    )

    assert time.monotonic() - started < 10
    assert (done.returncode, done.stdout) == (2, "")
    assert len(done.stderr.splitlines()) == 1
    assert done.stderr.startswith(f"orders-etl {argv[0]}: error: ")
    assert not root.exists()
    assert not logs.exists()


def test_py4j_root_tracebacks_are_dropped_and_everything_else_kept() -> None:
    """py4j logs a lost JVM's failed call with `logging.exception` on the root logger; the
    command's one error line replaces it (tests/test_large_batches.py kills the JVM)."""
    import logging

    import py4j.java_gateway

    def record(name: str, pathname: str) -> logging.LogRecord:
        return logging.LogRecord(
            name, logging.ERROR, pathname, 1, "Exception while sending command.", None, None
        )

    assert not cli.drop_py4j_root_records(record("root", py4j.java_gateway.__file__))
    assert cli.drop_py4j_root_records(record("root", cli.__file__))
    assert cli.drop_py4j_root_records(record("orders_etl.runner", py4j.java_gateway.__file__))
