"""The rows of the report's tables: one list of cells per row, one column per size.

A row of the comparison tables is a `Line`: a label, how to show one size's value, and the
target (empty when there is none).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from breakdown import STEP_MERGE
from figures import (
    GIB,
    MIB,
    amplification,
    fmt,
    incremental_changed,
    ratio,
    repeats_median,
    seconds,
    size_label,
    steps_seconds,
)
from measure import CommitStats
from results import (
    BACKFILL,
    FULL_REFRESH,
    INCREMENTAL,
    NO_PREDICATES,
    SETUP_PHASES,
    Phase,
    SizeResult,
)
from verdicts import TARGET_AMPLIFICATION, TARGET_SPEEDUP

Show = Callable[[SizeResult], str]


@dataclass(frozen=True)
class Line:
    """One row of a comparison table: its label, one size's cell, and the target."""

    label: str
    show: Show
    target: str = ""


# --- how one size's cell is shown ------------------------------------------------------
def fact(key: str, scale: int = 1) -> Show:
    """Show a fact of the generated data, divided by `scale` (one decimal) when above 1."""

    def show(r: SizeResult) -> str:
        value = r.facts.get(key)
        if value is None:
            return "n/a"
        return f"{value / scale:,.1f}" if scale > 1 else f"{value:,}"

    return show


def metric(key: str) -> Show:
    """Show a metric the incremental reported."""

    def show(r: SizeResult) -> str:
        phase = r.phases.get(INCREMENTAL)
        value = None if phase is None else phase.metrics.get(key)
        return "n/a" if value is None else f"{value:,}"

    return show


def check(key: str) -> Show:
    """Show a check: a count, or yes / **NO**."""

    def show(r: SizeResult) -> str:
        value = r.checks.get(key)
        if value is None:
            return "n/a"
        if isinstance(value, bool):
            return "yes" if value else "**NO**"
        return f"{value:,}" if isinstance(value, int) else str(value)

    return show


def batch_kind(kind: str) -> Show:
    """Show how many lines of one kind the batch has."""

    def show(r: SizeResult) -> str:
        return f"{r.facts['batch_kinds'].get(kind, 0):,}"

    return show


def merge_step_ratio(r: SizeResult) -> str:
    """Show the MERGE without predicates' time over the incremental's MERGE step's."""
    phase = r.phases.get(NO_PREDICATES)
    step = r.steps.get(STEP_MERGE)
    if phase is None or step is None:
        return "n/a"
    return fmt(ratio(phase.metrics.get("merge_seconds"), step.seconds), 2, "x")


def backfill_rows(r: SizeResult) -> str:
    """Show the rows the backfill wrote / the rows whose content it changed."""
    phase = r.phases.get(BACKFILL)
    if phase is None:
        return "n/a"
    changed = r.checks.get("backfill_rows_changed")
    return f"{phase.total('rows_added'):,} / {'n/a' if changed is None else f'{changed:,}'}"


def heap_peak(names: Sequence[str]) -> Show:
    """Show the highest heap peak of the phases `names`, in GiB."""

    def show(r: SizeResult) -> str:
        peaks = [p.usage.heap_peak_bytes for n, p in r.phases.items() if n in names]
        return fmt(max(peaks) / GIB, 2) if peaks else "n/a"

    return show


# --- the data table ---------------------------------------------------------------------
def data_rows(results: Sequence[SizeResult]) -> list[list[Any]]:
    """The generated data and what the incremental found in it, per size."""
    spec: list[tuple[str, Show]] = [
        ("orders in the history", lambda r: f"{r.shape.orders:,}"),
        ("orders_landing rows", fact("orders_landing_rows")),
        ("orders_landing files", fact("orders_landing_files")),
        ("orders_landing MiB", fact("orders_landing_bytes", MIB)),
        ("fct_orders rows", fact("fct_orders_rows")),
        ("fct_orders files", fact("fct_orders_files")),
        ("fct_orders partitions (days)", fact("fct_orders_partitions")),
        ("fct_orders MiB", fact("fct_orders_bytes", MIB)),
        ("daily_revenue rows", fact("daily_revenue_rows")),
        ("batch lines", fact("batch_lines")),
    ]
    for kind in results[0].facts.get("batch_kinds", {}):
        spec.append((f"  of which {kind}", batch_kind(kind)))
    spec += [
        ("incremental: landing rows in the window", metric("source_rows")),
        ("incremental: orders in the window", metric("deduped_rows")),
        ("incremental: inserted", metric("inserted")),
        ("incremental: updated", metric("updated")),
        ("incremental: left alone (not newer)", metric("left_alone")),
        ("incremental: partitions in the MERGE predicate", metric("merge_dates_read")),
    ]
    return [[label, *(show(r) for r in results)] for label, show in spec]


# --- the ratios and checks table --------------------------------------------------------
def ratio_rows(results: Sequence[SizeResult]) -> list[list[Any]]:
    """Every ratio and check per size, with its target."""
    measured = [n for n in results[-1].phases if n not in SETUP_PHASES]
    lines = [
        *time_lines(),
        *write_lines(),
        *file_lines(),
        *event_time_lines(),
        *equality_lines(),
        Line(
            "peak JVM heap used, measured phases (GiB; sum of heap pool peaks)",
            heap_peak(measured),
        ),
        Line("peak JVM heap used, incremental (GiB)", heap_peak([INCREMENTAL])),
    ]
    return [[line.label, *(line.show(r) for r in results), line.target] for line in lines]


