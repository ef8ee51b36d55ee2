"""Delta tests of `maintain`, on a warehouse made the way the code made it before only
`fct_orders` had deletion vectors: every table with them on, and deletion vectors written by the
MERGEs of `incremental` and `rollup`. `migrate`, then `maintain` twice through the CLI: no row
of any table changes, small files are compacted, deletion vectors stay only in `fct_orders`,
and delta-rs reads every table."""

from __future__ import annotations

import io
import json
from collections import Counter
from collections.abc import Iterator
from contextlib import redirect_stderr
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pyarrow as pa
import pytest
from deltalake import DeltaTable as RustDeltaTable
from deltalake import QueryBuilder
from pyspark.sql import SparkSession

from orders_etl import cli
from orders_etl.config import CONF_DIR_VARIABLE
from orders_etl.context import RunContext
from orders_etl.io.tables import TABLES, Warehouse, create_table
from orders_etl.pipeline import migrate, rollup, verify
from orders_etl.pipeline.maintain import MAINTAINED, feed_retention_hours
from orders_etl.schemas import FCT_ORDERS_COLUMNS
from tests.conftest import make_config
from tests.helpers import (
    commit_actions,
    event,
    land_path,
    live_files,
    recorded,
    run_incremental,
    write_batch,
)

P1 = datetime(2026, 3, 10, 6, tzinfo=UTC)
P2 = datetime(2026, 3, 11, 6, tzinfo=UTC)
# maintain's processing time: its default range is the 7 days 2026-03-06..2026-03-12.
P3 = datetime(2026, 3, 12, 6, tzinfo=UTC)
OUTSIDE_RANGE = "order_date=2026-03-01"
BATCH_1 = [
    event("o1", "2026-03-09T10:00:00Z", amount="10.00"),
    event("o2", "2026-03-09T11:00:00Z", status="cancelled", amount="4.00"),
    event("o3", "2026-03-10T00:00:00Z", amount="7.50", currency="USD"),
    event("o4", "2026-03-10T05:00:00Z", status="placed", amount="3.00"),
    event("o5", "2026-03-01T12:00:00Z", amount="8.00", currency="USD"),
    "not json",
]
BATCH_2 = [
    # o1 moves to 2026-03-10: half of 2026-03-09's only file is deleted (a deletion vector
    # that no longer pays, in a file OPTIMIZE leaves alone)
    event("o1", "2026-03-10T09:00:00Z", status="shipped", amount="10.00"),
    # an update and a late order on 2026-03-10: more small files there
    event("o3", "2026-03-10T08:00:00Z", status="refunded", amount="7.50", currency="USD"),
    event("o6", "2026-03-10T12:00:00Z", amount="6.00"),
    # a second small file on 2026-03-01, outside maintain's range: it must stay as it is
    event("o7", "2026-03-01T18:00:00Z", amount="1.00"),
    event("o8", "2026-03-11T01:00:00Z", amount="2.00", currency="GBP"),
]
OTHER_TABLES = tuple(t for t in MAINTAINED if t != "fct_orders")
TEST_TOML = """
[warehouse]
root = "./unused"

[maintain]
days = 7
retention_hours = 168

[retries]
attempts = 4
backoff_seconds = 0.1
"""

Rows = list[tuple[Any, ...]]


@dataclass(frozen=True)
class Maintained:
    """The legacy warehouse before and after each of two `maintain` runs."""

    root: Path
    stopped: list[str]
    rows_before: dict[str, Rows]
    files_before: dict[str, dict[str, dict[str, Any]]]
    rows_after: list[dict[str, Rows]]
    files_after: list[dict[str, dict[str, dict[str, Any]]]]
    runs: list[dict[str, Any]]
    stderr: list[str]


def _plain(value: Any) -> Any:
    """A value as Spark hands it to this (TZ=UTC) process: UTC times without a zone."""
    if isinstance(value, datetime) and value.tzinfo is not None:
        return value.astimezone(UTC).replace(tzinfo=None)
    return value


def _sorted(rows: Rows) -> Rows:
    return sorted(rows, key=repr)


def spark_rows(spark: SparkSession, root: Path, table: str) -> Rows:
    """Every row of a table as Spark reads it, in a stable order."""
    df = spark.read.format("delta").load(str(root / table))
    return _sorted([tuple(r) for r in df.collect()])


def arrow_rows(table: pa.Table) -> Rows:
    """Every row of an Arrow table, in Spark's terms and the same stable order."""
    return _sorted(
        [tuple(_plain(v) for v in row.values()) for row in table.to_pylist()],
    )


def _with_deletion_vectors(spec: Any) -> Any:
    """A table spec as the code created it before: deletion vectors on."""
    return replace(
        spec,
        properties=MappingProxyType({**spec.properties, "delta.enableDeletionVectors": "true"}),
    )


