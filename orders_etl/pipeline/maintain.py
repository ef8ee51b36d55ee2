"""The daily upkeep of the warehouse's files; never changes a row of any table.

`fct_orders`, on the days `start..end` only (the recent ones, where hourly MERGEs leave small
files and deletion vectors): OPTIMIZE compacts the small files, and with them the files whose
deleted-row share is over Delta's `optimize.maxDeletedRowsRatio`; then REORG ... APPLY (PURGE)
rewrites, on the days where one is left, a file still over that share (a file alone in its
partition, which OPTIMIZE never rewrites). Below that share a deletion vector still pays: it
spares the MERGE a rewrite, so `fct_orders` keeps them.

Every other table, whole: OPTIMIZE; where the table still has the deletion-vector feature (it
was made before only `fct_orders` had them), purge them and drop the feature, so readers
without deletion-vector support open it.

Then VACUUM of every table with `[maintain] retention_hours`; for `fct_orders` at least as long
as the oldest commit whose change data feed the next `rollup` still has to read.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime
from types import MappingProxyType
from typing import Any

from orders_etl.context import CommandResult, RunContext
from orders_etl.io.history import Commit, commit_time, commits_of_run
from orders_etl.io.ledger import ROLLUP_CHECKPOINT_METRIC, last_metric
from orders_etl.io.maintenance import (
    compact,
    days_over_deleted_share,
    drop_deletion_vectors,
    max_deleted_rows_share,
    purge_deletion_vectors,
    vacuum,
)
from orders_etl.io.tables import table_detail, table_exists, table_version
from orders_etl.io.writes import dates_between_sql, dates_in_sql, retry_on_conflict
from orders_etl.schemas import (
    DAILY_REVENUE,
    FCT_ORDERS,
    ORDERS_LANDING,
    ORDERS_QUARANTINE,
    PIPELINE_RUNS,
    REVENUE_REVISIONS,
)

MAINTAINED = (
    FCT_ORDERS,
    DAILY_REVENUE,
    ORDERS_LANDING,
    ORDERS_QUARANTINE,
    REVENUE_REVISIONS,
    PIPELINE_RUNS,
)


@dataclass(frozen=True)
class MaintainParams:
    """`maintain`'s arguments: the `fct_orders` days to compact, checked before Spark starts."""

    start: date
    end: date


@dataclass(frozen=True)
class TableUpkeep:
    """What one maintain run did to one table: `DESCRIBE DETAIL` before and after, and what
    its own commits report."""

    files_before: int
    bytes_before: int
    files_after: int
    bytes_after: int
    optimize_files_added: int
    optimize_files_removed: int
    purge_files_rewritten: int
    deletion_vectors_removed: int
    deletion_vectors_feature_dropped: bool
    vacuum_retention_hours: int
    # None when Delta did not log the VACUUM (it logs it only on file systems it trusts with
    # concurrent writes, or with spark.databricks.delta.vacuum.logging.enabled).
    vacuum_files_deleted: int | None
    commits: tuple[int, ...]


def feed_retention_hours(configured: int, unread_since: datetime | None, now: datetime) -> int:
    """Return the VACUUM retention of `fct_orders`: the configured one, or longer when the
    oldest commit the next rollup still reads (made at `unread_since`) is older.

    Rounded up to the next whole hour plus one, for the files a commit writes just before
    it lands and the time VACUUM itself takes. `now` is the wall clock: VACUUM compares
    file times with it, not with the run's processing time. For example: 168 configured and
    the oldest unread commit 192.5 hours old give 194.
    """
    if unread_since is None:
        return configured
    age_hours = (now - unread_since).total_seconds() / 3600
    return max(configured, math.ceil(age_hours) + 1)


def _fct_retention_hours(ctx: RunContext) -> int:
    """The retention that keeps the change data feed the next rollup reads."""
    last = last_metric(ctx.spark, ctx.warehouse, ROLLUP_CHECKPOINT_METRIC)
    fct_path = ctx.warehouse.path(FCT_ORDERS)
    unread_since = None if last is None else commit_time(ctx.spark, fct_path, last + 1)
    return feed_retention_hours(
        ctx.config.maintain.retention_hours, unread_since, datetime.now(UTC)
    )


def _sum(made: list[Commit], operation: str, metric: str) -> int:
    return sum(c.metric(metric) for c in made if c.operation == operation)


def _fct_steps(ctx: RunContext, params: MaintainParams, path: str) -> None:
    """Compact the range, then purge the deletion vectors OPTIMIZE left over the share."""
    spark, retries = ctx.spark, ctx.config.retries
    in_range = dates_between_sql("order_date", params.start, params.end)
    retry_on_conflict(lambda: compact(spark, path, in_range), retries, "maintain OPTIMIZE")
    days = days_over_deleted_share(
        spark, path, "order_date", params.start, params.end, max_deleted_rows_share(spark)
    )
    if days is None or days:
        where = in_range if days is None else dates_in_sql("order_date", days)
        retry_on_conflict(
            lambda: purge_deletion_vectors(spark, path, where), retries, "maintain REORG"
        )


