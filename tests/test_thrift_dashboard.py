"""The dashboard's queries through a real JDBC client: Spark's Thrift JDBC server on a warehouse
the CLI built with `[catalog] database = "orders"`, queried with beeline, answers compared with
`orders-etl revenue --format csv`. `migrate` registers the names in a process of its own (the
embedded metastore takes one JVM at a time); the path-only commands run in-process.

The README's as-of query is read from the README itself, so what it tells a BI user is what is
tested. Network: only 127.0.0.1. One server for the module, stopped in every case.
"""

from __future__ import annotations

import contextlib
import csv
import io
import re
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from orders_etl import cli
from orders_etl.session import DELTA_CATALOG, DELTA_EXTENSION, cached_delta_jars, catalog_conf
from tests.catalog_probe import ENV_NAME, ROOT, run_etl, write_conf
from tests.helpers import event, write_batch
from tests.processes import SPARK_BIN, free_port, spark_env, start, stop, wait_for_port

pytestmark = pytest.mark.slow

T0 = "2026-03-02T12:00:00Z"
T1 = "2026-03-03T12:00:00Z"
BETWEEN = "2026-03-02T18:00:00Z"
FIRST_BATCH = [
    event("o1", "2026-03-01T10:00:00Z", amount="10.00"),
    event("o2", "2026-03-01T11:00:00Z", status="cancelled", amount="5.00"),
    event("o3", "2026-03-02T09:00:00Z", amount="7.50", currency="USD"),
    event("o4", "2026-03-01T20:00:00Z", status="placed", amount="4.25", currency="USD"),
]
# A day later: o1 refunded (revises 2026-03-01 EUR), a late USD order on 03-01, a new day.
LATE_BATCH = [
    event("o1", "2026-03-01T15:00:00Z", status="refunded", amount="10.00"),
    event("o5", "2026-03-01T08:00:00Z", amount="2.00", currency="USD"),
    event("o6", "2026-03-03T09:00:00Z", amount="3.00"),
]
THRIFT_SERVER = "org.apache.spark.sql.hive.thriftserver.HiveThriftServer2"
_PROMPT = re.compile(r"^\d+: jdbc:hive2://\S*> ")


@dataclass(frozen=True)
class Dashboard:
    """A warehouse built by the CLI with a catalog, and its `revenue --format csv` answers."""

    warehouse: Path
    folder: Path
    as_of_between_csv: str
    current_csv: str


def etl_in_process(conf: Path, warehouse: Path, at: str, *argv: str) -> str:
    """Run `orders-etl ARGV` in-process on the suite's session (path-only commands need no
    catalog); return its stdout."""
    out = io.StringIO()
    with pytest.MonkeyPatch.context() as patch, contextlib.redirect_stdout(out):
        patch.setenv("ORDERS_ETL_CONF_DIR", str(conf))
        patch.delenv("ORDERS_ETL_REVISION_WEBHOOK", raising=False)
        code = cli.main(
            [*argv, "--env", ENV_NAME, "--warehouse", str(warehouse), "--processing-time", at]
        )
    assert code == 0, argv
    return out.getvalue()


