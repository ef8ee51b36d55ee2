"""Landing and the first build, as users run them: `land` of a backlog of N events (in files of
500k lines, and as one file) beside a plain `spark.read.json` + Delta append of the same files
(the floor), then the first `incremental` of the largest backlog beside a full refresh. Every
run is a fresh process with the default `conf/local.toml`; its tree's memory is sampled.

    .venv/bin/python bench/landing.py [--sizes 2000000,10000000] [--repeats 1]
        [--file-lines 500000] [--work-dir DIR] [--results bench/results.md] [--keep]

The backlog: `datagen.batch_events` batches of `--file-lines` lines, one a day, ending at the
processing time (new orders, late ones, stale and newer versions; one line in 1,000 has an
invalid currency), written by one untimed Spark process; the one-file layout is their
concatenation. For each repeat, size and layout, in this order: `orders-etl migrate` (untimed)
and `orders-etl land` on an empty warehouse, then the floor (`bench/landing_child.py floor`).
Then, on the warehouse `land` built from the files of the largest size, `orders-etl
incremental` (a first build: `fct_orders` is empty) and the full refresh
(`bench/landing_child.py full-refresh`), `--repeats` times, and one untimed comparison of the
two tables. The section goes into `--results` between its marks; inputs, warehouses and tables
are deleted at the end unless `--keep`.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import statistics
import sys
import tempfile
import time
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
sys.path.insert(0, str(ROOT))

from deltalake import DeltaTable  # noqa: E402
from figures import GIB, ratio, size_label  # noqa: E402
from pipeline import FCT_ORDERS, ORDERS_LANDING, ORDERS_QUARANTINE  # noqa: E402
from process_memory import ProcessRun, run_sampled  # noqa: E402
from sections import splice_section  # noqa: E402

DEFAULT_SIZES = (2_000_000, 10_000_000)
FILE_LINES = 500_000
PROCESSING_TIME = datetime(2026, 6, 30, 12, 0, tzinfo=UTC)
FILES, ONE = "files", "one"
START_MARK = "<!-- landing: written by bench/landing.py -->"
END_MARK = "<!-- /landing -->"
CHILD = BENCH_DIR / "landing_child.py"
STARTED = time.monotonic()


@dataclass(frozen=True)
class Options:
    """The flags, parsed and checked."""

    sizes: tuple[int, ...]
    repeats: int
    file_lines: int
    work_dir: Path
    results: Path
    keep: bool
    argv: tuple[str, ...]


@dataclass(frozen=True)
class Layout:
    """One layout of a backlog: what `land` gets as `--source`, and its files."""

    name: str
    source: Path
    files: tuple[Path, ...]


@dataclass(frozen=True)
class Backlog:
    """One size's input: its line count (none blank) and its two layouts."""

    lines: int
    layouts: tuple[Layout, ...]


@dataclass(frozen=True)
class LandRun:
    """One `land` process and what the tables hold after it."""

    process: ProcessRun
    landed: int
    quarantined: int
    lines: int

    @property
    def accounted(self) -> bool:
        """Whether it exited 0 and landed + quarantined == lines written."""
        return self.process.ok and self.landed + self.quarantined == self.lines


@dataclass(frozen=True)
class FloorRun:
    """One floor process and the rows its table holds after it."""

    process: ProcessRun
    rows: int


@dataclass
class Measured:
    """Everything the run measured, filled in as it goes."""

    lands: dict[tuple[int, str], list[LandRun]] = field(default_factory=dict)
    floors: dict[tuple[int, str], list[FloorRun]] = field(default_factory=dict)
    incrementals: list[ProcessRun] = field(default_factory=list)
    refreshes: list[ProcessRun] = field(default_factory=list)
    comparison: ProcessRun | None = None
    merge_metrics: dict[str, str] = field(default_factory=dict)
    write_metrics: dict[str, str] = field(default_factory=dict)
    loads: list[float] = field(default_factory=list)
    started: float = field(default_factory=time.monotonic)
    generate_seconds: float = 0.0


