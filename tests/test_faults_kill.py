"""Crash tests: SIGKILL a real `orders-etl` process at random moments, then rerun it.

The claim under test: whatever moment a run dies at, a plain rerun succeeds and the warehouse
ends exactly as if the run had happened once. For each of `land`, `incremental`, `backfill` and
`rollup`:

1. an uninterrupted `orders-etl` subprocess on a copy of the scenario's warehouse is the
   control: it is the "ran once" result, and it measures the command's typical duration (from
   process start to the first Delta commit, the JVM start, and from there to the exit);
2. more subprocesses on fresh copies are killed (SIGKILL to the process group: the Python
   driver and its JVM die together, as in a lost machine) at seeded random moments: one in the
   start-up phase, the others spread over the working phase. `make test` kills 2 per command,
   `make test-faults` 5 (ORDERS_ETL_KILLS_PER_COMMAND);
3. after each kill, a plain in-process rerun of the same command line (same flags, same
   processing time; the CLI reuses the suite's session) must succeed, and then the command's
   tables equal the control's, every input line is in landing or quarantine exactly once, and
   the ledger shows the killed run as a `started` row without an outcome row. For the first
   victim of each command (and every victim under `make test-faults`), the downstream commands
   also run and `fct_orders` must equal the plain-Python rule of `tests/reference.py`, the
   current `daily_revenue` its figures, and `verify` must pass. The tables a command writes
   equal the control's, so for the other victims those checks would only repeat the first's.

Deterministic crash points complete the random kills: the same scenarios crash (in-process) right
after the commit that separates two writes of a command, where a partial run is most visible.
"""

from __future__ import annotations

import gzip
import os
import random
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from orders_etl import cli
from orders_etl.context import RunContext
from orders_etl.pipeline import incremental
from orders_etl.schemas import FCT_ORDERS_COLUMNS, Outcome
from tests.conftest import make_config
from tests.helpers import event, landing_dicts
from tests.reference import expected_fct, expected_revenue, rows_to_versions

pytestmark = pytest.mark.slow

ORDERS_ETL = Path(sys.executable).parent / "orders-etl"
ENV_NAME = "faults"
FAULTS_TOML = """
[warehouse]
root = "./unused-warehouse"

[retries]
attempts = 4
backoff_seconds = 0.2

[notify]
timeout_seconds = 1.0
attempts = 1

[spark]
app_name = "orders_etl-faults"
master = "local[2]"

[spark.conf]
"spark.sql.shuffle.partitions" = "2"
"spark.default.parallelism" = "2"
"spark.ui.enabled" = "false"
"spark.ui.showConsoleProgress" = "false"
"spark.databricks.delta.snapshotPartitions" = "2"
"spark.sql.adaptive.enabled" = "false"
"spark.driver.memory" = "1g"
# Each victim is a fresh JVM on a tiny warehouse: compiling generated code costs it more than it
# saves. Fresh `hourly` processes, 3 interleaved rounds on one warehouse: median 70.2 s with
# code generation, 51.8 s without.
"spark.sql.codegen.factoryMode" = "NO_CODEGEN"
"spark.sql.codegen.wholeStage" = "false"
"""
KILLS_VARIABLE = "ORDERS_ETL_KILLS_PER_COMMAND"
KILLS_PER_COMMAND = max(2, int(os.environ.get(KILLS_VARIABLE, "2")))
# With the full set of kills (make test-faults), every victim gets the downstream checks too.
FULL_CHECK_EVERY_VICTIM = KILLS_PER_COMMAND >= 5
CURRENCIES = ("EUR", "USD", "GBP")
STATUSES = ("placed", "paid", "shipped", "delivered", "cancelled", "refunded")
_JAVA_BLANK = " \t\n\x0b\f\r"


# --- the environment every run of this module uses ---------------------------------------------


