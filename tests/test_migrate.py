"""Delta tests of `migrate`: every contract table on an empty warehouse, and the in-place
migration of an `orders_landing` that another Delta writer created before this project."""

from __future__ import annotations

import json
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import arro3.core as ac
import pytest
from deltalake import DeltaTable as RustDeltaTable
from deltalake import write_deltalake
from pyspark.errors import AnalysisException
from pyspark.sql import SparkSession

from orders_etl.io.tables import (
    CHANGE_FEED_PROPERTY,
    TABLES,
    TABLES_BY_NAME,
    Warehouse,
    create_table,
    table_exists,
    table_property,
    table_version,
)
from orders_etl.pipeline import migrate
from orders_etl.schemas import FCT_ORDERS_COLUMNS
from tests.conftest import ContextFactory
from tests.helpers import event, fct_rows, land_path, landing_dicts, run_incremental, write_batch
from tests.reference import expected_fct, rows_to_versions

# The contract's columns (CONTRACT.md section 2), written out here rather than imported, so a
# schema constant that drifts from the contract fails these tests.
_SIX = {
    "order_id": "string",
    "customer_id": "string",
    "status": "string",
    "amount": "decimal(18,2)",
    "currency": "string",
    "event_time": "timestamp",
}
CONTRACT_COLUMNS: dict[str, dict[str, str]] = {
    "orders_landing": {
        **_SIX,
        "event_ingested_at": "timestamp",
        "source_file": "string",
        "run_id": "string",
    },
    "orders_quarantine": {
        "raw": "string",
        "reason": "string",
        "source_file": "string",
        "line_number": "bigint",
        "event_ingested_at": "timestamp",
        "run_id": "string",
    },
    "fct_orders": {**_SIX, "event_ingested_at": "timestamp", "order_date": "date"},
    "daily_revenue": {
        "order_date": "date",
        "currency": "string",
        "order_count": "bigint",
        "as_of": "timestamp",
        "superseded_at": "timestamp",
    },
}
ADDED_COLUMNS = ["event_ingested_at", "source_file", "run_id", "source_sha256", "line_number"]
NOW = "2026-03-02T12:00:00Z"
NOTHING_TO_DO: dict[str, list[str]] = {
    "tables_created": [],
    "landing_columns_added": [],
    "deletion_vectors_stopped": [],
}


def _write_legacy_landing(path: Path) -> None:
    """Create `orders_landing` as another Delta writer (delta-rs) would: six columns, no
    partitioning, event_time a UTC timestamp."""
    text = ac.DataType.string()
    table = ac.Table.from_pydict(
        {
            "order_id": ac.Array(["o1", "o2"], type=text),
            "customer_id": ac.Array(["c1", "c2"], type=text),
            "status": ac.Array(["paid", "placed"], type=text),
            "amount": ac.Array(["10.00", "7.50"], type=text).cast(ac.DataType.decimal128(18, 2)),
            "currency": ac.Array(["EUR", "USD"], type=text),
            # 2026-03-01T10:00:00Z and 2026-03-01T11:00:00Z, in microseconds
            "event_time": ac.Array(
                [1_772_359_200_000_000, 1_772_362_800_000_000], type=ac.DataType.int64()
            ).cast(ac.DataType.timestamp("us", tz="UTC")),
        }
    )
    write_deltalake(str(path), table)


def _live_files(path: Path) -> set[str]:
    """The data files of the table's current snapshot, by the Delta log."""
    return {Path(uri.removeprefix("file://")).name for uri in RustDeltaTable(str(path)).file_uris()}


def _partition_columns(path: Path) -> list[str]:
    """The table's partition columns, by the Delta log (no Spark job)."""
    return list(RustDeltaTable(str(path)).metadata().partition_columns)


