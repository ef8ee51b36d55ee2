"""The machine, the JVM and the versions the numbers are taken on."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path

from measure import Probe
from pyspark.sql import SparkSession


@dataclass(frozen=True)
class Machine:
    """The machine, JVM and versions the numbers were taken on."""

    cpus: int
    cpu_model: str
    memory_bytes: int
    java: str
    spark: str
    delta: str
    python: str
    heap_max_bytes: int
    load_at_start: tuple[float, float, float]


def memory_bytes() -> int:
    """The machine's memory (MemTotal of /proc/meminfo), 0 when not found."""
    meminfo = Path("/proc/meminfo").read_text().splitlines()
    mem_kib = next((int(x.split()[1]) for x in meminfo if x.startswith("MemTotal:")), 0)
    return mem_kib * 1024


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo, empty when not found."""
    cpuinfo = Path("/proc/cpuinfo").read_text().splitlines()
    return next((x.split(":", 1)[1].strip() for x in cpuinfo if x.startswith("model name")), "")


def delta_version(spark: SparkSession) -> str:
    """The Delta Lake version the JVM runs, else the installed delta-spark package's."""
    jvm = spark.sparkContext._jvm
    assert jvm is not None
    try:
        return str(jvm.io.delta.VersionUtils.getVersion())
    except Exception:
        return version("delta-spark")


def describe_machine(spark: SparkSession, probe: Probe) -> Machine:
    """Describe the machine, the JVM and the versions the numbers were taken on."""
    jvm = spark.sparkContext._jvm
    assert jvm is not None
    system = jvm.java.lang.System
    memory, model = memory_bytes(), cpu_model()
    return Machine(
        cpus=len(os.sched_getaffinity(0)),
        cpu_model=model,
        memory_bytes=memory,
        java=f"{system.getProperty('java.vm.name')} {system.getProperty('java.version')}",
        spark=spark.version,
        delta=delta_version(spark),
        python=sys.version.split()[0],
        heap_max_bytes=probe.heap_max_bytes(),
        load_at_start=os.getloadavg(),
    )
