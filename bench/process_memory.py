"""Run a process and sample its memory: the resident memory of its whole tree (a Python
driver and the JVM it starts), read from /proc every half second while it runs.

The peak of the sampled sums is what the machine had to hold for the run at once (within the
sampling interval), kept with the JVM's share of that sample; the JVM's own high-water mark
(VmHWM) is exact but covers the JVM alone. Forked Python workers share pages with their
daemon, which RSS counts in each: the sum is an upper bound.
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
from typing import Any

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


def processes() -> dict[int, tuple[int, str]]:
    """Every process of the machine: pid -> (parent pid, command name)."""
    found: dict[int, tuple[int, str]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            head, rest = stat.read_text().rsplit(") ", 1)
        except (OSError, ValueError):
            continue
        found[int(stat.parent.name)] = (int(rest.split()[1]), head.split(" (", 1)[1])
    return found


def descendants(root: int, table: Mapping[int, tuple[int, str]]) -> set[int]:
    """`root` and every process below it."""
    tree, frontier = {root}, {root}
    while frontier:
        frontier = {pid for pid, (parent, _) in table.items() if parent in frontier} - tree
        tree |= frontier
    return tree


def memory_of(pid: int) -> tuple[int, int]:
    """(resident bytes now, peak resident bytes VmHWM) of a process; zeros once it is gone."""
    try:
        rss_pages = int(Path(f"/proc/{pid}/statm").read_text().split()[1])
        status = Path(f"/proc/{pid}/status").read_text().splitlines()
    except (OSError, IndexError, ValueError):
        return 0, 0
    hwm = next((int(x.split()[1]) * 1024 for x in status if x.startswith("VmHWM:")), 0)
    return rss_pages * _PAGE, hwm


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
        total = jvm = 0
        for pid in tree:
            rss, hwm = memory_of(pid)
            total += rss
            if table.get(pid, (0, ""))[1] == "java":
                jvm += rss
                self.jvm_hwm_bytes = max(self.jvm_hwm_bytes, hwm)
        if total > self.peak_rss_bytes:
            self.peak_rss_bytes, self.peak_jvm_rss_bytes = total, jvm
        others = sum(1 for pid, (_, name) in table.items() if name == "java" and pid not in tree)
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
