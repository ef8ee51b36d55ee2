"""Benchmark the incremental against a full refresh and two older designs, in one session.

`make bench` runs `.venv/bin/python bench/run.py`: for each size (default 2M and 10M orders
over 180 days) it generates a history with Spark straight into Delta tables under
`bench/work/`, lands one hourly batch of 50k events, and times, with Delta's commit metrics,
`land`, `incremental`, `rollup` and a 14-day `backfill` (the project's own command functions,
through its run ledger) and the baselines (on scratch copies of `fct_orders`). It writes
`bench/results.md` after every size, and the raw numbers to `bench/work/results.json`.

Develop with tiny sizes: `.venv/bin/python bench/run.py --sizes 20000,100000`.

Where things are: this file reads the flags and runs the sizes; `phases.py` runs and measures
the phases of one size (in the scratch folder of `scratch.py`), `datagen.py` generates the data,
`baselines.py` and `breakdown.py` are what the incremental is compared with and timed by,
`measure.py` and `machine.py` measure, `checks.py` compares the tables, `results.py` holds the
numbers and `report.py` renders them. `pipeline.py` is the only module importing orders_etl.
"""

from __future__ import annotations

import argparse
import logging
import os
import shlex
import shutil
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import MappingProxyType

import datagen
from machine import Machine, describe_machine
from measure import Probe
from phases import SizeRun, repeat_incremental, run_size, say, warm_up_size
from pipeline import SparkSettings, get_spark, load_config
from pyspark.sql import SparkSession
from report import Run, write_report
from results import SizeResult, write_results_json

BENCH_DIR = Path(__file__).resolve().parent
DEFAULT_SIZES = (2_000_000, 10_000_000)
DEFAULT_DAYS = 180
DEFAULT_BATCH_EVENTS = 50_000
DEFAULT_WARMUP_ORDERS = 2_000
DEFAULT_REPEATS = 3
PROCESSING_TIME = datetime(2026, 6, 30, 12, 0, tzinfo=UTC)


@dataclass(frozen=True)
class Options:
    """The bench's flags, parsed and checked."""

    sizes: tuple[int, ...]
    days: int
    batch_events: int
    warmup_orders: int
    repeats: int
    driver_memory: str
    work_dir: Path
    results: Path
    check: bool


def parse_args(argv: Sequence[str]) -> Options:
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
        sizes = [int(s.replace("_", "")) for s in args.sizes.split(",") if s.strip()]
    except ValueError:
        parser.error(f"--sizes must be whole numbers separated by commas, got {args.sizes!r}")
    if not sizes or min(sizes) <= 0:
        parser.error("--sizes needs at least one positive size")
    return Options(
        sizes=tuple(sizes),
        days=args.days,
        batch_events=args.batch_events,
        warmup_orders=args.warmup_orders,
        repeats=args.repeats,
        driver_memory=args.driver_memory,
        work_dir=args.work_dir,
        results=args.results,
        check=not args.no_check,
    )


def command_line(argv: Sequence[str]) -> str:
    """Return the command as typed, relative to the project folder."""
    root = BENCH_DIR.parent
    executable = Path(sys.executable)
    with_root = executable.is_relative_to(root)
    shown = str(executable.relative_to(root)) if with_root else str(executable)
    return shlex.join([shown, "bench/run.py", *argv])


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


@dataclass(frozen=True)
class Bench:
    """What every size of one run shares: the flags, the session, its settings and probe."""

    options: Options
    spark: SparkSession
    settings: SparkSettings
    probe: Probe

    def size(self, orders: int, batch_events: int, folder: str) -> SizeRun:
        """Begin a size of `orders` orders in the work folder's `folder`."""
        shape = datagen.Shape(
            orders=orders,
            days=self.options.days,
            batch_events=batch_events,
            processing_time=PROCESSING_TIME,
        )
        folder_path = self.options.work_dir.resolve() / folder
        return SizeRun.start(self.spark, self.probe, shape, folder_path, self.settings)


@dataclass(frozen=True)
class Reporter:
    """Writes `results.md` and `results.json` with what the run has measured so far."""

    bench: Bench
    machine: Machine
    command: str
    started: float
    warmup_seconds: float

    def write(self, results: Sequence[SizeResult]) -> None:
        """Render the report of the sizes measured so far, and dump their raw numbers."""
        options = self.bench.options
        run = Run(
            machine=self.machine,
            command=self.command,
            settings=self.bench.settings,
            default_sizes=DEFAULT_SIZES,
            warmup_orders=options.warmup_orders,
            warmup_seconds=self.warmup_seconds,
            elapsed_seconds=time.perf_counter() - self.started,
            load_at_end=os.getloadavg(),
        )
        write_report(options.results, run, results, self.bench.probe)
        write_results_json(options.work_dir / "results.json", results)
        say(f"wrote {options.results}")


def warm_up(bench: Bench) -> float:
    """Run land, incremental and rollup once on a tiny history; return the seconds it took."""
    orders = bench.options.warmup_orders
    if orders <= 0:
        return 0.0
    size = bench.size(orders, max(orders // 10, 100), "warmup")
    say(f"warm-up pass at {size.shape.orders:,} orders (not reported)")
    result = warm_up_size(size)
    shutil.rmtree(size.scratch.folder, ignore_errors=True)
    return result.seconds


def run_sizes(bench: Bench, reporter: Reporter) -> None:
    """Run every size, smallest first, then the interleaved re-timings; report after each."""
    options = bench.options
    sizes: list[SizeRun] = []
    for orders in sorted(options.sizes):
        size = bench.size(orders, options.batch_events, f"orders_{orders}")
        sizes.append(size)
        run_size(size, options.check, options.repeats)
        reporter.write([s.result for s in sizes])
    for index in range(options.repeats):
        for size in sizes:
            repeat_incremental(size, index)
    if options.repeats:
        reporter.write([s.result for s in sizes])


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark; return 0 when every size ran (targets met or not)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    options = parse_args(argv)
    os.environ["TZ"] = "UTC"
    time.tzset()
    logging.basicConfig(level=logging.WARNING, format="bench: %(levelname)s %(message)s")
    settings = bench_settings(options.driver_memory)
    started = time.perf_counter()
    spark = get_spark(settings)
    bench = Bench(options, spark, settings, Probe(spark))
    machine = describe_machine(spark, bench.probe)
    heap_gib = machine.heap_max_bytes / 2**30
    say(f"Spark {machine.spark}, Delta {machine.delta}, heap max {heap_gib:.1f} GiB")
    try:
        warmup_seconds = warm_up(bench)
        run_sizes(bench, Reporter(bench, machine, command_line(argv), started, warmup_seconds))
    finally:
        spark.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
