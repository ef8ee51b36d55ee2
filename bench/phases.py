"""Run and measure the phases of one size, in a fresh scratch warehouse.

`run_size` is the whole sequence: generate the history and the batch, copy `fct_orders` for
the baselines, `land`, `incremental`, the baselines, `rollup`, a 14-day `backfill`, `rollup`
again, the incremental's steps one by one, and the (untimed) checks. `warm_up_size` stops after
land, incremental and rollup. `repeat_incremental` re-times the steps once more, later.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from types import MappingProxyType
from typing import Any

import baselines
import breakdown
import datagen
from checks import CheckInputs, check_size
from delta.tables import DeltaTable
from measure import CommitStats, Probe, Usage, commit_stats, measure
from pipeline import (
    DAILY_REVENUE,
    FCT_ORDERS,
    ORDERS_LANDING,
    ORDERS_QUARANTINE,
    REVENUE_REVISIONS,
    CommandResult,
    RunContext,
    SparkSettings,
    execute,
    land_files,
    list_batch_files,
    migrate_warehouse,
    run_backfill,
    run_incremental,
    run_rollup,
    table_version,
)
from pyspark.sql import SparkSession
from results import (
    BACKFILL,
    EVENT_TIME,
    FULL_REFRESH,
    INCREMENTAL,
    LAND,
    NO_PREDICATES,
    ROLLUP,
    ROLLUP_AFTER_BACKFILL,
    SETUP_BATCH,
    SETUP_FCT,
    SETUP_LANDING,
    SETUP_ROLLUP,
    Phase,
    SizeResult,
)
from scratch import BREAKDOWN, COPIES, Scratch, repeat_copy

BACKFILL_DAYS = 14
ROLLUP_TABLES = (DAILY_REVENUE, REVENUE_REVISIONS)


class BenchError(Exception):
    """A step of the benchmark failed; the message names it."""


def say(text: str) -> None:
    """Print a progress line on stderr."""
    print(f"bench: {text}", file=sys.stderr, flush=True)


@dataclass(frozen=True)
class SizeRun:
    """One size being benchmarked: the shared session and probe, what to generate, where it
    runs, and what it has measured so far."""

    spark: SparkSession
    probe: Probe
    shape: datagen.Shape
    scratch: Scratch
    result: SizeResult

    @classmethod
    def start(
        cls,
        spark: SparkSession,
        probe: Probe,
        shape: datagen.Shape,
        folder: Path,
        settings: SparkSettings,
    ) -> SizeRun:
        """Begin a size in `folder`, with nothing measured yet."""
        return cls(spark, probe, shape, Scratch.at(folder, settings), SizeResult(shape))

    def say(self, text: str) -> None:
        """Print a progress line of this size on stderr."""
        say(f"[{self.shape.orders:,} orders] {text}")


# --- the sequences -----------------------------------------------------------------------
def run_size(size: SizeRun, compare_with_full_refresh: bool, repeats: int) -> SizeResult:
    """Generate, run the commands, the baselines and the breakdown, check, return the results."""
    started = time.perf_counter()
    batch_path = prepare(size, repeats)
    land_ctx = land_batch(size, batch_path)
    fct_before_incremental = merge_batch(size)
    run_baselines(size)
    roll_up(size, ROLLUP)
    start, end, fct_before_backfill = backfill_last_days(size)
    roll_up(size, ROLLUP_AFTER_BACKFILL)
    time_incremental_steps(size)
    inputs = CheckInputs(land_ctx.run_id, fct_before_incremental, fct_before_backfill, start, end)
    check(size, inputs, compare_with_full_refresh)
    size.result.seconds = time.perf_counter() - started
    return size.result


def warm_up_size(size: SizeRun) -> SizeResult:
    """Run land, incremental and rollup only: exercise the code paths, so that the first
    measured size does not pay for a cold JVM."""
    started = time.perf_counter()
    batch_path = prepare(size, repeats=0)
    land_batch(size, batch_path)
    merge_batch(size)
    roll_up(size, ROLLUP)
    size.result.seconds = time.perf_counter() - started
    return size.result


def prepare(size: SizeRun, repeats: int) -> Path:
    """Empty the scratch folder, generate the history and the batch, copy `fct_orders` for
    the baselines, the breakdown and `repeats` re-timings; return the batch file."""
    shutil.rmtree(size.scratch.folder, ignore_errors=True)
    size.scratch.folder.mkdir(parents=True)
    batch_path = set_up(size)
    copy_fct_orders(size, repeats)
    return batch_path


# --- measuring one phase -----------------------------------------------------------------
def record_phase(
    size: SizeRun,
    name: str,
    usage: Usage,
    commits: Sequence[CommitStats] = (),
    metrics: Mapping[str, Any] | None = None,
) -> Phase:
    """Keep a measured phase in the size's results and say what it cost."""
    phase = Phase(name, usage, tuple(commits), MappingProxyType(dict(metrics or {})))
    size.result.phases[name] = phase
    size.say(
        f"{name}: {usage.seconds:.1f}s wall, {usage.jvm_cpu_seconds:.1f}s JVM CPU, "
        f"heap peak {usage.heap_peak_bytes / 2**30:.2f} GiB, load {usage.load_average:.1f}"
    )
    return phase


