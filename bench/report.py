"""Render `bench/results.md`: machine, command, targets, ratios, phases and commit metrics."""

from __future__ import annotations

import platform
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from statistics import median
from typing import Any

from breakdown import STEP_MERGE
from machine import Machine
from measure import Probe
from pipeline import SparkSettings
from results import (
    BACKFILL,
    FULL_REFRESH,
    INCREMENTAL,
    NO_PREDICATES,
    SETUP_PHASES,
    Phase,
    SizeResult,
)

GIB = 2**30
MIB = 2**20
TARGET_SPEEDUP = 10.0
TARGET_SCALING = 1.5
TARGET_AMPLIFICATION = 2.0


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


def size_label(orders: int) -> str:
    """Return 2M for 2_000_000, 400k for 400_000."""
    for unit, suffix in ((1_000_000, "M"), (1_000, "k")):
        if orders >= unit and orders % (unit // 10) == 0:
            return f"{orders / unit:g}{suffix}"
    return f"{orders:,}"


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    """Divide, or None when either side is missing or the denominator is 0."""
    if numerator is None or denominator is None or denominator == 0:
        return None
    return numerator / denominator


def fmt(value: float | None, digits: int = 2, suffix: str = "") -> str:
    """Format a number for a table cell; n/a when missing."""
    return "n/a" if value is None else f"{value:,.{digits}f}{suffix}"


def _row(cells: Sequence[Any]) -> str:
    return "| " + " | ".join(str(c) for c in cells) + " |"


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    return [_row(header), _row(["---"] * len(header)), *(_row(r) for r in rows), ""]


def seconds(result: SizeResult, name: str, cpu: bool = False) -> float | None:
    """Wall (or JVM CPU) seconds of a phase, None when it did not run."""
    phase = result.phases.get(name)
    if phase is None:
        return None
    return phase.usage.jvm_cpu_seconds if cpu else phase.usage.seconds


def steps_seconds(result: SizeResult, cpu: bool = False) -> float | None:
    """The incremental's steps timed one by one, summed (no ledger), None when not run."""
    if not result.steps:
        return None
    return sum(u.jvm_cpu_seconds if cpu else u.seconds for u in result.steps.values())


def repeats_median(result: SizeResult, cpu: bool = False) -> float | None:
    """Median of the interleaved re-timings of the incremental's steps, None without any."""
    if not result.repeats:
        return None
    return float(median(u.jvm_cpu_seconds if cpu else u.seconds for u in result.repeats))


def amplification(result: SizeResult, name: str, changed: int | None = None) -> float | None:
    """Rows written by a phase's commits / rows it changed (its own MERGE counts by default)."""
    phase = result.phases.get(name)
    if phase is None:
        return None
    own = phase.rows_changed()
    return ratio(phase.total("rows_added"), changed if changed is not None else own)


def _incremental_changed(result: SizeResult) -> int | None:
    phase = result.phases.get(INCREMENTAL)
    return None if phase is None else phase.rows_changed()


@dataclass(frozen=True)
class Verdict:
    """One target: whether it was met, the measured value, and the evidence."""

    name: str
    met: bool | None
    detail: str
    why: list[str]


def _speedup_verdict(large: SizeResult) -> Verdict:
    label = size_label(large.shape.orders)
    full, inc = seconds(large, FULL_REFRESH), seconds(large, INCREMENTAL)
    speedup = ratio(full, inc)
    cpu_speedup = ratio(seconds(large, FULL_REFRESH, True), seconds(large, INCREMENTAL, True))
    bare = ratio(full, steps_seconds(large))
    why: list[str] = []
    if speedup is not None and speedup < TARGET_SPEEDUP and full is not None and inc is not None:
        why = [
            f"missed by a factor {TARGET_SPEEDUP / speedup:.1f}: at {label} the full refresh "
            f"took {full:.1f}s and the incremental {inc:.1f}s; 10x would need "
            f"{full / TARGET_SPEEDUP:.1f}s or less",
            f"the full refresh is still small work at this size: it recomputes "
            f"{large.facts.get('orders_landing_rows', 0):,} landing rows into "
            f"{large.facts.get('fct_orders_rows', 0):,} orders in about "
            f"{seconds(large, FULL_REFRESH, True) or 0:.0f} JVM CPU seconds, while the "
            f"incremental runs {large.phases[INCREMENTAL].usage.spark_jobs} Spark jobs and "
            f"{len(large.phases[INCREMENTAL].commits) + 2} Delta commits (ledger included) "
            "whose fixed cost does not shrink with the data",
            *_step_evidence(large),
        ]
    return Verdict(
        f"incremental >= {TARGET_SPEEDUP:g}x faster than full refresh at {label}",
        None if speedup is None else speedup >= TARGET_SPEEDUP,
        f"{fmt(speedup)}x wall ({fmt(cpu_speedup)}x JVM CPU; {fmt(bare)}x against the "
        "incremental's steps without its run ledger)",
        why,
    )


def _scaling_verdict(small: SizeResult, large: SizeResult) -> Verdict:
    command = ratio(seconds(large, INCREMENTAL), seconds(small, INCREMENTAL))
    cpu_scaling = ratio(seconds(large, INCREMENTAL, True), seconds(small, INCREMENTAL, True))
    repeated = ratio(repeats_median(large), repeats_median(small))
    repeated_cpu = ratio(repeats_median(large, True), repeats_median(small, True))
    scaling = repeated if repeated is not None else command
    why: list[str] = []
    if scaling is not None and scaling > TARGET_SCALING:
        why = [
            f"missed by a factor {scaling / TARGET_SCALING:.2f} "
            f"({scaling:.2f}x against {TARGET_SCALING}x allowed)",
            *_scaling_evidence(small, large),
        ]
    elif scaling is not None:
        why = _scaling_evidence(small, large)
    return Verdict(
        f"incremental at {size_label(large.shape.orders)} within {TARGET_SCALING}x of its "
        f"time at {size_label(small.shape.orders)} "
        f"({large.shape.orders / small.shape.orders:g}x the orders)",
        None if scaling is None else scaling <= TARGET_SCALING,
        (
            f"{fmt(repeated)}x wall, median of {len(large.repeats)} interleaved re-timings of "
            f"the incremental's steps ({fmt(repeated_cpu)}x JVM CPU); the single command runs "
            f"gave {fmt(command)}x wall ({fmt(cpu_scaling)}x JVM CPU) under different loads"
            if repeated is not None
            else f"{fmt(command)}x wall ({fmt(cpu_scaling)}x JVM CPU), one run per size"
        ),
        why,
    )


def _amplification_verdict(large: SizeResult) -> Verdict:
    label = size_label(large.shape.orders)
    amp = amplification(large, INCREMENTAL)
    phase = large.phases.get(INCREMENTAL)
    detail = f"{fmt(amp)}x"
    why: list[str] = []
    if phase is not None and phase.rows_changed() is not None:
        detail += (
            f" ({phase.total('rows_added'):,} rows written for {phase.rows_changed():,} "
            f"inserted + updated; {phase.total('rows_copied'):,} unchanged rows copied; "
            f"{phase.total('deletion_vectors_added'):,} deletion vectors mark the "
            f"{phase.total('rows_removed'):,} replaced rows instead of rewriting their files)"
        )
        if amp is not None and amp > TARGET_AMPLIFICATION:
            why = [f"missed by a factor {amp / TARGET_AMPLIFICATION:.2f}"]
    return Verdict(
        f"incremental rows rewritten <= {TARGET_AMPLIFICATION:g}x rows changed (at {label})",
        None if amp is None else amp <= TARGET_AMPLIFICATION,
        detail,
        why,
    )


def verdicts(results: Sequence[SizeResult]) -> list[Verdict]:
    """Judge the three targets on wall time at the largest size (CPU time as a second view)."""
    small, large = results[0], results[-1]
    out = [_speedup_verdict(large)]
    if len(results) > 1:
        out.append(_scaling_verdict(small, large))
    out.append(_amplification_verdict(large))
    return out


def _step_evidence(result: SizeResult) -> list[str]:
    if not result.steps:
        return []
    ranked = sorted(result.steps.items(), key=lambda kv: -kv[1].seconds)
    total = steps_seconds(result) or 0.0
    lines = [
        f"the incremental's steps, timed one by one on a copy ({total:.1f}s in all): "
        + "; ".join(f"{name} {u.seconds:.1f}s" for name, u in ranked)
    ]
    command = seconds(result, INCREMENTAL)
    if command is not None:
        lines.append(
            f"the command itself took {command:.1f}s: those steps plus its run ledger rows, "
            "table versions, `prepare_landing` and `ensure_table`, at another moment's load"
        )
    facts = result.facts
    lines.append(
        f"its MERGE reads {facts.get('breakdown_merge_dates', 'n/a')} of "
        f"{facts.get('fct_orders_partitions', 'n/a')} partitions of fct_orders: every date "
        "where an order of the 3-day lookback window lives now or will live, not only the "
        "batch's"
    )
    return lines


def _scaling_evidence(small: SizeResult, large: SizeResult) -> list[str]:
    lines = []
    small_phase, large_phase = small.phases.get(INCREMENTAL), large.phases.get(INCREMENTAL)
    if small_phase is not None and large_phase is not None:
        s_rows = small_phase.metrics.get("source_rows", 0)
        l_rows = large_phase.metrics.get("source_rows", 0)
        lines.append(
            f"the window follows the table's daily volume, not the batch: {s_rows:,} landing "
            f"rows at {size_label(small.shape.orders)} against {l_rows:,} at "
            f"{size_label(large.shape.orders)} for the same {large.facts.get('batch_lines', 0):,}"
            "-line batch (the rest is the 3-day lookback); the MERGE reads whole partitions, "
            f"{large.facts.get('breakdown_merge_dates', 'n/a')} days of "
            f"{large.shape.orders / max(large.shape.days, 1):,.0f} orders a day at "
            f"{size_label(large.shape.orders)}"
        )
    if small.steps and large.steps:
        growth = [
            (name, small.steps[name].seconds, large.steps[name].seconds)
            for name in large.steps
            if name in small.steps
        ]
        growth.sort(key=lambda g: -(g[2] - g[1]))
        lines.append(
            "step by step (wall s, smaller -> larger size): "
            + "; ".join(f"{name} {a:.1f} -> {b:.1f}" for name, a, b in growth)
        )
    return lines


def _fact(key: str, scale: int = 1) -> Callable[[SizeResult], str]:
    def show(r: SizeResult) -> str:
        value = r.facts.get(key)
        if value is None:
            return "n/a"
        return f"{value / scale:,.1f}" if scale > 1 else f"{value:,}"

    return show


def _metric(key: str) -> Callable[[SizeResult], str]:
    def show(r: SizeResult) -> str:
        phase = r.phases.get(INCREMENTAL)
        value = None if phase is None else phase.metrics.get(key)
        return "n/a" if value is None else f"{value:,}"

    return show


def _check(key: str) -> Callable[[SizeResult], str]:
    def show(r: SizeResult) -> str:
        value = r.checks.get(key)
        if value is None:
            return "n/a"
        if isinstance(value, bool):
            return "yes" if value else "**NO**"
        return f"{value:,}" if isinstance(value, int) else str(value)

    return show


def _batch_kind(kind: str) -> Callable[[SizeResult], str]:
    def show(r: SizeResult) -> str:
        return f"{r.facts['batch_kinds'].get(kind, 0):,}"

    return show


def _data_rows(results: Sequence[SizeResult]) -> list[list[Any]]:
    spec: list[tuple[str, Callable[[SizeResult], str]]] = [
        ("orders in the history", lambda r: f"{r.shape.orders:,}"),
        ("orders_landing rows", _fact("orders_landing_rows")),
        ("orders_landing files", _fact("orders_landing_files")),
        ("orders_landing MiB", _fact("orders_landing_bytes", MIB)),
        ("fct_orders rows", _fact("fct_orders_rows")),
        ("fct_orders files", _fact("fct_orders_files")),
        ("fct_orders partitions (days)", _fact("fct_orders_partitions")),
        ("fct_orders MiB", _fact("fct_orders_bytes", MIB)),
        ("daily_revenue rows", _fact("daily_revenue_rows")),
        ("batch lines", _fact("batch_lines")),
    ]
    for kind in results[0].facts.get("batch_kinds", {}):
        spec.append((f"  of which {kind}", _batch_kind(kind)))
    spec += [
        ("incremental: landing rows in the window", _metric("source_rows")),
        ("incremental: orders in the window", _metric("deduped_rows")),
        ("incremental: inserted", _metric("inserted")),
        ("incremental: updated", _metric("updated")),
        ("incremental: left alone (not newer)", _metric("left_alone")),
        ("incremental: partitions in the MERGE predicate", _metric("merge_dates_read")),
    ]
    return [[label, *(show(r) for r in results)] for label, show in spec]


def _ratio_rows(results: Sequence[SizeResult]) -> list[list[Any]]:
    def merge_step_ratio(r: SizeResult) -> str:
        phase = r.phases.get(NO_PREDICATES)
        step = r.steps.get(STEP_MERGE)
        if phase is None or step is None:
            return "n/a"
        return fmt(ratio(phase.metrics.get("merge_seconds"), step.seconds), 2, "x")

    def backfill_rows(r: SizeResult) -> str:
        phase = r.phases.get(BACKFILL)
        if phase is None:
            return "n/a"
        changed = r.checks.get("backfill_rows_changed")
        return f"{phase.total('rows_added'):,} / {'n/a' if changed is None else f'{changed:,}'}"

    def heap(r: SizeResult, names: Sequence[str]) -> str:
        peaks = [p.usage.heap_peak_bytes for n, p in r.phases.items() if n in names]
        return fmt(max(peaks) / GIB, 2) if peaks else "n/a"

    measured = [n for n in results[-1].phases if n not in SETUP_PHASES]
    spec: list[tuple[str, Callable[[SizeResult], str], str]] = [
        (
            "full refresh time / incremental time (wall)",
            lambda r: fmt(ratio(seconds(r, FULL_REFRESH), seconds(r, INCREMENTAL)), 2, "x"),
            f">= {TARGET_SPEEDUP:g}x at the largest size",
        ),
        (
            "full refresh time / incremental time (JVM CPU)",
            lambda r: fmt(
                ratio(seconds(r, FULL_REFRESH, True), seconds(r, INCREMENTAL, True)), 2, "x"
            ),
            "",
        ),
        (
            "full refresh time / incremental steps without the ledger (wall)",
            lambda r: fmt(ratio(seconds(r, FULL_REFRESH), steps_seconds(r)), 2, "x"),
            "",
        ),
        (
            "incremental time / full refresh time (wall)",
            lambda r: fmt(ratio(seconds(r, INCREMENTAL), seconds(r, FULL_REFRESH)), 3),
            "",
        ),
        (
            "MERGE step without partition predicates / with them (wall)",
            merge_step_ratio,
            "",
        ),
        (
            "write amplification, incremental: rows written / rows changed",
            lambda r: fmt(amplification(r, INCREMENTAL), 2, "x"),
            f"<= {TARGET_AMPLIFICATION:g}x",
        ),
        (
            "write amplification, MERGE without partition predicates",
            lambda r: fmt(amplification(r, NO_PREDICATES), 2, "x"),
            "",
        ),
        (
            "write amplification, full refresh (rows written / the incremental's rows changed)",
            lambda r: fmt(amplification(r, FULL_REFRESH, _incremental_changed(r)), 0, "x"),
            "",
        ),
        ("backfill: rows written / rows whose content changed", backfill_rows, ""),
        (
            "incremental: files touched outside the window's partitions",
            _check("incremental_files_outside_window"),
            "0",
        ),
        (
            "incremental: files touched in partitions with no changed row",
            _check("incremental_files_without_change"),
            "0",
        ),
        (
            "incremental: partitions touched / in window / in table",
            lambda r: " / ".join(
                _check(k)(r)
                for k in ("incremental_partitions_touched", "window_partitions", "table_partitions")
            ),
            "",
        ),
        (
            "MERGE without predicates: files touched outside the window",
            _check("no_predicates_files_outside_window"),
            "",
        ),
        (
            "backfill: files touched outside its 14 days (replaceWhere commit)",
            _check("backfill_files_outside_range"),
            "0",
        ),
        (
            "backfill: files touched by its corrections MERGE (orders moved across the edge)",
            _check("backfill_correction_files"),
            "",
        ),
        ("late lines in the batch", _check("late_lines_in_batch"), ""),
        ("late lines the event_time model drops", _check("event_time_model_dropped"), ""),
        (
            "orders wrong in fct_orders after the event_time model",
            _check("event_time_model_orders_wrong"),
            "",
        ),
        (
            "incremental result equals full refresh",
            _check("incremental_equals_full_refresh"),
            "yes",
        ),
        ("after backfill, equals full refresh", _check("backfill_equals_full_refresh"), "yes"),
        (
            "MERGE without predicates equals full refresh",
            _check("no_predicates_equals_full_refresh"),
            "yes",
        ),
        (
            "peak JVM heap used, measured phases (GiB; sum of heap pool peaks)",
            lambda r: heap(r, measured),
            "",
        ),
        ("peak JVM heap used, incremental (GiB)", lambda r: heap(r, [INCREMENTAL]), ""),
    ]
    return [[label, *(show(r) for r in results), target] for label, show, target in spec]


def _size_note(run: Run, results: Sequence[SizeResult]) -> list[str]:
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


def _phase_rows(results: Sequence[SizeResult]) -> list[list[Any]]:
    rows: list[list[Any]] = []
    for r in results:
        for name, phase in r.phases.items():
            u = phase.usage
            rows.append(
                [
                    size_label(r.shape.orders),
                    name,
                    f"{u.seconds:.1f}",
                    f"{u.jvm_cpu_seconds:.1f}",
                    u.spark_jobs,
                    f"{u.heap_peak_bytes / GIB:.2f}",
                    f"{u.load_average:.1f}",
                ]
            )
    return rows


def _commit_rows(results: Sequence[SizeResult]) -> list[list[Any]]:
    rows: list[list[Any]] = []
    for r in results:
        for name, phase in r.phases.items():
            for c in _reported_commits(name, phase):
                rows.append(
                    [
                        size_label(r.shape.orders),
                        name,
                        c.table,
                        c.version,
                        c.operation,
                        f"{c.files_added:,}",
                        f"{c.files_removed:,}",
                        f"{c.deletion_vectors_added:,}",
                        f"{c.rows_added:,}",
                        f"{c.rows_removed:,}",
                        f"{c.rows_copied:,}",
                        "" if c.rows_changed is None else f"{c.rows_changed:,}",
                        len([d for d in c.files_by_date if d is not None]) or "",
                    ]
                )
    return rows


def _reported_commits(name: str, phase: Phase) -> Sequence[Any]:
    return () if name in SETUP_PHASES[:2] else phase.commits


def write_report(path: Path, run: Run, results: Sequence[SizeResult], probe: Probe) -> None:
    """Write the Markdown report."""
    machine = run.machine
    labels = [size_label(r.shape.orders) for r in results]
    lines = [
        "# orders_etl benchmark: incremental against full refresh",
        "",
        f"Written by `bench/run.py` on {datetime.now(UTC):%Y-%m-%d %H:%M} UTC after "
        f"{run.elapsed_seconds / 60:.1f} minutes. Every number below comes from that run. "
        "`make bench` runs `.venv/bin/python bench/run.py` with no flags (2M and 10M orders).",
        "",
        f"Command: `{run.command}`",
        "",
        *_size_note(run, results),
        "## Machine",
        "",
        *_table(
            ["", ""],
            [
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
            ],
        ),
        "The machine is shared: other processes may run at the same time (see the load "
        "averages, and the load column per phase). Wall times carry that noise; the JVM CPU "
        "seconds (user + system of the driver JVM, from /proc) carry less of it and are shown "
        "next to them. "
        + (
            f"A warm-up pass at {run.warmup_orders:,} orders (land, incremental, rollup; "
            f"{run.warmup_seconds / 60:.1f} min, not reported) ran first, so that the first "
            "size does not pay for a cold JVM."
            if run.warmup_orders > 0
            else "No warm-up pass ran: the first size paid for a cold JVM."
        ),
        "",
        "Spark settings: the project's `conf/local.toml` `[spark.conf]` with the bench's driver "
        "memory, built through `orders_etl.session.get_spark`: "
        + ", ".join(f"`{k}={v}`" for k, v in sorted(run.settings.conf.items()))
        + f", master `{run.settings.master}`.",
        "",
        "## Targets",
        "",
    ]
    for verdict in verdicts(results):
        state = "n/a" if verdict.met is None else ("**met**" if verdict.met else "**missed**")
        lines.append(f"- {verdict.name}: {state}, {verdict.detail}.")
        lines += [f"  - {w}" for w in verdict.why]
    lines += [
        "",
        "## Ratios and checks",
        "",
        *_table(["", *labels, "target"], _ratio_rows(results)),
        "## Data",
        "",
        *_table(["", *labels], _data_rows(results)),
        "## Time and memory per phase",
        "",
        "Wall seconds, JVM CPU seconds, Spark jobs started, peak JVM heap used in the phase "
        "(sum of the heap pools' peaks, GiB) and the 1-minute load average at its end. `setup` "
        "phases build the history and are not part of any comparison.",
        "",
        *_table(
            ["size", "phase", "wall s", "JVM CPU s", "jobs", "heap peak GiB", "load"],
            _phase_rows(results),
        ),
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
        *_table(
            [
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
            ],
            _commit_rows(results),
        ),
    ]
    if any(r.steps for r in results):
        names = list(next(r.steps for r in results if r.steps))
        lines += [
            "## Where the incremental's time goes",
            "",
            "The steps of `incremental.merge_window`, with its own functions, timed one by one "
            "on another scratch copy of `fct_orders` (same state, same batch; no ledger). Wall "
            "s / JVM CPU s.",
            "",
            *_table(
                ["step", *labels],
                [
                    [
                        name,
                        *(
                            f"{r.steps[name].seconds:.1f} / {r.steps[name].jvm_cpu_seconds:.1f}"
                            if name in r.steps
                            else "n/a"
                            for r in results
                        ),
                    ]
                    for name in names
                ],
            ),
        ]
    if any(r.repeats for r in results):
        count = max(len(r.repeats) for r in results)
        lines += [
            "## Interleaved re-timings of the incremental",
            "",
            "After every size had run, the incremental's steps (as in the table above) were "
            "timed again on fresh copies of each size's `fct_orders`, the sizes taking turns, "
            "so that a change of load hits every size alike. Wall s / JVM CPU s / load.",
            "",
            *_table(
                ["repeat", *labels],
                [
                    [
                        str(i + 1),
                        *(
                            f"{r.repeats[i].seconds:.1f} / {r.repeats[i].jvm_cpu_seconds:.1f} / "
                            f"{r.repeats[i].load_average:.1f}"
                            if i < len(r.repeats)
                            else "n/a"
                            for r in results
                        ),
                    ]
                    for i in range(count)
                ]
                + [
                    [
                        "median",
                        *(
                            f"{fmt(repeats_median(r), 1)} / {fmt(repeats_median(r, True), 1)}"
                            for r in results
                        ),
                    ]
                ],
            ),
        ]
    lines += METHOD
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines))


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
