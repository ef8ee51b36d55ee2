"""Any schedule: a hypothesis state machine over the commands, checked after every step.

The machine lands random small batches (late, retried, stale and bad events on a small pool of
order ids, so versions collide), runs incremental, backfill over a random valid range, rollup and
verify, each at a random but non-decreasing processing time. After every step:

- `order_id` is unique in `fct_orders`, and every landed line is in landing or quarantine once;
- no commit in `fct_orders`'s history overwrote it without a predicate (read from the Delta log
  itself, not through the project's own history helper);
- after a rollup: the current `daily_revenue` rows equal their recomputation from `fct_orders`,
  one current row per day and currency;
- once an incremental has run after the last land: `fct_orders` equals the plain-Python rule;
- `verify` exits 1 exactly when the per-day counts or the current revenue are off.
"""

from __future__ import annotations

import json
import random
import shutil
import tempfile
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from orders_etl import cli
from orders_etl.schemas import FCT_ORDERS_COLUMNS, REVENUE_STATUSES, STATUSES
from tests.helpers import event, landing_dicts
from tests.reference import expected_counts_per_day, expected_fct, rows_to_versions

pytestmark = pytest.mark.slow

ENV = "schedule"
TOML = """
[warehouse]
root = "./unused"

[retries]
attempts = 2
backoff_seconds = 0.1

[spark]
master = "local[2]"
"""
START = datetime(2026, 3, 1, tzinfo=UTC)
ORDER_IDS = [f"o{i}" for i in range(8)]
_OVERWRITES = {
    "CREATE OR REPLACE TABLE",
    "REPLACE TABLE",
    "CREATE OR REPLACE TABLE AS SELECT",
    "REPLACE TABLE AS SELECT",
    "TRUNCATE",
}
SPARK: list[SparkSession] = []
STEPS: Counter[str] = Counter()


def _stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


# One event: an order from the pool, a time up to 20 days before the run (late) or 12 hours
# after it, and sometimes a line that breaks a rule.
events = st.fixed_dictionaries(
    {
        "order": st.sampled_from(ORDER_IDS),
        "minutes_before": st.integers(min_value=-12 * 60, max_value=20 * 24 * 60),
        "status": st.sampled_from(STATUSES),
        "cents": st.integers(min_value=0, max_value=99_999),
        "currency": st.sampled_from(["EUR", "USD"]),
        "offset": st.sampled_from(["Z", "+14:00", "-12:00", "+05:30"]),
        "bad": st.sampled_from([None, None, None, None, "{broken", "currency"]),
    }
)


def render(e: dict[str, Any], now: datetime) -> str:
    """The JSON line of one generated event, `event_time` written in the chosen offset."""
    if e["bad"] == "{broken":
        return "{broken"
    moment = now - timedelta(minutes=e["minutes_before"])
    if e["offset"] == "Z":
        when = _stamp(moment)
    else:
        sign = 1 if e["offset"][0] == "+" else -1
        hours, minutes = int(e["offset"][1:3]), int(e["offset"][4:6])
        shift = timedelta(hours=hours, minutes=minutes) * sign
        when = (moment + shift).strftime("%Y-%m-%dT%H:%M:%S") + e["offset"]
    return event(
        e["order"],
        when,
        status=e["status"],
        amount=f"{e['cents'] // 100}.{e['cents'] % 100:02d}",
        currency="eur" if e["bad"] == "currency" else e["currency"],
    )


