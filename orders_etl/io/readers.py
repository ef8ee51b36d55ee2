"""Read a batch of order events: a file or a folder of newline-delimited JSON files."""

from __future__ import annotations

import os
import re
from pathlib import Path

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from orders_etl.errors import UsageError
from orders_etl.schemas import BATCH_FILE_SUFFIXES

_GLOB = "*.{" + ",".join(s.lstrip(".") for s in BATCH_FILE_SUFFIXES) + "}"


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


def read_batch_files(spark: SparkSession, paths: list[str]) -> DataFrame:
    """Read each batch file whole: one row per file, (source_file, content), `.gz` inflated."""
    reader = spark.read.format("text").option("wholetext", "true")
    if len(paths) == 1 and is_uri(paths[0]):
        reader = reader.option("recursiveFileLookup", "true").option("pathGlobFilter", _GLOB)
    # `_metadata.file_path` is a URI, percent-encoded ("a b.jsonl" -> "a%20b.jsonl"); decode
    # it back to the file's name, keeping a literal "+" (url_decode would make it a space).
    uri = F.regexp_replace(F.col("_metadata.file_path"), "^file:(//)?", "")
    # Spark globs a path with any of \ { } [ ] * ? in it: "d[1].jsonl" would read "d1.jsonl"
    # instead. Escape them so a listed local file is read as named.
    literal = [p if is_uri(p) else re.sub(r"([\\{}\[\]*?])", r"\\\1", p) for p in paths]
    return reader.load(literal).select(
        F.url_decode(F.regexp_replace(uri, r"\+", "%2B")).alias("source_file"),
        F.col("value").alias("content"),
    )
