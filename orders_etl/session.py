"""The one SparkSession factory: Delta extension and catalog, UTC, settings from config."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from pyspark import SparkConf
from pyspark.sql import SparkSession

from orders_etl.config import SparkSettings

DELTA_EXTENSION = "io.delta.sql.DeltaSparkSessionExtension"
DELTA_CATALOG = "org.apache.spark.sql.delta.catalog.DeltaCatalog"
LOG_DIR_VARIABLE = "ORDERS_ETL_LOG_DIR"
JARS_DIR_VARIABLE = "ORDERS_ETL_JARS_DIR"
_JARS_COMPLETE = "COMPLETE"

# Settings the pipeline's correctness depends on, applied in every environment.
REQUIRED_CONF: Mapping[str, str] = {
    "spark.sql.session.timeZone": "UTC",
    # Delta's replaceWhere checks that written rows match the predicate: keep it on.
    "spark.databricks.delta.replaceWhere.constraintCheck.enabled": "true",
    # New tables get no deletion vectors unless a table property says so (only fct_orders):
    # every other table stays readable by readers without deletion-vector support.
    "spark.databricks.delta.properties.defaults.enableDeletionVectors": "false",
}


def under_spark_submit() -> bool:
    """Tell whether this Python driver was started by spark-submit (a JVM gateway exists)."""
    return "PYSPARK_GATEWAY_PORT" in os.environ


def spark_log_path() -> Path:
    """Return the file that receives the JVM's own output in a plain Python process."""
    folder = Path(os.environ.get(LOG_DIR_VARIABLE) or Path(tempfile.gettempdir()) / "orders_etl")
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"spark-{os.getpid()}.log"


def delta_jars_dir() -> Path:
    """Return the folder that holds this environment's resolved Delta jars.

    $ORDERS_ETL_JARS_DIR, or `<sys.prefix>/share/orders_etl/delta-<version>` (inside the
    virtualenv, so the jars always match the installed delta-spark and pyspark).
    """
    explicit = os.environ.get(JARS_DIR_VARIABLE)
    if explicit:
        return Path(explicit)
    from importlib.metadata import version

    import pyspark

    name = f"delta-{version('delta-spark')}-spark-{pyspark.__version__}"
    return Path(sys.prefix) / "share" / "orders_etl" / name


def cached_delta_jars() -> list[str]:
    """List the jars `make setup` cached, or nothing when the cache is absent or partial."""
    folder = delta_jars_dir()
    if not (folder / _JARS_COMPLETE).is_file():
        return []
    jars = sorted(str(p) for p in folder.glob("*.jar"))
    return jars if all(Path(j).is_file() for j in jars) else []


def cache_delta_jars(spark: SparkSession) -> Path:
    """Copy the jars Spark's resolver fetched for this session into `delta_jars_dir()`, so
    later local starts load them directly instead of resolving the package again."""
    resolved = [
        j.removeprefix("file:").removeprefix("//")
        for j in spark.sparkContext.getConf().get("spark.jars", "").split(",")
        if j.endswith(".jar")
    ]
    folder = delta_jars_dir()
    if not resolved:
        return folder
    staging = folder.with_name(folder.name + f".tmp-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    for jar in resolved:
        shutil.copy2(jar, staging / Path(jar).name)
    (staging / _JARS_COMPLETE).write_text("\n".join(Path(j).name for j in resolved) + "\n")
    shutil.rmtree(folder, ignore_errors=True)
    staging.rename(folder)
    return folder


@contextmanager
def _jvm_output_to(path: Path | None) -> Iterator[None]:
    """Send the output of a JVM started inside this block to `path` (stdout stays data-only)."""
    if path is None:
        yield
        return
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    log_fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        os.dup2(log_fd, 1)
        os.dup2(log_fd, 2)
        yield
    finally:
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in (*saved, log_fd):
            os.close(fd)


def get_spark(settings: SparkSettings, verbose: bool = False) -> SparkSession:
    """Build (or return the running) Delta-enabled session.

    In a plain Python process it sets master, the Delta jars and the config's `[spark.conf]`,
    and sends the JVM's output to a log file unless `verbose`. The jars are the ones
    `make setup` cached (`delta_jars_dir()`), loaded directly; without that cache, Spark's own
    `spark.jars.packages` resolves the Delta package from Maven Central on every start.
    Under spark-submit it leaves master, packages and any key spark-submit already set to the
    cluster, and adds only what is missing.
    """
    active = SparkSession.getActiveSession()
    if active is not None:
        _apply_runtime_conf(active, REQUIRED_CONF)
        return active
    builder = SparkSession.builder.appName(settings.app_name)
    if under_spark_submit():
        submitted = SparkConf()
        wanted = {
            "spark.sql.extensions": DELTA_EXTENSION,
            "spark.sql.catalog.spark_catalog": DELTA_CATALOG,
            **settings.conf,
        }
        for key, value in wanted.items():
            if not submitted.contains(key):
                builder = builder.config(key, value)
        for key, value in REQUIRED_CONF.items():
            builder = builder.config(key, value)
        spark = builder.getOrCreate()
    else:
        from delta import configure_spark_with_delta_pip

        if settings.master:
            builder = builder.master(settings.master)
        builder = builder.config("spark.sql.extensions", DELTA_EXTENSION).config(
            "spark.sql.catalog.spark_catalog", DELTA_CATALOG
        )
        for key, value in {**settings.conf, **REQUIRED_CONF}.items():
            builder = builder.config(key, value)
        jars = cached_delta_jars()
        if jars:
            builder = builder.config("spark.jars", ",".join(jars))
        else:
            builder = configure_spark_with_delta_pip(builder)
        with _jvm_output_to(None if verbose else spark_log_path()):
            spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("INFO" if verbose else "ERROR")
    return spark


def _apply_runtime_conf(spark: SparkSession, conf: Mapping[str, str]) -> None:
    for key, value in conf.items():
        spark.conf.set(key, value)


def warm_up() -> str:
    """Start and stop one session so Spark resolves the Delta jars, cache them for later
    starts (`cache_delta_jars`); return Delta's version as the JVM reports it."""
    spark = get_spark(SparkSettings(conf={"spark.ui.enabled": "false"}))
    try:
        if not cached_delta_jars():
            cache_delta_jars(spark)
        jvm = spark.sparkContext._jvm
        assert jvm is not None
        return str(jvm.io.delta.VersionUtils.getVersion())
    except Exception:
        return "resolved"
    finally:
        spark.stop()


if __name__ == "__main__":
    print(
        f"Spark with Delta Lake ready ({warm_up()}); jars in {delta_jars_dir()}; "
        f"JVM log in {spark_log_path()}"
    )