class ScheduleMachine(RuleBasedStateMachine):
    """The pipeline's commands in any order, on one warehouse per example."""

    def __init__(self) -> None:
        super().__init__()
        self.spark = SPARK[0]
        self.root = Path(tempfile.mkdtemp(prefix="schedule-"))
        self.warehouse = self.root / "warehouse"
        self.now = START
        self.batches = 0
        self.lines_written = 0
        self.merged_since_land = True
        self.rollup_current = True
        self.dirty = False  # something changed since the last verify

    def teardown(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)

    # --- running commands -----------------------------------------------------------------

    def etl(self, *argv: str) -> int:
        STEPS[argv[0]] += 1
        return cli.main(
            [
                *argv,
                "--env",
                ENV,
                "--warehouse",
                str(self.warehouse),
                "--processing-time",
                _stamp(self.now),
            ]
        )

    def advance(self, hours: int) -> None:
        self.now += timedelta(hours=hours)

    def fct_version(self) -> int:
        log = self.warehouse / "fct_orders" / "_delta_log"
        return max(int(p.stem) for p in log.glob("*.json") if p.stem.isdigit())

    @initialize(batch=st.lists(events, min_size=1, max_size=6))
    def migrate_and_land(self, batch: list[dict[str, Any]]) -> None:
        assert self.etl("migrate") == 0
        self.land(batch, 0, False)

    @rule(
        batch=st.lists(events, min_size=1, max_size=6),
        hours=st.integers(min_value=0, max_value=30),
        duplicate=st.booleans(),
    )
    def land(self, batch: list[dict[str, Any]], hours: int, duplicate: bool) -> None:
        self.dirty = True
        self.advance(hours)
        self.batches += 1
        lines = [render(e, self.now) for e in batch]
        if duplicate:
            lines.append(lines[0])  # a producer retry: the same line again
        folder = self.root / f"batch-{self.batches:03d}"
        folder.mkdir()
        (folder / "events.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
        assert self.etl("land", "--source", str(folder)) == 0
        self.lines_written += len(lines)
        self.merged_since_land = False

    @rule(hours=st.integers(min_value=0, max_value=30), lookback=st.sampled_from(["0", "3"]))
    def incremental(self, hours: int, lookback: str) -> None:
        self.dirty = True
        self.advance(hours)
        before = self.fct_version()
        assert self.etl("incremental", "--lookback-days", lookback) == 0
        self.merged_since_land = True
        self.rollup_current = self.rollup_current and self.fct_version() == before

    @rule(
        hours=st.integers(min_value=0, max_value=30),
        back=st.integers(min_value=0, max_value=25),
        days=st.integers(min_value=1, max_value=10),
        allow_shrink=st.booleans(),
    )
    def backfill(self, hours: int, back: int, days: int, allow_shrink: bool) -> None:
        self.dirty = True
        self.advance(hours)
        today = self.now.date()
        start = today - timedelta(days=back)
        end = min(start + timedelta(days=days - 1), today)
        before = self.fct_version()
        flags = ["--start-date", start.isoformat(), "--end-date", end.isoformat()]
        code = self.etl("backfill", *flags, *(["--allow-shrink"] if allow_shrink else []))
        # The shrink guard may refuse a range that would lose rows (exit 2, nothing written).
        assert code == 0 or (code == 2 and not allow_shrink)
        if code == 2:
            assert self.fct_version() == before, "a refused backfill wrote to fct_orders"
        self.rollup_current = self.rollup_current and self.fct_version() == before

    @rule(hours=st.integers(min_value=0, max_value=30))
    def rollup(self, hours: int) -> None:
        self.dirty = True
        self.advance(hours)
        assert self.etl("rollup") == 0
        self.rollup_current = True
        current = self.current_revenue()
        assert current == self.recomputed_revenue(), "daily_revenue differs from fct_orders"

    @precondition(lambda self: self.dirty)
    @rule()
    def verify(self) -> None:
        self.dirty = False
        fct = self.fct()
        expected_counts = expected_counts_per_day(rows_to_versions(self.landing()))
        counts = Counter(row[-1] for row in fct)
        should_fail = dict(counts) != expected_counts or (
            self.current_revenue() != self.recomputed_revenue(fct)
        )
        assert self.etl("verify") == (1 if should_fail else 0)

    # --- reading the warehouse ---------------------------------------------------------------

    def landing(self) -> list[dict[str, Any]]:
        return landing_dicts(self.spark, self.warehouse)

    def fct(self) -> list[tuple[Any, ...]]:
        df = self.spark.read.format("delta").load(str(self.warehouse / "fct_orders"))
        return [tuple(r) for r in df.select(*FCT_ORDERS_COLUMNS).collect()]

    def current_revenue(self) -> dict[tuple[Any, str], tuple[int, Decimal]]:
        df = (
            self.spark.read.format("delta")
            .load(str(self.warehouse / "daily_revenue"))
            .filter(F.col("superseded_at").isNull())
        )
        rows = df.collect()
        keys = Counter((r["order_date"], r["currency"]) for r in rows)
        assert max(keys.values(), default=1) == 1, "two current versions of one key"
        return {(r["order_date"], r["currency"]): (r["order_count"], r["revenue"]) for r in rows}

    def recomputed_revenue(
        self, fct: list[tuple[Any, ...]] | None = None
    ) -> dict[tuple[Any, str], tuple[int, Decimal]]:
        figures: dict[tuple[Any, str], tuple[int, Decimal]] = {}
        for row in self.fct() if fct is None else fct:
            record = dict(zip(FCT_ORDERS_COLUMNS, row, strict=True))
            key = (record["order_date"], record["currency"])
            count, revenue = figures.get(key, (0, Decimal("0.00")))
            add = record["amount"] if record["status"] in REVENUE_STATUSES else Decimal("0")
            figures[key] = (count + 1, revenue + add)
        return figures

    # --- invariants after every step -----------------------------------------------------------

    @invariant()
    def warehouse_is_consistent(self) -> None:
        """One read of each table per step; every claim of the module docstring."""
        fct = self.fct()
        ids = Counter(row[0] for row in fct)
        assert max(ids.values(), default=1) == 1, f"duplicate order_id: {ids.most_common(1)}"
        seen: Counter[tuple[str, int]] = Counter()
        for table in ("orders_landing", "orders_quarantine"):
            df = self.spark.read.format("delta").load(str(self.warehouse / table))
            seen.update((r[0], r[1]) for r in df.select("source_file", "line_number").collect())
        assert sum(seen.values()) == self.lines_written, "a landed line was lost or doubled"
        assert max(seen.values(), default=1) == 1
        self.assert_never_overwritten_whole()
        if self.merged_since_land:
            assert set(fct) == expected_fct(rows_to_versions(self.landing()))
        if self.rollup_current:
            assert self.current_revenue() == self.recomputed_revenue(fct)

    def assert_never_overwritten_whole(self) -> None:
        for path in sorted((self.warehouse / "fct_orders" / "_delta_log").glob("*.json")):
            for line in path.read_text().splitlines():
                info = json.loads(line).get("commitInfo")
                if info is None:
                    continue
                operation, parameters = info["operation"], info.get("operationParameters", {})
                assert operation not in _OVERWRITES, f"{path.name}: {operation}"
                if operation == "WRITE" and parameters.get("mode") == "Overwrite":
                    assert parameters.get("predicate") not in (None, "", "[]"), path.name
                if operation == "DELETE":
                    assert parameters.get("predicate") not in (None, "", "[]"), path.name


@pytest.fixture
def schedule_env(
    spark: SparkSession, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[None]:
    (tmp_path / f"{ENV}.toml").write_text(TOML, encoding="utf-8")
    monkeypatch.setenv("ORDERS_ETL_CONF_DIR", str(tmp_path))
    monkeypatch.delenv("ORDERS_ETL_REVISION_WEBHOOK", raising=False)
    SPARK[:] = [spark]
    yield
    SPARK.clear()


def test_any_schedule_keeps_the_warehouse_correct(
    schedule_env: None, capsys: pytest.CaptureFixture[str]
) -> None:
    STEPS.clear()
    run_state_machine_as_test(
        ScheduleMachine,
        settings=settings(
            max_examples=5,
            stateful_step_count=6,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        ),
    )
    with capsys.disabled():
        print(f"\nschedules explored: commands run {dict(STEPS)}")
    assert STEPS["migrate"] >= 5, "every example starts from a migrated warehouse"
    assert STEPS["land"] >= 5
    assert sum(STEPS[c] > 0 for c in ("incremental", "backfill", "rollup", "verify")) >= 3


def test_the_event_renderer_round_trips_offsets() -> None:
    """The generator's `event_time` strings mean the instant they were made from."""
    rng = random.Random(7)
    now = datetime(2026, 3, 10, 12, tzinfo=UTC)
    for _ in range(200):
        minutes = rng.randrange(-720, 28_800)
        e: dict[str, Any] = {
            "order": "o1",
            "minutes_before": minutes,
            "status": "paid",
            "cents": 1,
            "currency": "EUR",
            "offset": rng.choice(["Z", "+14:00", "-12:00", "+05:30"]),
            "bad": None,
        }
        when = json.loads(render(e, now))["event_time"]
        parsed = datetime.fromisoformat(when)
        assert parsed == now - timedelta(minutes=minutes)
