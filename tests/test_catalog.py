"""The optional catalog (`[catalog] database`): `migrate` registers every table as
`<database>.<table>` at its warehouse path and the view `<database>.daily_revenue_current`;
reruns change nothing; a name that points elsewhere refuses the run with nothing written; a bad
name fails before Spark; a path-only config is as before.

The registering runs are real `orders-etl` processes on Spark's embedded Derby metastore (one JVM
at a time), inspected by a probe process (`tests/catalog_probe.py`); they are marked slow.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from deltalake import DeltaTable as RustDeltaTable
from deltalake import QueryBuilder
from pyspark.sql import SparkSession

from orders_etl import cli
from orders_etl.config import CatalogSettings, load_config
from orders_etl.io.catalog import CURRENT_VIEW, current_view_sql
from orders_etl.io.tables import TABLES
from orders_etl.session import CATALOG_FOLDER, catalog_conf, local_catalog_dir
from tests.catalog_probe import ENV_NAME, probe, run_etl, write_conf
from tests.conftest import SparkTouched
from tests.helpers import last_version

T0 = "2026-03-02T12:00:00Z"
TABLE_NAMES = sorted(t.name for t in TABLES)
DATA_TABLES = sorted(set(TABLE_NAMES) - {"pipeline_runs"})
VIEW_COLUMNS = ["order_date", "currency", "order_count", "revenue", "as_of"]


def finished(warehouse: Path) -> list[dict[str, Any]]:
    """The run ledger's outcome rows, oldest first, metrics decoded; read by another Delta
    reader (delta-rs), so no Spark session is needed."""
    table = (
        QueryBuilder()
        .register("runs", RustDeltaTable(str(warehouse / "pipeline_runs")))
        .execute("SELECT outcome, metrics FROM runs WHERE outcome <> 'started' ORDER BY ended_at")
        .read_all()
    )
    outcomes, metrics = table.column("outcome").to_pylist(), table.column("metrics").to_pylist()
    return [
        {"outcome": o, "metrics": json.loads(m or "{}")}
        for o, m in zip(outcomes, metrics, strict=True)
    ]


def versions(warehouse: Path, tables: list[str]) -> dict[str, int]:
    """The latest commit of each table, from its Delta log (no Spark)."""
    return {t: last_version(warehouse / t) for t in tables}


def location(path: Path) -> str:
    """A local folder as the catalog spells a table location."""
    return f"file:{path}"


@pytest.fixture(autouse=True)
def _no_outside_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep the runner's environment out of the tests: default env, no revision webhook."""
    monkeypatch.delenv("ORDERS_ETL_ENV", raising=False)
    monkeypatch.delenv("ORDERS_ETL_REVISION_WEBHOOK", raising=False)


# --- config and session settings: no Spark -----------------------------------------------------


@pytest.mark.parametrize("database", ["orders", "Orders_2", "_staging", "o" * 128])
def test_a_plain_identifier_is_a_catalog_database(tmp_path: Path, database: str) -> None:
    write_conf(tmp_path, database)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("ORDERS_ETL_CONF_DIR", str(tmp_path))
        config = load_config(ENV_NAME, str(tmp_path / "warehouse"))

    assert config.catalog == CatalogSettings(database=database)


def test_an_empty_or_missing_database_means_path_only(tmp_path: Path) -> None:
    write_conf(tmp_path, "")
    (tmp_path / "bare.toml").write_text('[warehouse]\nroot = "./w"\n', encoding="utf-8")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("ORDERS_ETL_CONF_DIR", str(tmp_path))
        empty = load_config(ENV_NAME)
        missing = load_config("bare")

    assert empty.catalog == missing.catalog == CatalogSettings(database="")
    assert load_config("local").catalog.database == ""
    assert load_config("prod").catalog.database == ""


BAD_DATABASES = [
    "orders; DROP DATABASE x",
    "orders.fct",
    "`orders`",
    "1orders",
    "ord-ers",
    "ord ers",
    "orders'",
    "ordérs",
    "o" * 129,
]