def _maintain(root: Path) -> str:
    """Run `orders-etl maintain` in-process at P3; return its stderr."""
    err = io.StringIO()
    with redirect_stderr(err):
        argv = ["maintain", "--env", "test", "--warehouse", str(root)]
        code = cli.main([*argv, "--processing-time", P3.isoformat()])
    assert code == 0, err.getvalue()
    return err.getvalue()


@pytest.fixture(scope="module")
def maintained(
    spark: SparkSession, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Maintained]:
    """Build the legacy warehouse (two hourly rounds), migrate it, maintain it twice."""
    root = tmp_path_factory.mktemp("maintain") / "warehouse"
    for spec in TABLES:
        create_table(spark, Warehouse(str(root)), _with_deletion_vectors(spec))
    config = make_config(root)
    for k, (moment, lines) in enumerate(((P1, BATCH_1), (P2, BATCH_2))):
        batch = write_batch(root.parent / "batches", f"b{k}.jsonl", lines)
        for command, action in (
            ("land", partial(land_path, path=batch)),
            ("incremental", run_incremental),
            ("rollup", rollup.run),
        ):
            ctx = RunContext(config, moment, f"legacy-{k}-{command}", spark=spark)
            recorded(ctx, command, action)
    rows_before = {t: spark_rows(spark, root, t) for t in MAINTAINED}
    files_before = {t: live_files(root / t) for t in MAINTAINED}
    migrated = recorded(RunContext(config, P3, "migrate", spark=spark), "migrate", migrate.run)
    conf = root.parent / "conf"
    conf.mkdir()
    (conf / "test.toml").write_text(TEST_TOML, encoding="utf-8")
    rows_after, files_after, stderr = [], [], []
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(CONF_DIR_VARIABLE, str(conf))
        for _ in range(2):
            stderr.append(_maintain(root))
            rows_after.append({t: spark_rows(spark, root, t) for t in MAINTAINED})
            files_after.append({t: live_files(root / t) for t in MAINTAINED})
    ledger = spark.read.format("delta").load(str(root / "pipeline_runs"))
    runs = [
        json.loads(r["metrics"])
        for r in ledger.filter("command = 'maintain' AND outcome = 'succeeded'")
        .orderBy("started_at")
        .collect()
    ]
    yield Maintained(
        root,
        migrated.metrics["deletion_vectors_stopped"],
        rows_before,
        files_before,
        rows_after,
        files_after,
        runs,
        stderr,
    )


def _has_deletion_vector(add: dict[str, Any]) -> bool:
    return add.get("deletionVector") is not None


def _deleted_share(add: dict[str, Any]) -> float:
    rows = int(json.loads(add["stats"])["numRecords"])
    return float(add["deletionVector"]["cardinality"]) / rows


@pytest.mark.slow
def test_the_legacy_warehouse_has_deletion_vectors_where_the_old_code_wrote_them(
    maintained: Maintained,
) -> None:
    before = maintained.files_before
    assert any(_has_deletion_vector(a) for a in before["daily_revenue"].values())
    assert any(_has_deletion_vector(a) for a in before["fct_orders"].values())
    for table in MAINTAINED:
        creation = commit_actions(maintained.root / table, 0)
        (created,) = [a["protocol"] for a in creation if "protocol" in a]
        assert "deletionVectors" in created.get("readerFeatures", []), table
    # migrate stops new deletion vectors everywhere but in fct_orders
    assert sorted(maintained.stopped) == sorted(OTHER_TABLES)


@pytest.mark.slow
def test_maintain_changes_no_row_of_any_table(maintained: Maintained) -> None:
    for after in maintained.rows_after:
        for table in MAINTAINED:
            if table == "pipeline_runs":
                continue
            assert after[table] == maintained.rows_before[table], table
    # The ledger only gains the rows of the migrate and maintain runs themselves.
    ledger_before = Counter(maintained.rows_before["pipeline_runs"])
    for after in maintained.rows_after:
        ledger_after = Counter(after["pipeline_runs"])
        assert not ledger_before - ledger_after
        assert {row[1] for row in ledger_after - ledger_before} == {"migrate", "maintain"}


@pytest.mark.slow
def test_maintain_compacts_recent_fct_orders_days_and_purges_what_no_longer_pays(
    maintained: Maintained,
) -> None:
    fct = maintained.runs[0]["tables"]["fct_orders"]
    assert fct["files_after"] < fct["files_before"]
    assert fct["optimize_files_removed"] > fct["optimize_files_added"] > 0
    # 2026-03-09's only file, half deleted: rewritten by the purge, without its vector
    assert fct["purge_files_rewritten"] == 1
    assert fct["deletion_vectors_removed"] >= 1
    assert fct["deletion_vectors_feature_dropped"] is False
    files = maintained.files_after[0]["fct_orders"]
    assert all(_deleted_share(a) <= 0.05 for a in files.values() if _has_deletion_vector(a))
    # outside the range nothing was touched
    outside = {p for p in maintained.files_before["fct_orders"] if p.startswith(OUTSIDE_RANGE)}
    assert len(outside) == 2
    assert {p for p in files if p.startswith(OUTSIDE_RANGE)} == outside
    assert fct["vacuum_retention_hours"] == 168


