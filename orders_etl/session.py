"""The one SparkSession factory: Delta extension and catalog, UTC, settings from config, and
the Hive catalog for the runs that register names in one."""

from __future__ import annotations

import os
import shlex
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import TypeVar

from pyspark import SparkConf
from pyspark.sql import SparkSession

from orders_etl.config import SparkSettings

DELTA_EXTENSION = "io.delta.sql.DeltaSparkSessionExtension"
DELTA_CATALOG = "org.apache.spark.sql.delta.catalog.DeltaCatalog"
CATALOG_IMPLEMENTATION = "spark.sql.catalogImplementation"
# The embedded metastore of a warehouse on this machine: `<warehouse>/_catalog/`. Commands list
# tables by name (io/tables.py TABLES), never the root, so this folder is no table; the demo's
# fresh start deletes it with the rest of its warehouse.
CATALOG_FOLDER = "_catalog"
LOG_DIR_VARIABLE = "ORDERS_ETL_LOG_DIR"
JARS_DIR_VARIABLE = "ORDERS_ETL_JARS_DIR"
_JARS_COMPLETE = "COMPLETE"
# HotSpot's class-data-sharing archive of the classes a pipeline run loads, written by
# `make setup` beside the cached jars (`orders_etl.class_archive`). A local start maps it instead
# of loading and verifying those classes again from the jars.
CLASS_ARCHIVE = "classes.jsa"
JAVA_OPTIONS = "spark.driver.extraJavaOptions"
ARCHIVE_VARIABLE = "ORDERS_ETL_CLASS_ARCHIVE"  # "off": start without the archive
# A JVM that cannot use the archive (another JDK build, a changed class path) starts without it;
# its warnings about that would go to the JVM's stdout, so they are off.
_QUIET_ARCHIVE = ("-Xshare:auto", "-Xlog:cds=off", "-Xlog:cds+dynamic=off")
USER_METADATA_CONF = "spark.databricks.delta.commitInfo.userMetadata"
# Read-only Spark jobs of one run that `concurrently` submits at once. A small job spends most
# of its time in the driver (planning, Delta's snapshot and file listing), so a few at once
# keep the executor cores busy; more than this only queue.
CONCURRENT_JOBS = 4
Result = TypeVar("Result")

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


def class_archive() -> Path | None:
    """Return the class archive `make setup` wrote for this environment's jars; None without
    one, or with $ORDERS_ETL_CLASS_ARCHIVE set to `off`."""
    if os.environ.get(ARCHIVE_VARIABLE, "").strip().lower() == "off":
        return None
    path = delta_jars_dir() / CLASS_ARCHIVE
    return path if path.is_file() and cached_delta_jars() else None


def path_flag(flag: str, path: Path) -> str:
    """Return the JVM flag `flag=path`, the path quoted as Spark's option splitting (a shell's)
    needs when it holds spaces."""
    return f"{flag}={shlex.quote(str(path))}"


def archive_flags(archive: Path | None) -> tuple[str, ...]:
    """Return the JVM flags that map `archive` quietly; none without one."""
    return (path_flag("-XX:SharedArchiveFile", archive), *_QUIET_ARCHIVE) if archive else ()


def driver_java_options(configured: str | None, *flags: str) -> str | None:
    """Return the local driver JVM's options: `flags`, then the configured ones (which win,
    being later); None when there are neither.

    >>> driver_java_options("-Xss4m", "-Xshare:auto")
    '-Xshare:auto -Xss4m'
    """
    options = " ".join([*flags, *([configured] if configured else [])])
    return options or None


def local_catalog_dir(warehouse_root: str) -> Path | None:
    """Return the folder of the embedded metastore beside a warehouse on this machine, or None
    for a remote warehouse (its metastore is the cluster's: Hive, Glue)."""
    local = warehouse_root.removeprefix("file:")
    if "://" in local:
        return None
    if warehouse_root.startswith("file:"):
        local = "/" + local.lstrip("/")
    return Path(os.path.abspath(local)) / CATALOG_FOLDER


def catalog_conf(warehouse_root: str) -> dict[str, str]:
    """Return the settings of a session that opens the Hive catalog of `warehouse_root`.

    Always the Hive catalog implementation. For a warehouse on this machine also Spark's
    embedded Derby metastore, kept in `<warehouse>/_catalog/metastore_db` so the names persist
    across runs, `<warehouse>/_catalog/databases` as `spark.sql.warehouse.dir` (the databases'
    own folders; every table is external, at its warehouse path), and Hive's scratch folder
    `<warehouse>/_catalog/resources`. A remote warehouse gets no Derby settings: the cluster's
    metastore applies (`spark.hadoop.hive.metastore.uris` or AWS Glue, in `[spark.conf]` or
    the cluster's hive-site.xml).
    """
    conf = {CATALOG_IMPLEMENTATION: "hive"}
    folder = local_catalog_dir(warehouse_root)
    if folder is not None:
        conf["spark.hadoop.javax.jdo.option.ConnectionURL"] = (
            f"jdbc:derby:;databaseName={folder / 'metastore_db'};create=true"
        )
        conf["spark.sql.warehouse.dir"] = str(folder / "databases")
        # Hive's per-session scratch folder, otherwise a new /tmp/<uuid>_resources every run.
        conf["spark.hadoop.hive.downloaded.resources.dir"] = str(folder / "resources")
    return conf