def _commit_actions(path: Path, version: int) -> set[str]:
    """The kinds of action (add, remove, metaData, ...) recorded in one commit."""
    log = path / "_delta_log" / f"{version:020d}.json"
    return {key for line in log.read_text().splitlines() if line for key in json.loads(line)}


def test_migrate_on_an_empty_warehouse_creates_every_contract_table(
    spark: SparkSession, make_ctx: ContextFactory, warehouse: Path
) -> None:
    result = migrate.run(make_ctx(NOW))

    assert sorted(result.metrics["tables_created"]) == sorted(t.name for t in TABLES)
    assert result.metrics["landing_columns_added"] == []
    for table, columns in CONTRACT_COLUMNS.items():
        schema = spark.read.format("delta").load(str(warehouse / table)).schema
        types = {f.name: f.dataType.simpleString() for f in schema.fields}
        assert {name: types.get(name) for name in columns} == columns, table
    revenue = spark.read.format("delta").load(str(warehouse / "daily_revenue")).schema
    assert revenue["revenue"].dataType.simpleString().endswith(",2)")
    partitions = {t.name: _partition_columns(warehouse / t.name) for t in TABLES}
    assert partitions["fct_orders"] == ["order_date"]
    assert all(cols == [] for name, cols in partitions.items() if name != "fct_orders")

    # Only fct_orders has deletion vectors; a reader without them (delta-rs) opens the others.
    for t in TABLES:
        protocol = RustDeltaTable(str(warehouse / t.name)).protocol()
        if t.name == "fct_orders":
            assert "deletionVectors" in (protocol.reader_features or []), protocol
            continue
        assert protocol.min_reader_version == 1, (t.name, protocol)
        assert not protocol.reader_features, (t.name, protocol)
        assert "deletionVectors" not in (protocol.writer_features or []), (t.name, protocol)
        assert RustDeltaTable(str(warehouse / t.name)).to_pyarrow_table().num_rows == 0

    versions = {t.name: table_version(spark, str(warehouse / t.name)) for t in TABLES}
    again = migrate.run(make_ctx(NOW))
    assert again.metrics == NOTHING_TO_DO
    assert {t.name: table_version(spark, str(warehouse / t.name)) for t in TABLES} == versions


def test_migrate_adds_the_missing_columns_to_a_legacy_landing_in_place(
    spark: SparkSession, make_ctx: ContextFactory, warehouse: Path
) -> None:
    landing = warehouse / "orders_landing"
    _write_legacy_landing(landing)
    files_before = _live_files(landing)
    assert len(files_before) == 1

    result = migrate.run(make_ctx(NOW))

    assert result.metrics["landing_columns_added"] == ADDED_COLUMNS
    assert "orders_landing" not in result.metrics["tables_created"]
    version = table_version(spark, str(landing))
    assert version == 2
    # Two metadata-only commits (the columns, then the change data feed turned on, a writer
    # feature, so the protocol too): no data file added, removed or rewritten.
    assert _commit_actions(landing, 1) == {"commitInfo", "metaData"}
    assert _commit_actions(landing, 2) == {"commitInfo", "metaData", "protocol"}
    assert table_property(spark, str(landing), CHANGE_FEED_PROPERTY) == "true"
    assert _live_files(landing) == files_before
    landing_df = spark.read.format("delta").load(str(landing))
    assert {Path(f).name for f in landing_df.inputFiles()} == files_before
    assert all(landing_df.schema[name].nullable for name in ADDED_COLUMNS)
    assert {name: landing_df.schema[name].dataType.simpleString() for name in ADDED_COLUMNS} == {
        "event_ingested_at": "timestamp",
        "source_file": "string",
        "run_id": "string",
        "source_sha256": "string",
        "line_number": "bigint",
    }
    assert _partition_columns(landing) == []
    rows = sorted(landing_dicts(spark, warehouse), key=lambda r: r["order_id"])
    assert rows == [
        {
            "order_id": "o1",
            "customer_id": "c1",
            "status": "paid",
            "amount": Decimal("10.00"),
            "currency": "EUR",
            "event_time": datetime(2026, 3, 1, 10, 0),
            **dict.fromkeys(ADDED_COLUMNS),
        },
        {
            "order_id": "o2",
            "customer_id": "c2",
            "status": "placed",
            "amount": Decimal("7.50"),
            "currency": "USD",
            "event_time": datetime(2026, 3, 1, 11, 0),
            **dict.fromkeys(ADDED_COLUMNS),
        },
    ]

    again = migrate.run(make_ctx(NOW))
    assert again.metrics == NOTHING_TO_DO
    assert table_version(spark, str(landing)) == version
    assert _live_files(landing) == files_before


