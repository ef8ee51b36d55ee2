"""Benchmark the incremental against a full refresh and two older designs, in one session.

`make bench` runs `.venv/bin/python bench/run.py`: for each size (default 2M and 10M orders
over 180 days) it generates a history with Spark straight into Delta tables under
`bench/work/`, lands one hourly batch of 50k events, and times, with Delta's commit metrics,
`land`, `incremental`, `rollup` and a 14-day `backfill` (the project's own command functions,
through its run ledger) and the baselines (on scratch copies of `fct_orders`). It writes
`bench/results.md` after every size, and the raw numbers to `bench/work/results.json`.

Develop with tiny sizes: `.venv/bin/python bench/run.py --sizes 20000,100000`.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shlex
import shutil
import sys
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from types import MappingProxyType
from typing import Any

import baselines
import breakdown
import datagen
from delta.tables import DeltaTable
from measure import CommitStats, Probe, Usage, commit_stats, measure
from phases import (
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
from pipeline import (
    DAILY_REVENUE,
    FCT_ORDERS,
    ORDERS_LANDING,
    ORDERS_QUARANTINE,
    REVENUE_REVISIONS,
    CommandResult,
    Config,
    RunContext,
    SparkSettings,
    Warehouse,
    execute,
    get_spark,
    land_files,
    list_batch_files,
    load_config,
    migrate_warehouse,
    run_backfill,
    run_incremental,
    run_rollup,
    table_version,
)
from pyspark.sql import SparkSession
from pyspark.sql import functions as F
from report import Machine, Run, write_report

BENCH_DIR = Path(__file__).resolve().parent
DEFAULT_SIZES = (2_000_000, 10_000_000)
DEFAULT_DAYS = 180
DEFAULT_BATCH_EVENTS = 50_000
DEFAULT_WARMUP_ORDERS = 2_000
BACKFILL_DAYS = 14
PROCESSING_TIME = datetime(2026, 6, 30, 12, 0, tzinfo=UTC)
DEFAULT_REPEATS = 3
COPIES = {
    FULL_REFRESH: "full_refresh",
    NO_PREDICATES: "no_partition_predicates",
    EVENT_TIME: "event_time_model",
    "breakdown": "breakdown",
}


class BenchError(Exception):
    """A step of the benchmark failed; the message names it."""


def say(text: str) -> None:
    """Print a progress line on stderr."""
    print(f"bench: {text}", file=sys.stderr, flush=True)


def bench_settings(driver_memory: str) -> SparkSettings:
    """The project's local Spark settings (conf/local.toml), with the bench's driver memory."""
    local = load_config("local").spark
    conf = {
        **local.conf,
        "spark.driver.memory": driver_memory,
        "spark.ui.enabled": "false",
        "spark.ui.showConsoleProgress": "false",
    }
    return SparkSettings(
        app_name="orders_etl-bench", master=local.master, conf=MappingProxyType(conf)
    )


class SizeBench:
    """The benchmark at one size, in a fresh scratch warehouse."""

    def __init__(
        self,
        spark: SparkSession,
        probe: Probe,
        shape: datagen.Shape,
        folder: Path,
        settings: SparkSettings,
        check: bool,
        repeats: int = 0,
    ) -> None:
        self.spark = spark
        self.repeats = repeats
        self.probe = probe
        self.shape = shape
        self.folder = folder
        self.check = check
        self.warehouse = Warehouse(str(folder / "warehouse"))
        self.config = Config(env="bench", warehouse=self.warehouse.root, spark=settings)
        self.lookback_days = self.config.incremental.lookback_days
        self.result = SizeResult(shape)

    # --- plumbing -------------------------------------------------------------------------
    def _say(self, text: str) -> None:
        say(f"[{self.shape.orders:,} orders] {text}")

    def _record(
        self,
        name: str,
        usage: Usage,
        commits: Sequence[CommitStats] = (),
        metrics: Mapping[str, Any] | None = None,
    ) -> Phase:
        phase = Phase(name, usage, tuple(commits), MappingProxyType(dict(metrics or {})))
        self.result.phases[name] = phase
        self._say(
            f"{name}: {usage.seconds:.1f}s wall, {usage.jvm_cpu_seconds:.1f}s JVM CPU, "
            f"heap peak {usage.heap_peak_bytes / 2**30:.2f} GiB, load {usage.load_average:.1f}"
        )
        return phase

    def _ctx(self, processing_time: datetime, label: str) -> RunContext:
        run_id = f"bench-{label}-{uuid.uuid4().hex[:12]}"
        return RunContext(self.config, processing_time, run_id, spark=self.spark)

    def _path(self, table: str) -> str:
        return self.warehouse.path(table)

    def _copy_path(self, name: str) -> str:
        return str(self.folder / "copies" / COPIES.get(name, name))

    def _command(
        self,
        name: str,
        command: str,
        processing_time: datetime,
        action: Callable[[RunContext], CommandResult],
        tables: Sequence[str],
    ) -> tuple[Phase, RunContext]:
        """Run a command as the CLI does (run ledger included) and measure it."""
        ctx = self._ctx(processing_time, command)
        before = {t: table_version(self.spark, self._path(t)) for t in tables}
        results: list[CommandResult] = []

        def act() -> CommandResult:
            results.append(action(ctx))
            return results[-1]

        code, usage = measure(self.probe, lambda: execute(ctx, command, {}, act))
        if code != 0 or not results:
            raise BenchError(f"{name} exited with code {code}; see its error line above")
        commits = [
            stats
            for table in tables
            for stats in commit_stats(self.spark, table, self._path(table), before[table])
        ]
        return self._record(name, usage, commits, results[-1].metrics), ctx

    def _baseline(
        self, name: str, processing_time: datetime, action: Callable[[], Mapping[str, Any]]
    ) -> Phase:
        """Run a baseline on its scratch copy of `fct_orders` and measure it."""
        self._ctx(processing_time, COPIES[name])
        path = self._copy_path(name)
        before = table_version(self.spark, path)
        metrics, usage = measure(self.probe, action)
        commits = commit_stats(self.spark, f"{FCT_ORDERS} (copy)", path, before)
        return self._record(name, usage, commits, metrics)

    def _table_facts(self, table: str, path: str) -> dict[str, int]:
        detail = DeltaTable.forPath(self.spark, path).detail().first()
        assert detail is not None
        rows = self.spark.read.format("delta").load(path).count()
        return {
            f"{table}_rows": rows,
            f"{table}_files": int(detail["numFiles"]),
            f"{table}_bytes": int(detail["sizeInBytes"]),
        }

    # --- the run --------------------------------------------------------------------------
    def run(self, warm_up: bool = False) -> SizeResult:
        """Generate, run the commands and the baselines, check, and return the results.

        A warm-up stops after land, incremental and rollup: it only exercises the code paths
        so that the first measured size does not pay for a cold JVM.
        """
        started = time.perf_counter()
        shutil.rmtree(self.folder, ignore_errors=True)
        self.folder.mkdir(parents=True)
        batch_path = self.setup()
        self.make_copies()
        p = self.shape.processing_time
        files = tuple(list_batch_files(str(batch_path)))
        _, land_ctx = self._command(
            LAND,
            "land",
            p,
            lambda ctx: land_files(ctx, str(batch_path), files),
            (ORDERS_LANDING, ORDERS_QUARANTINE),
        )
        fct_before = table_version(self.spark, self._path(FCT_ORDERS))
        assert fct_before is not None
        merged, _ = self._command(
            INCREMENTAL,
            "incremental",
            p,
            lambda ctx: run_incremental(ctx, self.lookback_days),
            (FCT_ORDERS,),
        )
        if warm_up:
            self._command(ROLLUP, "rollup", p, run_rollup, (DAILY_REVENUE, REVENUE_REVISIONS))
            self.result.seconds = time.perf_counter() - started
            return self.result
        self.run_baselines()
        self._command(ROLLUP, "rollup", p, run_rollup, (DAILY_REVENUE, REVENUE_REVISIONS))
        start = p.date() - timedelta(days=BACKFILL_DAYS - 1)
        fct_before_backfill = table_version(self.spark, self._path(FCT_ORDERS))
        assert fct_before_backfill is not None
        self._command(
            BACKFILL,
            "backfill",
            p,
            lambda ctx: run_backfill(ctx, start, p.date()),
            (FCT_ORDERS,),
        )
        self._command(
            ROLLUP_AFTER_BACKFILL, "rollup", p, run_rollup, (DAILY_REVENUE, REVENUE_REVISIONS)
        )
        self.run_breakdown()
        self.check_results(land_ctx, merged, fct_before, fct_before_backfill, start, p.date())
        self.result.seconds = time.perf_counter() - started
        return self.result

    def setup(self) -> Path:
        """Generate the history into Delta tables and the batch file; return the batch path."""
        shape, spark = self.shape, self.spark
        self._ctx(shape.history_end, "setup")
        landing_path, fct_path = self._path(ORDERS_LANDING), self._path(FCT_ORDERS)

        def make_landing() -> None:
            migrate_warehouse(spark, self.warehouse)
            datagen.write_landing(spark, shape, landing_path)

        _, usage = measure(self.probe, make_landing)
        self._record(SETUP_LANDING, usage)
        _, usage = measure(
            self.probe,
            lambda: datagen.write_fct(
                datagen.latest_from_landing(spark, landing_path), fct_path, "append"
            ),
        )
        self._record(SETUP_FCT, usage)
        self._command(
            SETUP_ROLLUP,
            "rollup",
            shape.history_end,
            run_rollup,
            (DAILY_REVENUE, REVENUE_REVISIONS),
        )
        batch_folder = self.folder / "batch"
        batch_folder.mkdir()

        def make_batch() -> tuple[Path, dict[str, int]]:
            events_df = datagen.batch_events(spark, shape).cache()
            kinds = {
                r["kind"]: int(r["count"]) for r in events_df.groupBy("kind").count().collect()
            }
            path = datagen.write_batch(events_df, batch_folder, shape)
            events_df.unpersist()
            return path, kinds

        (batch_path, kinds), usage = measure(self.probe, make_batch)
        self._record(SETUP_BATCH, usage)
        facts = self.result.facts
        facts.update(self._table_facts(ORDERS_LANDING, landing_path))
        facts.update(self._table_facts(FCT_ORDERS, fct_path))
        facts.update(self._table_facts(DAILY_REVENUE, self._path(DAILY_REVENUE)))
        facts["fct_orders_partitions"] = (
            spark.read.format("delta").load(fct_path).select("order_date").distinct().count()
        )
        facts["batch_kinds"] = {k: kinds.get(k, 0) for k in datagen.BATCH_KINDS}
        facts["batch_lines"] = sum(kinds.values())
        facts["batch_bytes"] = batch_path.stat().st_size
        facts["landing_files_written"] = datagen.landing_files(shape)
        return batch_path

    def make_copies(self) -> None:
        """Copy `fct_orders` as it is before the batch, once per baseline and repeat."""
        for name in [*COPIES, *(f"repeat_{i}" for i in range(self.repeats))]:
            shutil.copytree(self._path(FCT_ORDERS), self._copy_path(name))

    def run_baselines(self) -> None:
        """Run the three baselines, each on its own copy, after the real incremental."""
        spark, p, landing_path = self.spark, self.shape.processing_time, self._path(ORDERS_LANDING)
        self._baseline(
            NO_PREDICATES,
            p,
            lambda: baselines.merge_without_predicates(
                spark, self.probe, landing_path, self._copy_path(NO_PREDICATES), self.lookback_days
            ),
        )
        self._baseline(
            EVENT_TIME,
            p,
            lambda: baselines.event_time_incremental(
                spark, landing_path, self._copy_path(EVENT_TIME)
            ),
        )
        self._baseline(
            FULL_REFRESH,
            p,
            lambda: baselines.full_refresh(spark, landing_path, self._copy_path(FULL_REFRESH)),
        )

    def run_breakdown(self) -> None:
        """Time the incremental's steps one by one on a copy (same state, same batch)."""
        ctx = self._ctx(self.shape.processing_time, "breakdown")
        steps, dates = breakdown.incremental_steps(
            self.spark,
            self.probe,
            self._path(ORDERS_LANDING),
            self._copy_path("breakdown"),
            self.lookback_days,
            ctx.run_id,
        )
        self.result.steps = steps
        self.result.facts["breakdown_merge_dates"] = dates
        for name, usage in steps.items():
            self._say(f"  step {name}: {usage.seconds:.1f}s wall, {usage.jvm_cpu_seconds:.1f}s CPU")

    def repeat_incremental(self, index: int) -> Usage:
        """Time the incremental's steps again on a fresh copy; return their summed cost."""
        ctx = self._ctx(self.shape.processing_time, f"repeat{index}")
        steps, _ = breakdown.incremental_steps(
            self.spark,
            self.probe,
            self._path(ORDERS_LANDING),
            self._copy_path(f"repeat_{index}"),
            self.lookback_days,
            ctx.run_id,
        )
        total = Usage(
            seconds=sum(u.seconds for u in steps.values()),
            jvm_cpu_seconds=sum(u.jvm_cpu_seconds for u in steps.values()),
            heap_peak_bytes=max(u.heap_peak_bytes for u in steps.values()),
            load_average=os.getloadavg()[0],
            spark_jobs=sum(u.spark_jobs for u in steps.values()),
        )
        self.result.repeats.append(total)
        self._say(
            f"repeat {index + 1}: incremental steps {total.seconds:.1f}s wall, "
            f"{total.jvm_cpu_seconds:.1f}s JVM CPU, load {total.load_average:.1f}"
        )
        shutil.rmtree(self._copy_path(f"repeat_{index}"), ignore_errors=True)
        return total

    # --- checks (not timed) ---------------------------------------------------------------
    def check_results(
        self,
        land_ctx: RunContext,
        merged: Phase,
        fct_before: int,
        fct_before_backfill: int,
        start: date,
        end: date,
    ) -> None:
        """Files touched outside the window, late events the old model drops, correctness."""
        spark, checks = self.spark, self.result.checks
        landing_path, fct_path = self._path(ORDERS_LANDING), self._path(FCT_ORDERS)
        self._say("checking (not timed)")
        window = baselines.window_dates(
            spark, landing_path, fct_path, fct_before, self.lookback_days
        )
        checks["window_partitions"] = len(window)
        checks["table_partitions"] = self.result.facts["fct_orders_partitions"]
        for label, phase, path in (
            ("incremental", merged, fct_path),
            ("no_predicates", self.result.phases[NO_PREDICATES], self._copy_path(NO_PREDICATES)),
        ):
            merges = [c for c in phase.commits if c.operation == "MERGE"]
            if not merges:
                continue
            commit = merges[-1]
            changed = baselines.changed_dates(spark, path, commit.version, commit.version)
            checks[f"{label}_partitions_touched"] = len(commit.files_by_date)
            checks[f"{label}_partitions_changed"] = len(changed)
            checks[f"{label}_files_touched"] = sum(commit.files_by_date.values())
            checks[f"{label}_files_outside_window"] = sum(
                n for d, n in commit.files_by_date.items() if d not in window
            )
            checks[f"{label}_files_without_change"] = sum(
                n for d, n in commit.files_by_date.items() if d not in changed
            )
        backfilled = self.result.phases[BACKFILL]
        in_range = {(start + timedelta(days=i)).isoformat() for i in range((end - start).days + 1)}
        writes = [c for c in backfilled.commits if c.operation == "WRITE"]
        corrections = [c for c in backfilled.commits if c.operation == "MERGE"]
        checks["backfill_files_outside_range"] = sum(
            n for c in writes for d, n in c.files_by_date.items() if d not in in_range
        )
        checks["backfill_correction_files"] = sum(
            n for c in corrections for n in c.files_by_date.values()
        )
        touched = sorted({d for c in backfilled.commits for d in c.files_by_date if d is not None})
        after = table_version(spark, fct_path)
        in_touched = F.col("order_date").cast("string").isin(*touched) if touched else F.lit(False)
        checks["backfill_rows_changed"] = baselines.rows_differing(
            baselines.read_version(spark, fct_path, fct_before_backfill).filter(in_touched),
            baselines.read_version(spark, fct_path, after).filter(in_touched),
        )
        event_phase = self.result.phases[EVENT_TIME]
        checks["late_lines_in_batch"] = (
            self.result.facts["batch_kinds"][datagen.KIND_LATE_NEW]
            + self.result.facts["batch_kinds"][datagen.KIND_LATE_STALE]
        )
        checks["event_time_model_dropped"] = baselines.late_events_dropped(
            spark, landing_path, land_ctx.run_id, event_phase.metrics.get("max_event_time")
        )
        batch_ids = (
            baselines.read_version(spark, landing_path)
            .filter(F.col("run_id") == land_ctx.run_id)
            .select("order_id")
            .distinct()
        )
        truth_path = self._copy_path(FULL_REFRESH)
        checks["event_time_model_orders_wrong"] = baselines.rows_differing(
            baselines.read_version(spark, self._copy_path(EVENT_TIME)).join(
                batch_ids, on="order_id", how="left_semi"
            ),
            baselines.read_version(spark, truth_path).join(
                batch_ids, on="order_id", how="left_semi"
            ),
        )
        if self.check:
            truth = baselines.fingerprint(baselines.read_version(spark, truth_path))
            merged_version = max((c.version for c in merged.commits), default=fct_before)
            for label, path, version in (
                ("incremental", fct_path, merged_version),
                ("backfill", fct_path, after),
                ("no_predicates", self._copy_path(NO_PREDICATES), None),
            ):
                found = baselines.fingerprint(baselines.read_version(spark, path, version))
                checks[f"{label}_equals_full_refresh"] = found == truth
        self._say(f"checks: {json.dumps(checks, default=str)}")


