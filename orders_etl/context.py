"""What one command run carries: config, its processing time, its run id, a lazy session."""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from types import MappingProxyType
from typing import Any

from pyspark.sql import SparkSession

from orders_etl.config import Config
from orders_etl.io.tables import Warehouse
from orders_etl.session import get_spark

USER_METADATA_CONF = "spark.databricks.delta.commitInfo.userMetadata"


class RunContext:
    """A run's config, processing time (its "now", UTC) and id; Spark starts on first use.

    Every Delta commit made through the context's session carries the run id as its
    `userMetadata`, so a run can find its own commits in a table's history. With
    `opens_catalog` and a `[catalog] database` configured, the session opens the warehouse's
    catalog; otherwise it works by path alone.
    """

    def __init__(
        self,
        config: Config,
        processing_time: datetime,
        run_id: str,
        verbose: bool = False,
        spark: SparkSession | None = None,
        opens_catalog: bool = False,
    ) -> None:
        self.config = config
        self.processing_time = processing_time
        self.run_id = run_id
        self.verbose = verbose
        self.warehouse = Warehouse(config.warehouse)
        self._spark = spark
        self._catalog_root = config.warehouse if opens_catalog and config.catalog.database else None

    @property
    def spark(self) -> SparkSession:
        """The session, started on first use with every timestamp handled in UTC.

        Each access tags the session's next commits with this run's id, so contexts that
        share one session one after another (the demo, tests) each find their own commits.
        """
        if self._spark is None:
            os.environ["TZ"] = "UTC"
            time.tzset()
            self._spark = get_spark(self.config.spark, self.verbose, self._catalog_root)
        self._spark.conf.set(USER_METADATA_CONF, self.run_id)
        return self._spark

    @property
    def processing_date(self) -> date:
        """The UTC date of the processing time."""
        return self.processing_time.date()


@dataclass(frozen=True)
class CommandResult:
    """What a command reports: metrics for the ledger and summary, and its exit code."""

    metrics: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    exit_code: int = 0
    summary: str = ""
