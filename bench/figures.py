"""The figures the report shows, derived from what one size measured: times, ratios,
medians, write amplification, and how a number is written in a cell."""

from __future__ import annotations

from statistics import median

from results import INCREMENTAL, SizeResult

GIB = 2**30
MIB = 2**20


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


def incremental_changed(result: SizeResult) -> int | None:
    """Rows the incremental's MERGE inserted, updated or deleted, None when it did not run."""
    phase = result.phases.get(INCREMENTAL)
    return None if phase is None else phase.rows_changed()