def new_run_id(label: str) -> str:
    """Return a fresh run id saying which step of the bench it is for."""
    return f"bench-{label}-{uuid.uuid4().hex[:12]}"


def run_command(
    size: SizeRun,
    name: str,
    command: str,
    processing_time: datetime,
    action: Callable[[RunContext], CommandResult],
    tables: Sequence[str],
) -> tuple[Phase, RunContext]:
    """Run a command as the CLI does (run ledger included) and measure it, with the commits
    it made to `tables`."""
    ctx = RunContext(size.scratch.config, processing_time, new_run_id(command), spark=size.spark)
    spark, paths = size.spark, {t: size.scratch.path(t) for t in tables}
    before = {t: table_version(spark, paths[t]) for t in tables}
    results: list[CommandResult] = []

    def act() -> CommandResult:
        results.append(action(ctx))
        return results[-1]

    code, usage = measure(size.probe, lambda: execute(ctx, command, {}, act))
    if code != 0 or not results:
        raise BenchError(f"{name} exited with code {code}; see its error line above")
    commits = [stats for t in tables for stats in commit_stats(spark, t, paths[t], before[t])]
    return record_phase(size, name, usage, commits, results[-1].metrics), ctx


def run_baseline(size: SizeRun, name: str, action: Callable[[], Mapping[str, Any]]) -> Phase:
    """Run a baseline on its scratch copy of `fct_orders` and measure it."""
    path = size.scratch.copy_path(name)
    before = table_version(size.spark, path)
    metrics, usage = measure(size.probe, action)
    commits = commit_stats(size.spark, f"{FCT_ORDERS} (copy)", path, before)
    return record_phase(size, name, usage, commits, metrics)


# --- setup ------------------------------------------------------------------------------
def set_up(size: SizeRun) -> Path:
    """Generate the history into Delta tables and the batch file; return the batch path."""
    set_up_tables(size)
    batch_path, kinds = set_up_batch(size)
    size.result.facts.update(setup_facts(size, batch_path, kinds))
    return batch_path


def set_up_tables(size: SizeRun) -> None:
    """Create the warehouse, write the landing history, `fct_orders` from it, and roll up."""
    spark, shape = size.spark, size.shape
    landing_path, fct_path = size.scratch.path(ORDERS_LANDING), size.scratch.path(FCT_ORDERS)

    def make_landing() -> None:
        migrate_warehouse(spark, size.scratch.warehouse)
        datagen.write_landing(spark, shape, landing_path)

    _, usage = measure(size.probe, make_landing)
    record_phase(size, SETUP_LANDING, usage)
    _, usage = measure(
        size.probe,
        lambda: datagen.write_fct(
            datagen.latest_from_landing(spark, landing_path), fct_path, "append"
        ),
    )
    record_phase(size, SETUP_FCT, usage)
    run_command(size, SETUP_ROLLUP, "rollup", shape.history_end, run_rollup, ROLLUP_TABLES)


