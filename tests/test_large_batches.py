"""A batch larger than the heap: `land` streams it, and a lost JVM is one clear line.

`land` runs as a real `orders-etl` process with `spark.driver.memory=1g` on one ~300 MB file
(read as one string, as `land` once did, it runs the JVM out of heap). The file is split into
blocks across tasks, so line numbers are checked across block boundaries.
"""

from __future__ import annotations

import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from py4j.protocol import Py4JError
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from orders_etl.runner import jvm_failure

pytestmark = pytest.mark.slow

ORDERS_ETL = Path(sys.executable).parent / "orders-etl"
# 100,000 lines of ~3 KB (a long unknown field, as a verbose SDK sends): the file is large, the
# parser's per-line work stays small enough for the suite.
LINES = 100_000
PADDING = "device-log:" + "0123456789abcdef" * 187
# Every 5,000th line is blank and every 5,001st is broken: numbering must count both.
BLANK_EVERY, BROKEN_EVERY = 5_000, 5_001
LARGE_TOML = """
[warehouse]
root = "./unused"

[spark]
master = "local[2]"

[spark.conf]
"spark.sql.shuffle.partitions" = "2"
"spark.default.parallelism" = "2"
"spark.ui.enabled" = "false"
"spark.ui.showConsoleProgress" = "false"
"spark.databricks.delta.snapshotPartitions" = "1"
"spark.driver.memory" = "1g"
"""


def line_at(number: int) -> str:
    """The text of line `number` (from 1) of the large file."""
    if number % BLANK_EVERY == 0:
        return ""
    if number % BROKEN_EVERY == 0:
        return '{"order_id": "broken'
    return json.dumps(
        {
            "order_id": f"big-{number:08d}",
            "customer_id": f"customer-{number % 9973:05d}",
            "status": ("placed", "paid", "shipped", "delivered")[number % 4],
            "amount": f"{number % 100_000}.{number % 100:02d}",
            "currency": ("EUR", "USD", "GBP")[number % 3],
            "event_time": f"2026-03-0{1 + number % 9}T{number % 24:02d}:{number % 60:02d}:00Z",
            "sdk": PADDING,
        }
    )


