"""The fixed cost of a command: each command as its own process (as a scheduler runs it),
side by side with a bare Delta-enabled session start, on a warehouse with a week of hourly
history; plus the Spark jobs and Delta commits each command makes.

    .venv/bin/python bench/fixed_cost.py [--rounds 5] [--results bench/fixed_cost.md]

The history: a week of generated hourly batches (late, retried, stale and bad events), landed
and merged by `hourly` once per simulated day (one process per run). Then `--rounds` rounds,
each running, as fresh processes and in this order: the bare start, `hourly` on the next
~150-line hourly batch, `revenue --as-of`, a no-op `incremental`, a skipped `land` (the batch
`hourly` just landed), `verify` of one day; and `revenue --as-of` once more right after the
first, started without the JVM class archive `make setup` writes (`ORDERS_ETL_CLASS_ARCHIVE=off`),
side by side with it. The figures are medians over the rounds and the
ratio of each median to the bare start's. A first, untimed round runs the same commands with
Spark's event log on, to count each command's Spark jobs, and counts its Delta commits from
the tables' logs.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
sys.path.insert(0, str(ROOT))

from sections import splice_section  # noqa: E402

from orders_etl.sample import generate_batches, write_batches  # noqa: E402
from orders_etl.session import ARCHIVE_VARIABLE  # noqa: E402

TABLES = (
    "orders_landing",
    "orders_quarantine",
    "fct_orders",
    "daily_revenue",
    "revenue_revisions",
    "pipeline_runs",
)
HISTORY_DAYS = 7
ORDERS_PER_HOUR = 60
SEED = 11
START = datetime(2026, 3, 1, tzinfo=UTC)
BARE_START = """
from delta import configure_spark_with_delta_pip
from pyspark.sql import SparkSession
builder = (
    SparkSession.builder.master("local[2]")
    .config("spark.ui.enabled", "false")
    .config("spark.sql.extensions", "io.delta.sql.DeltaSparkSessionExtension")
    .config("spark.sql.catalog.spark_catalog", "org.apache.spark.sql.delta.catalog.DeltaCatalog")
)
spark = configure_spark_with_delta_pip(builder).getOrCreate()
spark.range(1).count()
spark.stop()
"""
EVENT_LOG_TOML = """
[warehouse]
root = "./unused"