@pytest.mark.slow
def test_only_fct_orders_keeps_deletion_vectors_and_delta_rs_reads_every_table(
    spark: SparkSession, maintained: Maintained
) -> None:
    root = maintained.root
    for table in OTHER_TABLES:
        rust = RustDeltaTable(str(root / table))
        protocol = rust.protocol()
        assert protocol.min_reader_version == 1, (table, protocol)
        assert not protocol.reader_features, (table, protocol)
        assert maintained.runs[0]["tables"][table]["deletion_vectors_feature_dropped"] is True
        assert not any(_has_deletion_vector(a) for a in live_files(root / table).values())
        assert arrow_rows(rust.to_pyarrow_table()) == spark_rows(spark, root, table), table
    fct = RustDeltaTable(str(root / "fct_orders"))
    assert "deletionVectors" in (fct.protocol().reader_features or [])
    columns = ", ".join(FCT_ORDERS_COLUMNS)
    result = QueryBuilder().register("fct", fct).execute(f"SELECT {columns} FROM fct").read_all()
    fct_df = spark.read.format("delta").load(str(root / "fct_orders")).select(*FCT_ORDERS_COLUMNS)
    assert arrow_rows(pa.table(result)) == _sorted([tuple(r) for r in fct_df.collect()])


@pytest.mark.slow
def test_the_ledger_row_holds_files_and_bytes_per_table_and_what_delta_reported(
    maintained: Maintained,
) -> None:
    first = maintained.runs[0]
    assert (first["start"], first["end"]) == ("2026-03-06", "2026-03-12")
    assert set(first["tables"]) == set(MAINTAINED)
    for table, upkeep in first["tables"].items():
        assert upkeep["files_before"] >= upkeep["files_after"], table
        assert upkeep["bytes_before"] > 0 or table == "orders_quarantine", table
        assert upkeep["vacuum_files_deleted"] == 0, table  # nothing is a week old yet
        assert upkeep["vacuum_retention_hours"] == 168, table
        assert upkeep["commits"], table
    assert first["files_after"] < first["files_before"]
    assert first["tables"]["daily_revenue"]["deletion_vectors_removed"] >= 1
    (summary,) = [line for line in maintained.stderr[0].splitlines() if "succeeded" in line]
    assert f"files {first['files_before']} -> {first['files_after']} in 6 table(s)" in summary
    assert "feature dropped from daily_revenue, orders_landing" in summary


@pytest.mark.slow
def test_a_second_maintain_changes_nothing_material(maintained: Maintained) -> None:
    second = maintained.runs[1]["tables"]
    for table in MAINTAINED:
        upkeep = second[table]
        assert upkeep["purge_files_rewritten"] == upkeep["deletion_vectors_removed"] == 0, table
        assert upkeep["deletion_vectors_feature_dropped"] is False, table
        if table == "pipeline_runs":
            continue  # the ledger rows of the runs themselves are new small files
        assert upkeep["optimize_files_added"] == upkeep["optimize_files_removed"] == 0, table
        assert upkeep["files_before"] == upkeep["files_after"], table
        assert set(maintained.files_after[1][table]) == set(maintained.files_after[0][table])


@pytest.mark.slow
def test_verify_passes_after_maintain(spark: SparkSession, maintained: Maintained) -> None:
    ctx = RunContext(make_config(maintained.root), P3, "verify-after-maintain", spark=spark)
    result = verify.run(ctx, verify.VerifyParams())
    assert result.exit_code == 0, result.summary()
    assert all(c["passed"] for c in result.metrics["checks"])


def test_fct_orders_retention_covers_the_change_feed_the_next_rollup_reads() -> None:
    now = datetime(2026, 3, 20, 12, 0, tzinfo=UTC)
    assert feed_retention_hours(168, None, now) == 168
    assert feed_retention_hours(168, now - timedelta(hours=10), now) == 168
    assert feed_retention_hours(168, now - timedelta(hours=192, minutes=30), now) == 194
    assert feed_retention_hours(200, now - timedelta(hours=199), now) == 200
    assert feed_retention_hours(168, now - timedelta(hours=200), now) == 201


def test_a_retention_below_delta_s_check_is_a_config_error_before_spark_starts(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    no_spark: None,
) -> None:
    conf = tmp_path / "conf"
    conf.mkdir()
    (conf / "short.toml").write_text(
        TEST_TOML.replace("retention_hours = 168", "retention_hours = 24"), encoding="utf-8"
    )
    monkeypatch.setenv(CONF_DIR_VARIABLE, str(conf))
    root = tmp_path / "wh"

    code = cli.main(["maintain", "--env", "short", "--warehouse", str(root)])

    out, err = capsys.readouterr()
    assert (code, out) == (2, "")
    (line,) = err.splitlines()
    assert line.startswith("orders-etl maintain: error: ")
    assert "retention_hours must be at least 168" in line
    assert "got 24" in line
    assert not root.exists()
