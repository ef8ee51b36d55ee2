"""Run a process and sample its memory: the resident memory of its whole tree (a Python
driver and the JVM it starts), read from /proc every half second while it runs.

The peak of the sampled sums is what the machine had to hold for the run at once (within the
sampling interval), kept with the JVM's share of that sample; the JVM's own high-water mark
(VmHWM) is exact but covers the JVM alone. A child with its parent's virtual size (the JVM's
clone before it execs a command, a fresh fork) is left out: it shares its parent's pages.
Python workers forked earlier still share some pages with their daemon, which RSS counts in
each, so the sum is an upper bound.

Other JVMs running beside the tree (another Spark job on the machine) are counted, since they
slow the run down.
"""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

SAMPLE_SECONDS = 0.5
_PAGE = os.sysconf("SC_PAGE_SIZE")


@dataclass(frozen=True)
class ProcessRun:
    """One finished process: wall seconds, exit code, output and peak memory."""

    argv: tuple[str, ...]
    seconds: float
    returncode: int
    stdout: str
    stderr: str
    peak_rss_bytes: int
    peak_jvm_rss_bytes: int
    jvm_hwm_bytes: int
    other_jvms: int

    @property
    def ok(self) -> bool:
        """Whether it exited 0."""
        return self.returncode == 0

    def reported(self) -> dict[str, Any]:
        """The JSON object the process printed last on stdout, or {}."""
        for line in reversed(self.stdout.splitlines()):
            if line.startswith("{"):
                found = json.loads(line)
                return found if isinstance(found, dict) else {}
        return {}

    def failure(self) -> str:
        """One line saying how it failed: its exit code and last line of stderr."""
        last = next((x for x in reversed(self.stderr.splitlines()) if x.strip()), "")
        return f"exit {self.returncode}: {last[:300]}"


class Proc(NamedTuple):
    """One process as /proc/<pid>/stat shows it."""

    parent: int
    name: str
    vsize: int
    rss_bytes: int


def processes() -> dict[int, Proc]:
    """Every process of the machine, by pid."""
    found: dict[int, Proc] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            head, rest = stat.read_text().rsplit(") ", 1)
        except (OSError, ValueError):
            continue
        fields = rest.split()  # fields 3.. of proc(5): state, ppid, ..., vsize (23), rss (24)
        name = head.split(" (", 1)[1]
        found[int(stat.parent.name)] = Proc(
            int(fields[1]), name, int(fields[20]), int(fields[21]) * _PAGE
        )
    return found


def descendants(root: int, table: Mapping[int, Proc]) -> set[int]:
    """`root` and every process below it."""
    tree, frontier = {root}, {root}
    while frontier:
        frontier = {pid for pid, proc in table.items() if proc.parent in frontier} - tree
        tree |= frontier
    return tree


def own_memory(tree: set[int], table: Mapping[int, Proc]) -> set[int]:
    """The processes of `tree` whose memory is their own. A child with its parent's virtual
    size is a clone (the JVM's, before it execs a command such as `chmod`) or a fresh fork,
    sharing its parent's pages: counted, it would count the JVM or its parent twice."""
    own = set()
    for pid in tree & table.keys():
        parent = table.get(table[pid].parent)
        if parent is None or table[pid].parent not in tree or parent.vsize != table[pid].vsize:
            own.add(pid)
    return own


def high_water_bytes(pid: int) -> int:
    """A process's peak resident memory (VmHWM), 0 once it is gone."""
    try:
        status = Path(f"/proc/{pid}/status").read_text().splitlines()
    except OSError:
        return 0
    return next((int(x.split()[1]) * 1024 for x in status if x.startswith("VmHWM:")), 0)


class PeakMemory:
    """The peaks seen so far of one process tree."""

    def __init__(self, root: int) -> None:
        self.root = root
        self.peak_rss_bytes = 0
        self.peak_jvm_rss_bytes = 0
        self.jvm_hwm_bytes = 0
        self.other_jvms = 0

    def sample(self) -> None:
        """Read the tree's memory once and keep the peaks."""
        table = processes()
        tree = descendants(self.root, table)
        counted = own_memory(tree, table)
        total = sum(table[pid].rss_bytes for pid in counted)
        jvms = [pid for pid in counted if table[pid].name == "java"]
        jvm = sum(table[pid].rss_bytes for pid in jvms)
        self.jvm_hwm_bytes = max([self.jvm_hwm_bytes, *(high_water_bytes(p) for p in jvms)])
        if total > self.peak_rss_bytes:
            self.peak_rss_bytes, self.peak_jvm_rss_bytes = total, jvm
        others = sum(1 for pid, proc in table.items() if proc.name == "java" and pid not in tree)
        self.other_jvms = max(self.other_jvms, others)

    def watch(self, stop: threading.Event) -> None:
        """Sample every `SAMPLE_SECONDS` until `stop` is set."""
        while not stop.is_set():
            self.sample()
            stop.wait(SAMPLE_SECONDS)


def run_sampled(argv: Sequence[str], env: Mapping[str, str], cwd: Path) -> ProcessRun:
    """Run `argv` to its end, sampling its tree's memory; return what it did and used."""
    started = time.monotonic()
    proc = subprocess.Popen(
        list(argv),
        env=dict(env),
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    peak, stop = PeakMemory(proc.pid), threading.Event()
    watcher = threading.Thread(target=peak.watch, args=(stop,), daemon=True)
    watcher.start()
    out, err = proc.communicate()
    seconds = time.monotonic() - started
    stop.set()
    watcher.join()
    return ProcessRun(
        argv=tuple(argv),
        seconds=seconds,
        returncode=proc.returncode,
        stdout=out,
        stderr=err[-5000:],
        peak_rss_bytes=peak.peak_rss_bytes,
        peak_jvm_rss_bytes=peak.peak_jvm_rss_bytes,
        jvm_hwm_bytes=peak.jvm_hwm_bytes,
        other_jvms=peak.other_jvms,
    )