@pytest.mark.parametrize("database", BAD_DATABASES)
@pytest.mark.usefixtures("no_spark")
def test_a_bad_database_name_fails_before_spark_with_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], database: str
) -> None:
    conf = write_conf(tmp_path / "conf", database)
    warehouse = tmp_path / "warehouse"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("ORDERS_ETL_CONF_DIR", str(conf))
        code = cli.main(["migrate", "--env", ENV_NAME, "--warehouse", str(warehouse)])

    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1
    assert "[catalog] database must be a plain SQL identifier" in err[0]
    assert repr(database) in err[0]
    assert not warehouse.exists()


@pytest.mark.usefixtures("no_spark")
def test_a_database_that_is_not_a_string_fails_before_spark(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "num.toml").write_text("[catalog]\ndatabase = 42\n", encoding="utf-8")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("ORDERS_ETL_CONF_DIR", str(tmp_path))
        code = cli.main(["migrate", "--env", "num", "--warehouse", str(tmp_path / "w")])

    assert code == 2
    assert "got 42" in capsys.readouterr().err


def test_the_embedded_metastore_lives_in_the_warehouse_catalog_folder(tmp_path: Path) -> None:
    root = tmp_path / "warehouse"
    folder = root / CATALOG_FOLDER

    assert local_catalog_dir(str(root)) == local_catalog_dir(f"file://{root}") == folder
    assert catalog_conf(str(root)) == {
        "spark.sql.catalogImplementation": "hive",
        "spark.hadoop.javax.jdo.option.ConnectionURL": (
            f"jdbc:derby:;databaseName={folder}/metastore_db;create=true"
        ),
        "spark.sql.warehouse.dir": f"{folder}/databases",
        "spark.hadoop.hive.downloaded.resources.dir": f"{folder}/resources",
    }
    # A remote warehouse uses the cluster's metastore (Hive, Glue): no local Derby.
    assert local_catalog_dir("s3a://bucket/warehouse") is None
    assert catalog_conf("s3a://bucket/warehouse") == {"spark.sql.catalogImplementation": "hive"}


