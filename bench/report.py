"""Render `bench/results.md`: machine, command, targets, ratios, phases and commit metrics.

`render_report` joins one renderer per section, each returning its Markdown lines.
"""

from __future__ import annotations

import platform
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from figures import GIB, MIB, size_label
from machine import Machine
from measure import Probe
from pipeline import SparkSettings
from report_tables import commit_rows, data_rows, phase_rows, ratio_rows, repeat_rows, step_rows
from results import SizeResult
from verdicts import Verdict, verdicts


@dataclass(frozen=True)
class Run:
    """How the bench was run."""

    machine: Machine
    command: str
    settings: SparkSettings
    default_sizes: tuple[int, ...]
    warmup_orders: int
    warmup_seconds: float
    elapsed_seconds: float
    load_at_end: tuple[float, float, float]


def write_report(path: Path, run: Run, results: Sequence[SizeResult], probe: Probe) -> None:
    """Write the Markdown report."""
    text = render_report(run, results, probe)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def render_report(run: Run, results: Sequence[SizeResult], probe: Probe) -> str:
    """Return the Markdown report of the sizes measured so far."""
    labels = [size_label(r.shape.orders) for r in results]
    sections = [
        header_section(run, results),
        machine_section(run, probe),
        targets_section(results),
        ratios_section(results, labels),
        data_section(results, labels),
        phases_section(results),
        commits_section(results),
        steps_section(results, labels),
        repeats_section(results, labels),
        METHOD,
    ]
    return "\n".join(line for section in sections for line in section)


# --- Markdown ---------------------------------------------------------------------------
def table_row(cells: Sequence[Any]) -> str:
    """Return one row of a Markdown table."""
    return "| " + " | ".join(str(c) for c in cells) + " |"


def table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    """Return a Markdown table, followed by a blank line."""
    return [table_row(header), table_row(["---"] * len(header)), *map(table_row, rows), ""]


# --- the sections, in their order -------------------------------------------------------
def header_section(run: Run, results: Sequence[SizeResult]) -> list[str]:
    """The title, when and how the report was written, and a note on the sizes."""
    return [
        "# orders_etl benchmark: incremental against full refresh",
        "",
        f"Written by `bench/run.py` on {datetime.now(UTC):%Y-%m-%d %H:%M} UTC after "
        f"{run.elapsed_seconds / 60:.1f} minutes. Every number below comes from that run. "
        "`make bench` runs `.venv/bin/python bench/run.py` with no flags (2M and 10M orders).",
        "",
        f"Command: `{run.command}`",
        "",
        *size_note(run, results),
    ]


def size_note(run: Run, results: Sequence[SizeResult]) -> list[str]:
    """Say which sizes ran when they are not the default, and predict the default's time
    from a straight line through this run's time per size; nothing for the default sizes."""
    measured = [r.shape.orders for r in results]
    if tuple(sorted(measured)) == tuple(sorted(run.default_sizes)):
        return []
    lines = [
        f"Sizes: {', '.join(size_label(o) for o in measured)} orders; the default is "
        f"{', '.join(size_label(o) for o in run.default_sizes)}. The default did not fit the "
        "time available on this shared machine."
    ]
    if len(results) >= 2:
        first, last = results[0], results[-1]
        slope = (last.seconds - first.seconds) / (last.shape.orders - first.shape.orders)
        base = first.seconds - slope * first.shape.orders
        predicted = {o: base + slope * o for o in run.default_sizes}
        per_size = ", ".join(
            f"{size_label(r.shape.orders)}: {r.seconds / 60:.1f} min" for r in results
        )
        lines[0] += (
            f" A straight line through this run's time per size ({per_size}) predicts "
            + ", ".join(f"{size_label(o)}: {t / 60:.0f} min" for o, t in predicted.items())
            + f", so about {(sum(predicted.values()) + run.warmup_seconds) / 60:.0f} minutes "
            "for the default run at the same load."
        )
    return [*lines, ""]


