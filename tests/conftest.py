"""One Spark session for the whole suite; Delta tables on tmp_path; contexts built inline."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pytest
from pyspark.sql import SparkSession

from orders_etl.config import Config, RetrySettings, SparkSettings
from orders_etl.context import RunContext
from orders_etl.session import get_spark

TEST_SPARK = SparkSettings(
    app_name="orders_etl-tests",
    master="local[2]",
    conf=MappingProxyType(
        {
            "spark.sql.shuffle.partitions": "2",
            "spark.default.parallelism": "2",
            "spark.ui.enabled": "false",
            "spark.ui.showConsoleProgress": "false",
            "spark.databricks.delta.snapshotPartitions": "2",
            "spark.sql.adaptive.enabled": "false",
            # VACUUM lists a table's folders in this many tasks (Spark's default: 10,000).
            "spark.sql.sources.parallelPartitionDiscovery.parallelism": "2",
            "spark.driver.memory": "2g",
            # Test data is tiny: compiling generated code costs more than it saves. One series
            # of `make test-fast` runs: 700 s with Spark's defaults, 626 s with this cache,
            # 578 s with the cache and no code generation; a later run of the last took 694 s,
            # as wide a spread as the gain. The fault tests' subprocesses run the same two
            # settings (tests/test_faults_kill.py FAULTS_TOML), and so do the cluster's jobs;
            # the other subprocess tests (spark-submit, Thrift, large batches) run with code
            # generation on.
            "spark.sql.codegen.cache.maxEntries": "2000",
            "spark.sql.codegen.factoryMode": "NO_CODEGEN",
            "spark.sql.codegen.wholeStage": "false",
        }
    ),
)


# Test files, slowest first: the order in which the xdist workers take them (`--dist loadfile
# --no-loadscope-reorder` in the Makefile; a worker that is nearly idle takes the next file).
# Longest first, the run ends on short files on both workers instead of one worker alone on a
# long one. Worker seconds per file in one `.ci/run` (475 passed in 1,547 s): where xdist's own
# order (most tests first) left the 338-second cluster module to start last, 210 s after the
# other worker's last file. Files not listed run after these, in collection order.
SLOWEST_FIRST = (
    "test_faults_kill.py",  # 549 s
    "test_standalone_cluster.py",  # 338 s
    "test_faults_concurrent.py",  # 334 s
    "test_rollup_verify.py",  # 231 s
    "test_incremental.py",  # 202 s
    "test_schedule_state_machine.py",  # 152 s
    "test_security.py",  # 146 s
    "test_catalog.py",  # 144 s
    "test_thrift_dashboard.py",  # 142 s
    "test_maintain.py",  # 131 s
    "test_cli.py",  # 102 s
    "test_fuzz_input.py",  # 91 s
    "test_backfill.py",  # 87 s
    "test_large_batches.py",  # 79 s
    "test_land.py",  # 54 s
    "test_spark_submit.py",  # 52 s
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Order the tests file by file, slowest file first (`SLOWEST_FIRST`); a stable sort, so
    the tests of a file keep their order."""
    rank = {name: i for i, name in enumerate(SLOWEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))


@pytest.fixture(scope="session")
def spark() -> Iterator[SparkSession]:
    """The suite's one Delta-enabled session (the project's own factory)."""
    os.environ["TZ"] = "UTC"
    time.tzset()
    session = get_spark(TEST_SPARK)
    yield session
    session.stop()


def make_config(warehouse: Path | str, **overrides: object) -> Config:
    """Build a Config inline, as the tests need it (fast retries)."""
    base = Config(
        env="test",
        warehouse=str(warehouse),
        retries=RetrySettings(attempts=4, backoff_seconds=0.1),
        spark=TEST_SPARK,
    )
    return Config(**{**base.__dict__, **overrides})  # type: ignore[arg-type]


@pytest.fixture
def warehouse(tmp_path: Path) -> Path:
    """An empty warehouse root for one test."""
    root = tmp_path / "warehouse"
    root.mkdir()
    return root


ContextFactory = Callable[..., RunContext]


@pytest.fixture
def make_ctx(spark: SparkSession, warehouse: Path) -> ContextFactory:
    """Build a RunContext on the test warehouse at a given processing time."""
    counter = iter(range(1_000_000))

    def build(processing_time: datetime | str, config: Config | None = None) -> RunContext:
        moment = (
            datetime.fromisoformat(processing_time).astimezone(UTC)
            if isinstance(processing_time, str)
            else processing_time
        )
        return RunContext(
            config or make_config(warehouse), moment, f"test-run-{next(counter)}", spark=spark
        )

    return build


class SparkTouched(AssertionError):
    """A Spark session was asked for where none may be."""


@pytest.fixture
def no_spark(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make any start (or reuse) of a Spark session fail the test: for checks that must
    refuse before Spark starts."""

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise SparkTouched("Spark was started")

    monkeypatch.setattr("orders_etl.context.get_spark", refuse)
