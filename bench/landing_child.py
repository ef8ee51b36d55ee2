"""The fresh processes `bench/landing.py` runs beside `orders-etl`, each on a session built
from the default `conf/local.toml` by the project's own factory (so the same jars and
settings as `orders-etl`: local[2], 2g driver, 4 shuffle partitions):

    python bench/landing_child.py generate --file-lines L --processing-time T N:DIR [N:DIR ...]
    python bench/landing_child.py floor --table DIR FILE [FILE ...]
    python bench/landing_child.py full-refresh --landing DIR --target DIR
    python bench/landing_child.py compare LEFT RIGHT

Each prints one JSON object on stdout: what it measured inside the process (`session_seconds`
to start Spark, then the step's own seconds).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR.parent))

import datagen  # noqa: E402
from baselines import full_refresh, read_version  # noqa: E402
from checks import fingerprint  # noqa: E402
from pipeline import get_spark, load_config  # noqa: E402
from pyspark.sql import DataFrame, SparkSession  # noqa: E402
from pyspark.sql import functions as F  # noqa: E402

# New orders of the backlog are numbered from here; the orders below it are a history the
# batches' stale and newer versions are drawn from (they are not landed).
BASE_ORDERS = 1_000_000
HISTORY_DAYS = 30
# One event in this many gets a lowercase currency, which `land` quarantines.
INVALID_EVERY = 1_000


def backlog_shapes(lines: int, file_lines: int, processing_time: datetime) -> list[datagen.Shape]:
    """One shape per file: `file_lines` lines each (the last one the rest), a day apart,
    ending at `processing_time`; each file's new orders numbered after the previous file's."""
    count = -(-lines // file_lines)
    return [
        datagen.Shape(
            orders=BASE_ORDERS + index * file_lines,
            days=HISTORY_DAYS,
            batch_events=min(file_lines, lines - index * file_lines),
            processing_time=processing_time - timedelta(days=count - 1 - index),
        )
        for index in range(count)
    ]


def with_some_invalid_currencies(events_df: DataFrame) -> DataFrame:
    """Lowercase the currency of one event in `INVALID_EVERY`: one row per event line."""
    invalid = F.pmod(F.xxhash64("order_id", "status"), F.lit(INVALID_EVERY)) == 0
    return events_df.withColumn(
        "currency", F.when(invalid, F.lower("currency")).otherwise(F.col("currency"))
    ).select(*events_df.columns)


def generate(spark: SparkSession, args: argparse.Namespace) -> dict[str, Any]:
    """Write each `N:DIR` backlog as files of `--file-lines` lines into DIR."""
    at = datetime.fromisoformat(args.processing_time)
    written: dict[str, list[str]] = {}
    for target in args.backlogs:
        lines, folder = target.split(":", 1)
        Path(folder).mkdir(parents=True, exist_ok=True)
        written[folder] = [
            str(
                datagen.write_batch(
                    with_some_invalid_currencies(datagen.batch_events(spark, shape)),
                    Path(folder),
                    shape,
                )
            )
            for shape in backlog_shapes(int(lines), args.file_lines, at)
        ]
    return {"files": written}


def floor(spark: SparkSession, args: argparse.Namespace) -> dict[str, Any]:
    """The floor: a plain `spark.read.json` of the files appended to a Delta table."""
    started = time.perf_counter()
    spark.read.json(args.files).write.format("delta").mode("append").save(args.table)
    return {"step_seconds": time.perf_counter() - started}


def refresh(spark: SparkSession, args: argparse.Namespace) -> dict[str, Any]:
    """The full refresh: recompute `fct_orders` from all of landing, overwrite the target."""
    started = time.perf_counter()
    full_refresh(spark, args.landing, args.target)
    return {"step_seconds": time.perf_counter() - started}


def compare(spark: SparkSession, args: argparse.Namespace) -> dict[str, Any]:
    """Rows and sum of row hashes of two `fct_orders` tables."""
    left = fingerprint(read_version(spark, args.left))
    right = fingerprint(read_version(spark, args.right))
    return {"left_rows": left[0], "right_rows": right[0], "equal": left == right}


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    """Parse the step and its arguments."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    steps = parser.add_subparsers(dest="step", required=True)
    gen = steps.add_parser("generate")
    gen.add_argument("--file-lines", type=int, required=True)
    gen.add_argument("--processing-time", required=True)
    gen.add_argument("backlogs", nargs="+", metavar="N:DIR")
    floor_step = steps.add_parser("floor")
    floor_step.add_argument("--table", required=True)
    floor_step.add_argument("files", nargs="+")
    full = steps.add_parser("full-refresh")
    full.add_argument("--landing", required=True)
    full.add_argument("--target", required=True)
    same = steps.add_parser("compare")
    same.add_argument("left")
    same.add_argument("right")
    return parser.parse_args(list(argv))


STEPS = {"generate": generate, "floor": floor, "full-refresh": refresh, "compare": compare}


def main(argv: Sequence[str] | None = None) -> int:
    """Start the session the way `orders-etl` does, run the step, print what it measured."""
    args = parse_args(sys.argv[1:] if argv is None else argv)
    started = time.perf_counter()
    spark = get_spark(load_config("local").spark)
    session_seconds = time.perf_counter() - started
    try:
        found = STEPS[args.step](spark, args)
    finally:
        spark.stop()
    print(json.dumps({"session_seconds": session_seconds, **found}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
