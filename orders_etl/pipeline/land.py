"""Land one batch into `orders_landing` and `orders_quarantine`, exactly once per line.

Also across crashes and concurrent runs of the same batch:
- a file's identity is the SHA-256 of its text; a table that already holds rows of that file
  is not written again (the check reads only files whose statistics can match the hash);
- each append carries a Delta application transaction id derived from the files it writes,
  so a retried append after a crash is skipped by Delta, and of two concurrent appends of the
  same files one fails and, on its retry, finds the files landed;
- the rows of every file are counted back from both tables: landed + quarantined must equal
  the non-blank lines read, or the run fails with exit 1.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from types import MappingProxyType
from typing import Any

from pyspark import StorageLevel
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from orders_etl.context import CommandResult, RunContext
from orders_etl.errors import DataQualityError
from orders_etl.io.landing import contents_present, rows_per_content
from orders_etl.io.migration import prepare_landing
from orders_etl.io.readers import read_batch_lines
from orders_etl.io.tables import ensure_table
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
    columns: Sequence[str],
    rows: int,
) -> int:
    """Append the rows of files the table does not hold yet, about `rows` of them, in one data
    file per `ROWS_PER_FILE` (the tasks that write them run in parallel); return how many
    files of the batch were written."""
    path = ctx.warehouse.path(table)
    files = max(1, -(-rows // ROWS_PER_FILE))

    def attempt() -> int:
        todo = sorted(set(shas) - contents_present(ctx.spark, path, shas))
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
        return len(todo)

    return retry_on_conflict(attempt, ctx.config.retries, f"land into {table}")


def run(ctx: RunContext, params: LandParams) -> LandResult:
    """Land the batch's files: parse, skip contents already landed, append, count back."""
    spark = ctx.spark
    prepare_landing(spark, ctx.warehouse)
    ensure_table(spark, ctx.warehouse, ORDERS_QUARANTINE)
    if not params.files:
        return LandResult(params.source)
    lines_df = read_batch_lines(spark, list(params.files))
    # Kept while the batch is counted and written; a valid line's text is not kept (only
    # `orders_quarantine` stores it), which makes the kept rows about half as large.
    parsed_df = (
        parse_order_lines(filter_non_blank_lines(clean_lines(lines_df)), ctx.processing_time)
        .withColumn("raw", F.when(F.col("reason").isNotNull(), F.col("raw")))
        .persist(StorageLevel.MEMORY_AND_DISK)
    )
    try:
        return _land_parsed(ctx, params, parsed_df)
    finally:
        parsed_df.unpersist()


def _land_parsed(ctx: RunContext, params: LandParams, parsed_df: DataFrame) -> LandResult:
    spark = ctx.spark
    landing_path = ctx.warehouse.path(ORDERS_LANDING)
    quarantine_path = ctx.warehouse.path(ORDERS_QUARANTINE)
    counts, reasons_by_file = _file_counts(parsed_df)
    first_of_content: dict[str, FileCounts] = {}
    for file in counts:
        first_of_content.setdefault(file.source_sha256, file)
    chosen = list(first_of_content.values())
    duplicates = [f.source_file for f in counts if first_of_content[f.source_sha256] is not f]
    # A filter, not a join: a join with a DataFrame made on the driver has no size estimate,
    # so Spark plans a shuffle of every parsed row for it (and then writes them in one task).
    chosen_df = parsed_df.filter(F.col("source_file").isin(*(f.source_file for f in chosen)))

    valid_shas = [f.source_sha256 for f in chosen if f.valid]
    rejected_shas = [f.source_sha256 for f in chosen if f.rejected]
    in_landing, in_quarantine = concurrently(
        [
            partial(contents_present, spark, landing_path, valid_shas),
            partial(contents_present, spark, quarantine_path, rejected_shas),
        ]
    )
    done_before = [
        f
        for f in chosen
        if (f.valid == 0 or f.source_sha256 in in_landing)
        and (f.rejected == 0 or f.source_sha256 in in_quarantine)
        and f.lines > 0
    ]
    todo = [f for f in chosen if f not in done_before]
    todo_shas = [f.source_sha256 for f in todo]

    _write_new(
        ctx,
        ORDERS_LANDING,
        filter_valid_rows(chosen_df),
        [f.source_sha256 for f in todo if f.valid],
        [f.name for f in LANDING_SCHEMA.fields],
        rows=sum(f.valid for f in todo),
    )
    _write_new(
        ctx,
        ORDERS_QUARANTINE,
        filter_rejected_rows(chosen_df),
        [f.source_sha256 for f in todo if f.rejected],
        [f.name for f in QUARANTINE_SCHEMA.fields],
        rows=sum(f.rejected for f in todo),
    )

    landed, quarantined = concurrently(
        [
            partial(rows_per_content, spark, landing_path, todo_shas),
            partial(rows_per_content, spark, quarantine_path, todo_shas),
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