def describe_machine(spark: SparkSession, probe: Probe) -> Machine:
    """Describe the machine, the JVM and the versions the numbers were taken on."""
    jvm = spark.sparkContext._jvm
    assert jvm is not None
    system = jvm.java.lang.System
    meminfo = Path("/proc/meminfo").read_text().splitlines()
    mem_kib = next((int(x.split()[1]) for x in meminfo if x.startswith("MemTotal:")), 0)
    cpuinfo = Path("/proc/cpuinfo").read_text().splitlines()
    model = next((x.split(":", 1)[1].strip() for x in cpuinfo if x.startswith("model name")), "")
    try:
        delta_version = str(jvm.io.delta.VersionUtils.getVersion())
    except Exception:
        from importlib.metadata import version

        delta_version = version("delta-spark")
    return Machine(
        cpus=len(os.sched_getaffinity(0)),
        cpu_model=model,
        memory_bytes=mem_kib * 1024,
        java=f"{system.getProperty('java.vm.name')} {system.getProperty('java.version')}",
        spark=spark.version,
        delta=delta_version,
        python=sys.version.split()[0],
        heap_max_bytes=probe.heap_max_bytes(),
        load_at_start=os.getloadavg(),
    )


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    """Parse the bench's flags."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument(
        "--sizes",
        default=",".join(str(s) for s in DEFAULT_SIZES),
        help="orders in the history, comma-separated (default 2000000,10000000)",
    )
    parser.add_argument("--days", type=int, default=DEFAULT_DAYS, help="days of history")
    parser.add_argument(
        "--batch-events", type=int, default=DEFAULT_BATCH_EVENTS, help="lines in the batch"
    )
    parser.add_argument(
        "--warmup-orders",
        type=int,
        default=DEFAULT_WARMUP_ORDERS,
        help="orders of the unreported warm-up pass (0: none)",
    )
    parser.add_argument(
        "--repeats",
        type=int,
        default=DEFAULT_REPEATS,
        help="interleaved re-timings of the incremental's steps per size, at the end",
    )
    parser.add_argument("--driver-memory", default="8g", help="spark.driver.memory")
    parser.add_argument("--work-dir", type=Path, default=BENCH_DIR / "work")
    parser.add_argument("--results", type=Path, default=BENCH_DIR / "results.md")
    parser.add_argument(
        "--no-check",
        action="store_true",
        help="skip the (untimed) comparison of fct_orders with the full refresh",
    )
    args = parser.parse_args(list(argv))
    try:
        args.size_list = [int(s.replace("_", "")) for s in args.sizes.split(",") if s.strip()]
    except ValueError:
        parser.error(f"--sizes must be whole numbers separated by commas, got {args.sizes!r}")
    if not args.size_list or min(args.size_list) <= 0:
        parser.error("--sizes needs at least one positive size")
    return args


def command_line(argv: Sequence[str]) -> str:
    """Return the command as typed, relative to the project folder."""
    root = BENCH_DIR.parent
    executable = Path(sys.executable)
    with_root = executable.is_relative_to(root)
    shown = str(executable.relative_to(root)) if with_root else str(executable)
    return shlex.join([shown, "bench/run.py", *argv])


def warm_up(
    spark: SparkSession, probe: Probe, args: argparse.Namespace, settings: SparkSettings
) -> float:
    """Run land, incremental and rollup once on a tiny history; return the seconds it took."""
    if args.warmup_orders <= 0:
        return 0.0
    shape = datagen.Shape(
        orders=args.warmup_orders,
        days=args.days,
        batch_events=max(args.warmup_orders // 10, 100),
        processing_time=PROCESSING_TIME,
    )
    folder = args.work_dir.resolve() / "warmup"
    say(f"warm-up pass at {shape.orders:,} orders (not reported)")
    result = SizeBench(spark, probe, shape, folder, settings, check=False).run(warm_up=True)
    shutil.rmtree(folder, ignore_errors=True)
    return result.seconds


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark; return 0 when every size ran (targets met or not)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    os.environ["TZ"] = "UTC"
    time.tzset()
    logging.basicConfig(level=logging.WARNING, format="bench: %(levelname)s %(message)s")
    settings = bench_settings(args.driver_memory)
    started = time.perf_counter()
    spark = get_spark(settings)
    probe = Probe(spark)
    machine = describe_machine(spark, probe)
    heap_gib = machine.heap_max_bytes / 2**30
    say(f"Spark {machine.spark}, Delta {machine.delta}, heap max {heap_gib:.1f} GiB")
    results: list[SizeResult] = []
    benches: list[SizeBench] = []

    def report() -> None:
        run = Run(
            machine=machine,
            command=command_line(argv),
            settings=settings,
            default_sizes=DEFAULT_SIZES,
            warmup_orders=args.warmup_orders,
            warmup_seconds=warmup_seconds,
            elapsed_seconds=time.perf_counter() - started,
            load_at_end=os.getloadavg(),
        )
        write_report(args.results, run, results, probe)
        dump_json(args.work_dir / "results.json", results)
        say(f"wrote {args.results}")

    warmup_seconds = 0.0
    try:
        warmup_seconds = warm_up(spark, probe, args, settings)
        for orders in sorted(args.size_list):
            shape = datagen.Shape(
                orders=orders,
                days=args.days,
                batch_events=args.batch_events,
                processing_time=PROCESSING_TIME,
            )
            folder = args.work_dir.resolve() / f"orders_{orders}"
            bench = SizeBench(
                spark, probe, shape, folder, settings, not args.no_check, args.repeats
            )
            benches.append(bench)
            results.append(bench.run())
            report()
        for index in range(args.repeats):
            for bench in benches:
                bench.repeat_incremental(index)
        if args.repeats:
            report()
    finally:
        spark.stop()
    return 0


def dump_json(path: Path, results: Sequence[SizeResult]) -> None:
    """Write the raw numbers (git-ignored, for a closer look)."""
    document = [
        {
            "orders": r.shape.orders,
            "seconds": r.seconds,
            "facts": r.facts,
            "checks": r.checks,
            "phases": {
                name: {
                    "usage": vars(p.usage),
                    "metrics": dict(p.metrics),
                    "commits": [c.as_dict() for c in p.commits],
                }
                for name, p in r.phases.items()
            },
            "steps": {name: vars(u) for name, u in r.steps.items()},
            "repeats": [vars(u) for u in r.repeats],
        }
        for r in results
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2, default=str))


if __name__ == "__main__":
    sys.exit(main())
