"""Land one batch into `orders_landing` and `orders_quarantine`, exactly once per line.

Also across crashes and concurrent runs of the same batch:
- a file's identity is the SHA-256 of its text; a table that already holds rows of that file
  is not written again (the check reads only files whose statistics can match the hash);
- each append carries a Delta application transaction id derived from the files it writes,
  so a retried append after a crash is skipped by Delta, and of two concurrent appends of the
  same files one fails and, on its retry, finds the files landed;
- the rows of every file are accounted for in both tables: landed + quarantined must equal
  the non-blank lines read, or the run fails with exit 1. When the only commits a table took
  since the run read its version are this run's append, and Delta recorded that append as
  writing the rows counted in the parse (`numOutputRows`), the parse's per-file counts are
  what the table holds of the files; otherwise (another run committed meanwhile, an append
  skipped or retried, files found already there, a count that differs) each file's rows are
  counted back from the table.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from types import MappingProxyType
from typing import Any, cast

from pyspark import StorageLevel
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from orders_etl.context import CommandResult, RunContext
from orders_etl.errors import DataQualityError
from orders_etl.io.history import commits
from orders_etl.io.landing import contents_present, rows_per_content
from orders_etl.io.migration import prepare_landing
from orders_etl.io.readers import read_batch_lines
from orders_etl.io.tables import ensure_table, table_version
from orders_etl.io.writes import append_rows, retry_on_conflict
from orders_etl.schemas import LANDING_SCHEMA, ORDERS_LANDING, ORDERS_QUARANTINE, QUARANTINE_SCHEMA
from orders_etl.session import concurrently
from orders_etl.transforms.parse import (
    agg_file_reasons,
    clean_lines,
    filter_non_blank_lines,
    filter_rejected_rows,
    filter_valid_rows,
    parse_order_lines,
    with_ingested_at,
)

# Rows of one landing or quarantine data file: a small batch lands as one file, a backlog
# of millions of lines as several, written in parallel.
ROWS_PER_FILE = 1_000_000


@dataclass(frozen=True)
class LandParams:
    """`land`'s arguments, checked before Spark starts."""

    source: str
    files: tuple[str, ...]


@dataclass(frozen=True)
class FileCounts:
    """Per-file line counts of one parsed batch."""

    source_file: str
    source_sha256: str
    lines: int
    valid: int
    rejected: int
    unknown_field_lines: int


@dataclass(frozen=True)
class LandResult(CommandResult):
    """What one landing run read, wrote and skipped."""

    source: str
    batch_files: int = 0
    files_read: int = 0
    files_landed: int = 0
    files_skipped: tuple[str, ...] = ()
    lines_read: int = 0
    rows_landed: int = 0
    rows_quarantined: int = 0
    lines_skipped: int = 0
    unknown_field_lines: int = 0
    quarantine_reasons: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({}))

    @property
    def metrics(self) -> Mapping[str, Any]:
        return {
            "files_read": self.files_read,
            "files_landed": self.files_landed,
            "files_skipped": list(self.files_skipped),
            "lines_read": self.lines_read,
            "rows_landed": self.rows_landed,
            "rows_quarantined": self.rows_quarantined,
            "lines_skipped": self.lines_skipped,
            "unknown_field_lines": self.unknown_field_lines,
            "quarantine_reasons": dict(self.quarantine_reasons),
        }

    def summary(self) -> str:
        if not self.batch_files:
            return f"no batch files in {self.source}"
        return (
            f"lines_read={self.lines_read} landed={self.rows_landed} "
            f"quarantined={self.rows_quarantined} files={self.files_landed} "
            f"skipped_files={len(self.files_skipped)} "
            f"unknown_field_lines={self.unknown_field_lines}"
        )


def _app_id(shas: Sequence[str]) -> str:
    digest = hashlib.sha256("|".join(sorted(shas)).encode()).hexdigest()[:40]
    return f"orders_etl.land.{digest}"