@pytest.fixture(scope="module")
def dashboard(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Dashboard:
    """`migrate` in its own process registers the names in the warehouse's metastore; then two
    hourly runs a day apart and `revenue` as of a time between them and as of now run
    in-process. All of it before the server takes the metastore."""
    folder = tmp_path_factory.mktemp("dashboard")
    conf = write_conf(folder / "conf", "orders")
    warehouse = folder / "warehouse"
    migrated = run_etl(conf, warehouse, T0, "migrate")
    assert migrated.returncode == 0, migrated.stderr[-3000:]
    assert "registered 6 table(s) in orders" in migrated.stderr
    # The suite's session, started (if it is not yet) once the migrate process is done.
    request.getfixturevalue("spark")
    first = write_batch(folder / "in", "b0.jsonl", FIRST_BATCH)
    late = write_batch(folder / "in", "b1.jsonl", LATE_BATCH)
    etl_in_process(conf, warehouse, T0, "hourly", "--source", str(first))
    etl_in_process(conf, warehouse, T1, "hourly", "--source", str(late))
    return Dashboard(
        warehouse,
        folder,
        as_of_between_csv=etl_in_process(
            conf, warehouse, T1, "revenue", "--as-of", BETWEEN, "--format", "csv"
        ),
        current_csv=etl_in_process(conf, warehouse, T1, "revenue", "--format", "csv"),
    )


@pytest.fixture(scope="module")
def thrift_port(dashboard: Dashboard) -> Iterator[int]:
    """Spark's Thrift JDBC server on the warehouse's metastore, with Delta; its port."""
    port = free_port()
    jars = cached_delta_jars()
    assert jars, "no cached Delta jars: run make setup"
    # The server's sessions load the Delta catalog through the driver's class path; only
    # Delta's own jars go there (the others would shadow newer copies in pyspark's jars).
    delta_class_path = ":".join(j for j in jars if Path(j).name.startswith("io.delta_"))
    confs = {
        "spark.sql.extensions": DELTA_EXTENSION,
        "spark.sql.catalog.spark_catalog": DELTA_CATALOG,
        **catalog_conf(str(dashboard.warehouse)),
        "spark.ui.enabled": "false",
        "spark.sql.shuffle.partitions": "2",
        "spark.sql.session.timeZone": "UTC",
    }
    catalog_dir = dashboard.warehouse / "_catalog"
    argv = [
        str(SPARK_BIN / "spark-submit"),
        "--master",
        "local[1]",
        "--class",
        THRIFT_SERVER,
        "--jars",
        ",".join(jars),
        "--driver-class-path",
        delta_class_path,
        *[arg for key, value in confs.items() for arg in ("--conf", f"{key}={value}")],
        "--driver-java-options",
        f"-Dderby.system.home={catalog_dir}",
        "spark-internal",
        "--hiveconf",
        "hive.server2.thrift.bind.host=127.0.0.1",
        "--hiveconf",
        f"hive.server2.thrift.port={port}",
    ]
    log = dashboard.folder / "thrift-server.log"
    server = start(argv, log, spark_env(), dashboard.folder)
    try:
        wait_for_port(server, port, log, seconds=300)
        yield port
    finally:
        stop(server)


def beeline(port: int, sql: str, home: Path) -> list[str]:
    """Run one query with beeline over JDBC; return its CSV lines (header first)."""
    completed = subprocess.run(
        [
            str(SPARK_BIN / "beeline"),
            "-u",
            f"jdbc:hive2://127.0.0.1:{port}/default",
            "--outputformat=csv2",
            "--silent=true",
            "-e",
            sql,
        ],
        # Beeline keeps its history under user.home: keep it in the test's folder.
        env=spark_env(SPARK_BEELINE_OPTS=f"-Duser.home={home}"),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    # Beeline may print its prompt ("0: jdbc:hive2://...> ") in front of the first line.
    lines = [_PROMPT.sub("", line) for line in completed.stdout.splitlines()]
    return [line for line in lines if line.strip()]


def readme_as_of_query(moment: str) -> str:
    """The README's as-of query by name, with its example time replaced by `moment`."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    blocks: list[str] = [
        b for b in re.findall(r"```sql\n(.*?)```", readme, re.S) if "orders.daily_revenue\n" in b
    ]
    assert len(blocks) == 1, blocks
    times = set(re.findall(r"TIMESTAMP'([0-9: -]+)'", blocks[0]))
    assert len(times) == 1, times
    literal = moment.replace("T", " ").removesuffix("Z")
    return blocks[0].replace(times.pop(), literal).strip()


def figures(lines: list[str]) -> list[tuple[str, ...]]:
    """(order_date, currency, order_count, revenue) rows of CSV lines with a header, sorted."""
    rows = list(csv.DictReader(io.StringIO("\n".join(lines))))
    columns = ("order_date", "currency", "order_count", "revenue")
    return sorted(tuple(row[c] for c in columns) for row in rows)


def test_the_readme_as_of_query_answers_what_revenue_as_of_prints(
    dashboard: Dashboard, thrift_port: int, tmp_path: Path
) -> None:
    answer = beeline(thrift_port, readme_as_of_query(BETWEEN), tmp_path)

    expected = dashboard.as_of_between_csv.splitlines()
    assert answer == expected
    assert expected[0] == "order_date,currency,order_count,revenue"
    # As known between the runs: o1 still paid, o5 not yet landed.
    assert expected[1:] == [
        "2026-03-01,EUR,2,10.00",
        "2026-03-01,USD,1,4.25",
        "2026-03-02,USD,1,7.50",
    ]


def test_the_current_view_answers_what_revenue_prints_now(
    dashboard: Dashboard, thrift_port: int, tmp_path: Path
) -> None:
    answer = beeline(thrift_port, "SELECT * FROM orders.daily_revenue_current", tmp_path)

    assert answer[0].split(",") == ["order_date", "currency", "order_count", "revenue", "as_of"]
    current = dashboard.current_csv.splitlines()
    assert figures(answer) == figures(current)
    assert figures(current) == [
        ("2026-03-01", "EUR", "2", "0.00"),
        ("2026-03-01", "USD", "2", "6.25"),
        ("2026-03-02", "USD", "1", "7.50"),
        ("2026-03-03", "EUR", "1", "3.00"),
    ]
    # The revision is visible: the as-of answer differs from the current one.
    assert figures(current) != figures(dashboard.as_of_between_csv.splitlines())
