"""Delta tests of `incremental`: the processing-time window MERGE into `fct_orders`.

After every run `fct_orders` must equal the plain-Python latest-version rule
(tests/reference.py) over everything landed so far, whatever the lateness, retries and
arrival order; a run must write only what changed and only in the partitions it names.
"""

from __future__ import annotations

import shutil
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from delta.tables import DeltaTable
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pyspark.sql import SparkSession

from orders_etl.context import CommandResult
from orders_etl.io.history import commits, unpredicated_overwrites
from orders_etl.pipeline import incremental
from orders_etl.sample import generate_batches
from orders_etl.schemas import STATUSES
from tests.conftest import ContextFactory, make_config
from tests.helpers import (
    append_landing,
    commit_actions,
    event,
    fct_list,
    land_path,
    landing_dicts,
    last_version,
    live_files,
    run_incremental,
    write_batch,
)
from tests.reference import (
    LandedVersion,
    expected_counts_per_day,
    expected_fct,
    rows_to_versions,
)

Row = tuple[object, ...]


def utc(text: str) -> datetime:
    """An aware UTC datetime from ISO text without a zone."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def version(
    order_id: str, event_time: str, status: str, stamp: str | None, amount: str = "10.00"
) -> dict[str, Any]:
    """One landing row; `stamp` None is a legacy row landed before `event_ingested_at`."""
    return {
        "order_id": order_id,
        "customer_id": "c1",
        "status": status,
        "amount": Decimal(amount),
        "currency": "EUR",
        "event_time": datetime.fromisoformat(event_time),
        "event_ingested_at": None if stamp is None else datetime.fromisoformat(stamp),
    }


def assert_fct_follows_the_rule(spark: SparkSession, warehouse: Path) -> list[Row]:
    """Check fct_orders against the rule over all of landing; return its rows."""
    landed = rows_to_versions(landing_dicts(spark, warehouse))
    rows = fct_list(spark, warehouse)
    order_ids = [r[0] for r in rows]
    assert None not in order_ids
    assert len(order_ids) == len(set(order_ids)), "order_id is not unique in fct_orders"
    assert set(rows) == expected_fct(landed)
    assert Counter(r[8] for r in rows) == expected_counts_per_day(landed)
    return rows


def assert_metrics_match(
    result: CommandResult, before: Sequence[Row], after: Sequence[Row], fct_path: Path
) -> None:
    """Check a run's metrics against the rows that changed and against its Delta commit."""
    old = {r[0]: r for r in before}
    new = {r[0]: r for r in after}
    metrics = result.metrics
    assert metrics["inserted"] == len(new.keys() - old.keys())
    assert metrics["updated"] == sum(1 for k, r in old.items() if new[k] != r)
    handled = metrics["inserted"] + metrics["updated"] + metrics["left_alone"]
    assert handled == metrics["deduped_rows"]
    changed_dates = {str(r[8]) for k, r in new.items() if old.get(k) != r} | {
        str(r[8]) for k, r in old.items() if new[k] != r
    }
    assert sorted(changed_dates) == metrics["partitions_touched"]
    if not changed_dates:
        assert (metrics["files_added"], metrics["files_removed"]) == (0, 0)
        return
    actions = commit_actions(fct_path, metrics["fct_version"])
    added = {a["add"]["path"]: a["add"] for a in actions if "add" in a}
    removed = {a["remove"]["path"] for a in actions if "remove" in a}
    with_new_dv = [p for p, a in added.items() if p in removed and a.get("deletionVector")]
    assert metrics["files_added"] == len(added.keys() - removed)
    assert metrics["files_removed"] == len(removed - added.keys())
    assert metrics["deletion_vectors_added"] == len(with_new_dv)
    assert metrics["rows_copied"] == 0


def data_file_changes(fct_path: Path, after_version: int) -> int:
    """Count the data files added or removed by the commits after `after_version`."""
    return sum(
        1
        for v in range(after_version + 1, last_version(fct_path) + 1)
        for a in commit_actions(fct_path, v)
        if "add" in a or "remove" in a
    )


# --- a seeded fixture of late events ----------------------------------------------------------