@pytest.fixture(scope="module")
def conf_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A conf folder with `faults.toml`, exported as ORDERS_ETL_CONF_DIR for in-process runs."""
    folder = tmp_path_factory.mktemp("faults-conf")
    (folder / f"{ENV_NAME}.toml").write_text(FAULTS_TOML, encoding="utf-8")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("ORDERS_ETL_CONF_DIR", str(folder))
        patch.delenv("ORDERS_ETL_REVISION_WEBHOOK", raising=False)
        yield folder


def etl(warehouse: Path, *argv: str) -> int:
    """Run one command line in-process (the suite's session is reused) and return its exit code."""
    return cli.main([*argv, "--env", ENV_NAME, "--warehouse", str(warehouse)])


def run_ok(warehouse: Path, *argv: str) -> None:
    code = etl(warehouse, *argv)
    assert code == 0, f"{argv} exited {code}"


def subprocess_env(conf: Path, log_dir: Path) -> dict[str, str]:
    env = {
        **os.environ,
        "ORDERS_ETL_CONF_DIR": str(conf),
        "ORDERS_ETL_LOG_DIR": str(log_dir),
        "PYTHONUNBUFFERED": "1",
    }
    for key in ("PYSPARK_GATEWAY_PORT", "PYSPARK_GATEWAY_SECRET", "ORDERS_ETL_REVISION_WEBHOOK"):
        env.pop(key, None)
    return env


# --- scenarios: a warehouse state and one command line to kill ---------------------------------


def write_lines(path: Path, lines: Sequence[str], *, crlf: bool = False, bom: bool = False) -> Path:
    """Write a batch file (gzipped when the name ends in .gz)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    text = ("\r\n" if crlf else "\n").join(lines) + ("\r\n" if crlf else "\n")
    data = (b"\xef\xbb\xbf" if bom else b"") + text.encode("utf-8")
    path.write_bytes(gzip.compress(data) if path.name.endswith(".gz") else data)
    return path


def non_blank_lines(path: Path) -> set[tuple[str, int]]:
    """(source_file, line_number) of every non-blank line of a batch file, as the contract
    counts them: split on LF, a trailing CR and a leading byte-order mark removed."""
    data = path.read_bytes()
    if path.name.endswith(".gz"):
        data = gzip.decompress(data)
    text = data.decode("utf-8").removeprefix("\ufeff")
    return {
        (str(path.resolve()), n)
        for n, line in enumerate(text.split("\n"), start=1)
        if line.removesuffix("\r").strip(_JAVA_BLANK)
    }


def _day(n: int) -> str:
    return f"2026-03-{n:02d}"


def _order_lines(prefix: str, count: int, first_day: int, per_day: int) -> list[str]:
    """`count` orders, `per_day` per day from `first_day`, statuses and currencies varied."""
    return [
        event(
            f"{prefix}{i:03d}",
            f"{_day(first_day + i // per_day)}T{(7 * i) % 24:02d}:{(11 * i) % 60:02d}:00Z",
            status=STATUSES[i % len(STATUSES)],
            amount=f"{(37 * i) % 500 + 1}.{(13 * i) % 100:02d}",
            currency=CURRENCIES[i % len(CURRENCIES)],
            customer_id=f"c{i % 7}",
        )
        for i in range(count)
    ]


@dataclass(frozen=True)
class Scenario:
    """A warehouse state (built by `build`) and the command line that is killed on it."""

    name: str
    argv: tuple[str, ...]
    build: Callable[[Path, Path], None]  # (warehouse, inputs folder)
    compare: tuple[str, ...]  # tables that must equal the control's after the rerun
    downstream: tuple[tuple[str, ...], ...]  # commands that bring the rest up to date
    batch: str | None = None  # the input folder whose lines must all be accounted for


def build_land(warehouse: Path, inputs: Path) -> None:
    """An empty warehouse (no table yet) and a three-file batch: plain, gzip + CRLF, BOM."""
    batch = inputs / "land-batch"
    valid = _order_lines("L", 30, 1, 4)
    write_lines(
        batch / "part-1.jsonl",
        [
            *valid[:18],
            "",
            "   ",
            "{not json",
            '["an", "array"]',
            event("L900", "2026-03-02T10:00:00Z", currency="eur"),
            valid[0],  # a retry of the first line: lands again as its own line
        ],
    )
    write_lines(
        batch / "part-2.jsonl.gz",
        [
            *valid[18:],
            event("L001", "2026-03-01T23:59:59+01:00", status="shipped", amount="99.99"),
            event("L002", "2026-03-02T03:00:00-05:00", status="refunded"),
        ],
        crlf=True,
    )
    write_lines(
        batch / "part-3.json",
        [
            event("L500", "2026-03-09T12:00:00Z", sdk="ios-4.2"),
            event("L501", "2026-03-12T12:00:00Z"),  # more than one day after processing time
            event("L502", "2026-03-04T12:00:00Z", amount="1.005"),
            event("L503", "2026-03-04T00:30:00+14:00", currency="USD"),
        ],
        bom=True,
    )


INC_P1 = "2026-03-09T00:00:00Z"
INC_P2 = "2026-03-10T12:00:00Z"


def _incremental_batches(inputs: Path) -> tuple[Path, Path]:
    first = write_lines(inputs / "inc-1" / "batch.jsonl", _order_lines("I", 32, 1, 4))
    late = [
        *_order_lines("J", 8, 2, 2),  # late new orders for March 2..5
        *[
            event(
                f"I{i:03d}",
                f"{_day(1 + i // 4)}T23:30:00Z",
                status=("shipped", "cancelled", "refunded")[i % 3],
                amount="45.50",
                currency=CURRENCIES[i % 3],
                customer_id=f"c{i % 7}",
            )
            for i in range(6)
        ],
        event("I006", "2026-03-09T08:00:00Z", status="delivered", currency="EUR"),
        event("I007", "2026-03-09T09:00:00+02:00", status="cancelled", currency="USD"),
        *[
            event(f"I{i:03d}", f"{_day(1 + i // 4)}T00:00:01Z", status="placed") for i in (8, 9, 10)
        ],  # stale versions: older than what fct_orders holds
        event("I001", "2026-03-01T23:30:00Z", status="cancelled", amount="45.50", currency="USD"),
        "{broken",
    ]
    second = write_lines(inputs / "inc-2" / "batch.jsonl", late)
    return first, second


def build_incremental(warehouse: Path, inputs: Path) -> None:
    """fct_orders and daily_revenue up to date with a first batch; a second batch of late,
    newer, date-moving and stale versions landed and waiting for the incremental."""
    first, second = _incremental_batches(inputs)
    run_ok(warehouse, "land", "--source", str(first), "--processing-time", INC_P1)
    run_ok(warehouse, "incremental", "--processing-time", INC_P1)
    run_ok(warehouse, "rollup", "--processing-time", INC_P1)
    run_ok(warehouse, "land", "--source", str(second), "--processing-time", INC_P2)


def build_rollup(warehouse: Path, inputs: Path) -> None:
    """As for the incremental, with the incremental done: the rollup revises past days."""
    build_incremental(warehouse, inputs)
    run_ok(warehouse, "incremental", "--processing-time", "2026-03-10T12:30:00Z")


BF_PA = "2026-03-20T12:00:00Z"
BF_STALE_STAMP = "2026-03-12T00:00:00Z"


def build_backfill(warehouse: Path, inputs: Path) -> None:
    """fct_orders built from batch A; batch B landed by a run stamped 8 days earlier, so the
    incremental's window (watermark - 3 days) never sees it. Only a backfill repairs
    2026-03-05..10, including one order that moves into the range and one that moves out."""
    batch_a = write_lines(inputs / "bf-a" / "batch.jsonl", _order_lines("B", 48, 1, 3))
    batch_b = write_lines(
        inputs / "bf-b" / "batch.jsonl",
        [
            event("B003", "2026-03-07T10:00:00Z", status="shipped"),  # Mar 2 -> Mar 7 (in)
            event("B015", "2026-03-11T20:00:00Z", status="delivered"),  # Mar 6 -> Mar 11 (out)
            event("B021", "2026-03-08T23:00:00Z", status="cancelled", currency="EUR"),
            event("N001", "2026-03-06T09:00:00+02:00", currency="GBP"),
            event("N002", "2026-03-09T18:00:00-03:00", status="placed"),
            event("B024", "2026-03-09T00:00:00Z", status="placed"),  # stale
        ],
    )
    run_ok(warehouse, "land", "--source", str(batch_a), "--processing-time", BF_PA)
    run_ok(warehouse, "incremental", "--processing-time", BF_PA)
    run_ok(warehouse, "rollup", "--processing-time", BF_PA)
    run_ok(warehouse, "land", "--source", str(batch_b), "--processing-time", BF_STALE_STAMP)


SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        Scenario(
            "land",
            (
                "land",
                "--source",
                "{inputs}/land-batch",
                "--processing-time",
                "2026-03-10T12:00:00Z",
            ),
            build_land,
            compare=("orders_landing", "orders_quarantine"),
            downstream=(
                ("incremental", "--processing-time", "2026-03-10T12:10:00Z"),
                ("rollup", "--processing-time", "2026-03-10T12:20:00Z"),
            ),
            batch="land-batch",
        ),
        Scenario(
            "incremental",
            ("incremental", "--processing-time", "2026-03-10T12:30:00Z"),
            build_incremental,
            compare=("fct_orders",),
            downstream=(("rollup", "--processing-time", "2026-03-10T13:00:00Z"),),
        ),
        Scenario(
            "backfill",
            (
                "backfill",
                "--start-date",
                "2026-03-05",
                "--end-date",
                "2026-03-10",
                "--processing-time",
                "2026-03-20T14:00:00Z",
            ),
            build_backfill,
            compare=("fct_orders",),
            downstream=(("rollup", "--processing-time", "2026-03-20T15:00:00Z"),),
        ),
        Scenario(
            "rollup",
            ("rollup", "--processing-time", "2026-03-10T13:00:00Z"),
            build_rollup,
            compare=("daily_revenue", "revenue_revisions"),
            downstream=(),
        ),
    )
}


@dataclass
class Prepared:
    """A scenario's base warehouse (never run on directly), its inputs and its argv."""

    scenario: Scenario
    base: Path
    inputs: Path
    argv: tuple[str, ...]

    def copy(self, target: Path) -> Path:
        if self.base.exists():
            shutil.copytree(self.base, target)
        else:
            target.mkdir(parents=True)
        return target


@pytest.fixture(scope="module")
def prepared(
    spark: SparkSession, conf_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Callable[[str], Prepared]:
    """Build each scenario's base warehouse once per module, on first use."""
    cache: dict[str, Prepared] = {}

    def get(name: str) -> Prepared:
        if name not in cache:
            scenario = SCENARIOS[name]
            root = tmp_path_factory.mktemp(f"base-{name}")
            inputs, base = root / "inputs", root / "warehouse"
            inputs.mkdir()
            scenario.build(base, inputs)
            argv = tuple(a.replace("{inputs}", str(inputs)) for a in scenario.argv)
            cache[name] = Prepared(scenario, base, inputs, argv)
        return cache[name]

    return get


# --- looking at a warehouse ---------------------------------------------------------------------


def table_rows(spark: SparkSession, warehouse: Path, table: str) -> Counter[tuple[Any, ...]]:
    """A table's rows as a multiset, without `run_id` (a rerun has another id)."""
    path = warehouse / table
    if not (path / "_delta_log").is_dir():
        return Counter()
    df = spark.read.format("delta").load(str(path))
    columns = sorted(c for c in df.columns if c != "run_id")
    return Counter(tuple(r) for r in df.select(*columns).collect())


def ledger_by_run(
    spark: SparkSession, warehouse: Path, command: str, processing_time: str
) -> dict[str, list[str]]:
    """Outcomes per run id of the runs of `command` at `processing_time`."""
    path = warehouse / "pipeline_runs"
    if not (path / "_delta_log").is_dir():
        return {}
    rows = (
        spark.read.format("delta")
        .load(str(path))
        .filter(F.col("command") == command)
        .filter(F.col("processing_time") == F.lit(processing_time).cast("timestamp"))
        .select("run_id", "outcome")
        .collect()
    )
    runs: dict[str, list[str]] = {}
    for r in rows:
        runs.setdefault(r["run_id"], []).append(r["outcome"])
    return runs


def processing_time_of(argv: Sequence[str]) -> str:
    return argv[list(argv).index("--processing-time") + 1]


def assert_whole_window_changes_nothing(
    spark: SparkSession, warehouse: Path, processing_time: str
) -> None:
    """The rerun may have read only what landed since the killed run's MERGE: the whole
    window, read again, must find nothing left to change."""
    ctx = RunContext(
        make_config(warehouse),
        datetime.fromisoformat(processing_time),
        "whole-window-check",
        spark=spark,
    )
    whole = incremental.run(ctx, incremental.IncrementalParams(3, whole_window=True))
    assert whole.metrics["deduped_rows"] > 0
    assert (whole.metrics["inserted"], whole.metrics["updated"]) == (0, 0)


def assert_warehouse_correct(spark: SparkSession, warehouse: Path) -> None:
    """fct_orders equals the plain-Python rule over landing; order_id is unique; the current
    daily_revenue equals the rule's figures with one current row per key; verify passes."""
    landing = landing_dicts(spark, warehouse)
    keys = Counter((r["source_file"], r["line_number"]) for r in landing)
    assert max(keys.values(), default=1) == 1, "a landed line is in orders_landing twice"
    versions = rows_to_versions(landing)
    fct = [
        tuple(r)
        for r in spark.read.format("delta")
        .load(str(warehouse / "fct_orders"))
        .select(*FCT_ORDERS_COLUMNS)
        .collect()
    ]
    assert len({row[0] for row in fct}) == len(fct), "order_id is not unique in fct_orders"
    assert set(fct) == expected_fct(versions)
    current = (
        spark.read.format("delta")
        .load(str(warehouse / "daily_revenue"))
        .filter(F.col("superseded_at").isNull())
        .collect()
    )
    per_key = Counter((r["order_date"], r["currency"]) for r in current)
    assert max(per_key.values(), default=1) == 1, "two current versions of one day and currency"
    figures = {(r["order_date"], r["currency"]): (r["order_count"], r["revenue"]) for r in current}
    assert figures == expected_revenue(versions)
    assert etl(warehouse, "verify", "--processing-time", "2026-03-21T00:00:00Z") == 0


def assert_lines_accounted(spark: SparkSession, warehouse: Path, batch: Path) -> None:
    """Every non-blank input line is in landing or quarantine, exactly once."""
    expected: set[tuple[str, int]] = set()
    for path in sorted(batch.iterdir()):
        expected |= non_blank_lines(path)
    seen: Counter[tuple[str, int]] = Counter()
    for table in ("orders_landing", "orders_quarantine"):
        df = spark.read.format("delta").load(str(warehouse / table))
        seen.update((r[0], r[1]) for r in df.select("source_file", "line_number").collect())
    assert set(seen) == expected
    assert max(seen.values()) == 1, "an input line was written twice"
    reasons = spark.read.format("delta").load(str(warehouse / "orders_quarantine"))
    assert reasons.filter(F.col("reason").isNull()).count() == 0


# --- killing a real process ---------------------------------------------------------------------


def delta_commits(warehouse: Path) -> set[str]:
    return {str(p) for p in warehouse.glob("*/_delta_log/*.json")}


def group_alive(pgid: int) -> bool:
    """Tell whether any non-zombie process of the group is left."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            return True
    return False


@dataclass
class Victim:
    """One `orders-etl` subprocess, run in a thread that kills it at a planned moment.

    plan: ("boot", s) kills s seconds after the start; ("work", s) kills s seconds after the
    run's first Delta commit appears (the JVM is up, the run is writing); ("none", 0) lets it
    finish (the control run).
    """

    argv: list[str]
    env: dict[str, str]
    warehouse: Path
    log: Path
    plan: tuple[str, float]
    first_commit_after: float | None = None
    duration: float = 0.0
    killed_after: float | None = None
    returncode: int | None = None
    error: BaseException | None = None
    _thread: threading.Thread = field(init=False, repr=False)

    def start(self) -> Victim:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def join(self) -> Victim:
        self._thread.join(timeout=900)
        assert not self._thread.is_alive(), "the victim thread did not finish"
        if self.error is not None:
            raise self.error
        return self

    def _run(self) -> None:
        try:
            self._drive()
        except BaseException as exc:  # surfaced by join()
            self.error = exc

    def _drive(self) -> None:
        before = delta_commits(self.warehouse)
        phase, delay = self.plan
        with self.log.open("wb") as err:
            started = time.monotonic()
            proc = subprocess.Popen(
                self.argv,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=err,
                start_new_session=True,
            )
            deadline = started + delay if phase == "boot" else None
            while proc.poll() is None:
                now = time.monotonic()
                if self.first_commit_after is None and delta_commits(self.warehouse) - before:
                    self.first_commit_after = now - started
                    if phase == "work":
                        deadline = now + delay
                if deadline is not None and now >= deadline:
                    os.killpg(proc.pid, signal.SIGKILL)
                    self.killed_after = now - started
                    break
                if now - started > 600:
                    os.killpg(proc.pid, signal.SIGKILL)
                    raise AssertionError(f"{self.argv[1]} ran for more than 600 s")
                time.sleep(0.02)
            self.returncode = proc.wait()
            self.duration = time.monotonic() - started
            if self.first_commit_after is None and delta_commits(self.warehouse) - before:
                self.first_commit_after = self.duration
        give_up = time.monotonic() + 30
        while group_alive(proc.pid):
            assert time.monotonic() < give_up, "the killed JVM is still running"
            time.sleep(0.05)

    @property
    def killed(self) -> bool:
        return self.killed_after is not None and self.returncode == -signal.SIGKILL

    @property
    def completed(self) -> bool:
        """The run got to its summary line (printed after its outcome row) before dying."""
        return self.returncode == 0 or b"succeeded in " in self.log.read_bytes()


def kill_plans(rng: random.Random, boot: float, work: float, count: int) -> list[tuple[str, float]]:
    """One kill in the start-up phase, the others stratified over the working phase."""
    plans: list[tuple[str, float]] = [("boot", rng.uniform(0.3, max(boot, 0.4)))]
    slots = count - 1
    for i in range(slots):
        low, high = i / slots, (i + 1) / slots
        plans.append(("work", rng.uniform(low, high) * 0.95 * work))
    return plans


@dataclass
class Tally:
    """Reliability figures of this module, printed at the end of each test."""

    kills: int = 0
    survived: int = 0
    started_rows_left: int = 0
    finished_before_kill: int = 0
    lines: list[str] = field(default_factory=list)


TALLY = Tally()


def check_after_rerun(
    spark: SparkSession,
    prep: Prepared,
    warehouse: Path,
    control: Path,
    victim: Victim | None,
    downstream: bool = True,
) -> str:
    """Rerun the command in-process, compare with the control and check the ledger; with
    `downstream`, also bring the rest up to date and check the whole warehouse against the
    plain-Python rule. Returns what the ledger shows of the killed run: started-row, no-row
    or finished."""
    scenario = prep.scenario
    run_ok(warehouse, *prep.argv)
    for table in scenario.compare:
        assert table_rows(spark, warehouse, table) == table_rows(spark, control, table), (
            f"{scenario.name}: {table} differs from the run-once control"
        )
    if scenario.batch:
        assert_lines_accounted(spark, warehouse, prep.inputs / scenario.batch)
    if scenario.name == "incremental":
        assert_whole_window_changes_nothing(spark, warehouse, processing_time_of(prep.argv))
    runs = ledger_by_run(spark, warehouse, scenario.argv[0], processing_time_of(prep.argv))
    finished = [r for r, outcomes in runs.items() if set(outcomes) - {Outcome.STARTED}]
    interrupted = [r for r, outcomes in runs.items() if set(outcomes) == {Outcome.STARTED}]
    for run_id, outcomes in runs.items():
        assert len(outcomes) <= 2 and outcomes.count(Outcome.STARTED) == 1, (run_id, outcomes)
        assert len(outcomes) == 1 or Outcome.SUCCEEDED in outcomes, (run_id, outcomes)
    # The rerun finished. The killed run left a started row without an outcome row, or no row
    # (killed before it began), or, killed after its outcome row was written, is finished too.
    assert 1 <= len(finished) <= (1 if victim is None else 2)
    assert len(interrupted) + len(finished) <= 2
    status = "started-row" if interrupted else ("finished" if len(finished) == 2 else "no-row")
    if not downstream:
        return status
    for argv in scenario.downstream:
        run_ok(warehouse, *argv)
    assert_warehouse_correct(spark, warehouse)
    return status


@pytest.mark.parametrize("name", ["land", "incremental", "backfill", "rollup"])
def test_sigkill_at_random_moments_then_rerun(
    spark: SparkSession,
    prepared: Callable[[str], Prepared],
    conf_dir: Path,
    tmp_path: Path,
    name: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    prep = prepared(name)
    env = subprocess_env(conf_dir, tmp_path / "logs")
    (tmp_path / "logs").mkdir()

    def victim(index: int, plan: tuple[str, float]) -> Victim:
        warehouse = prep.copy(tmp_path / f"wh-{index}")
        argv = [str(ORDERS_ETL), *prep.argv, "--env", ENV_NAME, "--warehouse", str(warehouse)]
        return Victim(argv, env, warehouse, tmp_path / f"stderr-{index}.log", plan).start()

    control = victim(0, ("none", 0.0)).join()
    assert control.returncode == 0, control.log.read_text()[-2000:]
    assert control.first_commit_after is not None
    boot = control.first_commit_after
    work = control.duration - boot
    rng = random.Random(f"sigkill-{name}")
    plans = kill_plans(rng, boot, work, KILLS_PER_COMMAND)

    # While one killed run is rerun and checked in-process, the next victim already starts.
    attempts = 1
    running: Victim | None = victim(attempts, plans.pop(0))
    results: list[str] = []
    kills = 0
    while running is not None:
        done = running.join()
        if done.completed and done.first_commit_after is not None:
            # It finished before its kill (faster than the control): aim a new kill earlier.
            work = min(work, done.duration - done.first_commit_after)
            if attempts < KILLS_PER_COMMAND + 3:
                plans.append(("work", rng.uniform(0.05, 0.7) * work))
        running = None
        if plans:
            attempts += 1
            running = victim(attempts, plans.pop(0))
        if not done.killed:
            assert done.returncode == 0, done.log.read_text()[-2000:]
        ledger = check_after_rerun(
            spark,
            prep,
            done.warehouse,
            control.warehouse,
            done,
            downstream=FULL_CHECK_EVERY_VICTIM or not results,
        )
        mid_run = done.killed and not done.completed and ledger != "finished"
        kills += mid_run
        TALLY.kills += mid_run
        TALLY.survived += mid_run
        TALLY.started_rows_left += mid_run and ledger == "started-row"
        TALLY.finished_before_kill += not mid_run
        phase = done.plan[0]
        results.append(
            f"{phase}@{done.killed_after:.1f}s:{ledger}" if mid_run else "finished-before-kill"
        )
    line = (
        f"sigkill {name}: control {control.duration:.1f}s (first commit at {boot:.1f}s); "
        f"kills: {', '.join(results)}"
    )
    TALLY.lines.append(line)
    with capsys.disabled():
        print(f"\n{line}")
        print(
            f"sigkill total so far: {TALLY.kills} kills, {TALLY.survived} survived "
            f"(rerun succeeded, nothing lost or doubled), {TALLY.started_rows_left} left a "
            f"started row without outcome, {TALLY.finished_before_kill} finished before the kill"
        )
    assert kills >= KILLS_PER_COMMAND, f"only {kills} runs were killed mid-way"


# --- deterministic crash points between two commits of one command -----------------------------


class Crash(BaseException):
    """A simulated crash: not an Exception, so the runner records no outcome for it."""


CRASH_POINTS = {
    # scenario: (module attribute to wrap, the crash comes right after its commit)
    "land": ("orders_etl.pipeline.land", "append_rows"),
    "incremental": ("orders_etl.pipeline.incremental", "merge_latest_versions"),
    "backfill": ("orders_etl.pipeline.backfill", "merge_corrections"),
    "rollup": ("orders_etl.pipeline.rollup", "merge_revenue_versions"),
}


@pytest.mark.parametrize("name", sorted(CRASH_POINTS))
def test_crash_right_after_a_commit_then_rerun(
    spark: SparkSession,
    prepared: Callable[[str], Prepared],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    name: str,
) -> None:
    """land dies between its landing and quarantine appends; incremental after its MERGE;
    backfill between its corrections MERGE and its replaceWhere; rollup between its
    daily_revenue MERGE and its revenue_revisions append."""
    prep = prepared(name)
    control = prep.copy(tmp_path / "control")
    run_ok(control, *prep.argv)
    warehouse = prep.copy(tmp_path / "crashed")

    module_name, attribute = CRASH_POINTS[name]
    module = sys.modules[module_name]
    original = getattr(module, attribute)
    calls: list[int] = []

    def commit_then_crash(*args: Any, **kwargs: Any) -> None:
        original(*args, **kwargs)
        calls.append(1)
        raise Crash(f"crash after {attribute}")

    monkeypatch.setattr(module, attribute, commit_then_crash)
    with pytest.raises(Crash):
        etl(warehouse, *prep.argv)
    monkeypatch.setattr(module, attribute, original)
    assert calls == [1], "the crash point was not reached"

    assert check_after_rerun(spark, prep, warehouse, control, None) == "started-row"
    if name == "rollup":
        revisions = table_rows(spark, warehouse, "revenue_revisions")
        assert sum(revisions.values()) > 0, "the scenario must revise a published day"
