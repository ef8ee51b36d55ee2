"""Delta tests of `backfill`: rebuild `fct_orders` days from landing via replaceWhere.

One warehouse is built per module with the OLD incremental (`event_time > max(event_time in
fct_orders)`), which drops late events; each test works on a copy of it. The days it leaves
short are then rebuilt and compared with the plain-Python rule of `tests/reference.py`.
The hand-made batches are appended to `orders_landing` as `land` would stamp them (one
processing time per batch) without running `land` itself, which has its own tests.

Timeline (processing times T1..T4; the old model ran after T1 and T3, not after T4):
  T1 03-04 06:00  a1 03-01 paid, a2 03-02 placed, a3 03-02 paid, a4 03-03 USD, a5 03-04 paid
  T2 03-05 06:00  late: a2 shipped, new a6 (03-02), a7 (03-03), a9 (03-01 by UTC), stale a1
                  on time: a8, m_in placed, p1 placed (all 03-05)
  T3 03-06 06:00  late: a3 cancelled, a4 resent (retry); on time: a11, m_out placed (03-06)
  T4 03-08 06:00  m_in paid 03-06, m_out shipped 03-07, a5 delivered 03-05, p1 shipped 03-07
"""

from __future__ import annotations

import json
import shutil
import threading
from collections import Counter
from collections.abc import Callable, Iterable
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from delta.tables import DeltaTable
from pyspark.errors import AnalysisException
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from orders_etl import cli
from orders_etl.context import CommandResult, RunContext
from orders_etl.errors import ConcurrentWriteError, GuardRefused, UsageError
from orders_etl.io.history import (
    commits,
    is_unpredicated_overwrite,
    unpredicated_overwrites,
)
from orders_etl.io.tables import ensure_table, read_table
from orders_etl.io.window import current_dates, distinct_dates
from orders_etl.io.writes import (
    UnpredicatedOverwriteRefused,
    merge_latest_versions,
    overwrite_partitions,
)
from orders_etl.pipeline import backfill, incremental
from orders_etl.pipeline.backfill import BackfillParams, DayComparison, shrink_violations
from orders_etl.schemas import FCT_ORDERS, FCT_ORDERS_COLUMNS, FCT_ORDERS_SCHEMA, ORDERS_LANDING
from orders_etl.transforms.latest import dedupe_latest_version
from orders_etl.transforms.stage import stage_versions
from tests.conftest import ContextFactory, make_config
from tests.helpers import (
    append_landing,
    event,
    fct_list,
    landing_dicts,
    last_version,
    live_files,
    run_incremental,
)
from tests.reference import (
    REVENUE_STATUSES,
    expected_fct,
    rows_to_versions,
)

Row = tuple[object, ...]
ID = FCT_ORDERS_COLUMNS.index("order_id")
STATUS = FCT_ORDERS_COLUMNS.index("status")
AMOUNT = FCT_ORDERS_COLUMNS.index("amount")
DAY = FCT_ORDERS_COLUMNS.index("order_date")
CURRENCY = FCT_ORDERS_COLUMNS.index("currency")
D1, D2, D3, D4, D5, D6, D7 = (date(2026, 3, d) for d in range(1, 8))
NOW = "2026-03-09T00:00:00Z"