# Legacy rows, in orders_landing before the pipeline stamped anything.
LEGACY = [
    version("h_moved_weeks_late", "2026-02-05T10:00:00", "placed", None),
    version("h_legacy_tie", "2026-03-01T00:10:00", "paid", None),
    version("h_legacy_only", "2026-02-27T23:59:59", "delivered", None),
    version("h_legacy_stale", "2026-02-28T10:00:00", "paid", None),
]
# Hand-made lines added to the generated batches, by batch number.
HAND_LINES = {
    0: [
        event("h_stale", "2026-03-01T05:00:00Z", "paid"),
        event("h_retry", "2026-03-01T06:00:00Z", "paid"),
        event("h_midnight", "2026-02-28T23:50:00Z", "placed"),
        # the same event_time as the legacy row: the stamped correction wins
        event("h_legacy_tie", "2026-03-01T00:10:00Z", "paid", amount="12.00"),
        # +02:00: the local date is 1 March, the UTC date 28 February
        event("h_offset", "2026-03-01T01:30:00+02:00", "placed"),
    ],
    1: [
        event("h_retry", "2026-03-01T06:00:00Z", "paid"),
        # crosses midnight UTC (written in +01:00): moves the order to 1 March
        event("h_midnight", "2026-03-01T01:05:00+01:00", "paid"),
        # weeks late, and moves the legacy order from 5 to 6 February
        event("h_moved_weeks_late", "2026-02-06T09:00:00Z", "shipped"),
        # hours after the newer `paid`
        event("h_stale", "2026-03-01T04:00:00Z", "placed"),
    ],
    2: [
        event("h_legacy_stale", "2026-02-28T09:00:00Z", "placed"),
        event("h_retry", "2026-03-01T06:00:00Z", "paid"),
        event("h_retry", "2026-03-01T06:00:00Z", "paid"),
        event("h_days_late", "2026-02-25T08:00:00Z", "placed"),
    ],
    3: [
        event("h_midnight", "2026-02-28T23:50:00Z", "placed"),
        event("h_days_late", "2026-02-26T08:00:00Z", "shipped"),
        event("h_stale", "2026-03-01T04:30:00Z", "paid", amount="9.00"),
    ],
}


def seeded_batches(folder: Path) -> list[tuple[datetime, Path]]:
    """Three generated 8-hour batches (seeded) plus hand-made lines, and a fourth batch ten
    days later; returns (processing time, file) in landing order."""
    generated = generate_batches(
        7,
        datetime(2026, 3, 1, tzinfo=UTC),
        days=1,
        orders_per_hour=2,
        batch_hours=8,
        bad_line_share=0.02,
        retry_share=0.1,
    )
    times = [b.processing_time for b in generated] + [utc("2026-03-12T00:00:00")]
    lines = [b.lines for b in generated] + [[]]
    return [
        (moment, write_batch(folder, f"batch-{n}.jsonl", lines[n] + HAND_LINES[n]))
        for n, moment in enumerate(times)
    ]


def fixture_features(landed: Sequence[LandedVersion]) -> set[str]:
    """Name the kinds of late arrival that the landed rows hold."""
    features = set()
    by_order: dict[str, list[LandedVersion]] = {}
    for v in landed:
        by_order.setdefault(v.order_id, []).append(v)
        if v.event_ingested_at is None:
            features.add("legacy")
            continue
        late = v.event_ingested_at - v.event_time
        features.add(
            "weeks_late"
            if late > timedelta(days=14)
            else "days_late"
            if late > timedelta(days=1)
            else "hours_late"
            if late > timedelta(hours=1)
            else "on_time"
        )
    for versions in by_order.values():
        contents = Counter((v.event_time, v.status, v.amount) for v in versions)
        if max(contents.values()) > 1:
            features.add("retry")
        if len({v.event_time.date() for v in versions}) > 1:
            features.add("moved_date")
        if any(
            a.event_time < b.event_time and a.effective_ingested_at > b.effective_ingested_at
            for a in versions
            for b in versions
        ):
            features.add("stale_after_newer")
    return features