def parse_args(argv: Sequence[str]) -> Options:
    """Parse the flags."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument(
        "--sizes",
        default=",".join(str(s) for s in DEFAULT_SIZES),
        help="events (lines) per backlog, comma-separated (default 2000000,10000000)",
    )
    parser.add_argument("--repeats", type=int, default=1, help="interleaved rounds (medians)")
    parser.add_argument(
        "--file-lines", type=int, default=FILE_LINES, help="lines per file (default 500000)"
    )
    parser.add_argument("--work-dir", type=Path, default=None, help="default: a temp folder")
    parser.add_argument("--results", type=Path, default=BENCH_DIR / "results.md")
    parser.add_argument("--keep", action="store_true", help="keep inputs and tables")
    args = parser.parse_args(list(argv))
    try:
        sizes = sorted({int(s.replace("_", "")) for s in args.sizes.split(",") if s.strip()})
    except ValueError:
        parser.error(f"--sizes must be whole numbers separated by commas, got {args.sizes!r}")
    if not sizes or sizes[0] <= 0 or args.repeats < 1 or args.file_lines < 1:
        parser.error("--sizes, --repeats and --file-lines must be positive")
    work = args.work_dir or Path(tempfile.mkdtemp(prefix="orders_etl-landing-"))
    return Options(
        tuple(sizes),
        args.repeats,
        args.file_lines,
        work.resolve(),
        args.results,
        args.keep,
        tuple(argv),
    )


# Dropped from the processes' environment: they would pick another config, or attach to a
# JVM that this process does not have.
DROPPED_ENV = (
    "ORDERS_ETL_ENV",
    "ORDERS_ETL_CONF_DIR",
    "PYSPARK_GATEWAY_PORT",
    "PYSPARK_GATEWAY_SECRET",
)


def child_env() -> dict[str, str]:
    """The environment of every process: this tree's code first, the default config."""
    env = {k: v for k, v in os.environ.items() if k not in DROPPED_ENV}
    return {**env, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"}


def run(argv: Sequence[str | Path]) -> ProcessRun:
    """Run one fresh process from the project folder (so `conf/local.toml` is its config)."""
    return run_sampled([str(a) for a in argv], child_env(), ROOT)


def orders_etl(command: str, warehouse: Path, at: datetime, *extra: str | Path) -> ProcessRun:
    """Run `orders-etl <command> --warehouse W --processing-time T ...` as a user does."""
    script = Path(sys.executable).with_name("orders-etl")
    return run(
        [script, command, "--warehouse", warehouse, "--processing-time", at.isoformat(), *extra]
    )


def must(process: ProcessRun, what: str) -> ProcessRun:
    """Stop the bench when an untimed helper process failed."""
    if not process.ok:
        raise SystemExit(f"{what} failed: {process.failure()}\n{process.stderr[-3000:]}")
    return process


def table_rows(path: Path) -> int:
    """Rows of a Delta table from its files' statistics (0 when there is no table)."""
    return int(DeltaTable(str(path)).count()) if (path / "_delta_log").is_dir() else 0


def commit_metrics(table: Path, operation: str) -> dict[str, str]:
    """The operation metrics of the table's newest commit of `operation`, from its log."""
    for log in sorted((table / "_delta_log").glob("*.json"), reverse=True):
        for line in log.read_text(encoding="utf-8").splitlines():
            info = json.loads(line).get("commitInfo")
            if info and info.get("operation") == operation:
                return {k: str(v) for k, v in info.get("operationMetrics", {}).items()}
    return {}


def concatenate(files: Sequence[Path], target: Path) -> int:
    """Write `files` one after the other into `target`; return its line count."""
    target.parent.mkdir(parents=True, exist_ok=True)
    lines = 0
    with target.open("wb") as out:
        for path in files:
            with path.open("rb") as handle:
                while chunk := handle.read(1 << 24):
                    lines += chunk.count(b"\n")
                    out.write(chunk)
    return lines


def generate_backlogs(options: Options) -> list[Backlog]:
    """Write every size's files in one untimed Spark process, then its one-file copy."""
    inputs = options.work_dir / "inputs"
    shutil.rmtree(inputs, ignore_errors=True)
    targets = [f"{n}:{inputs / str(n) / FILES}" for n in options.sizes]
    at = PROCESSING_TIME.isoformat()
    argv: list[str | Path] = [sys.executable, CHILD, "generate"]
    argv += ["--file-lines", str(options.file_lines), "--processing-time", at, *targets]
    must(run(argv), "generating the backlogs")
    backlogs = []
    for size in options.sizes:
        folder = inputs / str(size)
        files = tuple(sorted((folder / FILES).glob("*.jsonl")))
        one = folder / ONE / "backlog.jsonl"
        lines = concatenate(files, one)
        if lines != size:
            raise SystemExit(f"the generated backlog of {size} has {lines} lines")
        layouts = (Layout(FILES, folder / FILES, files), Layout(ONE, one, (one,)))
        backlogs.append(Backlog(lines, layouts))
    return backlogs


def land_and_floor(
    options: Options, backlog: Backlog, layout: Layout, repeat: int, measured: Measured
) -> Path:
    """Run `land` on an empty warehouse, then the floor on the same files; return the
    warehouse."""
    name = f"{backlog.lines}-{layout.name}-{repeat}"
    warehouse = options.work_dir / "warehouses" / name
    shutil.rmtree(warehouse, ignore_errors=True)
    must(orders_etl("migrate", warehouse, PROCESSING_TIME), "orders-etl migrate")
    measured.loads.append(os.getloadavg()[0])
    process = orders_etl("land", warehouse, PROCESSING_TIME, "--source", layout.source)
    landed = table_rows(warehouse / ORDERS_LANDING)
    quarantined = table_rows(warehouse / ORDERS_QUARANTINE)
    key = (backlog.lines, layout.name)
    measured.lands.setdefault(key, []).append(LandRun(process, landed, quarantined, backlog.lines))
    say(f"land {name}: {process.seconds:.1f}s, exit {process.returncode}")
    table = options.work_dir / "floor" / name
    measured.loads.append(os.getloadavg()[0])
    floor = run([sys.executable, CHILD, "floor", "--table", table, *layout.files])
    measured.floors.setdefault(key, []).append(FloorRun(floor, table_rows(table)))
    say(f"floor {name}: {floor.seconds:.1f}s, exit {floor.returncode}")
    shutil.rmtree(table, ignore_errors=True)
    return warehouse


def land_rounds(options: Options, backlogs: Sequence[Backlog], measured: Measured) -> Path:
    """Run the interleaved rounds; return the warehouse of the largest size's files, kept
    (from the last round) for the first build."""
    kept: Path | None = None
    for repeat in range(options.repeats):
        for backlog in backlogs:
            for layout in backlog.layouts:
                warehouse = land_and_floor(options, backlog, layout, repeat, measured)
                if backlog is backlogs[-1] and layout.name == FILES:
                    if kept is not None:
                        shutil.rmtree(kept, ignore_errors=True)
                    kept = warehouse
                else:
                    shutil.rmtree(warehouse, ignore_errors=True)
    assert kept is not None
    return kept


def first_builds(options: Options, warehouse: Path, measured: Measured) -> None:
    """Run the first `incremental` and the full refresh, interleaved; compare the tables."""
    copy = options.work_dir / "full_refresh"
    at = PROCESSING_TIME + timedelta(hours=1)
    for repeat in range(options.repeats):
        if repeat:
            shutil.rmtree(warehouse / FCT_ORDERS, ignore_errors=True)
        measured.loads.append(os.getloadavg()[0])
        measured.incrementals.append(orders_etl("incremental", warehouse, at))
        say(f"incremental: {measured.incrementals[-1].seconds:.1f}s")
        measured.loads.append(os.getloadavg()[0])
        landing = warehouse / ORDERS_LANDING
        measured.refreshes.append(
            run([sys.executable, CHILD, "full-refresh", "--landing", landing, "--target", copy])
        )
        say(f"full refresh: {measured.refreshes[-1].seconds:.1f}s")
    if measured.incrementals[-1].ok and measured.refreshes[-1].ok:
        measured.comparison = run([sys.executable, CHILD, "compare", warehouse / FCT_ORDERS, copy])
    measured.merge_metrics = commit_metrics(warehouse / FCT_ORDERS, "MERGE")
    measured.write_metrics = commit_metrics(copy, "WRITE")


def say(message: str) -> None:
    """One progress line on stderr, with the seconds since the start."""
    print(f"landing [{time.monotonic() - STARTED:.0f}s]: {message}", file=sys.stderr, flush=True)


def local_spark_conf() -> dict[str, str]:
    """The `[spark]` settings of the default `conf/local.toml` every process runs with."""
    with (ROOT / "conf" / "local.toml").open("rb") as handle:
        spark = tomllib.load(handle).get("spark", {})
    return {"master": str(spark.get("master", "")), **spark.get("conf", {})}


def median_ok(runs: Sequence[ProcessRun]) -> float | None:
    """Median wall seconds of the runs that exited 0, None when none did."""
    ok = [r.seconds for r in runs if r.ok]
    return statistics.median(ok) if ok else None


def verdict(value: float | None, limit: float) -> str:
    """`met` or `missed` for a ratio that should stay within `limit`."""
    if value is None:
        return "**missed** (a run failed)"
    return "met" if value <= limit else "**missed**"


def times(value: float | None) -> str:
    """A ratio as a cell."""
    return "n/a" if value is None else f"{value:.2f}x"


def wall(runs: Sequence[ProcessRun]) -> str:
    """The median of the successful runs, with every run (and any failure) when there are
    several."""
    median = median_ok(runs)
    cell = "failed" if median is None else f"{median:.1f}"
    failed = [r.failure() for r in runs if not r.ok]
    if len(runs) > 1:
        cell += " (" + ", ".join(f"{r.seconds:.1f}" for r in runs) + ")"
    return cell + "".join(f"; {f}" for f in failed)


def gib(runs: Sequence[ProcessRun], jvm: bool = False) -> str:
    """The highest peak of the runs in GiB: the tree's (with its JVM and Python shares), or
    the JVM's high-water mark."""
    if jvm:
        return f"{max(r.jvm_hwm_bytes for r in runs) / GIB:.2f}"
    top = max(runs, key=lambda r: r.peak_rss_bytes)
    java, rest = top.peak_jvm_rss_bytes / GIB, (top.peak_rss_bytes - top.peak_jvm_rss_bytes) / GIB
    return f"{top.peak_rss_bytes / GIB:.2f} ({java:.2f} + {rest:.2f})"


def step_seconds(runs: Sequence[ProcessRun]) -> str:
    """Median seconds of the step measured inside the processes, and their session start."""
    step = [float(r.reported()["step_seconds"]) for r in runs if r.ok]
    start = [float(r.reported()["session_seconds"]) for r in runs if r.ok]
    if not step:
        return "n/a"
    return f"{statistics.median(step):.1f} (+ {statistics.median(start):.1f} session start)"


def layout_label(name: str, options: Options) -> str:
    """How a layout reads in a table."""
    return f"files of {size_label(options.file_lines)} lines" if name == FILES else "one file"


def intro(options: Options, measured: Measured, load: str) -> str:
    """The paragraph saying how the run was made and on what."""
    conf = local_spark_conf()
    timed = [
        *(r.process for v in measured.lands.values() for r in v),
        *(r.process for v in measured.floors.values() for r in v),
        *measured.incrementals,
        *measured.refreshes,
    ]
    beside = sum(1 for r in timed if r.other_jvms)
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / GIB
    loads = f"{min(measured.loads):.2f} to {max(measured.loads):.2f}" if measured.loads else "-"
    return (
        f"Command: `{command_line(options.argv)}`. Machine: {len(os.sched_getaffinity(0))} "
        f"CPUs, {memory:.0f} GiB. Every figure is a fresh process started from the project "
        f"folder with the default `conf/local.toml` (`{conf.get('master')}`, "
        f"`spark.driver.memory` {conf.get('spark.driver.memory')}, "
        f"{conf.get('spark.sql.shuffle.partitions')} shuffle partitions): `orders-etl` as a "
        "user runs it, the floor and the full refresh in `bench/landing_child.py` on a session "
        "the project's `get_spark` builds from the same file (same jars and settings). "
        f"The run took {(time.monotonic() - measured.started) / 60:.0f} min (writing the "
        f"inputs {measured.generate_seconds / 60:.1f} min of it). "
        f"Load average (1 min) at the start and end: {load}; before each timed process: "
        f"{loads}. Other JVMs on the machine: seen beside {beside} of the {len(timed)} timed "
        "processes. Peak memory: the highest sum of resident memory of the process tree "
        "(Python driver, its JVM and the Python workers the JVM forks), sampled every 0.5 s, "
        "split into the JVM's and the Python processes' share of that sample (the JVM's "
        "short-lived clones that exec `chmod` are left out, they share its pages; forked "
        "Python workers share some with their daemon, which RSS counts in each: an upper "
        "bound); and the JVM's own high-water mark (VmHWM)."
    )


def what_ran(options: Options, backlogs: Sequence[Backlog]) -> list[str]:
    """The bullet list of what ran, in order."""
    largest = backlogs[-1]
    one_file = largest.layouts[1].files[0]
    size = one_file.stat().st_size / GIB if one_file.exists() else 0.0
    rounds = f"{options.repeats} round{'s' if options.repeats > 1 else ''}"
    return [
        "What ran, in order:",
        f"- Inputs (untimed, one Spark process): for each size, `datagen.batch_events` "
        f"batches of {options.file_lines:,} lines, one a day ending at "
        f"{PROCESSING_TIME:%Y-%m-%d %H:%M} UTC (new orders, late ones, stale and newer "
        "versions; one line in 1,000 has a lowercase currency, which `land` quarantines), "
        "as `.jsonl` files; the one file is their concatenation "
        f"({size:.2f} GiB at {size_label(largest.lines)} lines).",
        f"- {rounds}, each size and layout in turn: `orders-etl migrate` (untimed) on an "
        "empty warehouse, `orders-etl land --warehouse W --source S --processing-time T`, then "
        "the floor: `spark.read.json(files)` (schema inferred: one more pass over the files) "
        '+ `.write.format("delta").mode("append").save(...)`. Landed and quarantined rows are '
        "counted back from the tables' file statistics (delta-rs).",
        f"- On the warehouse `land` built from the files of {size_label(largest.lines)} lines: "
        "`orders-etl incremental` (a first build: `fct_orders` empty, the window all of "
        "landing) and the full refresh (`full_refresh` of `bench/baselines.py`: every order "
        f"recomputed from landing, written one file per date), {rounds}"
        + (" (`fct_orders` deleted before each later one)" if options.repeats > 1 else "")
        + "; then one untimed comparison of the two tables (rows and sum of row hashes).",
    ]


def command_line(argv: Sequence[str]) -> str:
    """The command as typed from the project folder."""
    executable = Path(sys.executable)
    shown = ".venv/bin/python" if executable.parent.parent.name == ".venv" else executable.name
    return shlex.join([shown, "bench/landing.py", *argv])


def accounting(runs: Sequence[LandRun]) -> str:
    """Whether every run's rows landed + quarantined equal the lines written."""
    last = runs[-1]
    counts = f"{last.landed:,} + {last.quarantined:,} of {last.lines:,}"
    return ("yes: " if all(r.accounted for r in runs) else "**no**: ") + counts


def land_table(options: Options, measured: Measured) -> list[str]:
    """`land` beside the floor, per size and layout."""
    lines = [
        "| events | layout | `land` s | floor s | land / floor (goal <= 2x) | floor's read + "
        "append inside its process, s | peak RSS (JVM + Python) land / floor, GiB | JVM "
        "VmHWM land / floor, GiB | landed + quarantined = lines |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for (size, layout), lands in measured.lands.items():
        land = [r.process for r in lands]
        floor = [r.process for r in measured.floors[(size, layout)]]
        floor_rows = {r.rows for r in measured.floors[(size, layout)]}
        share = ratio(median_ok(land), median_ok(floor))
        rows_note = "" if floor_rows == {size} else f" (floor rows {sorted(floor_rows)})"
        lines.append(
            f"| {size_label(size)} | {layout_label(layout, options)} | {wall(land)} | "
            f"{wall(floor)} | {times(share)}: {verdict(share, 2.0)} | {step_seconds(floor)} | "
            f"{gib(land)} / {gib(floor)} | {gib(land, True)} / {gib(floor, True)} | "
            f"{accounting(lands)}{rows_note} |"
        )
    return lines


def linearity(options: Options, measured: Measured) -> list[tuple[str, float | None, float]]:
    """Per layout: (label, land at the largest size / at the smallest, its goal)."""
    small, large = options.sizes[0], options.sizes[-1]
    goal = 1.1 * large / small
    return [
        (
            layout_label(layout, options),
            ratio(
                median_ok([r.process for r in measured.lands[(large, layout)]]),
                median_ok([r.process for r in measured.lands[(small, layout)]]),
            ),
            goal,
        )
        for layout in (FILES, ONE)
    ]


def linearity_table(options: Options, measured: Measured) -> list[str]:
    """`land` at the largest size against the smallest, per layout."""
    if len(options.sizes) < 2:
        return []
    small, large = (size_label(options.sizes[0]), size_label(options.sizes[-1]))
    lines = [
        f"| layout | `land` {large} / {small} | goal (1.1 x the lines' ratio) |",
        "|---|---|---|",
    ]
    for label, value, goal in linearity(options, measured):
        lines.append(f"| {label} | {times(value)}: {verdict(value, goal)} | <= {goal:.1f}x |")
    return lines


def commit_cell(metrics: dict[str, str], operation: str) -> str:
    """The commit's files and rows, from its operation metrics."""
    if not metrics:
        return "-"
    if operation == "MERGE":
        return (
            f"MERGE: {int(metrics.get('numTargetFilesAdded', 0)):,} files added, "
            f"{int(metrics.get('numTargetRowsInserted', 0)):,} rows inserted, "
            f"{int(metrics.get('numTargetRowsUpdated', 0)):,} updated, from "
            f"{int(metrics.get('numSourceRows', 0)):,} source rows"
        )
    return (
        f"WRITE: {int(metrics.get('numFiles', 0)):,} files, "
        f"{int(metrics.get('numOutputRows', 0)):,} rows"
    )


def same_tables(comparison: ProcessRun | None) -> str:
    """Whether the first build equals the full refresh."""
    if comparison is None:
        return "not compared (a build failed)"
    if not comparison.ok:
        return f"not compared ({comparison.failure()})"
    found = comparison.reported()
    rows = f"{found['left_rows']:,} and {found['right_rows']:,} rows"
    return ("yes: " if found["equal"] else "**no**: ") + rows + ", sums of row hashes compared"


def build_lines(measured: Measured) -> list[str]:
    """The first build beside the full refresh."""
    if not measured.incrementals:
        return ["No first build: `land` of the largest size's files failed."]
    inc, full = measured.incrementals, measured.refreshes
    share = ratio(median_ok(inc), median_ok(full))
    return [
        "| what | process s | inside the process, s | peak RSS (JVM + Python), GiB | JVM "
        "VmHWM, GiB | commit |",
        "|---|---|---|---|---|---|",
        f"| `orders-etl incremental`, first build | {wall(inc)} | - | {gib(inc)} | "
        f"{gib(inc, True)} | {commit_cell(measured.merge_metrics, 'MERGE')} |",
        f"| full refresh | {wall(full)} | {step_seconds(full)} | {gib(full)} | "
        f"{gib(full, True)} | {commit_cell(measured.write_metrics, 'WRITE')} |",
        "",
        f"First build / full refresh (process wall times): {times(share)}, goal <= 1.5x: "
        f"{verdict(share, 1.5)}. The same `fct_orders`: {same_tables(measured.comparison)}.",
    ]


def goals(options: Options, measured: Measured) -> list[str]:
    """The issue's goals, each met or missed."""
    shares = [
        (
            key,
            ratio(
                median_ok([r.process for r in lands]),
                median_ok([r.process for r in measured.floors[key]]),
            ),
        )
        for key, lands in measured.lands.items()
    ]
    worst = [v for _, v in shares]
    within = None if None in worst else max(v for v in worst if v is not None)
    listed = ", ".join(f"{size_label(k[0])} {k[1]} {times(v)}" for k, v in shares)
    lines = [
        f"- `land` within 2x of the floor at every size and layout: {verdict(within, 2.0)}"
        f" ({listed})."
    ]
    if len(options.sizes) < 2:
        lines.append("- `land` linear in the lines: not measured (one size).")
    for label, value, goal in linearity(options, measured) if len(options.sizes) > 1 else []:
        lines.append(
            f"- `land` linear in the lines, {label}: {times(value)} <= {goal:.1f}x: "
            f"{verdict(value, goal)}."
        )
    build = ratio(median_ok(measured.incrementals), median_ok(measured.refreshes))
    lines.append(
        f"- First build within 1.5x of the full refresh: {times(build)}: {verdict(build, 1.5)}."
    )
    return [*lines, largest_batch(options, measured)]


def largest_batch(options: Options, measured: Measured) -> str:
    """The largest batch `land` took and the memory it used."""
    heap = local_spark_conf().get("spark.driver.memory")
    parts = []
    for layout in (FILES, ONE):
        runs = [r.process for r in measured.lands[(options.sizes[-1], layout)]]
        state = "landed" if all(r.ok for r in runs) else "**failed**"
        parts.append(
            f"{layout_label(layout, options)} {state}, peak RSS {gib(runs)} GiB, JVM "
            f"VmHWM {gib(runs, True)} GiB"
        )
    return (
        f"- Largest batch measured: {options.sizes[-1]:,} lines, with a {heap} driver heap: "
        + "; ".join(parts)
        + "."
    )


def render(options: Options, measured: Measured, backlogs: Sequence[Backlog], load: str) -> str:
    """The Markdown section."""
    sections = [
        ["## Landing and first build (fresh processes, default conf/local.toml)", ""],
        [intro(options, measured, load), ""],
        [*what_ran(options, backlogs), ""],
        ["Goals:", *goals(options, measured), ""],
        ["`land` beside the floor:", "", *land_table(options, measured), ""],
        [*linearity_table(options, measured), ""] if len(options.sizes) > 1 else [],
        ["The first `incremental` beside the full refresh:", "", *build_lines(measured)],
    ]
    return "\n".join(line for section in sections for line in section) + "\n"


def clean_up(options: Options) -> None:
    """Delete what the run wrote in the work folder (and the folder, once empty)."""
    for name in ("inputs", "warehouses", "floor", "full_refresh"):
        shutil.rmtree(options.work_dir / name, ignore_errors=True)
    if options.work_dir.is_dir() and not any(options.work_dir.iterdir()):
        options.work_dir.rmdir()


def main(argv: Sequence[str] | None = None) -> int:
    """Generate the backlogs, run the rounds and the first builds, write the section."""
    options = parse_args(sys.argv[1:] if argv is None else argv)
    load_start = os.getloadavg()[0]
    measured = Measured()
    try:
        backlogs = generate_backlogs(options)
        measured.generate_seconds = time.monotonic() - measured.started
        say(f"backlogs written under {options.work_dir}")
        warehouse = land_rounds(options, backlogs, measured)
        if measured.lands[(options.sizes[-1], FILES)][-1].process.ok:
            first_builds(options, warehouse, measured)
        load = f"{load_start:.2f} and {os.getloadavg()[0]:.2f}"
        section = render(options, measured, backlogs, load)
        splice_section(options.results, section, START_MARK, END_MARK)
        print(section)
    finally:
        if not options.keep:
            clean_up(options)
    return 0


if __name__ == "__main__":
    sys.exit(main())
