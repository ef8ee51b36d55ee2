"""A soak: days of hourly runs in one warm session each, with `maintain` once a simulated day
and, side by side on the same stream, without it; to show how the per-run cost and the tables
grow with the number of runs, and what maintenance saves.

    .venv/bin/python bench/soak.py [--days 14] [--orders-per-hour 60]

The stream: `orders_etl.sample`'s generator (late events from minutes to 10 days, retried
sends, stale and newer versions, a few bad lines), one batch file per simulated hour. Both
passes run at the same time, as two processes (`--pass maintain`, `--pass plain`), each with
`conf/local.toml`'s settings: every `hourly` is timed; after each simulated day's last run the
`maintain` pass runs `maintain` over its default days, and both record each table's live files,
files with deletion vectors, live bytes, bytes on disk and Delta log bytes. Each pass ends with
a full `verify` and compares `fct_orders` with the plain-Python rule (`tests/reference.py`)
over the whole stream. The report (`bench/soak.md`, `bench/soak.png`) is written from both
passes' JSON records.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(BENCH_DIR))

from pipeline import (  # noqa: E402
    FCT_ORDERS,
    ORDERS_LANDING,
    TABLES,
    RunContext,
    generate_batches,
    get_spark,
    load_config,
    quiet,
    run_hourly,
    run_maintain,
    run_verify,
    snapshot_files,
    timed_command,
    write_batches,
)
from pyspark.sql import SparkSession  # noqa: E402
from pyspark.sql import functions as F  # noqa: E402

from tests.helpers import fct_rows, landing_dicts  # noqa: E402
from tests.reference import expected_fct, rows_to_versions  # noqa: E402

SEED = 23
START = datetime(2026, 1, 5, tzinfo=UTC)
PASSES = ("maintain", "plain")
TABLE_NAMES = tuple(t.name for t in TABLES)
FLAT_GOAL = 1.2  # the last day's median run <= 1.2x the first day's, with maintain


@dataclass(frozen=True)
class TableState:
    """One table at the end of a simulated day."""

    day: int
    table: str
    files: int
    files_with_dvs: int
    live_bytes: int
    disk_bytes: int
    log_bytes: int


@dataclass
class PassRecord:
    """What one pass measured."""

    name: str
    days: int
    orders_per_hour: int
    run_seconds: list[float] = field(default_factory=list)
    run_exit_codes: list[int] = field(default_factory=list)
    maintain_seconds: list[float] = field(default_factory=list)
    tables: list[TableState] = field(default_factory=list)
    verify_exit_code: int | None = None
    fct_rows: int = 0
    fct_equals_reference: bool | None = None
    wall_seconds: float = 0.0


def _folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) if folder.exists() else 0


def table_state(spark: SparkSession, warehouse: Path, table: str, day: int) -> TableState:
    """Read a table's live files from its Delta log, and its bytes on disk."""
    path = warehouse / table
    if not (path / "_delta_log").exists():
        return TableState(day, table, 0, 0, 0, 0, 0)
    row = (
        snapshot_files(spark, str(path))
        .agg(
            F.count(F.lit(1)).alias("files"),
            F.count("deletionVector").alias("dvs"),
            F.coalesce(F.sum("size"), F.lit(0)).alias("bytes"),
        )
        .first()
    )
    assert row is not None
    log_bytes = _folder_bytes(path / "_delta_log")
    return TableState(
        day,
        table,
        int(row["files"]),
        int(row["dvs"]),
        int(row["bytes"]),
        _folder_bytes(path) - log_bytes,
        log_bytes,
    )


def matches_reference(spark: SparkSession, warehouse: Path) -> tuple[int, bool]:
    """Compare `fct_orders` with the plain-Python rule over everything landed."""
    rows = fct_rows(spark, warehouse)
    return len(rows), rows == expected_fct(rows_to_versions(landing_dicts(spark, warehouse)))