def set_up_batch(size: SizeRun) -> tuple[Path, dict[str, int]]:
    """Write the hourly batch file; return its path and how many lines of each kind it has."""
    spark, shape, batch_folder = size.spark, size.shape, size.scratch.batch_folder
    batch_folder.mkdir()

    def make_batch() -> tuple[Path, dict[str, int]]:
        events_df = datagen.batch_events(spark, shape).cache()
        kinds = {r["kind"]: int(r["count"]) for r in events_df.groupBy("kind").count().collect()}
        path = datagen.write_batch(events_df, batch_folder, shape)
        events_df.unpersist()
        return path, kinds

    (batch_path, kinds), usage = measure(size.probe, make_batch)
    record_phase(size, SETUP_BATCH, usage)
    return batch_path, kinds


def table_facts(spark: SparkSession, table: str, path: str) -> dict[str, int]:
    """Return a table's rows, data files and bytes, keyed `<table>_rows` and so on."""
    detail = DeltaTable.forPath(spark, path).detail().first()
    assert detail is not None
    rows = spark.read.format("delta").load(path).count()
    return {
        f"{table}_rows": rows,
        f"{table}_files": int(detail["numFiles"]),
        f"{table}_bytes": int(detail["sizeInBytes"]),
    }


def setup_facts(size: SizeRun, batch_path: Path, kinds: Mapping[str, int]) -> dict[str, Any]:
    """Describe the generated data: the tables' sizes, the partitions, the batch's mix."""
    spark, scratch = size.spark, size.scratch
    facts: dict[str, Any] = {}
    for table in (ORDERS_LANDING, FCT_ORDERS, DAILY_REVENUE):
        facts.update(table_facts(spark, table, scratch.path(table)))
    facts["fct_orders_partitions"] = (
        spark.read.format("delta")
        .load(scratch.path(FCT_ORDERS))
        .select("order_date")
        .distinct()
        .count()
    )
    facts["batch_kinds"] = {k: kinds.get(k, 0) for k in datagen.BATCH_KINDS}
    facts["batch_lines"] = sum(kinds.values())
    facts["batch_bytes"] = batch_path.stat().st_size
    facts["landing_files_written"] = datagen.landing_files(size.shape)
    return facts


def copy_fct_orders(size: SizeRun, repeats: int) -> None:
    """Copy `fct_orders` as it is before the batch, once per baseline and repeat."""
    for name in [*COPIES, *(repeat_copy(i) for i in range(repeats))]:
        shutil.copytree(size.scratch.path(FCT_ORDERS), size.scratch.copy_path(name))


# --- the commands -------------------------------------------------------------------------
def land_batch(size: SizeRun, batch_path: Path) -> RunContext:
    """Run and measure `land` on the batch file; return its run's context."""
    files = tuple(list_batch_files(str(batch_path)))
    _, ctx = run_command(
        size,
        LAND,
        "land",
        size.shape.processing_time,
        lambda ctx: land_files(ctx, str(batch_path), files),
        (ORDERS_LANDING, ORDERS_QUARANTINE),
    )
    return ctx


def merge_batch(size: SizeRun) -> int:
    """Run and measure `incremental`; return the version of `fct_orders` before it."""
    fct_before = table_version(size.spark, size.scratch.path(FCT_ORDERS))
    assert fct_before is not None
    lookback_days = size.scratch.lookback_days
    run_command(
        size,
        INCREMENTAL,
        "incremental",
        size.shape.processing_time,
        lambda ctx: run_incremental(ctx, lookback_days),
        (FCT_ORDERS,),
    )
    return fct_before


def roll_up(size: SizeRun, name: str) -> None:
    """Run and measure `rollup` at the batch's processing time, as the phase `name`."""
    run_command(size, name, "rollup", size.shape.processing_time, run_rollup, ROLLUP_TABLES)