def _file_counts(parsed_df: DataFrame) -> tuple[list[FileCounts], dict[str, Counter[str]]]:
    """Count each file's lines (sorted by file) and its rejected lines per reason (by file),
    in one Spark job."""
    lines: Counter[str] = Counter()
    valid: Counter[str] = Counter()
    unknown: Counter[str] = Counter()
    shas: dict[str, str] = {}
    reasons: dict[str, Counter[str]] = {}
    for r in agg_file_reasons(parsed_df).collect():
        name = r["source_file"]
        shas[name] = r["source_sha256"]
        lines[name] += int(r["lines"])
        unknown[name] += int(r["unknown"])
        if r["reason"] is None:
            valid[name] += int(r["lines"])
        else:
            reasons.setdefault(name, Counter())[r["reason"]] += int(r["lines"])
    counts = [
        FileCounts(
            name,
            shas[name],
            lines[name],
            valid[name],
            lines[name] - valid[name],
            unknown[name],
        )
        for name in sorted(shas)
    ]
    return counts, reasons


def _write_new(
    ctx: RunContext,
    table: str,
    rows_df: DataFrame,
    shas: Sequence[str],
    present: set[str],
    columns: Sequence[str],
    rows: int,
) -> tuple[str, ...]:
    """Append the rows of files the table does not hold yet, about `rows` of them, in one data
    file per `ROWS_PER_FILE` (the tasks that write them run in parallel); return the hashes
    of the files written.

    `present` is what the table held of `shas` when the run read it; a retry after a lost
    conflict reads it again.
    """
    path = ctx.warehouse.path(table)
    files = max(1, -(-rows // ROWS_PER_FILE))
    known = [present & set(shas)]

    def attempt() -> tuple[str, ...]:
        held = known.pop() if known else contents_present(ctx.spark, path, shas)
        todo = sorted(set(shas) - held)
        if todo:
            out_df = with_ingested_at(
                rows_df.filter(F.col("source_sha256").isin(*todo)).coalesce(files),
                ctx.processing_time,
            )
            append_rows(
                out_df.withColumn("run_id", F.lit(ctx.run_id)).select(*columns),
                path,
                txn_app_id=_app_id(todo),
            )
        return tuple(todo)

    return retry_on_conflict(attempt, ctx.config.retries, f"land into {table}")


def _rows_appended_alone(ctx: RunContext, path: str, version_before: int | None) -> int | None:
    """Return the rows this run appended to the table since `version_before`, or None when
    another run (or another kind of commit) changed the table since."""
    if version_before is None:
        return None
    since = commits(ctx.spark, path, after_version=version_before)
    if any(c.run_id != ctx.run_id or c.operation != "WRITE" for c in since):
        return None
    return sum(c.metric("numOutputRows") for c in since)


def _rows_held(
    ctx: RunContext,
    path: str,
    version_before: int | None,
    expected: Mapping[str, int],
    written: Sequence[str],
    shas: Sequence[str],
) -> Counter[str]:
    """Return how many rows the table holds of each hash among `shas` after this run's append.

    `expected` (rows by hash, from the parse) is the answer without a read when this run
    wrote every hash of it and its append alone changed the table, by exactly that many rows;
    otherwise the rows are counted back from the table.
    """
    if set(written) == set(expected) and _rows_appended_alone(ctx, path, version_before) == sum(
        expected.values()
    ):
        return Counter(expected)
    return rows_per_content(ctx.spark, path, shas)


def run(ctx: RunContext, params: LandParams) -> LandResult:
    """Land the batch's files: parse, skip contents already landed, append, count back."""
    spark = ctx.spark
    prepare_landing(spark, ctx.warehouse)
    ensure_table(spark, ctx.warehouse, ORDERS_QUARANTINE)
    if not params.files:
        return LandResult(params.source)
    batch = read_batch_lines(spark, list(params.files))
    # Kept while the batch is counted and written; a valid line's text is not kept (only
    # `orders_quarantine` stores it), which makes the kept rows about half as large.
    parsed_df = (
        parse_order_lines(filter_non_blank_lines(clean_lines(batch.lines_df)), ctx.processing_time)
        .withColumn("raw", F.when(F.col("reason").isNotNull(), F.col("raw")))
        .persist(StorageLevel.MEMORY_AND_DISK)
    )
    try:
        return _land_parsed(ctx, params, parsed_df, sorted(set(batch.shas.values())))
    finally:
        parsed_df.unpersist()


def _land_parsed(
    ctx: RunContext, params: LandParams, parsed_df: DataFrame, shas: Sequence[str]
) -> LandResult:
    spark = ctx.spark
    landing_path = ctx.warehouse.path(ORDERS_LANDING)
    quarantine_path = ctx.warehouse.path(ORDERS_QUARANTINE)
    # Read before what the tables hold of the batch: a commit after these versions that is
    # not this run's append means the parse's counts need a read-back (`_rows_held`).
    landing_before = table_version(spark, landing_path)
    quarantine_before = table_version(spark, quarantine_path)
    # What the tables hold of the batch's files is read while the batch is parsed and
    # counted: the files' hashes are known before the parse.
    reads: list[Callable[[], object]] = [
        partial(_file_counts, parsed_df),
        partial(contents_present, spark, landing_path, shas),
        partial(contents_present, spark, quarantine_path, shas),
    ]
    counted, in_landing_found, in_quarantine_found = concurrently(reads)
    counts, reasons_by_file = cast(tuple[list[FileCounts], dict[str, Counter[str]]], counted)
    in_landing = cast(set[str], in_landing_found)
    in_quarantine = cast(set[str], in_quarantine_found)
    first_of_content: dict[str, FileCounts] = {}
    for file in counts:
        first_of_content.setdefault(file.source_sha256, file)
    chosen = list(first_of_content.values())
    duplicates = [f.source_file for f in counts if first_of_content[f.source_sha256] is not f]
    # A filter, not a join: a join with a DataFrame made on the driver has no size estimate,
    # so Spark plans a shuffle of every parsed row for it (and then writes them in one task).
    chosen_df = parsed_df.filter(F.col("source_file").isin(*(f.source_file for f in chosen)))

    done_before = [
        f
        for f in chosen
        if (f.valid == 0 or f.source_sha256 in in_landing)
        and (f.rejected == 0 or f.source_sha256 in in_quarantine)
        and f.lines > 0
    ]
    todo = [f for f in chosen if f not in done_before]
    todo_shas = [f.source_sha256 for f in todo]
    valid_rows = {f.source_sha256: f.valid for f in todo if f.valid}
    rejected_rows = {f.source_sha256: f.rejected for f in todo if f.rejected}

    landing_written = _write_new(
        ctx,
        ORDERS_LANDING,
        filter_valid_rows(chosen_df),
        list(valid_rows),
        in_landing,
        [f.name for f in LANDING_SCHEMA.fields],
        rows=sum(valid_rows.values()),
    )
    quarantine_written = _write_new(
        ctx,
        ORDERS_QUARANTINE,
        filter_rejected_rows(chosen_df),
        list(rejected_rows),
        in_quarantine,
        [f.name for f in QUARANTINE_SCHEMA.fields],
        rows=sum(rejected_rows.values()),
    )

    landed, quarantined = concurrently(
        [
            partial(
                _rows_held,
                ctx,
                landing_path,
                landing_before,
                valid_rows,
                landing_written,
                todo_shas,
            ),
            partial(
                _rows_held,
                ctx,
                quarantine_path,
                quarantine_before,
                rejected_rows,
                quarantine_written,
                todo_shas,
            ),
        ]
    )
    reasons: Counter[str] = Counter()
    for f in todo:
        reasons.update(reasons_by_file.get(f.source_file, Counter()))
    broken = [
        f.source_file
        for f in todo
        if landed[f.source_sha256] + quarantined[f.source_sha256] != f.lines
    ]
    if broken:
        raise DataQualityError(
            f"landing accounting does not hold for {len(broken)} file(s), e.g. {broken[0]}: "
            "rows landed + quarantined != non-blank lines read"
        )
    return LandResult(
        params.source,
        batch_files=len(params.files),
        files_read=len(counts),
        files_landed=len(todo),
        files_skipped=(*(f.source_file for f in done_before), *duplicates),
        lines_read=sum(f.lines for f in todo),
        rows_landed=sum(landed.values()),
        rows_quarantined=sum(quarantined.values()),
        lines_skipped=sum(f.lines for f in done_before),
        unknown_field_lines=sum(f.unknown_field_lines for f in todo),
        quarantine_reasons=MappingProxyType(dict(reasons)),
    )