@pytest.mark.slow
def test_seeded_late_events_follow_the_rule_after_every_batch_and_a_rerun_changes_nothing(
    spark: SparkSession, warehouse: Path, make_ctx: ContextFactory, tmp_path: Path
) -> None:
    fct_path = warehouse / "fct_orders"
    append_landing(spark, warehouse, LEGACY)
    before: list[Row] = []
    for processing_time, batch in seeded_batches(tmp_path / "batches"):
        landed = land_path(make_ctx(processing_time), batch)
        assert landed.metrics["rows_landed"] > 0
        result = run_incremental(make_ctx(processing_time))
        after = assert_fct_follows_the_rule(spark, warehouse)
        assert_metrics_match(result, before, after, fct_path)
        # after the first MERGE, each run reads only what landed since the one before
        if before:
            assert result.metrics["read_after_landing_version"] is not None
            assert result.metrics["source_rows"] <= landed.metrics["rows_landed"]
        before = after

    landed_versions = rows_to_versions(landing_dicts(spark, warehouse))
    assert fixture_features(landed_versions) >= {
        "legacy",
        "on_time",
        "hours_late",
        "days_late",
        "weeks_late",
        "retry",
        "moved_date",
        "stale_after_newer",
    }
    assert 40 <= len(before) <= 70
    kept = {r[0]: r for r in before}
    assert kept["h_stale"][2:6] == ("paid", Decimal("10.00"), "EUR", datetime(2026, 3, 1, 5))
    assert kept["h_legacy_stale"][6] is None
    assert kept["h_legacy_tie"][3] == Decimal("12.00")
    assert kept["h_midnight"][8] == date(2026, 3, 1)
    assert kept["h_moved_weeks_late"][8] == date(2026, 2, 6)
    assert kept["h_offset"][8] == date(2026, 2, 28)
    assert unpredicated_overwrites(commits(spark, str(fct_path))) == []

    # nothing new: a rerun an hour later reads nothing (nothing landed since the last
    # MERGE), and one that reads the whole window again leaves every order alone; neither
    # changes a row or writes a data file: two runs in a row equal one
    version_once, files_once = last_version(fct_path), live_files(fct_path)
    rerun = run_incremental(make_ctx(utc("2026-03-12T01:00:00")))
    assert rerun.metrics["read_after_landing_version"] == rerun.metrics["landing_version"]
    assert rerun.metrics["source_rows"] == rerun.metrics["deduped_rows"] == 0
    whole = incremental.run(
        make_ctx(utc("2026-03-12T01:00:00")),
        incremental.IncrementalParams(lookback_days=3, whole_window=True),
    )
    assert whole.metrics["read_after_landing_version"] is None
    for result in (rerun, whole):
        assert (result.metrics["inserted"], result.metrics["updated"]) == (0, 0)
        assert (result.metrics["files_added"], result.metrics["files_removed"]) == (0, 0)
        assert result.metrics["partitions_touched"] == []
    assert whole.metrics["left_alone"] == whole.metrics["deduped_rows"] > 0
    assert data_file_changes(fct_path, version_once) == 0
    assert live_files(fct_path) == files_once
    assert sorted(fct_list(spark, warehouse), key=str) == sorted(before, key=str)


# --- single behaviours ------------------------------------------------------------------------


def test_a_stale_version_landed_late_never_overwrites_a_newer_one(
    spark: SparkSession, warehouse: Path, make_ctx: ContextFactory
) -> None:
    fct_path = warehouse / "fct_orders"
    append_landing(
        spark,
        warehouse,
        [
            version("o1", "2026-03-01T11:00:00", "shipped", "2026-03-01T12:00:00"),
            version("o3", "2026-03-01T09:00:00", "paid", "2026-03-01T12:00:00"),
        ],
    )
    run_incremental(make_ctx("2026-03-01T12:00:00+00:00"))
    append_landing(
        spark, warehouse, [version("o2", "2026-03-10T11:00:00", "placed", "2026-03-10T12:00:00")]
    )
    run_incremental(make_ctx("2026-03-10T12:00:00+00:00"))
    # nine days late, after the newer `shipped`, which is now outside the 3-day window; and
    # for o3 a version with the same event_time that landed later (it wins the tie)
    append_landing(
        spark,
        warehouse,
        [
            version("o1", "2026-03-01T10:00:00", "placed", "2026-03-10T13:00:00"),
            version("o1", "2026-03-01T10:30:00", "paid", "2026-03-10T13:00:00"),
            version("o3", "2026-03-01T09:00:00", "cancelled", "2026-03-10T13:00:00"),
        ],
    )
    before = fct_list(spark, warehouse)

    result = run_incremental(make_ctx("2026-03-10T13:00:00+00:00"))

    assert result.metrics["window_since"] == datetime(2026, 3, 7, 12)
    # the window holds o2 too, but it was merged by the run before: only the three new rows
    # are read
    assert result.metrics["source_rows"] == 3
    assert (result.metrics["inserted"], result.metrics["updated"]) == (0, 1)
    after = assert_fct_follows_the_rule(spark, warehouse)
    assert_metrics_match(result, before, after, fct_path)
    kept = {r[0]: r for r in after}
    assert kept["o1"][2] == "shipped"
    assert kept["o1"][5] == datetime(2026, 3, 1, 11)
    assert kept["o3"][2] == "cancelled"


