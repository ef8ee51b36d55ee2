"""What the incremental's window reads: its watermark and the dates where a window's orders
have rows now (from `fct_orders`), and the landing rows it must MERGE.

Rows landed since the last MERGE. The latest-version rule is a maximum per order, and a
MERGE updates a row only with a strictly newer version, so merging a version that
`fct_orders` already absorbed changes nothing. Say the newest commit of `fct_orders` is a
MERGE of the window, committed right on top of the version it read, that recorded the
landing version `L0` it read and its window's lower bound `since0`. Then every landing row
committed by `L0` with `effective_ingested_at >= since` (for a `since >= since0`) is in it
already, and this run's window needs only its rows committed after `L0`: read from
landing's change data feed when every commit since `L0` is an append (nothing compacted or
vacuumed away). Anything else (another commit to `fct_orders` since, a wider window, a
recreated landing table) reads the whole window.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from orders_etl.io.history import commits
from orders_etl.io.tables import change_feed_on, table_id


def watermark(fct_df: DataFrame) -> datetime | None:
    """Return `max(effective_ingested_at)` of `fct_orders`, None when it is empty."""
    row = fct_df.agg(F.max("effective_ingested_at").alias("m")).first()
    return None if row is None else row["m"]


def current_dates(fct_df: DataFrame, orders_df: DataFrame) -> list[date]:
    """Return the dates where the given orders have rows in `fct_orders` now.

    Reads only `order_id` and `order_date` of `fct_orders`. The join is Spark's choice: the
    window's orders grow with the data (a first build, a catch-up), so they are never forced
    into a broadcast. What is collected is one row per date.
    """
    rows = (
        fct_df.select("order_id", "order_date")
        .join(orders_df.select("order_id"), on="order_id", how="left_semi")
        .select("order_date")
        .distinct()
        .collect()
    )
    return [r["order_date"] for r in rows]


def distinct_dates(df: DataFrame) -> list[date]:
    """Return the distinct `order_date` values of `df` (one row per date is collected)."""
    return [r["order_date"] for r in df.select("order_date").distinct().collect()]


@dataclass(frozen=True)
class WindowMark:
    """What a MERGE of the window recorded with its commit: the landing table (its Delta id)
    and version it read, and the window's lower bound (None: all of landing)."""

    landing_table: str
    landing_version: int
    since: datetime | None

    def as_state(self) -> dict[str, object]:
        """The mark as a commit tag's state (see `io.history.run_tag`)."""
        return {
            "landing_table": self.landing_table,
            "landing_version": self.landing_version,
            "window_since": None if self.since is None else self.since.isoformat(),
        }

    @staticmethod
    def from_state(state: Mapping[str, object]) -> WindowMark | None:
        """Read a mark back from a commit tag's state; None when the commit holds none."""
        table, version, since = (
            state.get("landing_table"),
            state.get("landing_version"),
            state.get("window_since"),
        )
        if not isinstance(table, str) or not isinstance(version, int):
            return None
        if since is not None and not isinstance(since, str):
            return None
        return WindowMark(table, version, None if since is None else datetime.fromisoformat(since))


def window_mark(
    spark: SparkSession, landing_path: str, version: int, since: datetime | None
) -> WindowMark:
    """Return the mark of a MERGE that reads landing at `version` from `since`."""
    return WindowMark(table_id(spark, landing_path), version, since)


def merged_through(
    spark: SparkSession, fct_path: str, fct_version: int | None, landing_path: str, read: WindowMark
) -> int | None:
    """Return the landing version `L0` whose window rows `fct_orders` at `fct_version`
    already holds, when this run's window (`read`: the landing version it reads and its
    lower bound) needs only the rows committed after `L0`; None when it must read the whole
    window."""
    if fct_version is None:
        return None
    newest = commits(spark, fct_path, after_version=fct_version - 1)
    # The MERGE must have committed right on top of the version it read (no concurrent
    # commit slipped in between), so what it checked before reading is what it merged onto.
    if (
        len(newest) != 1
        or newest[0].operation != "MERGE"
        or newest[0].read_version != fct_version - 1
    ):
        return None
    mark = WindowMark.from_state(newest[0].state)
    if (
        mark is None
        or mark.landing_table != read.landing_table
        or mark.landing_version > read.landing_version
        or not _narrower(read.since, than=mark.since)
    ):
        return None
    if mark.landing_version == read.landing_version:
        return mark.landing_version
    if not _appends_since(spark, landing_path, mark.landing_version):
        return None
    return mark.landing_version


def _narrower(since: datetime | None, than: datetime | None) -> bool:
    """Tell whether the window from `since` lies inside the window from `than`."""
    return than is None or (since is not None and since >= than)


def _appends_since(spark: SparkSession, landing_path: str, version: int) -> bool:
    """Tell whether every landing commit after `version` is an append, with the change feed
    on: then the feed holds exactly the rows those commits added, and no file they added
    can have been compacted or vacuumed away."""
    if not change_feed_on(spark, landing_path):
        return False
    return all(
        c.operation == "WRITE" and c.parameters.get("mode") == "Append"
        for c in commits(spark, landing_path, after_version=version)
    )


def landing_rows(
    spark: SparkSession, landing_path: str, version: int, after_version: int | None
) -> DataFrame:
    """Return landing at `version`, or only the rows committed after `after_version` up to
    `version` (from its change feed); one row per landed line, landing's columns."""
    reader = spark.read.format("delta")
    if after_version is None:
        return reader.option("versionAsOf", version).load(landing_path)
    changes_df = (
        reader.option("readChangeFeed", "true")
        .option("startingVersion", after_version + 1)
        .option("endingVersion", version)
        .load(landing_path)
    )
    return changes_df.filter(F.col("_change_type") == "insert").drop(
        "_change_type", "_commit_version", "_commit_timestamp"
    )