def _derby_home(spark: SparkSession, warehouse_root: str) -> None:
    """Send Derby's `derby.log` beside its metastore instead of the working folder, unless the
    JVM was started with a `derby.system.home` (Derby boots lazily, on the first catalog use)."""
    folder = local_catalog_dir(warehouse_root)
    jvm = spark.sparkContext._jvm
    if folder is None or jvm is None or jvm.java.lang.System.getProperty("derby.system.home"):
        return
    folder.mkdir(parents=True, exist_ok=True)
    jvm.java.lang.System.setProperty("derby.system.home", str(folder))


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


def get_spark(
    settings: SparkSettings, verbose: bool = False, catalog_root: str | None = None
) -> SparkSession:
    """Build (or return the running) Delta-enabled session.

    In a plain Python process it sets master, the Delta jars and the config's `[spark.conf]`,
    and sends the JVM's output to a log file unless `verbose`. The jars are the ones
    `make setup` cached (`delta_jars_dir()`), loaded directly; without that cache, Spark's own
    `spark.jars.packages` resolves the Delta package from Maven Central on every start.
    Under spark-submit it leaves master, packages and any key spark-submit already set to the
    cluster, and adds only what is missing.

    With `catalog_root` (a warehouse root) the session opens that warehouse's Hive catalog
    (`catalog_conf`; `[spark.conf]` and spark-submit win over its defaults); without it the
    session keeps Spark's in-memory catalog and never starts a metastore client.
    """
    active = SparkSession.getActiveSession()
    if active is not None:
        _apply_runtime_conf(active, REQUIRED_CONF)
        return active
    # Python turns the timestamps Spark returns into this process's local time: make it UTC.
    os.environ["TZ"] = "UTC"
    time.tzset()
    builder = SparkSession.builder.appName(settings.app_name)
    catalog = catalog_conf(catalog_root) if catalog_root is not None else {}
    if under_spark_submit():
        submitted = SparkConf()
        wanted = {
            "spark.sql.extensions": DELTA_EXTENSION,
            "spark.sql.catalog.spark_catalog": DELTA_CATALOG,
            **catalog,
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
        for key, value in {**catalog, **settings.conf, **REQUIRED_CONF}.items():
            builder = builder.config(key, value)
        jars = cached_delta_jars()
        if jars:
            builder = builder.config("spark.jars", ",".join(jars))
        else:
            builder = configure_spark_with_delta_pip(builder)
        java_options = driver_java_options(
            settings.conf.get(JAVA_OPTIONS), *archive_flags(class_archive())
        )
        if java_options:
            builder = builder.config(JAVA_OPTIONS, java_options)
        with _jvm_output_to(None if verbose else spark_log_path()):
            spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("INFO" if verbose else "ERROR")
    _quiet_when_the_jvm_hangs_up(spark)
    if catalog_root is not None:
        _derby_home(spark, catalog_root)
    return spark


def _quiet_when_the_jvm_hangs_up(spark: SparkSession) -> None:
    """Keep pyspark's accumulator server from printing a traceback when the JVM's connection
    to it ends mid-update (the JVM was killed or ran out of memory): the command reports that
    in one line (`runner.jvm_failure`). Any other error of the server is printed as before."""
    server = getattr(spark.sparkContext, "_accumulatorServer", None)
    if server is None:
        return
    print_traceback = server.handle_error

    def handle_error(request: object, client_address: object) -> None:
        if not isinstance(sys.exc_info()[1], EOFError | ConnectionError):
            print_traceback(request, client_address)

    server.handle_error = handle_error


def run_session(base: SparkSession, run_id: str) -> SparkSession:
    """Return a session of its own for one run: a clone of `base` (same SparkContext, cache
    and catalog, a copy of its SQL conf) whose Delta commits carry `run_id` as their
    `userMetadata`.

    Tagging a clone, never `base`, keeps two runs that share one SparkContext (in threads,
    or one after another as the demo runs them) from tagging each other's commits.
    `cloneSession` copies the runtime conf set on `base` after it started, which
    `newSession` would drop.
    """
    session = SparkSession(base.sparkContext, base._jsparkSession.cloneSession())
    session.conf.set(USER_METADATA_CONF, run_id)
    return session


@contextmanager
def session_conf(spark: SparkSession, settings: Mapping[str, str]) -> Iterator[None]:
    """Apply runtime `settings` inside the block, then restore what each key was (unset if it
    was unset). Only for a block that runs alone in its session: the settings are
    session-wide."""
    previous = {key: spark.conf.get(key, None) for key in settings}
    _apply_runtime_conf(spark, settings)
    try:
        yield
    finally:
        for key, value in previous.items():
            if value is None:
                spark.conf.unset(key)
            else:
                spark.conf.set(key, value)


def commits_tagged(spark: SparkSession, user_metadata: str) -> AbstractContextManager[None]:
    """Tag the Delta commits made inside the block with `user_metadata`, then restore the
    run's own tag."""
    return session_conf(spark, {USER_METADATA_CONF: user_metadata})


def concurrently(actions: Sequence[Callable[[], Result]]) -> list[Result]:
    """Run independent read-only Spark actions of one session at once, each in a thread of
    its own (PySpark pins each to a JVM thread); return their results in the given order.

    The first action that raises re-raises here once all have ended. Only for actions that
    write nothing: each may see any table version committed while the others run.
    """
    if len(actions) < 2:
        return [action() for action in actions]
    with ThreadPoolExecutor(max_workers=min(len(actions), CONCURRENT_JOBS)) as pool:
        futures = [pool.submit(action) for action in actions]
        return [f.result() for f in futures]


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