def test_an_order_moved_to_another_date_leaves_exactly_one_row(
    spark: SparkSession, warehouse: Path, make_ctx: ContextFactory
) -> None:
    fct_path = warehouse / "fct_orders"
    append_landing(
        spark,
        warehouse,
        [
            version("o1", "2026-03-01T23:50:00", "placed", "2026-03-02T00:30:00"),
            version("o2", "2026-03-02T00:20:00", "placed", "2026-03-02T00:30:00"),
        ],
    )
    run_incremental(make_ctx("2026-03-02T00:30:00+00:00"))
    before = assert_fct_follows_the_rule(spark, warehouse)
    assert {r[0]: r[8] for r in before} == {"o1": date(2026, 3, 1), "o2": date(2026, 3, 2)}

    # the newer version crosses midnight UTC; no incoming row is dated 1 March any more
    append_landing(
        spark, warehouse, [version("o1", "2026-03-02T00:10:00", "paid", "2026-03-02T01:00:00")]
    )
    result = run_incremental(make_ctx("2026-03-02T01:00:00+00:00"))

    after = assert_fct_follows_the_rule(spark, warehouse)
    assert_metrics_match(result, before, after, fct_path)
    assert sorted((r[0], r[2], r[8]) for r in after) == [
        ("o1", "paid", date(2026, 3, 2)),
        ("o2", "placed", date(2026, 3, 2)),
    ]
    assert (result.metrics["inserted"], result.metrics["updated"]) == (0, 1)
    assert result.metrics["partitions_touched"] == ["2026-03-01", "2026-03-02"]
    # the old date's only file is gone, not kept with every row deleted
    assert result.metrics["files_removed"] == 1
    live_dates = {f["partitionValues"]["order_date"] for f in live_files(fct_path).values()}
    assert live_dates == {"2026-03-02"}


@pytest.mark.parametrize("whole_window", [True, False], ids=["whole-window", "since-last-merge"])
def test_the_merge_reads_and_touches_only_the_window_partitions(
    spark: SparkSession, warehouse: Path, make_ctx: ContextFactory, whole_window: bool
) -> None:
    """The whole window holds b1, merged the run before; reading only what landed since that
    MERGE leaves b1 and its partition out of the MERGE, with the same table."""
    fct_path = warehouse / "fct_orders"
    append_landing(
        spark,
        warehouse,
        [
            version("a1", "2026-02-01T10:00:00", "paid", "2026-02-04T00:00:00"),
            version("a2", "2026-02-02T10:00:00", "paid", "2026-02-04T00:00:00"),
            version("a4", "2026-02-02T11:00:00", "paid", "2026-02-04T00:00:00"),
            version("a3", "2026-02-03T10:00:00", "paid", "2026-02-04T00:00:00"),
        ],
    )
    run_incremental(make_ctx("2026-02-04T00:00:00+00:00"))
    append_landing(
        spark, warehouse, [version("b1", "2026-02-19T22:00:00", "paid", "2026-02-20T00:00:00")]
    )
    run_incremental(make_ctx("2026-02-20T00:00:00+00:00"))
    files_before = live_files(fct_path)
    rows_before = fct_list(spark, warehouse)
    # a weeks-late update of a2 and a new order; the window starts 3 days before b1's stamp
    append_landing(
        spark,
        warehouse,
        [
            version("a2", "2026-02-02T12:00:00", "shipped", "2026-02-21T00:00:00"),
            version("c1", "2026-02-20T23:00:00", "placed", "2026-02-21T00:00:00"),
        ],
    )

    result = incremental.run(
        make_ctx("2026-02-21T00:00:00+00:00"),
        incremental.IncrementalParams(lookback_days=3, whole_window=whole_window),
    )

    metrics = result.metrics
    assert metrics["watermark"] == datetime(2026, 2, 20)
    assert metrics["window_since"] == datetime(2026, 2, 17)
    read = 3 if whole_window else 2
    assert (metrics["source_rows"], metrics["deduped_rows"]) == (read, read)
    assert (metrics["inserted"], metrics["updated"], metrics["left_alone"]) == (1, 1, read - 2)
    assert (metrics["files_added"], metrics["files_removed"]) == (2, 0)
    assert (metrics["rows_copied"], metrics["deletion_vectors_added"]) == (0, 1)
    assert metrics["partitions_touched"] == ["2026-02-02", "2026-02-20"]
    after = assert_fct_follows_the_rule(spark, warehouse)
    assert_metrics_match(result, rows_before, after, fct_path)

    merge = commits(spark, str(fct_path), after_version=metrics["fct_version"] - 1)[0]
    assert merge.operation == "MERGE"
    predicate = merge.parameters["predicate"]
    b1_date = ["2026-02-19"]
    for day in ["2026-02-02", "2026-02-20", *(b1_date if whole_window else [])]:
        assert day in predicate
    for day in ["2026-02-01", "2026-02-03", *([] if whole_window else b1_date)]:
        assert day not in predicate

    files_after = live_files(fct_path)

    def in_partition(files: dict[str, dict[str, Any]], day: str) -> dict[str, dict[str, Any]]:
        return {p: a for p, a in files.items() if a["partitionValues"]["order_date"] == day}

    for untouched in ("2026-02-01", "2026-02-03", "2026-02-19"):
        assert in_partition(files_after, untouched) == in_partition(files_before, untouched)
    # the update left a2's old file in place with a deletion vector, plus one new file
    old_a2 = in_partition(files_before, "2026-02-02")
    new_a2 = in_partition(files_after, "2026-02-02")
    assert old_a2.keys() < new_a2.keys()
    assert all(new_a2[p].get("deletionVector") for p in old_a2)
    assert len(new_a2.keys() - old_a2.keys()) == 1
    detail = DeltaTable.forPath(spark, str(fct_path)).detail().first()
    assert detail is not None
    assert detail["properties"]["delta.enableDeletionVectors"] == "true"
    assert "deletionVectors" in detail["tableFeatures"]


