"""Delta commit history: a run's own commits, their metrics, and unpredicated overwrites."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import MappingProxyType

from delta.tables import DeltaTable
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from orders_etl.io.tables import table_version

_FILE_ACTION = T.StructType(
    [
        T.StructField("path", T.StringType()),
        T.StructField("partitionValues", T.MapType(T.StringType(), T.StringType())),
    ]
)
_LOG_LINE = T.StructType(
    [T.StructField("add", _FILE_ACTION), T.StructField("remove", _FILE_ACTION)]
)
_OVERWRITING_OPERATIONS = frozenset(
    {
        "WRITE",
        "CREATE TABLE AS SELECT",
        "REPLACE TABLE AS SELECT",
        "CREATE OR REPLACE TABLE AS SELECT",
        "REPLACE TABLE",
        "CREATE OR REPLACE TABLE",
        "TRUNCATE",
        "DELETE",
        "STREAMING UPDATE",
    }
)


@dataclass(frozen=True)
class Commit:
    """One entry of a Delta table's history."""

    version: int
    operation: str
    parameters: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    metrics: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    user_metadata: str | None = None
    read_version: int | None = None

    def metric(self, name: str) -> int:
        """Return an integer operation metric, 0 when Delta did not record it."""
        value = self.metrics.get(name)
        return int(value) if value not in (None, "") else 0

    @property
    def run_id(self) -> str | None:
        """The run that made the commit: its `userMetadata`, or the `run_id` of a tag."""
        tag = _tag(self.user_metadata)
        return self.user_metadata if tag is None else str(tag.get("run_id"))

    @property
    def state(self) -> Mapping[str, object]:
        """What the run recorded with the commit (see `run_tag`); empty when nothing."""
        return MappingProxyType(_tag(self.user_metadata) or {})


def run_tag(run_id: str, state: Mapping[str, object]) -> str:
    """Return a commit's `userMetadata` that names its run and records `state` with it,
    atomically with the commit: `{"run_id": "...", ...}`."""
    return json.dumps({"run_id": run_id, **state}, sort_keys=True, default=str)


def _tag(user_metadata: str | None) -> dict[str, object] | None:
    if not user_metadata or not user_metadata.startswith("{"):
        return None
    try:
        tag = json.loads(user_metadata)
    except ValueError:
        return None
    return tag if isinstance(tag, dict) and "run_id" in tag else None


def commits(spark: SparkSession, path: str, after_version: int | None = None) -> list[Commit]:
    """Return the table's commits, oldest first, optionally only those after a version.

    After a version, only the newest commits are read from the log (`history(n)`), so the
    cost follows the commits asked for, not the table's age; read again with a larger `n`
    when commits landed between finding the latest version and reading them.
    """
    if after_version is None:
        return _commits(DeltaTable.forPath(spark, path).history())
    latest = table_version(spark, path)
    if latest is None or latest <= after_version:
        return []
    wanted = latest - after_version
    while True:
        found = _commits(DeltaTable.forPath(spark, path).history(wanted))
        if len(found) < wanted or found[0].version <= after_version + 1:
            return [c for c in found if c.version > after_version]
        wanted *= 2


def _commits(history_df: DataFrame) -> list[Commit]:
    rows = history_df.select(
        "version",
        "operation",
        "operationParameters",
        "operationMetrics",
        "userMetadata",
        "readVersion",
    ).collect()
    return sorted(
        (
            Commit(
                version=int(r["version"]),
                operation=str(r["operation"]),
                parameters=MappingProxyType(dict(r["operationParameters"] or {})),
                metrics=MappingProxyType(dict(r["operationMetrics"] or {})),
                user_metadata=r["userMetadata"],
                read_version=None if r["readVersion"] is None else int(r["readVersion"]),
            )
            for r in rows
        ),
        key=lambda c: c.version,
    )


def commit_time(spark: SparkSession, path: str, version: int) -> datetime | None:
    """Return when commit `version` of the table at `path` was made (UTC), or None when the
    table has no such commit (not made yet, or cleaned out of the log)."""
    latest = table_version(spark, path)
    if latest is None or version > latest or version < 0:
        return None
    row = (
        DeltaTable.forPath(spark, path)
        .history(latest - version + 1)
        .filter(F.col("version") == version)
        .select("timestamp")
        .first()
    )
    return None if row is None else row["timestamp"].replace(tzinfo=UTC)


def commits_of_run(
    spark: SparkSession, path: str, run_id: str, after_version: int | None = None
) -> list[Commit]:
    """Return the commits a run made (tagged with its run id as user metadata)."""
    return [c for c in commits(spark, path, after_version) if c.run_id == run_id]


def is_unpredicated_overwrite(commit: Commit) -> bool:
    """Tell whether a commit replaced data of the whole table (no partition predicate)."""
    if commit.operation not in _OVERWRITING_OPERATIONS:
        return False
    if commit.operation in (
        "TRUNCATE",
        "REPLACE TABLE",
        "CREATE OR REPLACE TABLE",
        "REPLACE TABLE AS SELECT",
        "CREATE OR REPLACE TABLE AS SELECT",
    ):
        return True
    if commit.operation == "DELETE":
        return commit.parameters.get("predicate", "[]") in ("[]", "", '["true"]')
    mode = commit.parameters.get("mode", "")
    if mode.lower() not in ("overwrite", "complete"):
        return False
    predicate = commit.parameters.get("predicate", "")
    return predicate in ("", "[]")


def unpredicated_overwrites(commit_list: Iterable[Commit]) -> list[Commit]:
    """Keep the commits that overwrote the whole table."""
    return [c for c in commit_list if is_unpredicated_overwrite(c)]


def touched_partitions(
    spark: SparkSession, path: str, versions: Iterable[int], column: str
) -> list[str]:
    """Return the values of `column` of every file added or removed by the given commits."""
    files = [f"{path.rstrip('/')}/_delta_log/{v:020d}.json" for v in versions]
    if not files:
        return []
    log_df = spark.read.text(files).select(F.from_json("value", _LOG_LINE).alias("a"))
    values = log_df.select(
        F.explode(
            F.array(
                F.col("a.add.partitionValues").getItem(column),
                F.col("a.remove.partitionValues").getItem(column),
            )
        ).alias("value")
    ).filter(F.col("value").isNotNull())
    return sorted(r["value"] for r in values.distinct().collect())


def changed_values(
    spark: SparkSession, path: str, column: str, after_version: int, to_version: int
) -> list[object]:
    """Return the distinct non-null values of `column` among the rows changed after
    `after_version` up to `to_version`, from the table's change data feed (one value per
    changed partition value, say). Raises when the feed cannot be read (vacuumed, or past
    the log's retention)."""
    rows = (
        spark.read.format("delta")
        .option("readChangeFeed", "true")
        .option("startingVersion", after_version + 1)
        .option("endingVersion", to_version)
        .load(path)
        .select(column)
        .distinct()
        .collect()
    )
    return sorted(r[column] for r in rows if r[column] is not None)