def _other_steps(ctx: RunContext, path: str, has_deletion_vectors: bool) -> None:
    """Compact the whole table; purge and drop deletion vectors it should not have."""
    spark, retries = ctx.spark, ctx.config.retries
    retry_on_conflict(lambda: compact(spark, path), retries, "maintain OPTIMIZE")
    if has_deletion_vectors:
        retry_on_conflict(lambda: purge_deletion_vectors(spark, path), retries, "maintain REORG")
        retry_on_conflict(
            lambda: drop_deletion_vectors(spark, path), retries, "maintain DROP FEATURE"
        )


def upkeep(ctx: RunContext, params: MaintainParams, table: str, retention: int) -> TableUpkeep:
    """Compact, purge and vacuum one table; report its files before and after."""
    spark = ctx.spark
    path = ctx.warehouse.path(table)
    before = table_detail(spark, path)
    version_before = table_version(spark, path)
    if table == FCT_ORDERS:
        _fct_steps(ctx, params, path)
    else:
        _other_steps(ctx, path, before.has_deletion_vectors_feature)
    retry_on_conflict(lambda: vacuum(spark, path, retention), ctx.config.retries, "maintain VACUUM")
    after = table_detail(spark, path)
    made = commits_of_run(spark, path, ctx.run_id, version_before)
    vacuums = [c for c in made if c.operation == "VACUUM END"]
    return TableUpkeep(
        files_before=before.num_files,
        bytes_before=before.size_in_bytes,
        files_after=after.num_files,
        bytes_after=after.size_in_bytes,
        optimize_files_added=_sum(made, "OPTIMIZE", "numAddedFiles"),
        optimize_files_removed=_sum(made, "OPTIMIZE", "numRemovedFiles"),
        purge_files_rewritten=_sum(made, "REORG", "numRemovedFiles"),
        deletion_vectors_removed=(
            _sum(made, "OPTIMIZE", "numDeletionVectorsRemoved")
            + _sum(made, "REORG", "numDeletionVectorsRemoved")
        ),
        deletion_vectors_feature_dropped=any(c.operation == "DROP FEATURE" for c in made),
        vacuum_retention_hours=retention,
        vacuum_files_deleted=(
            sum(c.metric("numDeletedFiles") for c in vacuums) if vacuums else None
        ),
        commits=tuple(c.version for c in made),
    )


@dataclass(frozen=True)
class MaintainResult(CommandResult):
    """What one maintain run did to each table present."""

    params: MaintainParams
    tables: Mapping[str, TableUpkeep]

    @property
    def metrics(self) -> Mapping[str, Any]:
        tables = self.tables.values()
        return {
            "start": self.params.start.isoformat(),
            "end": self.params.end.isoformat(),
            "tables": {name: asdict(t) for name, t in self.tables.items()},
            "files_before": sum(t.files_before for t in tables),
            "files_after": sum(t.files_after for t in tables),
            "bytes_before": sum(t.bytes_before for t in tables),
            "bytes_after": sum(t.bytes_after for t in tables),
            "tables_absent": [t for t in MAINTAINED if t not in self.tables],
        }

    def summary(self) -> str:
        tables = self.tables
        fct = tables.get(FCT_ORDERS)
        dropped = [name for name, t in tables.items() if t.deletion_vectors_feature_dropped]
        deleted = [t.vacuum_files_deleted for t in tables.values()]
        fct_part = (
            f" (fct_orders {self.params.start}..{self.params.end}: {fct.files_before} -> "
            f"{fct.files_after}, vacuum retention {fct.vacuum_retention_hours} h)"
            if fct
            else ""
        )
        return (
            f"files {sum(t.files_before for t in tables.values())} -> "
            f"{sum(t.files_after for t in tables.values())} in {len(tables)} table(s)"
            f"{fct_part}; deletion vectors removed "
            f"{sum(t.deletion_vectors_removed for t in tables.values())}; "
            f"deletion-vector feature dropped from {', '.join(dropped) if dropped else 'none'}; "
            f"vacuum deleted "
            + ("(not logged)" if None in deleted else str(sum(d or 0 for d in deleted)))
            + " file(s)"
        )


def run(ctx: RunContext, params: MaintainParams) -> MaintainResult:
    """Compact, purge and vacuum every table present."""
    present = [t for t in MAINTAINED if table_exists(ctx.spark, ctx.warehouse.path(t))]
    configured = ctx.config.maintain.retention_hours
    return MaintainResult(
        params,
        MappingProxyType(
            {
                table: upkeep(
                    ctx,
                    params,
                    table,
                    _fct_retention_hours(ctx) if table == FCT_ORDERS else configured,
                )
                for table in present
            }
        ),
    )
