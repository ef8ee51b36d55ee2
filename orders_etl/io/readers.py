"""Read a batch of order events: a file or a folder of newline-delimited JSON files."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from orders_etl.errors import UsageError
from orders_etl.schemas import BATCH_FILE_SUFFIXES
from orders_etl.transforms.parse import agg_line_blocks, with_line_numbers

_BLOCKS_SCHEMA = T.StructType(
    [
        T.StructField("source_file", T.StringType()),
        T.StructField("block_start", T.LongType()),
        T.StructField("first_row_id", T.LongType()),
        T.StructField("first_line_number", T.LongType()),
        T.StructField("source_sha256", T.StringType()),
    ]
)


def is_uri(source: str) -> bool:
    """Tell whether `source` names a file system by scheme (s3a://, abfss://, hdfs://)."""
    return "://" in source and not source.startswith("file://")


def list_batch_files(source: str) -> list[str]:
    """List a local batch in lexical order; fail clearly when it does not exist or is empty
    of batch files. A URI is passed through for Spark to list on the cluster."""
    if is_uri(source):
        return [source]
    path = Path(source.removeprefix("file://"))
    if not path.exists():
        raise UsageError(f"--source {source!r} does not exist")
    if path.is_file():
        if not path.name.endswith(BATCH_FILE_SUFFIXES):
            raise UsageError(
                f"--source {source!r} is not a batch file "
                f"(expected {', '.join(BATCH_FILE_SUFFIXES)})"
            )
        return [_readable(source, str(path.resolve()))]
    if not path.is_dir():
        raise UsageError(f"--source {source!r} is neither a file nor a folder")
    found: list[str] = []
    for folder, dirs, names in os.walk(path):
        dirs[:] = sorted(d for d in dirs if not d.startswith((".", "_")))
        found += [
            str(Path(folder, n).resolve())
            for n in names
            if n.endswith(BATCH_FILE_SUFFIXES) and not n.startswith((".", "_"))
        ]
    # A FIFO would block the read forever and a dangling link fail it half-way: refuse both.
    irregular = [f for f in found if not Path(f).is_file()]
    if irregular:
        raise UsageError(f"--source {source!r} holds {irregular[0]!r}, which is not a regular file")
    return sorted(_readable(source, f) for f in found)


def _readable(source: str, path: str) -> str:
    """Refuse a file name Hadoop cannot open: its checksum file `.<name>.crc` would parse as
    a URI, so a ':' in the name fails the read half-way."""
    if ":" in Path(path).name:
        raise UsageError(f"--source {source!r} holds {path!r}: a ':' in a file name is unreadable")
    return path


def _hadoop_path(spark: SparkSession, name: str) -> Any:
    jvm = spark.sparkContext._jvm
    assert jvm is not None
    return jvm.org.apache.hadoop.fs.Path(name)


def expand_batch_files(spark: SparkSession, paths: list[str]) -> list[str]:
    """Return the batch files to read: local files as listed; a URI source listed
    recursively through Hadoop (batch suffixes only, hidden `.`/`_` names skipped), sorted."""
    if not (len(paths) == 1 and is_uri(paths[0])):
        return paths
    root = _hadoop_path(spark, paths[0])
    fs = root.getFileSystem(spark._jsc.hadoopConfiguration())
    found: list[str] = []
    listing = fs.listFiles(root, True)
    while listing.hasNext():
        path = listing.next().getPath()
        relative = str(path.toString())[len(str(root.toString())) :]
        parts = [p for p in relative.split("/") if p]
        if str(path.getName()).endswith(BATCH_FILE_SUFFIXES) and not any(
            p.startswith((".", "_")) for p in parts
        ):
            found.append(str(path.toString()))
    return sorted(found)


def content_sha256(spark: SparkSession, path: str) -> str:
    """Return the SHA-256 of a batch file's text (`.gz` inflated), streamed through the JVM's
    Hadoop file system with the same codec Spark reads it with: never held whole in memory."""
    jvm = spark.sparkContext._jvm
    assert jvm is not None
    conf = spark._jsc.hadoopConfiguration()
    hadoop_path = _hadoop_path(spark, path)
    stream = hadoop_path.getFileSystem(conf).open(hadoop_path)
    try:
        codec = jvm.org.apache.hadoop.io.compress.CompressionCodecFactory(conf).getCodec(
            hadoop_path
        )
        if codec is not None:
            stream = codec.createInputStream(stream)
        return str(jvm.org.apache.commons.codec.digest.DigestUtils.sha256Hex(stream))
    finally:
        stream.close()


@dataclass(frozen=True)
class BatchLines:
    """A batch read line by line, and the SHA-256 of each of its files by path."""

    lines_df: DataFrame
    shas: Mapping[str, str]


def read_batch_lines(spark: SparkSession, paths: list[str]) -> BatchLines:
    """Read a batch line by line: one row per line, blank ones included, (source_file,
    source_sha256, line_number, line), `.gz` inflated, numbered from 1 within each file.

    Memory follows the configured split size, not the file size: plain files are read in
    blocks across tasks, gzip files streamed. Two passes over the files: one counts the lines
    of each block (so each block knows its first line number), the second numbers the lines;
    each file's SHA-256 is streamed on the driver (`content_sha256`).
    """
    files = expand_batch_files(spark, paths)
    lines_df = _read_lines(spark, files)
    blocks = agg_line_blocks(lines_df).collect()  # one row per block of a file: small
    shas = {name: content_sha256(spark, name) for name in files}
    unknown = sorted({b["source_file"] for b in blocks} - set(shas))
    if unknown:
        raise UsageError(f"read {unknown[0]!r}, which is not one of the batch's listed files")
    blocks_df = spark.createDataFrame(
        [(*b, shas[b["source_file"]]) for b in blocks], _BLOCKS_SCHEMA
    )
    return BatchLines(with_line_numbers(lines_df, F.broadcast(blocks_df)), shas)


def _read_lines(spark: SparkSession, paths: list[str]) -> DataFrame:
    """Read batch files line by line: one row per line, (source_file, block_start, row_id,
    line); `.gz` inflated.

    Lines are split on LF only (a CR stays in the line, as the contract counts lines). Plain
    files are split into blocks across tasks like Spark's own text source; `block_start` is
    the byte offset of the line's block in its file and `row_id` grows by one per line within
    a block (`number_lines` turns the two into line numbers).
    """
    # `_metadata.file_path` is a URI, percent-encoded ("a b.jsonl" -> "a%20b.jsonl"); decode
    # it back to the file's name, keeping a literal "+" (url_decode would make it a space).
    uri = F.regexp_replace(F.col("_metadata.file_path"), "^file:(//)?", "")
    # Spark globs a path with any of \ { } [ ] * ? in it: "d[1].jsonl" would read "d1.jsonl"
    # instead. Escape them so a listed local file is read as named.
    literal = [p if is_uri(p) else re.sub(r"([\\{}\[\]*?])", r"\\\1", p) for p in paths]
    return (
        spark.read.format("text")
        .option("lineSep", "\n")
        .load(literal)
        .select(
            F.url_decode(F.regexp_replace(uri, r"\+", "%2B")).alias("source_file"),
            F.col("_metadata.file_block_start").alias("block_start"),
            F.monotonically_increasing_id().alias("row_id"),
            F.col("value").alias("line"),
        )
    )