@pytest.fixture(scope="module")
def large_file(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    path = tmp_path_factory.mktemp("large") / "backlog.jsonl"
    with path.open("w", encoding="utf-8") as handle:
        for start in range(1, LINES + 1, 5_000):
            chunk = range(start, min(start + 5_000, LINES + 1))
            handle.write("".join(line_at(n) + "\n" for n in chunk))
    yield path
    path.unlink()


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    conf = tmp_path_factory.mktemp("large-conf")
    (conf / "large.toml").write_text(LARGE_TOML, encoding="utf-8")
    environment = {**os.environ, "ORDERS_ETL_CONF_DIR": str(conf), "PYTHONUNBUFFERED": "1"}
    for key in ("PYSPARK_GATEWAY_PORT", "PYSPARK_GATEWAY_SECRET"):
        environment.pop(key, None)
    return environment


def land_argv(source: Path, warehouse: Path) -> list[str]:
    return [
        str(ORDERS_ETL),
        "land",
        "--source",
        str(source),
        "--env",
        "large",
        "--warehouse",
        str(warehouse),
        "--processing-time",
        "2026-03-10T12:00:00Z",
    ]


def test_a_file_larger_than_the_heap_lands_with_exact_accounting(
    spark: SparkSession, large_file: Path, env: dict[str, str], tmp_path: Path
) -> None:
    assert large_file.stat().st_size > 250 * 1024 * 1024
    warehouse = tmp_path / "warehouse"
    completed = subprocess.run(
        land_argv(large_file, warehouse),
        env=env,
        capture_output=True,
        text=True,
        timeout=1200,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-2000:]
    blank = LINES // BLANK_EVERY
    broken = sum(1 for n in range(1, LINES + 1) if n % BROKEN_EVERY == 0 and n % BLANK_EVERY)
    landing = spark.read.format("delta").load(str(warehouse / "orders_landing"))
    quarantine = spark.read.format("delta").load(str(warehouse / "orders_quarantine"))
    assert landing.count() == LINES - blank - broken
    assert {tuple(r) for r in quarantine.select("line_number", "reason").collect()} == {
        (n, "invalid_json") for n in range(1, LINES + 1) if n % BROKEN_EVERY == 0
    }
    # A sample of line numbers, the block boundaries' neighbourhoods included, read back.
    rng = random.Random(16)
    block = 128 * 1024 * 1024 // (large_file.stat().st_size // LINES)
    sample = {rng.randint(1, LINES) for _ in range(40)}
    sample |= {n for k in (1, 2) for n in range(k * block - 200, k * block + 200)}
    sample = {n for n in sample if n % BLANK_EVERY and n % BROKEN_EVERY}
    got = {
        r["line_number"]: r["order_id"]
        for r in landing.filter(F.col("line_number").isin(*sample))
        .select("line_number", "order_id")
        .collect()
    }
    assert got == {n: f"big-{n:08d}" for n in sample}
    files = landing.select("source_file", "source_sha256").distinct().collect()
    assert [r["source_file"] for r in files] == [str(large_file.resolve())]
    assert "orders-etl land: succeeded" in completed.stderr


def java_children(pid: int) -> list[int]:
    """The JVMs started by process `pid`."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            name, rest = stat.read_text().split(" (", 1)[1].rsplit(") ", 1)
        except (OSError, IndexError, ValueError):
            continue
        if int(rest.split()[1]) == pid and name == "java":
            found.append(int(stat.parent.name))
    return found


def test_a_lost_jvm_is_one_clear_line_and_exit_3(
    large_file: Path, env: dict[str, str], tmp_path: Path
) -> None:
    warehouse = tmp_path / "warehouse"
    proc = subprocess.Popen(
        land_argv(large_file, warehouse),
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 300
        # Once the landing table exists, the run is reading the batch: kill its JVM alone.
        while not (warehouse / "orders_landing" / "_delta_log").is_dir():
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.1)
        time.sleep(2)
        jvms = java_children(proc.pid)
        assert jvms, "no JVM child found"
        for jvm in jvms:
            os.kill(jvm, signal.SIGKILL)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 3, err[-2000:]
    errors = [line for line in err.splitlines() if ": error: " in line]
    assert errors == [
        "orders-etl land: error: the Spark JVM was lost (killed, or out of memory): raise "
        "spark.driver.memory in [spark.conf] of the config (--driver-memory under "
        "spark-submit) or run a smaller batch"
    ], err[-2000:]
    assert "Py4J" not in err and "\tat " not in err and "Traceback" not in err


def test_a_bare_py4j_error_is_a_lost_jvm_only_once_the_jvm_is_gone(spark: SparkSession) -> None:
    # py4j's answer to a call whose connection broke: a bare error, no Java exception, no trace
    call = "An error occurred while calling z:org.apache.spark.sql.functions.col"
    assert jvm_failure(Py4JError(call)) is None  # this process's JVM still answers
    no_jvm = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from py4j.protocol import Py4JError; "
            "from orders_etl.runner import jvm_failure; print(jvm_failure(Py4JError(sys.argv[1])))",
            call,
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert no_jvm.stdout.startswith("the Spark JVM was lost (killed, or out of memory)")


def test_a_jvm_hanging_up_on_the_accumulator_server_prints_no_traceback(
    spark: SparkSession, capfd: pytest.CaptureFixture[str]
) -> None:
    # What a killed JVM does to pyspark's accumulator server: the JVM authenticated, then its
    # connection ends before the update (the server reads an end of file).
    server = spark.sparkContext._accumulatorServer
    address, token = server.server_address, getattr(server, "auth_token", None)
    family = socket.AF_UNIX if isinstance(address, str) else socket.AF_INET
    with socket.socket(family) as connection:
        connection.connect(address)
        if token:
            connection.sendall(token.encode("utf-8"))
    time.sleep(1)  # the server's handler runs in its own thread
    err = capfd.readouterr().err
    assert "Traceback" not in err and "Exception occurred" not in err, err


def test_an_out_of_memory_error_names_what_to_change() -> None:
    message = jvm_failure(RuntimeError("An error occurred: java.lang.OutOfMemoryError: Java heap"))
    assert message is not None and message.startswith("Spark ran out of memory: raise")
    assert jvm_failure(ConnectionRefusedError("refused")) is not None
    assert jvm_failure(ValueError("a bad value")) is None
    assert jvm_failure(Py4JError("An error occurred while calling o1.x. Trace:\nboom\n")) is None
    assert jvm_failure(Py4JError("Method x([]) does not exist")) is None