# --- any split, any arrival order -------------------------------------------------------------

MIDNIGHT = datetime(2026, 3, 2)
VERSIONS = st.tuples(
    st.sampled_from(["p1", "p2", "p3"]),
    st.sampled_from([-180, -1, 0, 1, 90]),  # minutes from midnight UTC: ties and date moves
    st.sampled_from(STATUSES),
    st.sampled_from(["1.00", "2.50"]),
)


@st.composite
def landings(draw: st.DrawFn) -> tuple[list[list[dict[str, Any]]], list[datetime]]:
    """Versions split into 1-3 batches (retries allowed), each with its processing time;
    the first batch may be legacy rows with no stamp."""
    versions = draw(st.lists(VERSIONS, min_size=1, max_size=8))
    count = draw(st.integers(1, 3))
    batch_of = draw(
        st.lists(st.integers(0, count - 1), min_size=len(versions), max_size=len(versions))
    )
    gaps = draw(st.lists(st.sampled_from([1, 96]), min_size=count, max_size=count))
    legacy_first = draw(st.booleans())
    times, moment = [], MIDNIGHT + timedelta(hours=3)
    for gap in gaps:
        moment += timedelta(hours=gap)
        times.append(moment.replace(tzinfo=UTC))
    batches: list[list[dict[str, Any]]] = [[] for _ in range(count)]
    for (order_id, minutes, status, amount), n in zip(versions, batch_of, strict=True):
        stamp = None if n == 0 and legacy_first else times[n].replace(tzinfo=None).isoformat()
        event_time = (MIDNIGHT + timedelta(minutes=minutes)).isoformat()
        batches[n].append(version(order_id, event_time, status, stamp, amount))
    return batches, times


@pytest.mark.slow
@settings(
    max_examples=8,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(landing=landings(), lookbacks=st.lists(st.sampled_from([1, 3]), min_size=3, max_size=3))
def test_any_split_and_arrival_order_gives_the_rule_and_the_rebuild(
    spark: SparkSession,
    make_ctx: ContextFactory,
    tmp_path_factory: pytest.TempPathFactory,
    landing: tuple[list[list[dict[str, Any]]], list[datetime]],
    lookbacks: list[int],
) -> None:
    """After every batch, the incremental that reads only what landed since its last MERGE
    gives the same `fct_orders` as one that reads the whole window each time (also when the
    lookback widens between runs), and both follow the rule."""
    batches, times = landing
    folder = tmp_path_factory.mktemp("arrivals")
    incremental_wh, whole_wh, rebuild_wh = (
        folder / "incremental",
        folder / "whole-window",
        folder / "rebuild",
    )
    for rows, moment, lookback in zip(batches, times, lookbacks, strict=False):
        if rows:
            append_landing(spark, incremental_wh, rows)
            append_landing(spark, whole_wh, rows)
        run_incremental(make_ctx(moment, make_config(incremental_wh)), lookback)
        incremental.run(
            make_ctx(moment, make_config(whole_wh)),
            incremental.IncrementalParams(lookback, whole_window=True),
        )
        assert Counter(fct_list(spark, incremental_wh)) == Counter(fct_list(spark, whole_wh))
    incremental_rows = assert_fct_follows_the_rule(spark, incremental_wh)

    shutil.copytree(incremental_wh / "orders_landing", rebuild_wh / "orders_landing")
    run_incremental(make_ctx(times[-1], make_config(rebuild_wh)))
    assert set(fct_list(spark, rebuild_wh)) == set(incremental_rows)