BATCHES: tuple[tuple[str, list[str], bool], ...] = (
    (
        "2026-03-04T06:00:00Z",
        [
            event("a1", "2026-03-01T09:00:00Z", "paid", "10.00"),
            event("a2", "2026-03-02T09:00:00Z", "placed", "20.00"),
            event("a3", "2026-03-02T12:00:00+02:00", "paid", "30.00"),
            event("a4", "2026-03-03T10:00:00Z", "paid", "40.00", currency="USD"),
            event("a5", "2026-03-04T05:00:00Z", "paid", "50.00"),
        ],
        True,
    ),
    (
        "2026-03-05T06:00:00Z",
        [
            event("a2", "2026-03-02T15:00:00Z", "shipped", "20.00"),
            event("a6", "2026-03-02T20:00:00Z", "paid", "60.00"),
            event("a7", "2026-03-03T08:00:00Z", "paid", "70.00"),
            event("a9", "2026-03-02T01:00:00+03:00", "paid", "90.00"),
            event("a1", "2026-03-01T08:00:00Z", "placed", "10.00"),
            event("a8", "2026-03-05T05:00:00Z", "paid", "80.00"),
            event("m_in", "2026-03-05T04:00:00Z", "placed", "15.00"),
            event("p1", "2026-03-05T04:30:00Z", "placed", "25.00"),
        ],
        False,
    ),
    (
        "2026-03-06T06:00:00Z",
        [
            event("a3", "2026-03-02T13:00:00Z", "cancelled", "30.00"),
            event("a4", "2026-03-03T10:00:00Z", "paid", "40.00", currency="USD"),
            event("a11", "2026-03-06T05:00:00Z", "paid", "11.00"),
            event("m_out", "2026-03-06T02:00:00Z", "placed", "35.00"),
        ],
        True,
    ),
    (
        "2026-03-08T06:00:00Z",
        [
            event("m_in", "2026-03-06T01:00:00Z", "paid", "15.00"),
            event("m_out", "2026-03-07T03:00:00Z", "shipped", "35.00"),
            event("a5", "2026-03-05T10:00:00Z", "delivered", "50.00"),
            event("p1", "2026-03-07T06:00:00Z", "shipped", "25.00"),
        ],
        False,
    ),
)
# Orders with a version in the T3 or T4 batch: an incremental with no lookback reads these.
LAST_TWO_BATCHES = frozenset({"a3", "a4", "a11", "m_out", "m_in", "a5", "p1"})


def run_old_incremental(ctx: RunContext) -> None:
    """The old model: MERGE the landed versions with `event_time > max(event_time in fct)`.

    A version that lands after a later-timed one was merged is never picked up.
    """
    spark = ctx.spark
    ensure_table(spark, ctx.warehouse, FCT_ORDERS)
    fct_df = read_table(spark, ctx.warehouse, FCT_ORDERS)
    high = fct_df.agg(F.max("event_time")).first()
    versions_df = stage_versions(read_table(spark, ctx.warehouse, ORDERS_LANDING))
    if high is not None and high[0] is not None:
        versions_df = versions_df.filter(F.col("event_time") > F.lit(high[0]))
    latest_df = dedupe_latest_version(versions_df).localCheckpoint()
    dates = sorted(set(distinct_dates(latest_df)) | set(current_dates(fct_df, latest_df)))
    if dates:
        merge_latest_versions(spark, ctx.warehouse.path(FCT_ORDERS), latest_df, dates)


def landing_row(line: str, ingested_at: datetime, source_file: str) -> dict[str, Any]:
    """One valid input line as `land` stores it: typed, stamped with its batch's time."""
    body = json.loads(line)
    return {
        **body,
        "amount": Decimal(body["amount"]),
        "event_time": datetime.fromisoformat(body["event_time"]),
        "event_ingested_at": ingested_at,
        "source_file": source_file,
    }


