"""Delta tests of the downstream part: rollup versioning and as-of figures, revisions and their
webhook, the `revenue` output, `verify` on a healthy and on a broken warehouse, and `hourly`."""

from __future__ import annotations

import json
import random
import shutil
import socket
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from functools import partial
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from delta.tables import DeltaTable
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from orders_etl import cli
from orders_etl.config import CONF_DIR_VARIABLE, NotifySettings
from orders_etl.context import RunContext
from orders_etl.errors import GuardRefused
from orders_etl.io import writes
from orders_etl.io.notify import WEBHOOK_VARIABLE, post_json
from orders_etl.io.tables import table_version
from orders_etl.io.writes import merge_revenue_versions
from orders_etl.pipeline import revenue, rollup, verify
from orders_etl.pipeline.revenue import RevenueParams, figures_as_of
from orders_etl.schemas import FCT_ORDERS_COLUMNS, REVENUE_TYPE, STATUSES
from orders_etl.transforms import revenue as revenue_transforms
from tests.conftest import ContextFactory, make_config
from tests.helpers import (
    NOTIFY_TOML,
    event,
    land_path,
    landing_dicts,
    recorded,
    run_incremental,
    write_batch,
)
from tests.reference import expected_revenue, rows_to_versions

P1 = datetime(2026, 3, 10, 6, tzinfo=UTC)
P2 = datetime(2026, 3, 11, 6, tzinfo=UTC)
P3 = datetime(2026, 3, 12, 6, tzinfo=UTC)
SECRET = "xoxb-s3cr3t-t0ken-4242"
CHECK_NAMES = {
    "order_id_not_null",
    "order_id_unique",
    "reconciles_with_source",
    "daily_revenue_matches_fct",
    "landing_accounting",
    "no_unpredicated_overwrite",
}


def day(text: str) -> date:
    return date.fromisoformat(text)


def naive(moment: datetime) -> datetime:
    """A UTC time as Spark returns timestamps to this (TZ=UTC) process."""
    return moment.astimezone(UTC).replace(tzinfo=None)


def revenue_versions(spark: SparkSession, root: Path | str) -> set[tuple[object, ...]]:
    """daily_revenue as (order_date, currency, order_count, revenue, as_of, superseded_at)."""
    df = spark.read.format("delta").load(f"{root}/daily_revenue")
    columns = ("order_date", "currency", "order_count", "revenue", "as_of", "superseded_at")
    return {tuple(r) for r in df.select(*columns).collect()}


def ledger(spark: SparkSession, root: Path | str) -> list[dict[str, Any]]:
    """pipeline_runs rows as dicts."""
    return [r.asDict() for r in spark.read.format("delta").load(f"{root}/pipeline_runs").collect()]


def revenue_table_version(spark: SparkSession, root: Path | str) -> int | None:
    return table_version(spark, f"{root}/daily_revenue")


# --- one published warehouse, shared by most tests (copied before any write) ------------------

# Landed, merged and rolled up at P1.
BATCH_1 = [
    event("o1", "2026-03-09T10:00:00Z", amount="10.00"),
    event("o2", "2026-03-09T23:59:59Z", status="cancelled", amount="4.00"),
    event("o3", "2026-03-10T00:00:00Z", amount="7.50", currency="USD"),
    event("o4", "2026-03-10T05:00:00Z", status="placed", amount="3.00"),
    event("o11", "2026-03-07T12:00:00Z", amount="9.00", currency="GBP"),
    event("o12", "2026-03-08T12:00:00Z", amount="8.00", currency="USD"),
    event("o13", "2026-03-05T12:00:00Z", amount="5.00"),
]
# Landed, merged and rolled up at P2. 2026-03-05 is not touched at all; 2026-03-08 USD is
# recomputed (2026-03-08 changes) but its figures stay the same.
BATCH_2 = [
    # a newer version moves o1 from 2026-03-09 to 2026-03-10: both published days change
    event("o1", "2026-03-10T09:00:00Z", status="shipped", amount="10.00"),
    # a late order for a published day
    event("o10", "2026-03-10T12:00:00Z", amount="6.00", currency="USD"),
    # o11 moves to 2026-03-08: 2026-03-07 GBP loses its only order, 2026-03-08 gains GBP
    event("o11", "2026-03-08T08:00:00Z", amount="9.00", currency="GBP"),
    # first publications: two past days and the processing day
    event("o5", "2026-03-06T06:00:00Z", amount="20.00"),
    event("o6", "2026-02-24T06:00:00Z", status="refunded", amount="1.00", currency="USD"),
    event("o7", "2026-03-11T05:00:00Z", status="delivered", amount="2.00", currency="USD"),
    # a stale version of o4 that must not win
    event("o4", "2026-03-10T04:00:00Z", status="paid", amount="3.00"),
]
CSV_AT_P2 = [
    "order_date,currency,order_count,revenue",
    "2026-02-24,USD,1,0.00",
    "2026-03-05,EUR,1,5.00",
    "2026-03-06,EUR,1,20.00",
    "2026-03-08,GBP,1,9.00",
    "2026-03-08,USD,1,8.00",
    "2026-03-09,EUR,1,0.00",
    "2026-03-10,EUR,2,13.00",
    "2026-03-10,USD,2,13.50",
    "2026-03-11,USD,1,2.00",
]
CSV_AT_P1 = [
    "order_date,currency,order_count,revenue",
    "2026-03-05,EUR,1,5.00",
    "2026-03-07,GBP,1,9.00",
    "2026-03-08,USD,1,8.00",
    "2026-03-09,EUR,2,10.00",
    "2026-03-10,EUR,1,3.00",
    "2026-03-10,USD,1,7.50",
]
# Hourly at P3: a late order for published 2026-03-09, a first order of the processing day.
BATCH_3 = [
    event("o8", "2026-03-09T12:00:00Z", amount="5.00"),
    event("o9", "2026-03-12T01:00:00Z", amount="1.00", currency="GBP"),
    "not json",
]


