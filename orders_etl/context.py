"""What one command run carries: config, its processing time, its run id, a lazy session; and
the shape of what every command returns."""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from datetime import date, datetime
from typing import Any

from pyspark.sql import SparkSession

from orders_etl.config import Config
from orders_etl.io.tables import Warehouse
from orders_etl.session import get_spark, run_session

Progress = Callable[[str], None]


def progress_to_stderr(line: str) -> None:
    """Write one progress line to stderr (the runner's default progress sink)."""
    print(line, file=sys.stderr, flush=True)


class RunContext:
    """A run's config, processing time (its "now", UTC) and id; Spark starts on first use.

    The run works in a session of its own (`run_session`), cloned from `spark` when one is
    given (the demo, tests, the benchmark share one SparkContext) or from the session the
    factory starts. Every Delta commit made through it carries the run id as its
    `userMetadata`, so a run finds its own commits in a table's history, also when other runs
    share the SparkContext at the same time. With `opens_catalog` and a `[catalog] database`
    configured, a started session opens the warehouse's catalog; otherwise it works by path.

    `progress` receives the lines a composed command reports as it goes (`hourly`'s steps,
    the demo's story); commands never print.
    """

    def __init__(
        self,
        config: Config,
        processing_time: datetime,
        run_id: str,
        verbose: bool = False,
        spark: SparkSession | None = None,
        opens_catalog: bool = False,
        progress: Progress = progress_to_stderr,
    ) -> None:
        self.config = config
        self.processing_time = processing_time
        self.run_id = run_id
        self.verbose = verbose
        self.warehouse = Warehouse(config.warehouse)
        self.progress = progress
        self._base = spark
        self._spark: SparkSession | None = None
        self._catalog_root = config.warehouse if opens_catalog and config.catalog.database else None

    @property
    def spark(self) -> SparkSession:
        """This run's session (started, or cloned from the shared one, on first use)."""
        if self._spark is None:
            self._spark = run_session(self._shared_session(), self.run_id)
        return self._spark

    def _shared_session(self) -> SparkSession:
        """The session this run's own is cloned from, started on first use."""
        if self._base is None:
            self._base = get_spark(self.config.spark, self.verbose, self._catalog_root)
        return self._base

    @property
    def processing_date(self) -> date:
        """The UTC date of the processing time."""
        return self.processing_time.date()

    def child(self, processing_time: datetime, run_id: str) -> RunContext:
        """A context for a run this run starts (the demo's runs): same config and session."""
        return RunContext(
            self.config,
            processing_time,
            run_id,
            self.verbose,
            self._shared_session(),
            progress=self.progress,
        )


class CommandResult:
    """What a command returns: its metrics for the ledger, a summary line, what it prints
    to stdout (None: nothing) and its exit code.

    Each command's result is a frozen dataclass with typed fields that derives these.
    """

    @property
    def exit_code(self) -> int:
        """0, or the contract's exit code of the outcome (1: a check failed)."""
        return 0

    @property
    def metrics(self) -> Mapping[str, Any]:
        """The run's metrics as the ledger stores them (JSON-ready)."""
        return {}

    def summary(self) -> str:
        """The run's one summary line."""
        return ""

    def stdout(self) -> str | None:
        """The data the command prints to stdout, or None."""
        return None


def plain(value: Any) -> Any:
    """Return `value` as the ledger's JSON holds it: mappings and sequences as dicts and
    lists, every other non-JSON value (a date, a Decimal) as its `str`."""
    if isinstance(value, Mapping):
        return plain_metrics(value)
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


def plain_metrics(metrics: Mapping[str, Any]) -> dict[str, Any]:
    """Return metrics as the ledger's JSON holds them (see `plain`)."""
    return {str(k): plain(v) for k, v in metrics.items()}