def time_lines() -> list[Line]:
    """The full refresh's time against the incremental's, and the MERGE step's."""
    return [
        Line(
            "full refresh time / incremental time (wall)",
            lambda r: fmt(ratio(seconds(r, FULL_REFRESH), seconds(r, INCREMENTAL)), 2, "x"),
            f">= {TARGET_SPEEDUP:g}x at the largest size",
        ),
        Line(
            "full refresh time / incremental time (JVM CPU)",
            lambda r: fmt(
                ratio(seconds(r, FULL_REFRESH, True), seconds(r, INCREMENTAL, True)), 2, "x"
            ),
        ),
        Line(
            "full refresh time / incremental steps without the ledger (wall)",
            lambda r: fmt(ratio(seconds(r, FULL_REFRESH), steps_seconds(r)), 2, "x"),
        ),
        Line(
            "incremental time / full refresh time (wall)",
            lambda r: fmt(ratio(seconds(r, INCREMENTAL), seconds(r, FULL_REFRESH)), 3),
        ),
        Line("MERGE step without partition predicates / with them (wall)", merge_step_ratio),
    ]


def write_lines() -> list[Line]:
    """Rows written per row changed: the incremental, the baselines, the backfill."""
    return [
        Line(
            "write amplification, incremental: rows written / rows changed",
            lambda r: fmt(amplification(r, INCREMENTAL), 2, "x"),
            f"<= {TARGET_AMPLIFICATION:g}x",
        ),
        Line(
            "write amplification, MERGE without partition predicates",
            lambda r: fmt(amplification(r, NO_PREDICATES), 2, "x"),
        ),
        Line(
            "write amplification, full refresh (rows written / the incremental's rows changed)",
            lambda r: fmt(amplification(r, FULL_REFRESH, incremental_changed(r)), 0, "x"),
        ),
        Line("backfill: rows written / rows whose content changed", backfill_rows),
    ]


def file_lines() -> list[Line]:
    """The files and partitions the MERGEs and the backfill touched."""
    partitions = ("incremental_partitions_touched", "window_partitions", "table_partitions")
    return [
        Line(
            "incremental: files touched outside the window's partitions",
            check("incremental_files_outside_window"),
            "0",
        ),
        Line(
            "incremental: files touched in partitions with no changed row",
            check("incremental_files_without_change"),
            "0",
        ),
        Line(
            "incremental: partitions touched / in window / in table",
            lambda r: " / ".join(check(k)(r) for k in partitions),
        ),
        Line(
            "MERGE without predicates: files touched outside the window",
            check("no_predicates_files_outside_window"),
        ),
        Line(
            "backfill: files touched outside its 14 days (replaceWhere commit)",
            check("backfill_files_outside_range"),
            "0",
        ),
        Line(
            "backfill: files touched by its corrections MERGE (orders moved across the edge)",
            check("backfill_correction_files"),
        ),
    ]


def event_time_lines() -> list[Line]:
    """The late lines of the batch, and what the old `event_time` model makes of them."""
    return [
        Line("late lines in the batch", check("late_lines_in_batch")),
        Line("late lines the event_time model drops", check("event_time_model_dropped")),
        Line(
            "orders wrong in fct_orders after the event_time model",
            check("event_time_model_orders_wrong"),
        ),
    ]


def equality_lines() -> list[Line]:
    """Whether each result equals the full refresh."""
    return [
        Line(
            "incremental result equals full refresh",
            check("incremental_equals_full_refresh"),
            "yes",
        ),
        Line("after backfill, equals full refresh", check("backfill_equals_full_refresh"), "yes"),
        Line(
            "MERGE without predicates equals full refresh",
            check("no_predicates_equals_full_refresh"),
            "yes",
        ),
    ]


# --- the tables per phase, step and repeat ----------------------------------------------
def phase_rows(results: Sequence[SizeResult]) -> list[list[Any]]:
    """One row per size and phase: wall and CPU seconds, jobs, heap peak, load."""
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


def commit_rows(results: Sequence[SizeResult]) -> list[list[Any]]:
    """One row per size, phase and Delta commit, with the commit's metrics."""
    rows: list[list[Any]] = []
    for r in results:
        for name, phase in r.phases.items():
            for c in reported_commits(name, phase):
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


def reported_commits(name: str, phase: Phase) -> Sequence[CommitStats]:
    """The commits of a phase the report lists: none of the history's first two setups."""
    return () if name in SETUP_PHASES[:2] else phase.commits


def step_rows(results: Sequence[SizeResult]) -> list[list[Any]]:
    """One row per step of the incremental: wall s / JVM CPU s per size."""
    names = list(next(r.steps for r in results if r.steps))
    return [
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
    ]


def repeat_rows(results: Sequence[SizeResult]) -> list[list[Any]]:
    """One row per interleaved re-timing (wall s / JVM CPU s / load per size), then medians."""
    count = max(len(r.repeats) for r in results)
    rows: list[list[Any]] = [
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
    medians = [f"{fmt(repeats_median(r), 1)} / {fmt(repeats_median(r, True), 1)}" for r in results]
    return [*rows, ["median", *medians]]