@pytest.fixture(scope="module")
def published(spark: SparkSession, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two batches landed, merged and rolled up at P1 and P2; land and rollup runs are in the
    run ledger (landing accounting and the rollup checkpoint)."""
    root = tmp_path_factory.mktemp("published") / "warehouse"
    for k, (moment, lines) in enumerate(((P1, BATCH_1), (P2, BATCH_2))):
        path = write_batch(root.parent / "batches", f"b{k + 1}.jsonl", lines)
        # A context per command, made right before it runs: it tags the session's commits.
        config = make_config(root)
        land_ctx = RunContext(config, moment, f"published-{k + 1}-land", spark=spark)
        recorded(land_ctx, "land", partial(land_path, path=path))
        run_incremental(RunContext(config, moment, f"published-{k + 1}-incremental", spark=spark))
        rollup_ctx = RunContext(config, moment, f"published-{k + 1}-rollup", spark=spark)
        recorded(rollup_ctx, "rollup", rollup.run)
    return root


@pytest.fixture
def copied(published: Path, warehouse: Path) -> Path:
    """This test's own copy of the published warehouse."""
    shutil.copytree(published, warehouse, dirs_exist_ok=True)
    return warehouse


def reader(spark: SparkSession, root: Path, moment: datetime = P2) -> RunContext:
    """A context for read-only commands on `root` (nothing run through it writes)."""
    return RunContext(make_config(root), moment, "reader", spark=spark)


def rollup_metrics(spark: SparkSession, root: Path) -> list[dict[str, Any]]:
    """Metrics of the succeeded rollup runs in the ledger, oldest processing time first."""
    runs = sorted(
        (r["processing_time"], r["metrics"])
        for r in ledger(spark, root)
        if r["command"] == "rollup" and r["outcome"] == "succeeded"
    )
    return [json.loads(metrics) for _, metrics in runs]


# --- rollup versioning --------------------------------------------------------------------------


def test_rollup_versions_changed_days_and_leaves_the_others_alone(
    spark: SparkSession, published: Path
) -> None:
    p1, p2 = naive(P1), naive(P2)
    assert revenue_versions(spark, published) == {
        # no new version: 2026-03-05 untouched at P2, 2026-03-08 USD recomputed, same figures
        (day("2026-03-05"), "EUR", 1, Decimal("5.00"), p1, None),
        (day("2026-03-08"), "USD", 1, Decimal("8.00"), p1, None),
        # changed at P2: closed at P2, new current version as of P2
        (day("2026-03-09"), "EUR", 2, Decimal("10.00"), p1, p2),
        (day("2026-03-09"), "EUR", 1, Decimal("0.00"), p2, None),
        (day("2026-03-10"), "EUR", 1, Decimal("3.00"), p1, p2),
        (day("2026-03-10"), "EUR", 2, Decimal("13.00"), p2, None),
        (day("2026-03-10"), "USD", 1, Decimal("7.50"), p1, p2),
        (day("2026-03-10"), "USD", 2, Decimal("13.50"), p2, None),
        # lost all its orders at P2: closed, no new version
        (day("2026-03-07"), "GBP", 1, Decimal("9.00"), p1, p2),
        # first published at P2
        (day("2026-02-24"), "USD", 1, Decimal("0.00"), p2, None),
        (day("2026-03-06"), "EUR", 1, Decimal("20.00"), p2, None),
        (day("2026-03-08"), "GBP", 1, Decimal("9.00"), p2, None),
        (day("2026-03-11"), "USD", 1, Decimal("2.00"), p2, None),
    }
    as_of_p2 = (
        spark.read.format("delta").load(f"{published}/daily_revenue").filter(F.col("as_of") == p2)
    )
    assert {r["run_id"] for r in as_of_p2.collect()} == {"published-2-rollup"}

    first, second = rollup_metrics(spark, published)
    assert (first["days_recomputed"], first["figures_changed"]) == ("all", 6)
    # After the first run, the change data feed since its checkpoint names the days to
    # recompute: the 7 days the P2 MERGE touched, not 2026-03-05.
    assert second["fct_version_from"] == first[rollup.CHECKPOINT_METRIC]
    assert (second["days_recomputed"], second["figures_changed"]) == (7, 8)


def test_rollup_rerun_adds_no_version_with_or_without_a_checkpoint(
    spark: SparkSession, copied: Path, make_ctx: ContextFactory
) -> None:
    versions = revenue_versions(spark, copied)
    table_before = revenue_table_version(spark, copied)

    idle = recorded(make_ctx(P2 + timedelta(hours=1)), "rollup", rollup.run).metrics
    assert (idle["days_recomputed"], idle["figures_changed"], idle["revisions"]) == (0, 0, [])

    # Without the ledger's checkpoint (lost, or a crash before the outcome row), every day is
    # recomputed and compared with its published figures: still nothing to add.
    shutil.rmtree(copied / "pipeline_runs")
    again = rollup.run(make_ctx(P2 + timedelta(hours=2))).metrics
    assert (again["days_recomputed"], again["figures_changed"]) == ("all", 0)
    assert revenue_table_version(spark, copied) == table_before
    assert revenue_versions(spark, copied) == versions


def current_pairs(spark: SparkSession, root: Path) -> list[tuple[object, ...]]:
    """(order_date, currency) of every current daily_revenue row, one entry per row."""
    df = spark.read.format("delta").load(f"{root}/daily_revenue")
    return sorted(
        tuple(r)
        for r in df.filter("superseded_at IS NULL").select("order_date", "currency").collect()
    )


def revision_keys(spark: SparkSession, root: Path) -> list[tuple[object, ...]]:
    """revenue_revisions without run_id, one entry per row."""
    df = spark.read.format("delta").load(f"{root}/revenue_revisions").drop("run_id")
    return sorted(tuple(r) for r in df.collect())


@pytest.mark.slow
@pytest.mark.parametrize("later", [timedelta(0), timedelta(minutes=5)], ids=["same", "later"])
def test_a_rollup_overtaken_between_its_read_and_its_merge_starts_over(
    spark: SparkSession,
    copied: Path,
    make_ctx: ContextFactory,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    later: timedelta,
) -> None:
    """Rollup A has computed its changes when rollup B (same or later processing time)
    publishes first. A's stale changes must not land: A starts over from B's figures and finds
    nothing left to version (same time) or is refused by the timeline guard (later time).
    The warehouse ends as if only B had run: one current row per pair, each revision once."""
    moment = P2 + timedelta(hours=2)
    lines = [
        event("o20", "2026-03-09T15:00:00Z", amount="4.00"),
        event("o3", "2026-03-10T08:00:00Z", status="refunded", amount="7.50", currency="USD"),
    ]
    path = write_batch(tmp_path / "batches", "late.jsonl", lines)
    land_path(make_ctx(P2 + timedelta(hours=1)), path)
    run_incremental(make_ctx(P2 + timedelta(hours=1)))
    revisions_before = revision_keys(spark, copied)
    control = tmp_path / "control"
    shutil.copytree(copied, control)
    control_ctx = RunContext(make_config(control), moment + later, "control", spark=spark)
    rollup.run(control_ctx)

    overtaken: list[int] = []

    def overtake_then_merge(*args: Any, **kwargs: Any) -> None:
        if not overtaken:
            overtaken.append(1)
            rollup.run(make_ctx(moment + later))  # B, while A holds its computed changes
        merge_revenue_versions(*args, **kwargs)

    monkeypatch.setattr(rollup, "merge_revenue_versions", overtake_then_merge)
    if later:
        with pytest.raises(GuardRefused, match="before the newest published version"):
            rollup.run(make_ctx(moment))
    else:
        again = rollup.run(make_ctx(moment))
        assert again.figures_changed == 0 and again.revisions == ()
    assert overtaken == [1]

    pairs = current_pairs(spark, copied)
    assert len(pairs) == len(set(pairs)), "a pair got two current rows"
    assert revenue_versions(spark, copied) == revenue_versions(spark, control)
    assert revision_keys(spark, copied) == revision_keys(spark, control)
    assert len(revision_keys(spark, control)) > len(revisions_before), "nothing was revised"


class Crash(BaseException):
    """A simulated crash: not an Exception, so nothing retries or records it."""


@pytest.mark.slow
def test_revisions_from_the_changes_equal_reading_them_back_also_across_a_crash(
    spark: SparkSession, copied: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A rollup whose snapshot holds no version at or after its processing time takes its
    revisions from the changes it versioned (or records none when it versioned nothing)
    instead of reading them back from `daily_revenue`; the same rollups on a copy that always
    reads them back (the unoptimized path) give the same tables: idle runs, a revised day, a
    pair that loses its orders, a new currency on a published day, and a crash between the
    versioning MERGE and the revisions append followed by its rerun."""
    control = tmp_path / "control"
    shutil.copytree(copied, control)
    real_check = rollup.check_timeline
    paths: list[str] = []
    crash_before_insert: list[bool] = []

    def check_never_skipping(ctx: RunContext, version: int | None = None) -> datetime | None:
        newest = real_check(ctx, version)
        return datetime.max if ctx.warehouse.root == str(control) else newest

    def counted(name: str, real: Callable[..., DataFrame], *args: Any) -> DataFrame:
        paths.append(name)
        return real(*args)

    def insert_or_crash(*args: Any) -> None:
        if crash_before_insert:
            raise Crash("crash before the revisions append")
        writes.insert_new_rows(*args)

    monkeypatch.setattr(rollup, "check_timeline", check_never_skipping)
    monkeypatch.setattr(
        rollup,
        "diff_revisions_at",
        partial(counted, "read back", revenue_transforms.diff_revisions_at),
    )
    monkeypatch.setattr(
        rollup,
        "revisions_of_changes",
        partial(counted, "from changes", revenue_transforms.revisions_of_changes),
    )
    monkeypatch.setattr(rollup, "insert_new_rows", insert_or_crash)

    def both(moment: datetime, run_id: str, change: dict[str, str] | None = None) -> list[str]:
        """Run the rollup at `moment` on both copies, after the same `fct_orders` change (an
        update of o2, o13 or both); return the paths the optimized copy took."""
        taken = []
        for root in (copied, control):
            paths.clear()
            for order_id, assignment in (change or {}).items():
                DeltaTable.forPath(spark, f"{root}/fct_orders").update(
                    f"order_id = '{order_id}'", {k: F.lit(v) for k, v in [assignment.split("=")]}
                )
            ctx = RunContext(make_config(root), moment, run_id, spark=spark)
            if crash_before_insert:
                with pytest.raises(Crash):
                    rollup.run(ctx)
            else:
                recorded(ctx, "rollup", rollup.run)
            taken.append(list(paths))
        assert taken[1] == ["read back"]  # the control always reads back
        return taken[0]

    p4, p5 = P3 + timedelta(hours=1), P3 + timedelta(hours=2)
    assert both(P3, "idle") == []  # nothing changed: no revision can exist
    # o2 (2026-03-09, published) turns out paid: versioned, then a crash before the revisions
    # append; the rerun versions nothing but finds p4's versions and records the revision.
    crash_before_insert.append(True)
    assert both(p4, "crashed", {"o2": "status=paid"}) == ["from changes"]
    crash_before_insert.clear()
    assert both(p4, "rerun") == ["read back"]
    # o2 refunded; o13, the only EUR order of published 2026-03-05, turns out to be in GBP.
    assert both(p5, "moved", {"o2": "status=refunded", "o13": "currency=GBP"}) == ["from changes"]
    assert both(p5 + timedelta(hours=1), "idle-again") == []
    for table in ("revenue_revisions", "daily_revenue"):
        rows = [
            {tuple(r) for r in spark.read.format("delta").load(f"{root}/{table}").collect()}
            for root in (copied, control)
        ]
        assert rows[0] == rows[1], table
    revisions = spark.read.format("delta").load(f"{copied}/revenue_revisions")
    per_run = Counter(r["run_id"] for r in revisions.collect())
    assert per_run == {"published-2-rollup": 5, "rerun": 1, "moved": 3}


@pytest.mark.slow
def test_rollup_recomputes_every_day_and_says_so_when_the_change_feed_was_vacuumed(
    spark: SparkSession, copied: Path, make_ctx: ContextFactory, tmp_path: Path
) -> None:
    # After the last rollup (P2): a newer version of o3 (an update, so the MERGE writes change
    # data files) and a late order on a day the feed would otherwise not name.
    batch = write_batch(
        tmp_path / "late",
        "b4.jsonl",
        [
            event("o3", "2026-03-10T10:00:00Z", status="refunded", amount="7.50", currency="USD"),
            event("o14", "2026-03-05T18:00:00Z", amount="2.00"),
        ],
    )
    land_path(make_ctx(P3), batch)
    run_incremental(make_ctx(P3))
    # Another tool vacuums fct_orders with no retention at all: the change data feed since
    # the rollup's checkpoint is gone.
    check = "spark.databricks.delta.retentionDurationCheck.enabled"
    saved = spark.conf.get(check, None)
    spark.conf.set(check, "false")
    try:
        DeltaTable.forPath(spark, f"{copied}/fct_orders").vacuum(0.0)
    finally:
        if saved is None:
            spark.conf.unset(check)
        else:
            spark.conf.set(check, saved)

    result = recorded(make_ctx(P3), "rollup", rollup.run)

    metrics = result.metrics
    assert (metrics["change_feed"], metrics["days_recomputed"]) == ("unavailable", "all")
    assert metrics["change_feed_error"]
    assert "change data feed unavailable after version" in result.summary()
    assert "every day recomputed" in result.summary()
    current = {(r[0], r[1]): (r[2], r[3]) for r in revenue_versions(spark, copied) if r[5] is None}
    assert current == expected_revenue(rows_to_versions(landing_dicts(spark, copied)))
    assert current[(day("2026-03-05"), "EUR")] == (2, Decimal("7.00"))
    assert current[(day("2026-03-10"), "USD")] == (2, Decimal("6.00"))
    (row,) = [r for r in rollup_metrics(spark, copied) if r["change_feed"] == "unavailable"]
    assert row["days_recomputed"] == "all"


# --- as-of figures during a late-event run -------------------------------------------------------


def _stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _random_event(rng: random.Random, order_id: str, moment: datetime) -> str:
    return event(
        order_id,
        _stamp(moment),
        status=rng.choice(STATUSES),
        amount=f"{rng.randint(0, 500)}.{rng.randint(0, 99):02d}",
        currency=rng.choice(("EUR", "USD")),
    )


def seeded_batches(seed: int, runs: list[datetime]) -> list[list[str]]:
    """Batches of new orders up to 4 days late, newer versions of earlier orders (some moving
    to another day) and stale versions that must not win."""
    rng = random.Random(seed)
    first_seen: dict[str, datetime] = {}
    last_seen: dict[str, datetime] = {}
    batches = []
    for k, processing_time in enumerate(runs):
        earlier = sorted(first_seen)
        lines = []
        for i in range(4):
            order_id = f"s{k}-{i}"
            moment = processing_time - timedelta(minutes=rng.randint(1, 4 * 24 * 60))
            first_seen[order_id] = last_seen[order_id] = moment
            lines.append(_random_event(rng, order_id, moment))
        for order_id in rng.sample(earlier, k=min(2, len(earlier))):
            span = int((processing_time - last_seen[order_id]).total_seconds() // 60)
            moment = last_seen[order_id] + timedelta(minutes=rng.randint(1, span - 1))
            last_seen[order_id] = moment
            lines.append(_random_event(rng, order_id, moment))
        for order_id in rng.sample(earlier, k=min(1, len(earlier))):
            stale = first_seen[order_id] - timedelta(minutes=rng.randint(1, 600))
            lines.append(_random_event(rng, order_id, stale))
        batches.append(lines)
    return batches


@pytest.mark.slow
def test_revenue_as_of_matches_what_was_known_at_that_time(
    spark: SparkSession, make_ctx: ContextFactory, warehouse: Path, tmp_path: Path
) -> None:
    runs = [P1, P2, P3]
    for k, (processing_time, lines) in enumerate(
        zip(runs, seeded_batches(20260310, runs), strict=True)
    ):
        ctx = make_ctx(processing_time)
        land_path(ctx, write_batch(tmp_path / "batches", f"b{k}.jsonl", lines))
        run_incremental(ctx)
        rollup.run(ctx)

    landed = rows_to_versions(landing_dicts(spark, warehouse))
    ctx = make_ctx(P3)
    moments = [
        P1 - timedelta(seconds=1),
        P1,
        P1 + timedelta(hours=12),
        P2 - timedelta(seconds=1),
        P2,
        P3 - timedelta(minutes=1),
        P3,
        P3 + timedelta(days=30),
    ]
    for moment in moments:
        expected = expected_revenue(
            v for v in landed if v.event_ingested_at and v.event_ingested_at <= naive(moment)
        )
        actual = {
            (r["order_date"], r["currency"]): (r["order_count"], r["revenue"])
            for r in figures_as_of(ctx, moment, None, None)
        }
        assert actual == expected, f"as of {moment.isoformat()}"


# --- the webhook ------------------------------------------------------------------------------


@dataclass
class Webhook:
    """A local HTTP endpoint that records every POST and answers with a fixed status."""

    url: str
    posts: list[tuple[str, str | None, Any]] = field(default_factory=list)


@pytest.fixture
def start_webhook() -> Iterator[Callable[[int], Webhook]]:
    """Start HTTP servers on 127.0.0.1 (port 0) in threads; stop them at teardown."""
    servers: list[ThreadingHTTPServer] = []

    def start(status: int) -> Webhook:
        hook = Webhook(url="")

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                hook.posts.append((self.path, self.headers.get("Content-Type"), json.loads(body)))
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                """Silent: the default would print the secret path on stderr."""

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        hook.url = f"http://127.0.0.1:{server.server_address[1]}/services/T01/B02/{SECRET}"
        return hook

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.fixture
def not_http_url() -> Iterator[str]:
    """A URL (with the secret in its path) of a TCP server that answers without HTTP."""
    server = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        while True:
            try:
                connection, _ = server.accept()
            except OSError:
                return
            with connection:
                connection.recv(65536)
                connection.sendall(b"this is not HTTP\r\n\r\n")

    threading.Thread(target=serve, daemon=True).start()
    yield f"http://127.0.0.1:{server.getsockname()[1]}/services/T01/B02/{SECRET}"
    server.close()


def test_post_json_never_raises_and_never_names_the_url(
    start_webhook: Callable[[int], Webhook], not_http_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    settings = NotifySettings(timeout_seconds=2.0, attempts=2)
    accepting = start_webhook(204)
    assert post_json(accepting.url, {"text": "hi"}, settings) == "sent"
    assert len(accepting.posts) == 1

    with socket.create_server(("127.0.0.1", 0)) as closed:
        port = closed.getsockname()[1]
    refused_url = f"http://127.0.0.1:{port}/services/T01/B02/{SECRET}"
    failing = start_webhook(503)
    outcomes = [
        post_json(url, {"text": "hi"}, settings) for url in (failing.url, not_http_url, refused_url)
    ]
    assert outcomes == [
        "failed after 2 attempts: HTTP 503",
        "failed after 2 attempts: BadStatusLine",
        "failed after 2 attempts: ConnectionRefusedError",
    ]
    assert len(failing.posts) == 2
    assert "attempt 2 failed" in caplog.text
    assert SECRET not in caplog.text + "".join(outcomes)


@pytest.fixture
def cli_conf(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A `test` environment for the CLI: 2 webhook attempts, fast retries."""
    folder = tmp_path / "conf"
    folder.mkdir()
    (folder / "test.toml").write_text(NOTIFY_TOML, encoding="utf-8")
    monkeypatch.setenv(CONF_DIR_VARIABLE, str(folder))
    return "test"


# --- revisions and their announcement ----------------------------------------------------------


def test_revisions_record_changes_to_published_past_days_only(
    spark: SparkSession, published: Path
) -> None:
    revisions = spark.read.format("delta").load(f"{published}/revenue_revisions")
    run_id = "published-2-rollup"
    # Not revisions: the whole first publication at P1, the first figures of 2026-02-24 and
    # 2026-03-06 (past days never published before) and of 2026-03-11 (the processing day).
    # 2026-03-08 was published (USD), so its new GBP figures revise it.
    rows = {tuple(r) for r in revisions.collect()}
    d7, d8, d9, d10 = (day(f"2026-03-{d:02d}") for d in (7, 8, 9, 10))
    p2 = naive(P2)
    assert rows == {
        (d7, "GBP", 1, None, Decimal("9.00"), None, -1, Decimal("-9.00"), p2, run_id),
        (d8, "GBP", None, 1, None, Decimal("9.00"), 1, Decimal("9.00"), p2, run_id),
        (d9, "EUR", 2, 1, Decimal("10.00"), Decimal("0.00"), -1, Decimal("-10.00"), p2, run_id),
        (d10, "EUR", 1, 2, Decimal("3.00"), Decimal("13.00"), 1, Decimal("10.00"), p2, run_id),
        (d10, "USD", 1, 2, Decimal("7.50"), Decimal("13.50"), 1, Decimal("6.00"), p2, run_id),
    }
    assert [(len(m["revisions"]), m["announcement"]) for m in rollup_metrics(spark, published)] == [
        (0, "nothing to announce"),
        (5, "logged (no webhook configured)"),
    ]


def test_failing_webhook_does_not_fail_rollup_nor_leak_its_url(
    spark: SparkSession,
    copied: Path,
    start_webhook: Callable[[int], Webhook],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
    cli_conf: str,
) -> None:
    # o2 (2026-03-09, published) turns out paid, not cancelled: a revision to announce.
    DeltaTable.forPath(spark, f"{copied}/fct_orders").update(
        "order_id = 'o2'", {"status": F.lit("paid")}
    )
    hook = start_webhook(500)
    monkeypatch.setenv(WEBHOOK_VARIABLE, hook.url)
    capsys.readouterr()

    argv = ["rollup", "--env", cli_conf, "--warehouse", str(copied)]
    exit_code = cli.main([*argv, "--processing-time", P3.isoformat()])

    out, err = capsys.readouterr()
    assert exit_code == 0
    assert len(hook.posts) == 2  # the configured attempts, then it gives up
    assert "failed after 2 attempts: HTTP 500" in err
    for text in (out, err, caplog.text):
        assert SECRET not in text
        assert "/services/T01" not in text
    runs = ledger(spark, copied)
    assert all(SECRET not in json.dumps(r, default=str) for r in runs)
    (outcome,) = [
        r
        for r in runs
        if r["command"] == "rollup" and r["processing_time"] == naive(P3) and r["ended_at"]
    ]
    assert outcome["outcome"] == "succeeded"
    metrics = json.loads(outcome["metrics"])
    assert metrics["announcement"] == "failed after 2 attempts: HTTP 500"
    assert [(r["order_date"], r["currency"]) for r in metrics["revisions"]] == [
        ("2026-03-09", "EUR")
    ]
    current = {(r[0], r[1]): (r[2], r[3]) for r in revenue_versions(spark, copied) if r[5] is None}
    assert current[(day("2026-03-09"), "EUR")] == (1, Decimal("4.00"))


# --- revenue output ----------------------------------------------------------------------------


def test_revenue_csv_through_the_cli_prints_header_and_one_line_per_day_and_currency(
    copied: Path, capsys: pytest.CaptureFixture[str], cli_conf: str
) -> None:
    argv = ["revenue", "--env", cli_conf, "--warehouse", str(copied), "--format", "csv"]
    capsys.readouterr()
    assert cli.main([*argv, "--processing-time", P2.isoformat()]) == 0
    assert capsys.readouterr().out.splitlines() == CSV_AT_P2


def test_revenue_as_of_and_date_range(spark: SparkSession, published: Path) -> None:
    ctx = reader(spark, published, P3)
    as_of_p1 = datetime.fromisoformat("2026-03-10T08:00:00+02:00")
    at_p1 = revenue.run(ctx, RevenueParams(as_of=as_of_p1, output_format="csv"))
    assert at_p1.stdout().splitlines() == CSV_AT_P1
    one_day = RevenueParams(start=day("2026-03-10"), end=day("2026-03-10"), output_format="csv")
    on_the_day = [line for line in CSV_AT_P2 if line.startswith("2026-03-10,")]
    assert revenue.run(ctx, one_day).stdout().splitlines() == [CSV_AT_P2[0], *on_the_day]


def test_revenue_json_and_table_formats(spark: SparkSession, published: Path) -> None:
    ctx = reader(spark, published)
    document = json.loads(revenue.run(ctx, RevenueParams(output_format="json")).stdout())
    assert document == [
        {"order_date": d, "currency": c, "order_count": int(n), "revenue": r}
        for d, c, n, r in (line.split(",") for line in CSV_AT_P2[1:])
    ]

    lines = revenue.run(ctx, RevenueParams(output_format="table")).stdout().splitlines()
    assert lines[0].split() == ["order_date", "currency", "order_count", "revenue"]
    assert [line.split() for line in lines[1:]] == [line.split(",") for line in CSV_AT_P2[1:]]


def test_revenue_chart_writes_a_png(spark: SparkSession, published: Path, tmp_path: Path) -> None:
    out = tmp_path / "charts" / "out.png"
    result = revenue.run(
        reader(spark, published), RevenueParams(output_format="csv", chart=str(out))
    )
    assert result.metrics["chart"] == str(out)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert out.stat().st_size > 1000
    assert result.stdout().splitlines() == CSV_AT_P2


# --- verify ------------------------------------------------------------------------------------


def test_verify_json_passes_on_a_healthy_warehouse_with_the_late_data_report(
    copied: Path, capsys: pytest.CaptureFixture[str], cli_conf: str
) -> None:
    argv = ["verify", "--json", "--env", cli_conf, "--warehouse", str(copied)]
    capsys.readouterr()
    assert cli.main([*argv, "--processing-time", P2.isoformat()]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["passed"] is True
    assert {c["name"] for c in document["checks"]} == CHECK_NAMES
    assert all(c["passed"] and c["failing"] == 0 for c in document["checks"])
    # Lateness in hours of the 14 landed events:
    # 1, 1, 6, 6.0003, 18, 20, 21, 26, 42, 66, 70, 114, 120, 360.
    late = document["late_data"]
    assert late["days"] == 14
    assert late["events"] == 14
    assert late["lateness_hours_p50"] == 21.0
    assert late["lateness_hours_p95"] == 360.0
    assert late["lateness_hours_max"] == 360.0
    assert late["events_over_3_days_late"] == 3
    assert late["events_over_14_days_late"] == 1


def _duplicate_order(spark: SparkSession, root: Path) -> None:
    fct_df = spark.read.format("delta").load(f"{root}/fct_orders")
    fct_df.filter(F.col("order_id") == "o3").localCheckpoint().write.format("delta").mode(
        "append"
    ).save(f"{root}/fct_orders")


def _null_order_id(spark: SparkSession, root: Path) -> None:
    spark.sql(f"ALTER TABLE delta.`{root}/fct_orders` ALTER COLUMN order_id DROP NOT NULL")
    row = spark.read.format("delta").load(f"{root}/fct_orders").filter(F.col("order_id") == "o4")
    (
        row.withColumn("order_id", F.lit(None).cast("string"))
        .select(*FCT_ORDERS_COLUMNS)
        .localCheckpoint()
        .write.format("delta")
        .mode("append")
        .save(f"{root}/fct_orders")
    )


def _short_day(spark: SparkSession, root: Path) -> None:
    DeltaTable.forPath(spark, f"{root}/fct_orders").delete("order_id = 'o4'")


def _wrong_revenue(spark: SparkSession, root: Path) -> None:
    DeltaTable.forPath(spark, f"{root}/daily_revenue").update(
        "order_date = DATE'2026-03-10' AND currency = 'EUR' AND superseded_at IS NULL",
        {"revenue": F.lit(Decimal("999.99")).cast(REVENUE_TYPE)},
    )


def _unpredicated_overwrite(spark: SparkSession, root: Path) -> None:
    same_df = spark.read.format("delta").load(f"{root}/fct_orders").localCheckpoint()
    same_df.write.format("delta").mode("overwrite").save(f"{root}/fct_orders")


def _fct(spark: SparkSession, root: Path) -> DataFrame:
    return spark.read.format("delta").load(f"{root}/fct_orders")


def _check_unique(spark: SparkSession, root: Path) -> verify.CheckResult:
    return verify.check_unique(_fct(spark, root), _fct(spark, root))


def _check_not_null(spark: SparkSession, root: Path) -> verify.CheckResult:
    return verify.check_not_null(_fct(spark, root))


def _check_reconciles(spark: SparkSession, root: Path) -> verify.CheckResult:
    landing_df = spark.read.format("delta").load(f"{root}/orders_landing")
    return verify.check_reconciles(_fct(spark, root), landing_df, verify.VerifyParams())


def _check_revenue(spark: SparkSession, root: Path) -> verify.CheckResult:
    revenue_df = spark.read.format("delta").load(f"{root}/daily_revenue")
    return verify.check_revenue(_fct(spark, root), revenue_df, verify.VerifyParams())


@pytest.mark.parametrize(
    ("corrupt", "check", "name", "examples"),
    [
        (_duplicate_order, _check_unique, "order_id_unique", ["o3"]),
        (_null_order_id, _check_not_null, "order_id_not_null", ["2026-03-10"]),
        (_short_day, _check_reconciles, "reconciles_with_source", ["2026-03-10 fct=3 source=4"]),
        (_wrong_revenue, _check_revenue, "daily_revenue_matches_fct", ["2026-03-10 EUR"]),
    ],
    ids=["duplicate-order-id", "null-order-id", "short-day", "wrong-revenue"],
)
def test_verify_check_fails_on_its_kind_of_damage_and_names_the_offending_keys(
    spark: SparkSession,
    copied: Path,
    corrupt: Callable[[SparkSession, Path], None],
    check: Callable[[SparkSession, Path], verify.CheckResult],
    name: str,
    examples: list[str],
) -> None:
    corrupt(spark, copied)
    result = check(spark, copied)
    assert (result.name, result.passed, result.failing) == (name, False, 1)
    assert result.examples == examples


def test_verify_exits_1_on_an_unpredicated_overwrite_of_fct_orders(
    spark: SparkSession,
    copied: Path,
    make_ctx: ContextFactory,
) -> None:
    _unpredicated_overwrite(spark, copied)
    overwrite_version = table_version(spark, f"{copied}/fct_orders")
    result = verify.run(make_ctx(P2), verify.VerifyParams(as_json=True))
    assert result.exit_code == 1
    document = json.loads(result.stdout())
    assert document["passed"] is False
    # The data is unchanged: only the history check fails.
    (failed,) = [c for c in document["checks"] if not c["passed"]]
    assert failed["name"] == "no_unpredicated_overwrite"
    assert failed["examples"] == [f"version {overwrite_version} WRITE"]


# --- hourly ------------------------------------------------------------------------------------


@pytest.mark.slow
def test_hourly_end_to_end_lands_merges_rolls_up_verifies_and_announces(
    spark: SparkSession,
    copied: Path,
    tmp_path: Path,
    start_webhook: Callable[[int], Webhook],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    cli_conf: str,
) -> None:
    hook = start_webhook(200)
    monkeypatch.setenv(WEBHOOK_VARIABLE, hook.url)
    source = write_batch(tmp_path / "hourly", "b3.jsonl", BATCH_3)
    argv = ["hourly", "--source", str(source), "--env", cli_conf, "--warehouse", str(copied)]
    assert cli.main([*argv, "--processing-time", P3.isoformat()]) == 0
    assert capsys.readouterr().out == ""

    (row,) = [r for r in ledger(spark, copied) if r["command"] == "hourly" and r["ended_at"]]
    assert row["outcome"] == "succeeded"
    metrics = json.loads(row["metrics"])
    assert metrics["land"]["rows_landed"] == 2
    assert metrics["land"]["rows_quarantined"] == 1
    assert metrics["incremental"]["partitions_touched"] == ["2026-03-09", "2026-03-12"]
    assert metrics["verify"] == {"passed": True, "days_checked": 2, "failed": []}
    assert metrics[rollup.CHECKPOINT_METRIC] == table_version(spark, f"{copied}/fct_orders")
    assert metrics["rollup"]["days_recomputed"] == 2
    assert metrics["rollup"]["announcement"] == "sent"
    current = {(r[0], r[1]): (r[2], r[3]) for r in revenue_versions(spark, copied) if r[5] is None}
    assert current[(day("2026-03-09"), "EUR")] == (2, Decimal("5.00"))
    assert current[(day("2026-03-12"), "GBP")] == (1, Decimal("1.00"))

    # One POST for the run, Slack-shaped, with the revision rows (the processing day is not one).
    assert len(hook.posts) == 1
    path, content_type, body = hook.posts[0]
    assert path.endswith(SECRET)
    assert content_type == "application/json"
    assert isinstance(body["text"], str)
    assert "2026-03-09 EUR" in body["text"]
    assert "GBP" not in body["text"]
    assert body["run_id"] == row["run_id"]
    assert [
        (r["order_date"], r["currency"], r["previous_revenue"], r["new_revenue"])
        for r in body["revisions"]
    ] == [("2026-03-09", "EUR", "0.00", "5.00")]