def machine_section(run: Run, probe: Probe) -> list[str]:
    """The machine, the load, the warm-up and the Spark settings the numbers were taken with."""
    return [
        "## Machine",
        "",
        *table(["", ""], machine_rows(run, probe)),
        "The machine is shared: other processes may run at the same time (see the load "
        "averages, and the load column per phase). Wall times carry that noise; the JVM CPU "
        "seconds (user + system of the driver JVM, from /proc) carry less of it and are shown "
        "next to them. " + warm_up_note(run),
        "",
        "Spark settings: the project's `conf/local.toml` `[spark.conf]` with the bench's driver "
        "memory, built through `orders_etl.session.get_spark`: "
        + ", ".join(f"`{k}={v}`" for k, v in sorted(run.settings.conf.items()))
        + f", master `{run.settings.master}`.",
        "",
    ]


def machine_rows(run: Run, probe: Probe) -> list[list[str]]:
    """The machine table: CPUs, memory, versions, heap, load, peak memory of the run."""
    machine = run.machine
    return [
        ["CPUs available", f"{machine.cpus} ({machine.cpu_model})"],
        ["memory", f"{machine.memory_bytes / GIB:.1f} GiB"],
        ["OS", platform.platform()],
        ["Java", machine.java],
        ["Spark", machine.spark],
        ["Delta Lake", machine.delta],
        ["Python", machine.python],
        ["driver heap max (-Xmx)", f"{machine.heap_max_bytes / GIB:.1f} GiB"],
        [
            "load average (1, 5, 15 min) at start",
            ", ".join(f"{x:.1f}" for x in machine.load_at_start),
        ],
        ["load average at end", ", ".join(f"{x:.1f}" for x in run.load_at_end)],
        [
            "driver JVM peak RSS (VmHWM, whole run)",
            f"{probe.jvm_peak_rss_bytes() / GIB:.2f} GiB",
        ],
        [
            "Python process peak RSS (ru_maxrss, whole run)",
            f"{probe.python_peak_rss_bytes() / MIB:.0f} MiB",
        ],
    ]


def warm_up_note(run: Run) -> str:
    """Say whether a warm-up pass ran first, and how long it took."""
    if run.warmup_orders > 0:
        return (
            f"A warm-up pass at {run.warmup_orders:,} orders (land, incremental, rollup; "
            f"{run.warmup_seconds / 60:.1f} min, not reported) ran first, so that the first "
            "size does not pay for a cold JVM."
        )
    return "No warm-up pass ran: the first size paid for a cold JVM."


def targets_section(results: Sequence[SizeResult]) -> list[str]:
    """Each target: met or missed, the measured value, and the evidence when missed."""
    return ["## Targets", "", *(line for v in verdicts(results) for line in verdict_lines(v)), ""]


def verdict_lines(verdict: Verdict) -> list[str]:
    """One target's bullet, with its evidence as sub-bullets."""
    state = "n/a" if verdict.met is None else ("**met**" if verdict.met else "**missed**")
    return [f"- {verdict.name}: {state}, {verdict.detail}.", *(f"  - {w}" for w in verdict.why)]


def ratios_section(results: Sequence[SizeResult], labels: Sequence[str]) -> list[str]:
    """The ratios and checks per size, with their targets."""
    return ["## Ratios and checks", "", *table(["", *labels, "target"], ratio_rows(results))]


def data_section(results: Sequence[SizeResult], labels: Sequence[str]) -> list[str]:
    """The generated data per size."""
    return ["## Data", "", *table(["", *labels], data_rows(results))]


def phases_section(results: Sequence[SizeResult]) -> list[str]:
    """Time and memory of every phase of every size."""
    return [
        "## Time and memory per phase",
        "",
        "Wall seconds, JVM CPU seconds, Spark jobs started, peak JVM heap used in the phase "
        "(sum of the heap pools' peaks, GiB) and the 1-minute load average at its end. `setup` "
        "phases build the history and are not part of any comparison.",
        "",
        *table(
            ["size", "phase", "wall s", "JVM CPU s", "jobs", "heap peak GiB", "load"],
            phase_rows(results),
        ),
    ]


COMMIT_COLUMNS = (
    "size",
    "phase",
    "table",
    "version",
    "operation",
    "files +",
    "files -",
    "DVs +",
    "rows written",
    "rows removed",
    "rows copied",
    "rows changed",
    "partitions",
)


