"""The session factory's local JVM start: the Delta jars and the class archive `make setup`
leaves, and the configured JVM options kept beside the archive's."""

from __future__ import annotations

from pathlib import Path

import pytest
from pyspark.sql import SparkSession

from orders_etl.session import (
    ARCHIVE_VARIABLE,
    CLASS_ARCHIVE,
    archive_flags,
    cached_delta_jars,
    class_archive,
    delta_jars_dir,
    driver_java_options,
)


def test_the_archive_flags_come_first_so_configured_options_win() -> None:
    archive = Path("/v/classes.jsa")
    options = driver_java_options("-Xss4m -XX:+UseParallelGC", *archive_flags(archive))
    assert options is not None
    words = options.split()
    assert words[0] == f"-XX:SharedArchiveFile={archive}"
    assert "-Xlog:cds=off" in words and "-Xlog:cds+dynamic=off" in words
    assert words[-2:] == ["-Xss4m", "-XX:+UseParallelGC"]
    spaced = driver_java_options(None, *archive_flags(Path("/my venv/classes.jsa")))
    assert spaced is not None and spaced.startswith("-XX:SharedArchiveFile='/my venv/classes.jsa' ")
    assert driver_java_options("-Xss4m", *archive_flags(None)) == "-Xss4m"
    assert driver_java_options(None, *archive_flags(None)) is None


def test_off_starts_without_the_archive(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ARCHIVE_VARIABLE, "off")
    assert class_archive() is None


def test_no_archive_without_the_cached_jars(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ORDERS_ETL_JARS_DIR", str(tmp_path))
    (tmp_path / CLASS_ARCHIVE).write_bytes(b"an archive without its jars")
    assert cached_delta_jars() == []
    assert class_archive() is None


@pytest.mark.slow
def test_setup_left_an_archive_and_the_test_jvm_maps_it(spark: SparkSession) -> None:
    """`make setup` (which `make test` needs) writes the archive; the suite's own session was
    started with it. Slow tier: `make test-fast` runs without building the archive."""
    archive = class_archive()
    assert archive is not None, f"no {CLASS_ARCHIVE} in {delta_jars_dir()}: run make setup"
    jvm = spark.sparkContext._jvm
    assert jvm is not None
    runtime = jvm.java.lang.management.ManagementFactory.getRuntimeMXBean()
    arguments = list(runtime.getInputArguments())
    assert f"-XX:SharedArchiveFile={archive}" in arguments, arguments