def test_land_and_incremental_on_a_migrated_legacy_landing(
    spark: SparkSession, make_ctx: ContextFactory, warehouse: Path, tmp_path: Path
) -> None:
    landing = warehouse / "orders_landing"
    _write_legacy_landing(landing)
    legacy_files = _live_files(landing)
    migrate.run(make_ctx(NOW))
    batch = write_batch(
        tmp_path / "in",
        "b1.jsonl",
        [
            event("o1", "2026-03-01T12:00:00Z", status="shipped"),
            event("o3", "2026-03-02T09:00:00+01:00", currency="USD"),
        ],
    )

    landed = land_path(make_ctx(NOW), batch)

    assert (landed.metrics["rows_landed"], landed.metrics["rows_quarantined"]) == (2, 0)
    assert legacy_files < _live_files(landing)
    rows = {r["order_id"] + "/" + r["status"]: r for r in landing_dicts(spark, warehouse)}
    assert sorted(rows) == ["o1/paid", "o1/shipped", "o2/placed", "o3/paid"]
    assert rows["o2/placed"]["event_ingested_at"] is None
    assert rows["o1/shipped"]["event_ingested_at"] == datetime(2026, 3, 2, 12, 0)
    assert rows["o1/shipped"]["source_file"] == str(batch.resolve())
    assert rows["o3/paid"]["line_number"] == 2

    merged = run_incremental(make_ctx(NOW))

    assert merged.metrics["inserted"] == 3
    expected = expected_fct(rows_to_versions(landing_dicts(spark, warehouse)))
    assert fct_rows(spark, warehouse) == expected
    o2 = next(dict(zip(FCT_ORDERS_COLUMNS, r, strict=True)) for r in expected if r[0] == "o2")
    # A row without a stamp counts as on time: effective_ingested_at = event_time.
    assert o2["event_ingested_at"] is None
    assert o2["effective_ingested_at"] == o2["event_time"] == datetime(2026, 3, 1, 11, 0)

    fct_version = table_version(spark, str(warehouse / "fct_orders"))
    again = run_incremental(make_ctx(NOW))
    assert (again.metrics["inserted"], again.metrics["updated"]) == (0, 0)
    assert table_version(spark, str(warehouse / "fct_orders")) == fct_version
    assert fct_rows(spark, warehouse) == expected


def test_a_table_another_process_created_is_seen_and_not_created_again(
    spark: SparkSession, warehouse: Path
) -> None:
    """This JVM looks at a path first (its Delta log cache now says "no table"); another
    writer then creates the table there. The next look sees it, and creating it is a no-op:
    two runs racing to create a warehouse table both end up using the one that won."""
    path = warehouse / "orders_landing"
    path.mkdir()
    with pytest.raises(AnalysisException, match="DELTA_TABLE_NOT_FOUND"):
        spark.read.format("delta").load(str(path))
    assert not table_exists(spark, str(path))
    _write_legacy_landing(path)

    assert table_exists(spark, str(path))
    assert create_table(spark, Warehouse(str(warehouse)), TABLES_BY_NAME["orders_landing"]) is False
    assert table_version(spark, str(path)) == 0
    assert len(RustDeltaTable(str(path)).file_uris()) == 1