def commits_section(results: Sequence[SizeResult]) -> list[str]:
    """The Delta commit metrics of every phase of every size."""
    return [
        "## Delta commit metrics per phase",
        "",
        "From `DeltaTable.history()` `operationMetrics` of each commit the phase made (ledger "
        "commits to `pipeline_runs` left out). files +/-: `numFiles`/`numTargetFilesAdded` and "
        "`numRemovedFiles`/`numTargetFilesRemoved`; DVs +: deletion vectors added; rows "
        "written: `numOutputRows` (rows written to new files); removed: rows no longer visible "
        "(rows before + written - rows after); copied: unchanged rows rewritten "
        "(`numTargetRowsCopied`/`numCopiedRows`); changed: inserted + updated + deleted (MERGE "
        "only); partitions: distinct `order_date` values of the files the commit added or "
        "removed.",
        "",
        *table(COMMIT_COLUMNS, commit_rows(results)),
    ]


def steps_section(results: Sequence[SizeResult], labels: Sequence[str]) -> list[str]:
    """Where the incremental's time goes, step by step; nothing when no size timed its steps."""
    if not any(r.steps for r in results):
        return []
    return [
        "## Where the incremental's time goes",
        "",
        "The steps of `incremental.merge_window`, with its own functions, timed one by one "
        "on another scratch copy of `fct_orders` (same state, same batch; no ledger). Wall "
        "s / JVM CPU s.",
        "",
        *table(["step", *labels], step_rows(results)),
    ]


def repeats_section(results: Sequence[SizeResult], labels: Sequence[str]) -> list[str]:
    """The interleaved re-timings of the incremental; nothing when there were none."""
    if not any(r.repeats for r in results):
        return []
    return [
        "## Interleaved re-timings of the incremental",
        "",
        "After every size had run, the incremental's steps (as in the table above) were "
        "timed again on fresh copies of each size's `fct_orders`, the sizes taking turns, "
        "so that a change of load hits every size alike. Wall s / JVM CPU s / load.",
        "",
        *table(["repeat", *labels], repeat_rows(results)),
    ]


METHOD = [
    "## How the data and the runs are made",
    "",
    "- History, with Spark column expressions (`spark.range` and hashes of the order number, no "
    "Python loop): orders placed uniformly over the days before the batch's processing time, 1 "
    "to 4 versions each (placed, paid, shipped, delivered; one in ten ends cancelled) 10 "
    "minutes to 30 hours apart, so some orders move to another day. Each version is stamped "
    "`event_ingested_at` = the hourly run after its `event_time`; 3% arrive 1 to 240 hours "
    "late, 2% are resent unchanged an hour later.",
    "- `orders_landing` is written straight into the table `migrate` created, one file per "
    "hourly run (range-partitioned by `event_ingested_at`), as `land` lays it out. `fct_orders` "
    "is recomputed from it with the project's `stage_versions` and `dedupe_latest_version` and "
    "appended, one file per `order_date`, to the table `migrate` created (deletion vectors and "
    "change data feed on). `daily_revenue` comes from a first `rollup` at the history's last "
    "processing time. `fct_orders` is therefore compacted: one grown by months of hourly MERGEs "
    "would have many more, smaller files and deletion vectors, which makes every read of it "
    "slower.",
    "- The batch (one `.jsonl` file): new orders in the last hour; late lines (7 in 10 new "
    "orders whose event happened 1 to 10 days before, 3 in 10 stale `paid` versions of orders "
    "placed 2 to 10 days before); newer versions (delivered or refunded in the last hour) of "
    "orders placed 1 to 30 days before.",
    "- `land`, `incremental`, `rollup` and `backfill` run through `orders_etl.runner.execute` "
    "(the CLI's path, run ledger included) with a `RunContext` on the bench's session. The "
    "baselines run in the same session on scratch copies of `fct_orders` taken before the "
    "batch: the full refresh recomputes every order from all of landing and overwrites its copy "
    "(written like the history, one file per day); the MERGE without partition predicates uses "
    "the incremental's window, dedupe and clauses, joined on `order_id` only; the old model "
    "reads versions with `event_time > max(event_time)` and MERGEs them the same way.",
    "- The checks are not timed: files touched outside the window compare the MERGE commit's "
    "add/remove actions with the dates the window's orders have now and had before; 'equals "
    "full refresh' compares row count and a sum of row hashes with the full refresh's copy.",
    "",
]