def _maintain_day(record: PassRecord, ctx: RunContext) -> None:
    """Run `maintain` over its default days (the last `[maintain] days` ending on the
    processing date), as the daily job would."""
    end = ctx.processing_date
    start = end - timedelta(days=ctx.config.maintain.days - 1)
    record.maintain_seconds.append(
        timed_command(ctx, "maintain", partial(run_maintain, start=start, end=end))[0]
    )


def run_pass(name: str, work: Path, days: int, orders_per_hour: int) -> PassRecord:
    """Run one pass on its own warehouse under `work/<name>`; return what it measured."""
    started = time.monotonic()
    warehouse, inputs = work / name / "warehouse", work / name / "inputs"
    batches = write_batches(
        generate_batches(SEED, START, days, orders_per_hour=orders_per_hour), inputs
    )
    config = load_config("local", str(warehouse))
    spark = get_spark(config.spark)
    record = PassRecord(name, days, orders_per_hour)

    def context(at: datetime) -> RunContext:
        return RunContext(config, at, f"soak-{name}-{at:%Y%m%dT%H%M}", spark=spark, progress=quiet)

    lookback = config.incremental.lookback_days
    for number, (at, path) in enumerate(batches, start=1):
        step = partial(run_hourly, source=str(path), lookback_days=lookback)
        seconds, code = timed_command(context(at), "hourly", step)
        record.run_seconds.append(seconds)
        record.run_exit_codes.append(code)
        if number % 24 == 0:
            if name == "maintain":
                _maintain_day(record, context(at + timedelta(minutes=1)))
            record.tables.extend(
                table_state(spark, warehouse, t, number // 24) for t in TABLE_NAMES
            )
            print(f"soak {name}: day {number // 24}/{days} done", file=sys.stderr, flush=True)
    final = context(batches[-1][0] + timedelta(minutes=2))
    record.verify_exit_code = timed_command(final, "verify", run_verify)[1]
    record.fct_rows, record.fct_equals_reference = matches_reference(spark, warehouse)
    record.wall_seconds = time.monotonic() - started
    return record


def write_record(record: PassRecord, out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(asdict(record), indent=1), encoding="utf-8")


def read_record(path: Path) -> PassRecord:
    raw = json.loads(path.read_text(encoding="utf-8"))
    tables = [TableState(**t) for t in raw.pop("tables")]
    return PassRecord(**raw, tables=tables)


def run_both(work: Path, days: int, orders_per_hour: int, at_once: bool) -> None:
    """Run both passes as processes of this script (output in `<pass>.log`): at once, or one
    after the other so that each has the machine to itself."""
    work.mkdir(parents=True, exist_ok=True)
    logs = {name: (work / f"{name}.log").open("w", encoding="utf-8") for name in PASSES}

    def start(name: str) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [
                sys.executable,
                __file__,
                "--pass",
                name,
                "--work-dir",
                str(work),
                "--days",
                str(days),
                "--orders-per-hour",
                str(orders_per_hour),
            ],
            stdout=logs[name],
            stderr=subprocess.STDOUT,
        )

    print(f"soak: the passes' output goes to {work}/<pass>.log", flush=True)
    if at_once:
        codes = [p.wait() for p in [start(name) for name in PASSES]]
    else:
        codes = [start(name).wait() for name in PASSES]
    for handle in logs.values():
        handle.close()
    if any(codes):
        raise SystemExit(f"soak passes exited {codes}")


def daily_medians(record: PassRecord) -> list[float]:
    """The median `hourly` seconds of each simulated day."""
    runs = record.run_seconds
    return [statistics.median(runs[i : i + 24]) for i in range(0, len(runs), 24)]


def _state(record: PassRecord, day: int, table: str) -> TableState:
    return next(t for t in record.tables if t.day == day and t.table == table)


def _log_bytes(record: PassRecord, day: int) -> int:
    return sum(t.log_bytes for t in record.tables if t.day == day)


