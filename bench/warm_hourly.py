"""`hourly` in one warm session, as the demo and the soak run it, with the concurrent reads
of a run on and off, side by side.

    .venv/bin/python bench/warm_hourly.py [--pairs 5] [--results bench/results.md]

The history (the one `bench/fixed_cost.py` builds): a week of generated hourly batches (late,
retried, stale and bad events), run through `hourly` once per simulated day in one session.
Then `--pairs` pairs of `hourly` runs on the next hourly batches (~150 lines each): one run
of each pair submits the read-only jobs of a step at once (`CONCURRENT_JOBS`, the default),
the other one after another, in the order ABBA so that neither mode always runs first. A
first pair warms the JVM and is not counted. The figures are medians and their ratio.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
from collections.abc import Sequence
from datetime import datetime
from functools import partial
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR.parent))

from fixed_cost import HISTORY_DAYS, ORDERS_PER_HOUR, SEED, START  # noqa: E402
from pipeline import (  # noqa: E402
    CONCURRENT_JOBS,
    RunContext,
    generate_batches,
    get_spark,
    load_config,
    quiet,
    run_hourly,
    set_concurrent_jobs,
    timed_command,
    write_batches,
)
from sections import splice_section  # noqa: E402

START_MARK = "<!-- warm-hourly: written by bench/warm_hourly.py -->"
END_MARK = "<!-- /warm-hourly -->"
TARGET_SECONDS = 6.0


def measure(work: Path, pairs: int, jobs: int) -> dict[str, list[float]]:
    """Build the history, then time `pairs` + 1 pairs of warm `hourly` runs; return the
    seconds of each counted run by mode ("concurrent", "one by one")."""
    warehouse, inputs = work / "warehouse", work / "inputs"
    config = load_config("local", str(warehouse))
    spark = get_spark(config.spark)
    batches = generate_batches(
        SEED, START, HISTORY_DAYS + 1, orders_per_hour=ORDERS_PER_HOUR, batch_hours=1
    )
    history, rest = batches[: HISTORY_DAYS * 24], batches[HISTORY_DAYS * 24 :]

    lookback = config.incremental.lookback_days

    def hourly(folder: Path, at: datetime, name: str) -> float:
        ctx = RunContext(config, at, name, spark=spark, progress=quiet)
        step = partial(run_hourly, source=str(folder), lookback_days=lookback)
        took, code = timed_command(ctx, "hourly", step)
        if code != 0:
            raise SystemExit(f"hourly {name} exited {code}")
        return took

    for day in range(HISTORY_DAYS):
        group = history[day * 24 : (day + 1) * 24]
        write_batches(group, inputs / f"day-{day}")
        hourly(inputs / f"day-{day}", group[-1].processing_time, f"history-{day}")
    seconds: dict[str, list[float]] = {"concurrent": [], "one by one": []}
    order = ("concurrent", "one by one")
    for number in range(2 * (pairs + 1)):
        mode = order[(number + number // 2) % 2]  # ABBA ABBA ...
        set_concurrent_jobs(jobs if mode == "concurrent" else 1)
        batch = rest[number]
        folder = inputs / f"hour-{number:03d}"
        write_batches([batch], folder)
        took = hourly(folder, batch.processing_time, f"warm-{number}")
        print(f"warm hourly {number} ({mode}): {took:.1f}s", file=sys.stderr, flush=True)
        if number >= 2:
            seconds[mode].append(took)
    set_concurrent_jobs(jobs)
    return seconds


def render(seconds: dict[str, list[float]], jobs: int, load: str, command: str) -> str:
    """The section: medians, runs, the ratio and the warm-hourly target."""
    med = {mode: statistics.median(runs) for mode, runs in seconds.items()}
    ratio = med["one by one"] / med["concurrent"]
    met = "met" if med["concurrent"] <= TARGET_SECONDS else "missed"
    lines = [
        "## `hourly` in one warm session",
        "",
        f"Command: `{command}`. A week of hourly history, then warm `hourly` runs on ~150-line"
        f" batches, the two modes in ABBA order after one uncounted warm-up pair. Load average"
        f" at the start and end: {load}.",
        "",
        "| mode | median s | runs (s) |",
        "|---|---|---|",
    ]
    labels = {
        "concurrent": f"read-only jobs of a step at once (up to {jobs})",
        "one by one": "read-only jobs one after another",
    }
    for mode, runs in seconds.items():
        lines.append(
            f"| {labels[mode]} | {med[mode]:.1f} | {', '.join(f'{s:.1f}' for s in runs)} |"
        )
    lines += [
        "",
        f"- one after another / at once: {ratio:.2f}x.",
        f"- warm `hourly` <= {TARGET_SECONDS:.0f} s: **{met}** ({med['concurrent']:.1f} s).",
        "",
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Measure and write the section."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--pairs", type=int, default=5, help="counted pairs (default 5)")
    parser.add_argument("--results", type=Path, default=BENCH_DIR / "results.md")
    parser.add_argument("--work-dir", type=Path, default=None)
    args = parser.parse_args(argv)
    work = args.work_dir or Path(tempfile.mkdtemp(prefix="orders_etl-warm-hourly-"))
    shutil.rmtree(work, ignore_errors=True)
    load_start = os.getloadavg()[0]
    seconds = measure(work, args.pairs, CONCURRENT_JOBS)
    load = f"{load_start:.2f} and {os.getloadavg()[0]:.2f}"
    command = "python bench/warm_hourly.py" + (f" --pairs {args.pairs}" if args.pairs != 5 else "")
    section = render(seconds, CONCURRENT_JOBS, load, command)
    splice_section(args.results, section, START_MARK, END_MARK)
    print(section)
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
