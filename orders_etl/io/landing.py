"""What `orders_landing` and `orders_quarantine` already hold of a batch, by file content.

A file's identity is the SHA-256 of its text (`source_sha256`); these reads filter on it
first, so Delta skips every data file whose statistics cannot hold the hash.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F


def _rows_of(spark: SparkSession, path: str, shas: Sequence[str]) -> DataFrame:
    return spark.read.format("delta").load(path).filter(F.col("source_sha256").isin(*shas))


def contents_present(spark: SparkSession, path: str, shas: Sequence[str]) -> set[str]:
    """Return the hashes among `shas` that the table at `path` holds rows of."""
    if not shas:
        return set()
    rows = _rows_of(spark, path, shas).select("source_sha256").distinct().collect()
    return {r["source_sha256"] for r in rows}


def rows_per_content(spark: SparkSession, path: str, shas: Sequence[str]) -> Counter[str]:
    """Return how many rows the table at `path` holds of each hash among `shas`."""
    if not shas:
        return Counter()
    rows = _rows_of(spark, path, shas).groupBy("source_sha256").count().collect()
    return Counter({r["source_sha256"]: int(r["count"]) for r in rows})