def day_table(kept: PassRecord, plain: PassRecord) -> list[str]:
    """One row per simulated day: run medians and `fct_orders`'s files, both passes."""
    lines = [
        "| day | median `hourly` s, maintain / plain | `fct_orders` files | files with DVs "
        "| live MB | `orders_landing` files | Delta logs KB | `maintain` s |",
        "|---|---|---|---|---|---|---|---|",
    ]
    medians = zip(daily_medians(kept), daily_medians(plain), strict=True)
    for day, (m, p) in enumerate(medians, start=1):
        fk, fp = _state(kept, day, FCT_ORDERS), _state(plain, day, FCT_ORDERS)
        lk, lp = _state(kept, day, ORDERS_LANDING), _state(plain, day, ORDERS_LANDING)
        lines.append(
            f"| {day} | {m:.1f} / {p:.1f} | {fk.files} / {fp.files} | "
            f"{fk.files_with_dvs} / {fp.files_with_dvs} | "
            f"{fk.live_bytes / 1e6:.2f} / {fp.live_bytes / 1e6:.2f} | {lk.files} / {lp.files} | "
            f"{_log_bytes(kept, day) / 1e3:.0f} / {_log_bytes(plain, day) / 1e3:.0f} | "
            f"{kept.maintain_seconds[day - 1]:.1f} |"
        )
    return lines


def last_day_tables(kept: PassRecord, plain: PassRecord) -> list[str]:
    """Every table at the end of the last day, both passes."""
    day = kept.days
    lines = [
        "| table | live files, maintain / plain | files with DVs | live MB | MB on disk "
        "| Delta log KB |",
        "|---|---|---|---|---|---|",
    ]
    for table in TABLE_NAMES:
        k, p = _state(kept, day, table), _state(plain, day, table)
        lines.append(
            f"| `{table}` | {k.files} / {p.files} | {k.files_with_dvs} / {p.files_with_dvs} | "
            f"{k.live_bytes / 1e6:.2f} / {p.live_bytes / 1e6:.2f} | "
            f"{k.disk_bytes / 1e6:.2f} / {p.disk_bytes / 1e6:.2f} | "
            f"{k.log_bytes / 1e3:.0f} / {p.log_bytes / 1e3:.0f} |"
        )
    return lines


def verdicts(kept: PassRecord, plain: PassRecord) -> list[str]:
    """The goal and the end checks, each met or missed."""
    lines = []
    for record in (kept, plain):
        medians = daily_medians(record)
        ratio = medians[-1] / medians[0]
        goal = (
            f" (goal <= {FLAT_GOAL}x: {'met' if ratio <= FLAT_GOAL else 'missed'})"
            if len(medians) > 1
            else " (one day: no growth measured, the goal needs two or more)"
        )
        lines.append(
            f"- `{record.name}` pass: last day's median `hourly` {medians[-1]:.1f} s against "
            f"the first day's {medians[0]:.1f} s: {ratio:.2f}x"
            + (goal if record.name == "maintain" else "")
            + f"; {sum(c != 0 for c in record.run_exit_codes)} of "
            f"{len(record.run_exit_codes)} runs failed; final `verify` exit "
            f"{record.verify_exit_code}; `fct_orders` ({record.fct_rows} rows) equals the "
            f"plain-Python rule over the whole stream: "
            f"{'yes' if record.fct_equals_reference else 'NO'}; pass took "
            f"{record.wall_seconds / 60:.1f} min."
        )
    return lines


