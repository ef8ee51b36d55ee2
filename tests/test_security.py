"""Security: user text never reaches SQL unparsed, paths are guarded, the webhook URL stays secret.

- Dates and times from the command line are parsed into `date`/`datetime` values before Spark
  starts; SQL text is built only from those values. A quote or a comment in a flag is refused.
- A warehouse path with quote characters is used as a path (it works); where Delta has no API
  but SQL (REORG, ALTER TABLE), the path is a backtick-quoted name and a backtick is refused.
- `--source` must be an existing regular file or a folder of them; the warehouse root must not be
  the file system root (however it is spelled) or empty.
- The revision webhook URL (`ORDERS_ETL_REVISION_WEBHOOK`, with a secret token in it) appears in
  no log line, error, ledger row, table or log file, also when the POST fails.

Network: only 127.0.0.1.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
from collections.abc import Iterator
from datetime import date
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest
from delta.tables import DeltaTable
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from orders_etl import cli
from orders_etl.io.maintenance import purge_deletion_vectors
from orders_etl.io.tables import delta_path_sql, disable_deletion_vectors, table_detail
from orders_etl.io.writes import UnpredicatedOverwriteRefused, dates_in_sql, overwrite_partitions
from orders_etl.schemas import AMOUNT_TYPE
from orders_etl.session import spark_log_path
from tests.helpers import NOTIFY_TOML, event, live_files, write_batch

SECRET = "xoxb-SECRET-7f3a9c2e1d"
P1, P2, P3 = "2026-03-09T00:00:00Z", "2026-03-10T12:00:00Z", "2026-03-10T13:00:00Z"


def refused(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    """Run a command line that must be refused with exit 2; return its one stderr line."""
    code = cli.main(argv)
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2, err
    assert len(err) == 1, err
    return err[0]


# --- no user text in SQL ------------------------------------------------------------------------

INJECTIONS = [
    "2026-01-01' OR 1=1 --",
    "2026-01-01'; DROP TABLE fct_orders; --",
    "2026-01-01 OR order_date IS NOT NULL",
    "DATE'2026-01-01'",
    "2026-01-01\n",
    "2026-01-01`",
]


@pytest.mark.parametrize("payload", INJECTIONS)
@pytest.mark.parametrize(
    ("command", "flag"),
    [
        ("backfill", "--start-date"),
        ("backfill", "--end-date"),
        ("maintain", "--start-date"),
        ("maintain", "--end-date"),
        ("verify", "--start-date"),
        ("verify", "--end-date"),
        ("revenue", "--start-date"),
        ("revenue", "--as-of"),
        ("incremental", "--processing-time"),
        ("incremental", "--lookback-days"),
    ],
)
def test_sql_in_a_flag_is_refused_before_spark(
    no_spark: None,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    command: str,
    flag: str,
    payload: str,
) -> None:
    warehouse = tmp_path / "warehouse"
    argv = [command, "--warehouse", str(warehouse), flag, payload]
    if flag != "--processing-time":
        argv += ["--processing-time", P3]
    line = refused(argv, capsys)
    assert line.startswith(f"orders-etl {command}: error:")
    assert flag in line
    assert not warehouse.exists()


def test_sql_text_is_built_only_from_parsed_dates(spark: SparkSession, tmp_path: Path) -> None:
    """The SQL builders refuse strings, and the one overwrite refuses before writing."""
    assert dates_in_sql("t.order_date", [date(2026, 3, 2), date(2026, 3, 1)]) == (
        "t.order_date IN (DATE'2026-03-01', DATE'2026-03-02')"
    )
    with pytest.raises(UnpredicatedOverwriteRefused):
        dates_in_sql("t.order_date", ["2026-01-01') OR (1=1"])  # type: ignore[list-item]
    path = str(tmp_path / "fct")
    df = spark.createDataFrame([(date(2026, 3, 1), 1)], "order_date date, n int")
    df.write.format("delta").partitionBy("order_date").save(path)
    for column, start in [
        ("order_date", "2026-01-01' OR '1'='1"),
        ("order_date OR 1=1", date(2026, 3, 1)),
        ("", date(2026, 3, 1)),
        ("n", date(2026, 3, 1)),
    ]:
        with pytest.raises(UnpredicatedOverwriteRefused):
            overwrite_partitions(df, path, column, start, date(2026, 3, 1))  # type: ignore[arg-type]
    assert spark.read.format("delta").load(path).count() == 1
    assert DeltaTable.forPath(spark, path).history().count() == 1, "a refused overwrite committed"


def test_a_warehouse_path_with_a_backtick_is_refused_before_spark(
    no_spark: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Delta's table builder quotes a location as delta.`<path>` and parses that as SQL, so
    a backtick in the warehouse path is refused up front (exit 2), never spliced in."""
    warehouse = tmp_path / "wh`.`other"
    line = refused(["migrate", "--warehouse", str(warehouse), "--processing-time", P1], capsys)
    assert "backtick" in line
    assert sorted(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_a_warehouse_and_source_with_quote_characters_work(
    spark: SparkSession, tmp_path: Path
) -> None:
    """Paths are paths: quotes, semicolons, comment dashes and spaces reach no SQL text."""
    root = tmp_path / 'it\'s a "wh"; -- x'
    warehouse = root / "warehouse"
    batch = write_batch(
        root / "batch 'one'",
        "b'1\".jsonl",
        [event(f"q{i}", f"2026-03-0{1 + i}T10:00:00Z") for i in range(4)],
    )
    common = ["--warehouse", str(warehouse)]
    assert cli.main(["migrate", *common, "--processing-time", P2]) == 0
    assert cli.main(["land", "--source", str(batch.parent), *common, "--processing-time", P2]) == 0
    assert cli.main(["incremental", *common, "--processing-time", P2]) == 0
    backfill = ["--start-date", "2026-03-01", "--end-date", "2026-03-05"]
    assert cli.main(["backfill", *backfill, *common, "--processing-time", P2]) == 0
    assert cli.main(["rollup", *common, "--processing-time", P2]) == 0
    assert cli.main(["verify", *common, "--processing-time", P2]) == 0
    fct = spark.read.format("delta").load(str(warehouse / "fct_orders"))
    assert sorted(r["order_id"] for r in fct.collect()) == ["q0", "q1", "q2", "q3"]
    landing = spark.read.format("delta").load(str(warehouse / "orders_landing"))
    assert {r["source_file"] for r in landing.collect()} == {str(batch.resolve())}
    assert sorted(p.name for p in tmp_path.iterdir()) == [root.name], "wrote outside the root"


def test_maintenance_sql_takes_a_quoted_path_as_a_name_and_refuses_a_backtick(
    spark: SparkSession, tmp_path: Path
) -> None:
    """REORG and ALTER TABLE have no Delta API: the path goes into SQL as delta.`<path>`."""
    with pytest.raises(ValueError, match="backtick"):
        delta_path_sql(str(tmp_path / "a`b"))
    path = str(tmp_path / 'it\'s "dv"; -- x' / "table")
    df = spark.createDataFrame([(1,), (2,), (3,)], "n int").coalesce(1)
    (
        DeltaTable.create(spark)
        .location(path)
        .addColumns(df.schema)
        .property("delta.enableDeletionVectors", "true")
        .execute()
    )
    df.write.format("delta").mode("append").save(path)
    DeltaTable.forPath(spark, path).delete("n = 2")
    assert any(a.get("deletionVector") for a in live_files(path).values())

    assert disable_deletion_vectors(spark, path) is True
    purge_deletion_vectors(spark, path)

    assert not table_detail(spark, path).deletion_vectors_enabled
    assert not any(a.get("deletionVector") for a in live_files(path).values())
    assert sorted(r["n"] for r in spark.read.format("delta").load(path).collect()) == [1, 3]


# --- path guards -------------------------------------------------------------------------------


@pytest.fixture
def root_link(tmp_path: Path) -> Path:
    link = tmp_path / "to-root"
    link.symlink_to("/")
    return link


@pytest.mark.parametrize(
    "root",
    [
        "",
        "   ",
        "/",
        "//",
        "///",
        "/./",
        "/tmp/..",
        "file:",
        "file:/",
        "file://",
        "file:///",
        "{link}",
    ],
)
def test_the_warehouse_root_is_never_the_file_system_root(
    no_spark: None, root_link: Path, capsys: pytest.CaptureFixture[str], root: str
) -> None:
    root = root.replace("{link}", str(root_link))
    before = set(os.listdir("/"))
    line = refused(["migrate", "--warehouse", root, "--processing-time", P1], capsys)
    assert "warehouse root" in line
    assert set(os.listdir("/")) == before


@pytest.fixture
def odd_sources(tmp_path: Path) -> dict[str, Path]:
    """Sources that are not an existing regular file or folder of regular files."""
    fifo_folder = tmp_path / "with-fifo"
    fifo_folder.mkdir()
    write_batch(fifo_folder, "a.jsonl", [event("f1", "2026-03-01T10:00:00Z")])
    os.mkfifo(fifo_folder / "b.jsonl")
    broken_folder = tmp_path / "with-broken-link"
    broken_folder.mkdir()
    (broken_folder / "gone.jsonl").symlink_to(tmp_path / "nowhere.jsonl")
    os.mkfifo(tmp_path / "pipe.jsonl")
    colon_folder = tmp_path / "with-colon"
    write_batch(colon_folder, "2026-03-01T10:00.jsonl", [event("k1", "2026-03-01T10:00:00Z")])
    return {
        "folder-with-colon-name": colon_folder,
        "colon-name": colon_folder / "2026-03-01T10:00.jsonl",
        "missing": tmp_path / "missing",
        "missing-file": tmp_path / "missing.jsonl",
        "device": Path("/dev/null"),
        "fifo": tmp_path / "pipe.jsonl",
        "folder-with-fifo": fifo_folder,
        "folder-with-broken-link": broken_folder,
        "not-a-batch-file": Path(__file__),
    }


@pytest.mark.parametrize(
    "kind",
    [
        "missing",
        "missing-file",
        "device",
        "fifo",
        "folder-with-fifo",
        "folder-with-broken-link",
        "not-a-batch-file",
        "folder-with-colon-name",
        "colon-name",
    ],
)
@pytest.mark.parametrize("command", ["land", "hourly"])
def test_source_must_be_an_existing_file_or_folder_of_files(
    no_spark: None,
    tmp_path: Path,
    odd_sources: dict[str, Path],
    capsys: pytest.CaptureFixture[str],
    command: str,
    kind: str,
) -> None:
    warehouse = tmp_path / "warehouse"
    argv = [command, "--source", str(odd_sources[kind]), "--warehouse", str(warehouse)]
    line = refused([*argv, "--processing-time", P1], capsys)
    assert "--source" in line
    assert not warehouse.exists()


# --- the webhook URL stays secret ----------------------------------------------------------------


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


class _Hook(BaseHTTPRequestHandler):
    status = 200
    bodies: ClassVar[list[bytes]] = []

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        type(self).bodies.append(self.rfile.read(length))
        self.send_response(self.status)
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        return


@pytest.fixture
def hook_server() -> Iterator[tuple[HTTPServer, type[_Hook]]]:
    handler = type("Hook", (_Hook,), {"bodies": [], "status": 200})
    server = HTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server, handler
    server.shutdown()
    server.server_close()


def _files_containing(folder: Path, needle: bytes) -> list[str]:
    return [str(p) for p in folder.rglob("*") if p.is_file() and needle in p.read_bytes()]


@pytest.mark.slow
def test_the_webhook_url_never_leaks(
    spark: SparkSession,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
    hook_server: tuple[HTTPServer, type[_Hook]],
) -> None:
    """Four announcements (closed port, HTTP 500, malformed URL, success); after each the
    secret is nowhere: stdout, stderr, log records, the ledger and every warehouse file."""
    conf = tmp_path / "conf"
    conf.mkdir()
    (conf / "notify.toml").write_text(NOTIFY_TOML, encoding="utf-8")
    monkeypatch.setenv("ORDERS_ETL_CONF_DIR", str(conf))
    warehouse = tmp_path / "warehouse"
    common = ["--env", "notify", "--warehouse", str(warehouse)]
    caplog.set_level(logging.INFO)

    def run(*argv: str) -> int:
        return cli.main([*argv, *common])

    first = write_batch(
        tmp_path / "b0",
        "batch.jsonl",
        [event(f"w{i}", f"2026-03-0{1 + i % 5}T10:00:00Z", amount="10.00") for i in range(10)],
    )
    assert run("land", "--source", str(first), "--processing-time", P1) == 0
    assert run("incremental", "--processing-time", P1) == 0
    assert run("rollup", "--processing-time", P1) == 0

    server, handler = hook_server
    port = server.server_address[1]
    cases = [
        ("closed port", f"http://127.0.0.1:{closed_port()}/services/T0/B0/{SECRET}?token={SECRET}"),
        ("HTTP 500", f"http://127.0.0.1:{port}/services/{SECRET}?token={SECRET}"),
        ("malformed", f"http://127.0.0.1:{SECRET}/services"),
        ("sent", f"http://127.0.0.1:{port}/services/T0/B0/{SECRET}?token={SECRET}"),
    ]
    for number, (name, url) in enumerate(cases, start=1):
        handler.status = 500 if name == "HTTP 500" else 200
        # A change to published 2026-03-02 (w1's amount) for the rollup to announce; landing
        # and merging it would not touch the webhook.
        DeltaTable.forPath(spark, str(warehouse / "fct_orders")).update(
            "order_id = 'w1'", {"amount": (F.col("amount") + F.lit(number)).cast(AMOUNT_TYPE)}
        )
        moment = f"2026-03-10T{12 + number:02d}:00:00Z"
        monkeypatch.setenv("ORDERS_ETL_REVISION_WEBHOOK", url)
        assert run("rollup", "--processing-time", moment) == 0, name
        monkeypatch.delenv("ORDERS_ETL_REVISION_WEBHOOK")
        out, err = capfd.readouterr()
        logged = err + caplog.text
        assert "revision 2026-03-02 EUR" in logged, "the rollup must have announced a revision"
        assert ("announcement: sent" in err) == (name == "sent"), err
        for text in (out, logged):
            assert SECRET not in text, f"{name}: the webhook URL leaked"
        runs = spark.read.format("delta").load(str(warehouse / "pipeline_runs")).collect()
        assert not [r for r in runs if SECRET in json.dumps(r.asDict(), default=str)]
        assert _files_containing(warehouse, SECRET.encode()) == []
    assert len(handler.bodies) >= 3, "the HTTP 500 (tried twice) and the success reached it"
    assert all(SECRET.encode() not in body for body in handler.bodies)
    sent = json.loads(handler.bodies[-1])
    assert sent["revisions"] and sent["text"] and sent["run_id"]
    logs = [spark_log_path().parent, Path(os.environ.get("TMPDIR", "/tmp")) / "orders_etl"]
    for folder in {p for p in logs if p.is_dir()}:
        assert _files_containing(folder, SECRET.encode()) == []