[spark.conf]
"spark.ui.enabled" = "false"
"spark.ui.showConsoleProgress" = "false"
"spark.sql.shuffle.partitions" = "4"
"spark.default.parallelism" = "4"
"spark.databricks.delta.snapshotPartitions" = "2"
"spark.driver.memory" = "2g"
"spark.sql.sources.parallelPartitionDiscovery.parallelism" = "4"
"spark.eventLog.enabled" = "true"
"spark.eventLog.compress" = "false"
"spark.eventLog.dir" = "{event_dir}"
"""


@dataclass(frozen=True)
class Step:
    """One command of a round: its label and its `orders-etl` arguments (None: bare start)."""

    label: str
    argv: tuple[str, ...] | None
    env: tuple[tuple[str, str], ...] = ()  # set for this step only; such a step is not counted


@dataclass(frozen=True)
class Counted:
    """What one command made: Spark jobs and Delta commits (per table)."""

    label: str
    jobs: int
    commits: dict[str, int]


def _orders_etl() -> str:
    return str(Path(sys.executable).with_name("orders-etl"))


def command_line(argv: Sequence[str], tree: Path | None) -> tuple[list[str], dict[str, str]]:
    """The process that runs `orders-etl <argv>`: the console script, or with `tree` (another
    checkout of the project) its `jobs/<command>.py` with that tree first on the path."""
    if tree is None:
        return [_orders_etl(), *argv], dict(os.environ)
    env = {**os.environ, "PYTHONPATH": str(tree)}
    return [sys.executable, str(tree / "jobs" / f"{argv[0]}.py"), *argv[1:]], env


def _run(argv: Sequence[str], env: dict[str, str] | None = None) -> float:
    """Run one process; return its wall seconds (and fail loudly when it fails)."""
    started = time.monotonic()
    done = subprocess.run(list(argv), capture_output=True, text=True, env=env, check=False)
    elapsed = time.monotonic() - started
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} exited {done.returncode}:\n{done.stderr[-3000:]}")
    return elapsed


def _log_versions(warehouse: Path) -> dict[str, int]:
    return {
        t: len(list((warehouse / t / "_delta_log").glob("*.json")))
        if (warehouse / t / "_delta_log").exists()
        else 0
        for t in TABLES
    }


def build_history(warehouse: Path, inputs: Path) -> list[tuple[datetime, Path]]:
    """Generate the batches, run a week of them through `hourly` (one run per simulated day,
    one process per run); return the later hourly batches, left for the rounds."""
    batches = generate_batches(
        SEED, START, HISTORY_DAYS + 1, orders_per_hour=ORDERS_PER_HOUR, batch_hours=1
    )
    history, rest = batches[: HISTORY_DAYS * 24], batches[HISTORY_DAYS * 24 :]
    for day in range(HISTORY_DAYS):
        group = history[day * 24 : (day + 1) * 24]
        folder = inputs / f"day-{day}"
        write_batches(group, folder)
        tick = group[-1].processing_time
        _run(
            [
                _orders_etl(),
                "hourly",
                "--warehouse",
                str(warehouse),
                "--source",
                str(folder),
                "--processing-time",
                tick.isoformat(),
            ]
        )
    return write_batches(rest, inputs / "rounds")


USED = "used-batches.txt"


def unused_batches(inputs: Path) -> list[tuple[datetime, Path]]:
    """The round batches of an earlier history that no round has landed yet (`USED`)."""
    used_file = inputs / USED
    used = set(used_file.read_text().split()) if used_file.exists() else set()
    return [
        (datetime.strptime(p.stem, "batch-%Y%m%dT%H%M").replace(tzinfo=UTC), p)
        for p in sorted((inputs / "rounds").glob("*.jsonl"))
        if p.name not in used
    ]


def _mark_used(batch: Path) -> None:
    with (batch.parent.parent / USED).open("a", encoding="utf-8") as handle:
        handle.write(batch.name + "\n")


def round_steps(warehouse: Path, batch: Path, at: datetime) -> list[Step]:
    """The commands of one round, in order."""
    common = ("--warehouse", str(warehouse), "--processing-time", at.isoformat())
    day = (at - timedelta(hours=1)).date().isoformat()
    revenue = Step(
        "`revenue --as-of T --format csv`",
        ("revenue", "--as-of", at.isoformat(), "--format", "csv", *common),
    )
    return [
        Step("bare Delta session start", None),
        Step("`hourly` on a ~150-line batch", ("hourly", "--source", str(batch), *common)),
        revenue,
        replace(
            revenue,
            label="the same `revenue`, without the JVM class archive",
            env=((ARCHIVE_VARIABLE, "off"),),
        ),
        Step("`incremental` with nothing new", ("incremental", *common)),
        Step("`land` of a batch already landed", ("land", "--source", str(batch), *common)),
        Step(
            "`verify` of one day",
            ("verify", "--start-date", day, "--end-date", day, *common),
        ),
    ]


def _jobs_in(event_dir: Path) -> int:
    """Count the SparkListenerJobStart events of the event log in `event_dir` (one file, or
    Spark's rolling `eventlog_v2_*` folder of files)."""
    jobs = 0
    for log in sorted(p for p in event_dir.rglob("*") if p.is_file()):
        with log.open(encoding="utf-8") as handle:
            for line in handle:
                if '"SparkListenerJobStart"' in line:
                    jobs += json.loads(line)["Event"] == "SparkListenerJobStart"
    return jobs


def count_round(
    warehouse: Path, batch: Path, at: datetime, scratch: Path, tree: Path | None = None
) -> list[Counted]:
    """Run one round's commands with the event log on; count jobs and commits of each."""
    counted: list[Counted] = []
    shutil.rmtree(scratch, ignore_errors=True)
    _mark_used(batch)
    for step in round_steps(warehouse, batch, at):
        if step.argv is None or step.env:
            continue
        event_dir = scratch / f"events-{len(counted)}"
        event_dir.mkdir(parents=True)
        conf_dir = scratch / f"conf-{len(counted)}"
        conf_dir.mkdir()
        (conf_dir / "count.toml").write_text(EVENT_LOG_TOML.format(event_dir=event_dir))
        argv, env = command_line([*step.argv, "--env", "count"], tree)
        env["ORDERS_ETL_CONF_DIR"] = str(conf_dir)
        before = _log_versions(warehouse)
        _run(argv, env)
        after = _log_versions(warehouse)
        commits = {t: after[t] - before[t] for t in TABLES if after[t] != before[t]}
        counted.append(Counted(step.label, _jobs_in(event_dir), commits))
    return counted


def time_rounds(
    warehouse: Path, batches: list[tuple[datetime, Path]], rounds: int, tree: Path | None = None
) -> dict[str, list[float]]:
    """Run the rounds; return each step's wall seconds, in round order."""
    seconds: dict[str, list[float]] = {}
    for at, batch in batches[:rounds]:
        _mark_used(batch)
        for step in round_steps(warehouse, batch, at):
            argv, env = (
                ([sys.executable, "-c", BARE_START], dict(os.environ))
                if step.argv is None
                else command_line(step.argv, tree)
            )
            seconds.setdefault(step.label, []).append(_run(argv, {**env, **dict(step.env)}))
    return seconds


def render(seconds: dict[str, list[float]], counted: list[Counted], rounds: int, load: str) -> str:
    """The Markdown section: medians, ratios to the bare start, jobs and commits."""
    labels = list(seconds) or [c.label for c in counted]
    bare = statistics.median(seconds[labels[0]]) if seconds else float("nan")
    by_label = {c.label: c for c in counted}
    lines = [
        "## Fixed cost per command (fresh processes)",
        "",
        f"Command: `{Path(sys.executable).name} bench/fixed_cost.py --rounds {rounds}`. "
        f"{rounds} interleaved rounds on a warehouse with {HISTORY_DAYS} days of hourly "
        f"history ({ORDERS_PER_HOUR} orders an hour, late, retried and bad events); each "
        "command a fresh `orders-etl` process with `conf/local.toml`. Load average at the "
        f"start and end: {load}. Jobs and commits come from one extra, untimed round with "
        "Spark's event log on; they do not vary with load.",
        "",
        "| what | median s | / bare start | runs (s) | Spark jobs | Delta commits |",
        "|---|---|---|---|---|---|",
    ]
    for label in labels:
        median = statistics.median(seconds[label]) if label in seconds else float("nan")
        runs = ", ".join(f"{s:.1f}" for s in seconds.get(label, []))
        count = by_label.get(label)
        jobs = str(count.jobs) if count else "-"
        commits = (
            f"{sum(count.commits.values())} ("
            + ", ".join(f"{t} {n}" for t, n in count.commits.items())
            + ")"
            if count and count.commits
            else ("0" if count else "-")
        )
        lines.append(
            f"| {label} | {median:.1f} | {median / bare:.2f}x | {runs} | {jobs} | {commits} |"
        )
    return "\n".join(lines) + "\n"


START_MARK = "<!-- fixed-cost: written by bench/fixed_cost.py -->"
END_MARK = "<!-- /fixed-cost -->"


def main(argv: Sequence[str] | None = None) -> int:
    """Build the history, count, time, write the section."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--rounds", type=int, default=5, help="timed rounds (default 5)")
    parser.add_argument(
        "--results",
        type=Path,
        default=BENCH_DIR / "results.md",
        help="the Markdown file whose fixed-cost section is replaced (added when absent)",
    )
    parser.add_argument("--work-dir", type=Path, default=None)
    parser.add_argument(
        "--tree",
        type=Path,
        default=None,
        help="run the commands of another checkout of the project (its jobs/<command>.py)",
    )
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="keep the history already in --work-dir (its unused round batches go on)",
    )
    args = parser.parse_args(argv)
    work = args.work_dir or Path(tempfile.mkdtemp(prefix="orders_etl-fixed-cost-"))
    warehouse, inputs = work / "warehouse", work / "inputs"
    load_start = os.getloadavg()[0]
    if args.reuse:
        batches = unused_batches(inputs)
    else:
        if work.exists():
            shutil.rmtree(work)
        batches = build_history(warehouse, inputs)
    counted = count_round(warehouse, batches[0][1], batches[0][0], work / "count", args.tree)
    seconds = time_rounds(warehouse, batches[1:], args.rounds, args.tree)
    load = f"{load_start:.2f} and {os.getloadavg()[0]:.2f}"
    section = render(seconds, counted, args.rounds, load)
    splice_section(args.results, section, START_MARK, END_MARK)
    print(section)
    if not args.work_dir:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