def write_chart(kept: PassRecord, plain: PassRecord, out: Path) -> None:
    """Per-run seconds, and `fct_orders`'s files, DV files and the Delta logs per day."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(2, 2, figsize=(12, 8))
    for record, style in ((kept, "-"), (plain, "--")):
        label = f"{record.name}"
        hours = [(i + 1) / 24 for i in range(len(record.run_seconds))]
        axes[0][0].plot(hours, record.run_seconds, style, alpha=0.5, label=label)
        days = list(range(1, record.days + 1))
        fct = [_state(record, d, FCT_ORDERS) for d in days]
        axes[0][1].plot(days, [f.files for f in fct], style + "o", label=f"{label}: files")
        axes[0][1].plot(days, [f.files_with_dvs for f in fct], style + "x", label=f"{label}: DVs")
        axes[1][0].plot(
            days, [_state(record, d, ORDERS_LANDING).files for d in days], style + "o", label=label
        )
        axes[1][1].plot(days, [_log_bytes(record, d) / 1e3 for d in days], style + "o", label=label)
    titles = (
        ("`hourly` wall seconds per run", "simulated day"),
        ("fct_orders live files and files with deletion vectors", "simulated day"),
        ("orders_landing live files", "simulated day"),
        ("Delta logs of all tables, KB", "simulated day"),
    )
    for axis, (title, xlabel) in zip(axes.flat, titles, strict=True):
        axis.set_title(title)
        axis.set_xlabel(xlabel)
        axis.grid(alpha=0.3)
        axis.legend()
    figure.tight_layout()
    figure.savefig(out, dpi=90)
    plt.close(figure)


def render(
    kept: PassRecord, plain: PassRecord, command: str, load: str, chart: Path, at_once: bool
) -> str:
    """The soak report."""
    runs = len(kept.run_seconds)
    how = "Both passes ran at once" if at_once else "The passes ran one after the other"
    return "\n".join(
        [
            "# Soak: hourly runs over simulated days, with and without `maintain`",
            "",
            f"Command: `{command}`. {kept.days} simulated days, {runs} `hourly` runs per pass, "
            f"{kept.orders_per_hour} orders an hour (late events from minutes to 10 days, "
            f"retries, stale and newer versions, bad lines). {how}, each in "
            "its own warm session with `conf/local.toml`'s settings, on the same stream; the "
            f"`maintain` pass ran `maintain` after each day's last run. Load average at the "
            f"start and end: {load}.",
            "",
            *verdicts(kept, plain),
            "",
            f"![per-run time and table growth]({chart.name})",
            "",
            "## Per simulated day (maintain / plain)",
            "",
            *day_table(kept, plain),
            "",
            "## Every table after the last day (maintain / plain)",
            "",
            *last_day_tables(kept, plain),
            "",
            "VACUUM deletes only files older than the retention in wall-clock time (at least "
            "168 h), so in a soak that lasts minutes it deletes nothing: the bytes on disk show "
            "compaction's rewritten files still kept for time travel; the live files and "
            "bytes are what every reader opens.",
            "",
        ]
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run both passes (or one with --pass), then write the report."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--days", type=int, default=14, help="simulated days (24 runs each)")
    parser.add_argument("--orders-per-hour", type=int, default=60)
    parser.add_argument("--work-dir", type=Path, default=BENCH_DIR / "soak-work")
    parser.add_argument("--results", type=Path, default=BENCH_DIR / "soak.md")
    parser.add_argument("--pass", dest="one_pass", choices=PASSES, default=None)
    parser.add_argument(
        "--one-at-a-time",
        action="store_true",
        help="run the passes one after the other instead of at once (each alone on the machine)",
    )
    args = parser.parse_args(argv)
    if args.one_pass:
        record = run_pass(args.one_pass, args.work_dir, args.days, args.orders_per_hour)
        write_record(record, args.work_dir / f"{args.one_pass}.json")
        return 0
    load_start = os.getloadavg()[0]
    run_both(args.work_dir, args.days, args.orders_per_hour, not args.one_at_a_time)
    kept, plain = (read_record(args.work_dir / f"{name}.json") for name in PASSES)
    chart = args.results.with_suffix(".png")
    write_chart(kept, plain, chart)
    command = f"bench/soak.py --days {args.days} --orders-per-hour {args.orders_per_hour}" + (
        " --one-at-a-time" if args.one_at_a_time else ""
    )
    load = f"{load_start:.2f} and {os.getloadavg()[0]:.2f}"
    args.results.write_text(
        render(kept, plain, command, load, chart, not args.one_at_a_time), encoding="utf-8"
    )
    print(args.results.read_text(encoding="utf-8"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