@pytest.fixture(scope="module")
def late_base(spark: SparkSession, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Landing of the four batches and `fct_orders` as the old model left it."""
    root = tmp_path_factory.mktemp("late_base") / "warehouse"
    root.mkdir()
    config = make_config(root)
    for n, (moment, lines, old_model_runs) in enumerate(BATCHES):
        processing_time = datetime.fromisoformat(moment).astimezone(UTC)
        rows = [landing_row(line, processing_time, f"batch-{n}.jsonl") for line in lines]
        append_landing(spark, root, rows)
        if old_model_runs:
            run_old_incremental(RunContext(config, processing_time, f"base-{n}", spark=spark))
    return root


@pytest.fixture(scope="module")
def expected(spark: SparkSession, late_base: Path) -> set[Row]:
    """`fct_orders` as the plain-Python rule computes it from everything landed."""
    return expected_fct(rows_to_versions(landing_dicts(spark, late_base)))


@pytest.fixture
def late_wh(late_base: Path, warehouse: Path) -> Path:
    """A private copy of the old model's warehouse at the test's `warehouse` root."""
    shutil.copytree(late_base, warehouse, dirs_exist_ok=True)
    return warehouse


def fct_path(root: Path) -> str:
    return f"{root}/fct_orders"


def on_days(rows: Iterable[Row], days: Iterable[object]) -> Counter[Row]:
    wanted = set(days)
    return Counter(r for r in rows if r[DAY] in wanted)


def of_order(rows: Iterable[Row], order_id: str) -> list[Row]:
    return [r for r in rows if r[ID] == order_id]


def files_by_day(table: str) -> dict[str, frozenset[str]]:
    """Live data files per `order_date`, each with its deletion vector (from the Delta log)."""
    out: dict[str, set[str]] = {}
    for path, add in live_files(table).items():
        vector = json.dumps(add.get("deletionVector"), sort_keys=True)
        out.setdefault(add["partitionValues"]["order_date"], set()).add(f"{path} {vector}")
    return {day: frozenset(files) for day, files in out.items()}


def untouched(before: dict[str, frozenset[str]], after: dict[str, frozenset[str]]) -> set[str]:
    """The days whose live files are exactly the same."""
    return {d for d in set(before) | set(after) if before.get(d) == after.get(d)}


def days_between(first: date, last: date) -> set[str]:
    return {date.fromordinal(n).isoformat() for n in range(first.toordinal(), last.toordinal() + 1)}


# --- the bug and its repair -------------------------------------------------------------------


def test_old_model_leaves_days_short_and_backfill_rebuilds_only_the_range(
    spark: SparkSession, late_wh: Path, make_ctx: ContextFactory, expected: set[Row]
) -> None:
    table = fct_path(late_wh)
    want = Counter(r[DAY] for r in expected)
    before = fct_list(spark, late_wh)
    have = Counter(r[DAY] for r in before)
    assert {d for d in want if have[d] < want[d]} >= {D1, D2, D3}
    files_before, version_before = files_by_day(table), last_version(table)

    result = backfill.run(make_ctx(NOW), BackfillParams(D2, D3))

    after = fct_list(spark, late_wh)
    assert len(after) == len({r[ID] for r in after})
    for day in (D2, D3):
        assert on_days(after, [day]) == on_days(expected, [day])
        assert sum(1 for r in after if r[DAY] == day) == want[day]
    outside = set(have) - {D2, D3}
    assert on_days(after, outside) == on_days(before, outside)
    assert sum(1 for r in after if r[DAY] == D1) < want[D1]
    files_after = files_by_day(table)
    assert untouched(files_before, files_after) == set(files_before) - days_between(D2, D3)
    assert result.metrics["corrections_outside_range"] == 0
    history = commits(spark, table)
    assert [
        (c.operation, c.parameters.get("predicate")) for c in history[version_before + 1 :]
    ] == [("WRITE", "order_date >= DATE'2026-03-02' AND order_date <= DATE'2026-03-03'")]
    assert unpredicated_overwrites(history) == []


def test_moved_orders_end_with_exactly_one_row_in_the_right_partition(
    spark: SparkSession, late_wh: Path, make_ctx: ContextFactory, expected: set[Row]
) -> None:
    table = fct_path(late_wh)
    before = fct_list(spark, late_wh)
    assert [r[DAY] for r in of_order(before, "m_in")] == [D5]
    assert [r[DAY] for r in of_order(before, "m_out")] == [D6]
    files_before = files_by_day(table)

    result = backfill.run(make_ctx(NOW), BackfillParams(D6, D6))

    after = fct_list(spark, late_wh)
    assert of_order(after, "m_in") == of_order(expected, "m_in")
    assert [(r[DAY], r[STATUS]) for r in of_order(after, "m_in")] == [(D6, "paid")]
    assert of_order(after, "m_out") == of_order(expected, "m_out")
    assert [(r[DAY], r[STATUS]) for r in of_order(after, "m_out")] == [(D7, "shipped")]
    assert len(after) == len({r[ID] for r in after})
    assert on_days(after, [D6]) == on_days(expected, [D6])
    moved = {"m_in", "m_out"}
    assert Counter(r for r in after if r[ID] not in moved and r[DAY] != D6) == Counter(
        r for r in before if r[ID] not in moved and r[DAY] != D6
    )
    assert result.metrics["corrections_outside_range"] == 2
    changed = set(files_before) | set(files_by_day(table))
    assert changed - untouched(files_before, files_by_day(table)) == days_between(D5, D7)


@pytest.mark.slow
def test_rerun_gives_the_same_table_and_corrects_nothing(
    spark: SparkSession, late_wh: Path, make_ctx: ContextFactory, expected: set[Row]
) -> None:
    table = fct_path(late_wh)
    params = BackfillParams(D1, D6, allow_shrink=True)

    first = backfill.run(make_ctx(NOW), params)
    content = fct_list(spark, late_wh)
    files, version = files_by_day(table), last_version(table)
    second = backfill.run(make_ctx(NOW), params)

    assert Counter(fct_list(spark, late_wh)) == Counter(content)
    assert set(content) == expected
    assert D4.isoformat() not in files
    assert first.metrics["corrections_outside_range"] == 2
    assert second.metrics["corrections_outside_range"] == 0
    assert all(d["rows_now"] == d["rows_rebuilt"] for d in second.metrics["days"])
    assert [c.operation for c in commits(spark, table, version)] == ["WRITE"]
    assert D7.isoformat() in untouched(files, files_by_day(table))


def test_dry_run_renders_a_report_per_day_and_writes_nothing(
    spark: SparkSession,
    late_wh: Path,
    make_ctx: ContextFactory,
    expected: set[Row],
) -> None:
    table = fct_path(late_wh)
    before = fct_list(spark, late_wh)
    files, version = files_by_day(table), last_version(table)

    result = backfill.run(make_ctx(NOW), BackfillParams(D1, D7, dry_run=True))

    def figures(rows: Iterable[Row], day: date, currency: str) -> tuple[int, Decimal]:
        on_day = [r for r in rows if r[DAY] == day and r[CURRENCY] == currency]
        counted = [Decimal(str(r[AMOUNT])) for r in on_day if r[STATUS] in REVENUE_STATUSES]
        return len(on_day), sum(counted, Decimal("0.00"))

    lines = (result.stdout() or "").strip().splitlines()
    assert lines[0].split() == [
        "order_date",
        "currency",
        "rows_now",
        "rows_rebuilt",
        "revenue_now",
        "revenue_rebuilt",
    ]
    report = [line.split() for line in lines[1:-1]]
    in_range = [r for r in [*before, *expected] if r[DAY] in (D1, D2, D3, D4, D5, D6, D7)]
    keys: list[tuple[date, str]] = sorted({(r[DAY], r[CURRENCY]) for r in in_range})  # type: ignore[misc]
    assert [(date.fromisoformat(f[0]), f[1]) for f in report] == keys
    assert [(int(f[2]), int(f[3])) for f in report] == [
        (figures(before, *k)[0], figures(expected, *k)[0]) for k in keys
    ]
    assert [(Decimal(f[4]), Decimal(f[5])) for f in report] == [
        (figures(before, *k)[1], figures(expected, *k)[1]) for k in keys
    ]
    assert lines[-1].endswith(": 0")
    assert result.summary().startswith("would rebuild 2026-03-01..2026-03-07")
    assert last_version(table) == version
    assert files_by_day(table) == files


# --- guards -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("start", "end", "message"),
    [
        (D4, D4, "2026-03-04 would lose all 1 rows"),
        (D5, D5, "2026-03-05 would shrink from 3 to 2 rows"),
    ],
)
def test_shrink_guard_refuses_and_writes_nothing(
    spark: SparkSession,
    late_wh: Path,
    make_ctx: ContextFactory,
    start: date,
    end: date,
    message: str,
) -> None:
    table = fct_path(late_wh)
    files, version = files_by_day(table), last_version(table)

    with pytest.raises(GuardRefused, match=message) as refused:
        backfill.run(make_ctx(NOW), BackfillParams(start, end))

    assert refused.value.exit_code == 2
    assert "--allow-shrink" in str(refused.value)
    assert last_version(table) == version
    assert files_by_day(table) == files


def test_shrink_violations_bound_is_a_share_of_the_current_rows() -> None:
    def day(n: int, now: int, rebuilt: int) -> DayComparison:
        return DayComparison(date(2026, 3, n), now, Decimal(0), rebuilt, Decimal(0))

    days = [day(1, 5, 4), day(2, 5, 3), day(3, 1, 0), day(4, 0, 2), day(5, 2, 9)]

    assert shrink_violations(days, 0.2) == [
        "2026-03-02 would shrink from 5 to 3 rows",
        "2026-03-03 would lose all 1 rows",
    ]
    assert shrink_violations(days, 1.0) == ["2026-03-03 would lose all 1 rows"]


CLI_BASE = ("backfill", "--processing-time", "2026-03-09T12:00:00Z")


@pytest.mark.parametrize(
    ("flags", "error", "message"),
    [
        (["--start-date", "2026-3-01"], UsageError, "'2026-3-01' is not a date"),
        (["--start-date", "2026-02-30"], UsageError, "'2026-02-30' is not a valid date"),
        (["--end-date", "yesterday"], UsageError, "'yesterday' is not a date"),
        (
            ["--start-date", "2026-03-05", "--end-date", "2026-03-04"],
            GuardRefused,
            "2026-03-04 is before --start-date 2026-03-05",
        ),
        (
            ["--start-date", "2026-02-05", "--end-date", "2026-03-08"],
            GuardRefused,
            "is 32 days, more than the maximum of 31",
        ),
        (["--end-date", "2026-03-10"], GuardRefused, "2026-03-10 is after the processing date"),
        (["--full-refresh"], GuardRefused, "full refresh of fct_orders is not supported"),
        (
            ["--start-date", "2026-03-01", "--full-refresh"],
            GuardRefused,
            "full refresh of fct_orders is not supported",
        ),
    ],
)
def test_cli_refuses_bad_ranges_before_spark_starts(
    tmp_path: Path, flags: list[str], error: type[Exception], message: str
) -> None:
    root = tmp_path / "untouched"

    with pytest.raises(error, match=message) as refused:
        cli.prepare([*CLI_BASE, "--warehouse", str(root), *flags])

    assert getattr(refused.value, "exit_code", None) == 2
    assert not root.exists()


@pytest.mark.parametrize(
    ("flags", "start", "end"),
    [
        ([], date(2026, 2, 24), date(2026, 3, 9)),
        (["--start-date", "2026-03-01"], date(2026, 3, 1), date(2026, 3, 9)),
        (["--start-date", "2026-02-01"], date(2026, 2, 1), date(2026, 2, 14)),
        (["--end-date", "2026-03-05"], date(2026, 2, 20), date(2026, 3, 5)),
        (
            ["--start-date", "2026-02-07", "--end-date", "2026-03-09"],
            date(2026, 2, 7),
            date(2026, 3, 9),
        ),
    ],
)
def test_cli_range_defaults_to_fourteen_days_ending_on_the_processing_date(
    tmp_path: Path, flags: list[str], start: date, end: date
) -> None:
    params = cli.prepare([*CLI_BASE, "--warehouse", str(tmp_path), *flags]).params

    assert (params.start, params.end) == (start, end)


@pytest.mark.parametrize(
    ("column", "start", "end", "message"),
    [
        ("order_date", None, D3, "without a partition predicate"),
        ("order_date", D2, None, "without a partition predicate"),
        ("order_date", None, None, "without a partition predicate"),
        ("order_date", D3, D2, "2026-03-02 is before 2026-03-03"),
        ("order_date", "2026-03-02' OR true --", D3, "not a date"),
        ("order_date", datetime(2026, 3, 2, tzinfo=UTC), D3, "not a date"),
        ("customer_id", D2, D3, "'customer_id' is not a partition column"),
        ("order_date >= '1900-01-01' OR true", D2, D3, "no valid partition column"),
        ("", D2, D3, "no valid partition column"),
    ],
)
def test_overwrite_partitions_refuses_without_a_valid_partition_predicate(
    spark: SparkSession, late_wh: Path, column: str, start: Any, end: Any, message: str
) -> None:
    table = fct_path(late_wh)
    files, version = files_by_day(table), last_version(table)
    rows_df = spark.read.format("delta").load(table)

    with pytest.raises(UnpredicatedOverwriteRefused, match=message) as refused:
        overwrite_partitions(rows_df, table, column, start, end)

    assert refused.value.exit_code == 2
    assert last_version(table) == version
    assert files_by_day(table) == files


def test_replace_where_constraint_check_rejects_a_row_outside_the_range(
    spark: SparkSession, late_wh: Path, expected: set[Row]
) -> None:
    table = fct_path(late_wh)
    in_range = sorted(on_days(expected, [D2, D3]), key=str)
    stray = next(r for r in expected if r[DAY] == D5)
    files, version = files_by_day(table), last_version(table)

    with pytest.raises(AnalysisException, match="DELTA_REPLACE_WHERE_MISMATCH"):
        overwrite_partitions(
            spark.createDataFrame([*in_range, stray], FCT_ORDERS_SCHEMA),
            table,
            "order_date",
            D2,
            D3,
        )
    assert last_version(table) == version
    assert files_by_day(table) == files


# --- the verify-style history check -----------------------------------------------------------


def _plain_overwrite(spark: SparkSession, path: str) -> None:
    rows_df = spark.read.format("delta").load(path).localCheckpoint()
    rows_df.write.format("delta").mode("overwrite").save(path)


def _delete_all(spark: SparkSession, path: str) -> None:
    DeltaTable.forPath(spark, path).delete()


def _create_or_replace(spark: SparkSession, path: str) -> None:
    spark.read.format("delta").load(path).localCheckpoint().createOrReplaceTempView("scratch")
    spark.sql(
        f"CREATE OR REPLACE TABLE delta.`{path}` USING delta PARTITIONED BY (order_date) "
        "AS SELECT * FROM scratch"
    )


@pytest.mark.parametrize(
    "whole_table_write",
    [_plain_overwrite, _delete_all, _create_or_replace],
    ids=["mode-overwrite", "delete-all", "create-or-replace"],
)
def test_history_check_detects_a_whole_table_write_on_a_scratch_copy(
    spark: SparkSession,
    late_base: Path,
    tmp_path: Path,
    whole_table_write: Callable[[SparkSession, str], None],
) -> None:
    scratch = str(tmp_path / "scratch_fct_orders")
    shutil.copytree(fct_path(late_base), scratch)
    assert unpredicated_overwrites(commits(spark, scratch)) == []

    whole_table_write(spark, scratch)

    history = commits(spark, scratch)
    assert unpredicated_overwrites(history) == [history[-1]]
    assert is_unpredicated_overwrite(history[-1])


# --- concurrency ------------------------------------------------------------------------------


def _run_together(
    monkeypatch: pytest.MonkeyPatch,
    backfill_run: Callable[[], CommandResult],
    incremental_run: Callable[[], CommandResult],
) -> tuple[dict[str, CommandResult | BaseException], Counter[str]]:
    """Run both commands in two threads; each waits for the other before its first write,
    so their Delta transactions overlap."""
    barrier = threading.Barrier(2, timeout=300)
    calls: Counter[str] = Counter()
    real_overwrite, real_merge = overwrite_partitions, merge_latest_versions

    def gated_overwrite(*args: Any, **kwargs: Any) -> str:
        calls["backfill"] += 1
        if calls["backfill"] == 1:
            barrier.wait()
        return real_overwrite(*args, **kwargs)

    def gated_merge(*args: Any, **kwargs: Any) -> None:
        calls["incremental"] += 1
        if calls["incremental"] == 1:
            barrier.wait()
        real_merge(*args, **kwargs)

    monkeypatch.setattr(backfill, "overwrite_partitions", gated_overwrite)
    monkeypatch.setattr(incremental, "merge_latest_versions", gated_merge)
    outcomes: dict[str, CommandResult | BaseException] = {}

    def work(name: str, action: Callable[[], CommandResult]) -> None:
        try:
            outcomes[name] = action()
        except BaseException as exc:
            outcomes[name] = exc

    threads = [
        threading.Thread(target=work, args=("backfill", backfill_run)),
        threading.Thread(target=work, args=("incremental", incremental_run)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=600)
    assert not any(thread.is_alive() for thread in threads)
    return outcomes, calls


@pytest.mark.slow
def test_backfill_and_incremental_on_disjoint_dates_both_commit(
    spark: SparkSession,
    late_wh: Path,
    make_ctx: ContextFactory,
    monkeypatch: pytest.MonkeyPatch,
    expected: set[Row],
) -> None:
    table = fct_path(late_wh)
    before = fct_list(spark, late_wh)
    version = last_version(table)
    backfill_ctx, incremental_ctx = make_ctx(NOW), make_ctx(NOW)

    outcomes, calls = _run_together(
        monkeypatch,
        lambda: backfill.run(backfill_ctx, BackfillParams(D1, D1)),
        lambda: run_incremental(incremental_ctx, lookback_days=0),
    )

    assert {n: type(o).__name__ for n, o in outcomes.items()} == {
        "backfill": "BackfillResult",
        "incremental": "IncrementalResult",
    }
    assert calls == Counter({"backfill": 1, "incremental": 1})
    assert sorted(c.operation for c in commits(spark, table, version)) == ["MERGE", "WRITE"]
    after = fct_list(spark, late_wh)
    assert Counter(after) == Counter(
        [r for r in before if r[ID] not in LAST_TWO_BATCHES and r[DAY] != D1]
        + [r for r in expected if r[ID] in LAST_TWO_BATCHES or r[DAY] == D1]
    )


@pytest.mark.slow
def test_backfill_and_incremental_on_overlapping_dates_end_at_the_rule(
    spark: SparkSession,
    late_wh: Path,
    make_ctx: ContextFactory,
    monkeypatch: pytest.MonkeyPatch,
    expected: set[Row],
) -> None:
    table = fct_path(late_wh)
    backfill_ctx, incremental_ctx = make_ctx(NOW), make_ctx(NOW)

    outcomes, calls = _run_together(
        monkeypatch,
        lambda: backfill.run(backfill_ctx, BackfillParams(D1, D3)),
        lambda: run_incremental(incremental_ctx, lookback_days=0),
    )

    assert all(isinstance(o, CommandResult | ConcurrentWriteError) for o in outcomes.values())
    assert any(isinstance(o, CommandResult) for o in outcomes.values())
    lost = [n for n, o in outcomes.items() if isinstance(o, ConcurrentWriteError)]
    assert lost or calls["backfill"] + calls["incremental"] > 2
    if "backfill" in lost:
        backfill.run(make_ctx(NOW), BackfillParams(D1, D3))
    if "incremental" in lost:
        run_incremental(make_ctx(NOW), lookback_days=0)
    after = fct_list(spark, late_wh)
    assert Counter(after) == Counter(expected)
    assert unpredicated_overwrites(commits(spark, table)) == []
