"""`land --source PATH`: land one batch into `orders_landing` and `orders_quarantine`.

Exactly once per line, also across crashes and concurrent runs of the same batch:
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
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pyspark import StorageLevel
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from orders_etl.commands.migrate import prepare_landing
from orders_etl.context import CommandResult, RunContext
from orders_etl.errors import DataQualityError
from orders_etl.io.readers import read_batch_lines
from orders_etl.io.tables import ensure_table
from orders_etl.io.writes import append_rows, retry_on_conflict
from orders_etl.schemas import LANDING_SCHEMA, ORDERS_LANDING, ORDERS_QUARANTINE, QUARANTINE_SCHEMA
from orders_etl.transforms.parse import (
    clean_lines,
    filter_non_blank_lines,
    filter_rejected_rows,
    filter_valid_rows,
    parse_order_lines,
    with_ingested_at,
)


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


def _app_id(shas: Sequence[str]) -> str:
    digest = hashlib.sha256("|".join(sorted(shas)).encode()).hexdigest()[:40]
    return f"orders_etl.land.{digest}"


def _shas_present(spark: SparkSession, path: str, shas: Sequence[str]) -> set[str]:
    if not shas:
        return set()
    rows = (
        spark.read.format("delta")
        .load(path)
        .filter(F.col("source_sha256").isin(*shas))
        .select("source_sha256")
        .distinct()
        .collect()
    )
    return {r["source_sha256"] for r in rows}


def _count_by_sha(spark: SparkSession, path: str, shas: Sequence[str]) -> Counter[str]:
    if not shas:
        return Counter()
    rows = (
        spark.read.format("delta")
        .load(path)
        .filter(F.col("source_sha256").isin(*shas))
        .groupBy("source_sha256")
        .count()
        .collect()
    )
    return Counter({r["source_sha256"]: int(r["count"]) for r in rows})


def _file_counts(parsed_df: DataFrame) -> list[FileCounts]:
    rows = (
        parsed_df.groupBy("source_file", "source_sha256")
        .agg(
            F.count(F.lit(1)).alias("lines"),
            F.count(F.when(F.col("reason").isNull(), 1)).alias("valid"),
            F.count(F.when(F.col("reason").isNotNull(), 1)).alias("rejected"),
            F.count(F.when(F.col("unknown_field_count") > 0, 1)).alias("unknown"),
        )
        .collect()
    )
    return sorted(
        (
            FileCounts(
                r["source_file"],
                r["source_sha256"],
                int(r["lines"]),
                int(r["valid"]),
                int(r["rejected"]),
                int(r["unknown"]),
            )
            for r in rows
        ),
        key=lambda f: f.source_file,
    )


def _write_new(
    ctx: RunContext, table: str, rows_df: DataFrame, shas: Sequence[str], columns: Sequence[str]
) -> int:
    """Append the rows of files the table does not hold yet; return how many files were written."""
    path = ctx.warehouse.path(table)

    def attempt() -> int:
        todo = sorted(set(shas) - _shas_present(ctx.spark, path, shas))
        if todo:
            out_df = with_ingested_at(
                rows_df.filter(F.col("source_sha256").isin(*todo)), ctx.processing_time
            )
            append_rows(
                out_df.withColumn("run_id", F.lit(ctx.run_id)).select(*columns),
                path,
                txn_app_id=_app_id(todo),
            )
        return len(todo)

    return retry_on_conflict(attempt, ctx.config.retries, f"land into {table}")


def run(ctx: RunContext, params: LandParams) -> CommandResult:
    """Run `land`."""
    spark = ctx.spark
    prepare_landing(spark, ctx.warehouse)
    ensure_table(spark, ctx.warehouse, ORDERS_QUARANTINE)
    if not params.files:
        empty = {
            "files_read": 0,
            "files_landed": 0,
            "files_skipped": [],
            "lines_read": 0,
            "rows_landed": 0,
            "rows_quarantined": 0,
            "lines_skipped": 0,
            "unknown_field_lines": 0,
            "quarantine_reasons": {},
        }
        return CommandResult(metrics=empty, summary=f"no batch files in {params.source}")

    lines_df = read_batch_lines(spark, list(params.files))
    parsed_df = parse_order_lines(
        filter_non_blank_lines(clean_lines(lines_df)), ctx.processing_time
    ).persist(StorageLevel.MEMORY_AND_DISK)
    try:
        return _land_parsed(ctx, parsed_df)
    finally:
        parsed_df.unpersist()


def _land_parsed(ctx: RunContext, parsed_df: DataFrame) -> CommandResult:
    spark = ctx.spark
    landing_path = ctx.warehouse.path(ORDERS_LANDING)
    quarantine_path = ctx.warehouse.path(ORDERS_QUARANTINE)
    counts = _file_counts(parsed_df)
    first_of_content: dict[str, FileCounts] = {}
    for file in counts:
        first_of_content.setdefault(file.source_sha256, file)
    chosen = list(first_of_content.values())
    duplicates = [f.source_file for f in counts if first_of_content[f.source_sha256] is not f]
    chosen_df = parsed_df.join(
        spark.createDataFrame(
            [(f.source_file, f.source_sha256) for f in chosen] or [("", "")],
            "source_file string, source_sha256 string",
        ),
        on=["source_file", "source_sha256"],
        how="left_semi",
    )

    in_landing = _shas_present(spark, landing_path, [f.source_sha256 for f in chosen if f.valid])
    in_quarantine = _shas_present(
        spark, quarantine_path, [f.source_sha256 for f in chosen if f.rejected]
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

    landing_columns = [f.name for f in LANDING_SCHEMA.fields]
    quarantine_columns = [f.name for f in QUARANTINE_SCHEMA.fields]
    _write_new(
        ctx,
        ORDERS_LANDING,
        filter_valid_rows(chosen_df),
        [f.source_sha256 for f in todo if f.valid],
        landing_columns,
    )
    _write_new(
        ctx,
        ORDERS_QUARANTINE,
        filter_rejected_rows(chosen_df),
        [f.source_sha256 for f in todo if f.rejected],
        quarantine_columns,
    )

    landed = _count_by_sha(spark, landing_path, todo_shas)
    quarantined = _count_by_sha(spark, quarantine_path, todo_shas)
    reasons = {
        r["reason"]: int(r["count"])
        for r in filter_rejected_rows(chosen_df)
        .filter(F.col("source_sha256").isin(*todo_shas) if todo_shas else F.lit(False))
        .groupBy("reason")
        .count()
        .collect()
    }
    metrics: dict[str, Any] = {
        "files_read": len(counts),
        "files_landed": len(todo),
        "files_skipped": [f.source_file for f in done_before] + duplicates,
        "lines_read": sum(f.lines for f in todo),
        "rows_landed": sum(landed.values()),
        "rows_quarantined": sum(quarantined.values()),
        "lines_skipped": sum(f.lines for f in done_before),
        "unknown_field_lines": sum(f.unknown_field_lines for f in todo),
        "quarantine_reasons": reasons,
    }
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
    summary = (
        f"lines_read={metrics['lines_read']} landed={metrics['rows_landed']} "
        f"quarantined={metrics['rows_quarantined']} files={len(todo)} "
        f"skipped_files={len(metrics['files_skipped'])} "
        f"unknown_field_lines={metrics['unknown_field_lines']}"
    )
    return CommandResult(metrics=metrics, summary=summary)
