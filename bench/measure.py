"""Measure a phase (wall time, JVM CPU time, JVM heap peak) and read its Delta commits.

Wall time on a shared machine moves with other people's load; the JVM's own CPU seconds
(user + system, from /proc) move much less, so both are kept. The heap peak is the sum of the
JVM heap pools' peak usage since the phase began (java.lang.management through py4j), an upper
bound of the heap actually used at once.
"""

from __future__ import annotations

import json
import os
import resource
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, TypeVar

from pipeline import Commit, commits
from pyspark.sql import SparkSession

Result = TypeVar("Result")
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


class Probe:
    """Resource counters of the driver: its JVM (py4j and /proc) and this Python process."""

    def __init__(self, spark: SparkSession) -> None:
        jvm = spark.sparkContext._jvm
        assert jvm is not None
        management = jvm.java.lang.management.ManagementFactory
        self._runtime = jvm.java.lang.Runtime.getRuntime()
        self._heap_pools = [
            pool
            for pool in management.getMemoryPoolMXBeans()
            if str(pool.getType().name()) == "HEAP"
        ]
        self.jvm_pid = int(jvm.java.lang.ProcessHandle.current().pid())
        self._context = spark.sparkContext._jsc.sc()

    def jobs_started(self) -> int:
        """How many Spark jobs the session has started (the scheduler's next job id)."""
        next_id = self._context.dagScheduler().nextJobId()
        return int(next_id if isinstance(next_id, int) else next_id.get())

    def heap_max_bytes(self) -> int:
        """The JVM's maximum heap (-Xmx)."""
        return int(self._runtime.maxMemory())

    def heap_committed_bytes(self) -> int:
        """The heap the JVM holds from the OS now."""
        return int(self._runtime.totalMemory())

    def reset_heap_peak(self) -> None:
        """Start a new peak for every heap pool."""
        for pool in self._heap_pools:
            pool.resetPeakUsage()

    def heap_peak_bytes(self) -> int:
        """Sum of the heap pools' peak usage since the last reset."""
        return sum(int(pool.getPeakUsage().getUsed()) for pool in self._heap_pools)

    def jvm_cpu_seconds(self) -> float:
        """User + system CPU seconds the JVM process has used so far."""
        fields = Path(f"/proc/{self.jvm_pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS

    def jvm_peak_rss_bytes(self) -> int:
        """The JVM process's peak resident memory (VmHWM)."""
        for line in Path(f"/proc/{self.jvm_pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
        return 0

    @staticmethod
    def python_peak_rss_bytes() -> int:
        """This Python process's peak resident memory (ru_maxrss)."""
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


@dataclass(frozen=True)
class Usage:
    """What one phase cost."""

    seconds: float
    jvm_cpu_seconds: float
    heap_peak_bytes: int
    load_average: float
    spark_jobs: int


def measure(probe: Probe, action: Callable[[], Result]) -> tuple[Result, Usage]:
    """Run `action`; return its result and what it cost."""
    probe.reset_heap_peak()
    jobs_before = probe.jobs_started()
    cpu_before = probe.jvm_cpu_seconds()
    started = time.perf_counter()
    result = action()
    seconds = time.perf_counter() - started
    usage = Usage(
        seconds=seconds,
        jvm_cpu_seconds=probe.jvm_cpu_seconds() - cpu_before,
        heap_peak_bytes=probe.heap_peak_bytes(),
        load_average=os.getloadavg()[0],
        spark_jobs=probe.jobs_started() - jobs_before,
    )
    return result, usage


@dataclass(frozen=True)
class FileAction:
    """One add or remove action of a commit."""

    kind: str
    path: str
    order_date: str | None
    has_deletion_vector: bool


def file_actions(table_path: str, version: int) -> list[FileAction]:
    """Read the add and remove actions of one commit from the table's local log."""
    log_file = Path(table_path) / "_delta_log" / f"{version:020d}.json"
    actions = []
    for line in log_file.read_text().splitlines():
        entry = json.loads(line)
        for kind in ("add", "remove"):
            if kind in entry:
                action = entry[kind]
                actions.append(
                    FileAction(
                        kind=kind,
                        path=action["path"],
                        order_date=(action.get("partitionValues") or {}).get("order_date"),
                        has_deletion_vector=action.get("deletionVector") is not None,
                    )
                )
    return actions


def files_touched_by_date(actions: list[FileAction]) -> dict[str | None, int]:
    """Count distinct data files added or removed, per `order_date` (None: unpartitioned)."""
    paths: dict[str | None, set[str]] = {}
    for action in actions:
        paths.setdefault(action.order_date, set()).add(action.path)
    return {day: len(found) for day, found in paths.items()}


@dataclass(frozen=True)
class CommitStats:
    """One commit's Delta metrics, normalised across WRITE and MERGE.

    `rows_added` are rows written to new files (inserted, updated and copied ones);
    `rows_removed` are rows that stopped being visible (rows before + added - after);
    `rows_changed` is inserted + updated + deleted where Delta reports it (MERGE), else None.
    """

    table: str
    version: int
    operation: str
    files_added: int
    files_removed: int
    deletion_vectors_added: int
    rows_added: int
    rows_removed: int
    rows_copied: int
    rows_changed: int | None
    files_by_date: Mapping[str | None, int] = field(default_factory=lambda: MappingProxyType({}))
    metrics: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))

    def as_dict(self) -> dict[str, Any]:
        """Return a JSON-ready copy."""
        return {
            "table": self.table,
            "version": self.version,
            "operation": self.operation,
            "files_added": self.files_added,
            "files_removed": self.files_removed,
            "deletion_vectors_added": self.deletion_vectors_added,
            "rows_added": self.rows_added,
            "rows_removed": self.rows_removed,
            "rows_copied": self.rows_copied,
            "rows_changed": self.rows_changed,
            "files_by_date": {str(k): v for k, v in self.files_by_date.items()},
            "metrics": dict(self.metrics),
        }


def row_count(spark: SparkSession, path: str, version: int) -> int:
    """Count the rows of a table version (Delta answers from its statistics)."""
    return spark.read.format("delta").option("versionAsOf", version).load(path).count()


def _stats(spark: SparkSession, table: str, path: str, commit: Commit) -> CommitStats:
    m = commit.metric
    rows_added = m("numOutputRows")
    before = row_count(spark, path, commit.version - 1) if commit.version > 0 else 0
    after = row_count(spark, path, commit.version)
    changed = (
        m("numTargetRowsInserted") + m("numTargetRowsUpdated") + m("numTargetRowsDeleted")
        if commit.operation == "MERGE"
        else None
    )
    return CommitStats(
        table=table,
        version=commit.version,
        operation=commit.operation,
        files_added=m("numFiles") + m("numTargetFilesAdded") + m("numAddedFiles"),
        files_removed=m("numRemovedFiles") + m("numTargetFilesRemoved"),
        deletion_vectors_added=m("numTargetDeletionVectorsAdded") + m("numDeletionVectorsAdded"),
        rows_added=rows_added,
        rows_removed=before + rows_added - after,
        rows_copied=m("numTargetRowsCopied") + m("numCopiedRows"),
        rows_changed=changed,
        files_by_date=MappingProxyType(files_touched_by_date(file_actions(path, commit.version))),
        metrics=commit.metrics,
    )


def commit_stats(
    spark: SparkSession, table: str, path: str, after_version: int | None
) -> list[CommitStats]:
    """Return the stats of every commit of the table after `after_version`, oldest first."""
    return [
        _stats(spark, table, path, commit)
        for commit in commits(spark, path, after_version)
        if after_version is None or commit.version > after_version
    ]