def test_only_migrate_opens_the_catalog_and_only_when_one_is_configured(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Every other command works by path: it never starts a metastore client, so it runs
    while a Thrift server holds the embedded metastore, and two can run at once."""
    opened: list[tuple[str, str | None]] = []
    command = ""

    def fake_get_spark(settings: Any, verbose: bool = False, catalog_root: Any = None) -> Any:
        opened.append((command, catalog_root))
        raise SparkTouched("stop here")

    monkeypatch.setattr("orders_etl.context.get_spark", fake_get_spark)
    conf = write_conf(tmp_path / "conf", "orders")
    (conf / "pathonly.toml").write_text('[warehouse]\nroot = "./w"\n', encoding="utf-8")
    monkeypatch.setenv("ORDERS_ETL_CONF_DIR", str(conf))
    warehouse = str(tmp_path / "warehouse")
    for command, env in [
        ("migrate", ENV_NAME),
        ("rollup", ENV_NAME),
        ("verify", ENV_NAME),
        ("revenue", ENV_NAME),
        ("migrate", "pathonly"),
    ]:
        assert cli.main([command, "--env", env, "--warehouse", warehouse]) == 3
    capsys.readouterr()

    assert [root for c, root in opened if c == "migrate"] == [warehouse] * 2 + [None] * 2
    assert {root for c, root in opened if c != "migrate"} == {None}


# --- in-process, on the suite's session (in-memory catalog) -------------------------------------


def test_path_only_migrate_is_unchanged(
    spark: SparkSession, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    warehouse = tmp_path / "warehouse"

    code = cli.main(["migrate", "--warehouse", str(warehouse), "--processing-time", T0])

    err = capsys.readouterr().err
    assert code == 0, err
    assert "registered" not in err
    assert sorted(p.name for p in warehouse.iterdir()) == TABLE_NAMES
    assert not (tmp_path / "metastore_db").exists()
    (done,) = finished(warehouse)
    # pipeline_runs is the ledger's: it exists before migrate runs.
    created = [t.name for t in TABLES if t.name != "pipeline_runs"]
    assert done["metrics"] == {
        "tables_created": created,
        "landing_columns_added": [],
        "deletion_vectors_stopped": [],
    }
    assert spark.conf.get("spark.sql.catalogImplementation") == "in-memory"


def test_a_catalog_on_a_session_without_one_refuses_before_any_table(
    spark: SparkSession, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The suite's session has Spark's in-memory catalog: names there would end with the run."""
    conf = write_conf(tmp_path / "conf", "orders")
    warehouse = tmp_path / "warehouse"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("ORDERS_ETL_CONF_DIR", str(conf))
        argv = ["migrate", "--env", ENV_NAME, "--warehouse", str(warehouse)]
        code = cli.main([*argv, "--processing-time", T0])

    err = capsys.readouterr().err
    assert code == 2, err
    assert "needs a Hive catalog, but this session's catalog is 'in-memory'" in err
    assert sorted(p.name for p in warehouse.iterdir()) == ["pipeline_runs"]
    assert [r["outcome"] for r in finished(warehouse)] == ["refused"]
    assert not spark.catalog.databaseExists("orders")


# --- real processes on the embedded metastore (slow) --------------------------------------------


@pytest.fixture(scope="module")
def registered(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A warehouse migrated twice with `[catalog] database = "orders"`, then probed: two rows
    written through the name `orders.daily_revenue` (one superseded, one current), the view and
    the table read back by name and by path."""
    folder = tmp_path_factory.mktemp("registered")
    conf = write_conf(folder / "conf", "orders")
    warehouse = folder / "warehouse"
    first = run_etl(conf, warehouse, T0, "migrate")
    after_first = versions(warehouse, DATA_TABLES) if first.returncode == 0 else {}
    second = run_etl(conf, warehouse, T0, "migrate")
    after_second = versions(warehouse, DATA_TABLES) if second.returncode == 0 else {}
    insert = (
        "INSERT INTO orders.daily_revenue (order_date, currency, order_count, revenue, as_of, "
        "superseded_at, run_id) VALUES "
        "(DATE'2026-03-01', 'EUR', 2, 20.00, TIMESTAMP'2026-03-01 12:00:00', "
        "TIMESTAMP'2026-03-02 12:00:00', 'r1'), "
        "(DATE'2026-03-01', 'EUR', 3, 27.50, TIMESTAMP'2026-03-02 12:00:00', NULL, 'r2')"
    )
    probed = (
        probe(
            warehouse,
            "orders",
            insert,
            f"SELECT * FROM orders.{CURRENT_VIEW}",
            f"SELECT count(*) FROM delta.`{warehouse}/daily_revenue`",
            "SELECT count(*) FROM orders.fct_orders",
        )
        if second.returncode == 0
        else {}
    )
    return {
        "warehouse": warehouse,
        "first": first,
        "second": second,
        "after_first": after_first,
        "after_second": after_second,
        "probe": probed,
    }


@pytest.mark.slow
def test_migrate_registers_every_table_and_the_view(registered: dict[str, Any]) -> None:
    warehouse: Path = registered["warehouse"]
    first = registered["first"]
    assert first.returncode == 0, first.stderr[-3000:]
    assert (
        "registered 6 table(s) in orders, view orders.daily_revenue_current created" in first.stderr
    )
    entries = registered["probe"]["entries"]

    assert sorted(entries) == sorted([*TABLE_NAMES, CURRENT_VIEW])
    for name in TABLE_NAMES:
        entry = entries[name]
        assert (entry["kind"], entry["provider"]) == ("EXTERNAL", "delta"), name
        assert entry["location"] == location(warehouse / name)
    assert entries[CURRENT_VIEW]["kind"] == "VIEW"
    assert entries[CURRENT_VIEW]["view_text"] == current_view_sql("orders")
    metrics = finished(warehouse)[0]["metrics"]
    assert metrics["catalog_database"] == "orders"
    assert metrics["catalog_registered"] == TABLE_NAMES
    assert metrics["catalog_view"] == "created"
    # The metastore is kept beside the tables; nothing lands in the working folder.
    assert (warehouse / CATALOG_FOLDER / "metastore_db").is_dir()
    assert (warehouse / CATALOG_FOLDER / "derby.log").is_file()
    assert not any((warehouse.parent / "conf").glob("*derby*"))
    assert not (warehouse.parent / "conf" / "metastore_db").exists()


@pytest.mark.slow
def test_the_names_are_the_warehouse_tables_and_the_view_holds_the_current_figures(
    registered: dict[str, Any],
) -> None:
    insert, view, by_path, fct = registered["probe"]["rows"]

    assert insert == []
    # Rows written through orders.daily_revenue are in <warehouse>/daily_revenue.
    assert by_path == [["2"]]
    assert fct == [["0"]]
    # Only the current version: the superseded one is not a figure any more.
    assert view == [["2026-03-01", "EUR", "3", "27.50", "2026-03-02 12:00:00"]]


@pytest.mark.slow
def test_a_rerun_of_migrate_registers_nothing_and_changes_nothing(
    registered: dict[str, Any],
) -> None:
    warehouse: Path = registered["warehouse"]
    second = registered["second"]
    assert second.returncode == 0, second.stderr[-3000:]

    assert (
        "created 0 table(s); added 0 column(s) to orders_landing; registered 0 table(s) in "
        "orders, view orders.daily_revenue_current unchanged" in second.stderr
    )
    assert registered["after_second"] == registered["after_first"]
    rerun = finished(warehouse)[1]["metrics"]
    assert rerun == {
        "tables_created": [],
        "landing_columns_added": [],
        "deletion_vectors_stopped": [],
        "catalog_database": "orders",
        "catalog_registered": [],
        "catalog_view": "unchanged",
    }


@pytest.mark.slow
def test_a_name_that_points_elsewhere_refuses_migrate_with_nothing_written(
    tmp_path: Path,
) -> None:
    """`orders.daily_revenue` already names another warehouse's table. The warehouse has an
    `orders_landing` of its own that migrate would otherwise change (add columns)."""
    conf = write_conf(tmp_path / "conf", "orders")
    warehouse = tmp_path / "warehouse"
    elsewhere = tmp_path / "elsewhere" / "daily_revenue"
    setup = probe(
        warehouse,
        "orders",
        "CREATE DATABASE orders",
        f"CREATE TABLE orders.daily_revenue (x INT) USING DELTA LOCATION '{elsewhere}'",
        f"CREATE TABLE delta.`{warehouse}/orders_landing` (order_id STRING, customer_id STRING, "
        "status STRING, amount DECIMAL(18,2), currency STRING, event_time TIMESTAMP) USING DELTA",
    )
    assert sorted(setup["entries"]) == ["daily_revenue"]
    before = sorted(p.name for p in warehouse.iterdir())
    assert before == [CATALOG_FOLDER, "orders_landing"]

    refused = run_etl(conf, warehouse, T0, "migrate")

    assert refused.returncode == 2, refused.stderr[-3000:]
    errors = [line for line in refused.stderr.splitlines() if ": error:" in line]
    assert errors == [
        f"orders-etl migrate: error: migrate refused: orders.daily_revenue points at "
        f"{location(elsewhere)}, not at this warehouse's "
        f"{location(warehouse / 'daily_revenue')}; nothing was written"
    ]
    # No table folder but the ledger's, no commit to the tables, no name registered.
    assert sorted(p.name for p in warehouse.iterdir()) == sorted([*before, "pipeline_runs"])
    assert versions(warehouse, ["orders_landing"]) == {"orders_landing": 0}
    assert last_version(elsewhere) == 0
    assert [r["outcome"] for r in finished(warehouse)] == ["refused"]
    after = probe(warehouse, "orders")["entries"]
    assert after == setup["entries"]
    assert after["daily_revenue"]["location"] == location(elsewhere)