def backfill_last_days(size: SizeRun) -> tuple[date, date, int]:
    """Run and measure a backfill of the last 14 days; return its first and last day and the
    version of `fct_orders` before it."""
    end = size.shape.processing_time.date()
    start = end - timedelta(days=BACKFILL_DAYS - 1)
    fct_before = table_version(size.spark, size.scratch.path(FCT_ORDERS))
    assert fct_before is not None
    run_command(
        size,
        BACKFILL,
        "backfill",
        size.shape.processing_time,
        lambda ctx: run_backfill(ctx, start, end),
        (FCT_ORDERS,),
    )
    return start, end, fct_before


# --- baselines, breakdown, repeats --------------------------------------------------------
def run_baselines(size: SizeRun) -> None:
    """Run the three baselines, each on its own copy, after the real incremental."""
    spark, scratch = size.spark, size.scratch
    landing_path = scratch.path(ORDERS_LANDING)
    run_baseline(
        size,
        NO_PREDICATES,
        lambda: baselines.merge_without_predicates(
            spark,
            size.probe,
            landing_path,
            scratch.copy_path(NO_PREDICATES),
            scratch.lookback_days,
        ),
    )
    run_baseline(
        size,
        EVENT_TIME,
        lambda: baselines.event_time_incremental(
            spark, landing_path, scratch.copy_path(EVENT_TIME)
        ),
    )
    run_baseline(
        size,
        FULL_REFRESH,
        lambda: baselines.full_refresh(spark, landing_path, scratch.copy_path(FULL_REFRESH)),
    )


def incremental_steps_on(size: SizeRun, copy: str, label: str) -> tuple[dict[str, Usage], int]:
    """Time the incremental's steps one by one on a copy of `fct_orders`."""
    return breakdown.incremental_steps(
        size.spark,
        size.probe,
        size.scratch.path(ORDERS_LANDING),
        size.scratch.copy_path(copy),
        size.scratch.lookback_days,
        new_run_id(label),
    )


def time_incremental_steps(size: SizeRun) -> None:
    """Time the incremental's steps one by one on a copy (same state, same batch)."""
    steps, dates = incremental_steps_on(size, BREAKDOWN, "breakdown")
    size.result.steps = steps
    size.result.facts["breakdown_merge_dates"] = dates
    for name, usage in steps.items():
        size.say(f"  step {name}: {usage.seconds:.1f}s wall, {usage.jvm_cpu_seconds:.1f}s CPU")


def repeat_incremental(size: SizeRun, index: int) -> Usage:
    """Time the incremental's steps again on a fresh copy; return their summed cost."""
    steps, _ = incremental_steps_on(size, repeat_copy(index), f"repeat{index}")
    total = Usage(
        seconds=sum(u.seconds for u in steps.values()),
        jvm_cpu_seconds=sum(u.jvm_cpu_seconds for u in steps.values()),
        heap_peak_bytes=max(u.heap_peak_bytes for u in steps.values()),
        load_average=os.getloadavg()[0],
        spark_jobs=sum(u.spark_jobs for u in steps.values()),
    )
    size.result.repeats.append(total)
    size.say(
        f"repeat {index + 1}: incremental steps {total.seconds:.1f}s wall, "
        f"{total.jvm_cpu_seconds:.1f}s JVM CPU, load {total.load_average:.1f}"
    )
    shutil.rmtree(size.scratch.copy_path(repeat_copy(index)), ignore_errors=True)
    return total


# --- checks -------------------------------------------------------------------------------
def check(size: SizeRun, inputs: CheckInputs, compare_with_full_refresh: bool) -> None:
    """Run the untimed checks of the size's tables and say what they found."""
    size.say("checking (not timed)")
    check_size(size.spark, size.scratch, size.result, inputs, compare_with_full_refresh)
    size.say(f"checks: {json.dumps(size.result.checks, default=str)}")
