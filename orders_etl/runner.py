"""Run one command inside the run ledger: started row, outcome row, summary line, exit code."""

from __future__ import annotations

import logging
import re
import sys
import time
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from orders_etl.context import CommandResult, RunContext
from orders_etl.errors import GuardRefused, OrdersEtlError
from orders_etl.io.ledger import RunRecord, record_end, record_start
from orders_etl.io.tables import table_version
from orders_etl.schemas import (
    DAILY_REVENUE,
    FCT_ORDERS,
    ORDERS_LANDING,
    ORDERS_QUARANTINE,
    REVENUE_REVISIONS,
    Outcome,
)

log = logging.getLogger("orders_etl")
UNEXPECTED_EXIT = 3
_VERSIONED = (ORDERS_LANDING, ORDERS_QUARANTINE, FCT_ORDERS, DAILY_REVENUE, REVENUE_REVISIONS)


def new_run_id() -> str:
    """Return a fresh run id."""
    return uuid.uuid4().hex


def one_line(exc: BaseException) -> str:
    """Return the first line of an exception's message, without any JVM stack trace."""
    text = str(exc).strip().splitlines()
    first = text[0] if text else ""
    for marker in ("JVM stacktrace:", "\tat "):
        first = first.split(marker)[0]
    return (first[:400] or type(exc).__name__).strip()


_MEMORY_MARKERS = (
    "java.lang.OutOfMemoryError",
    "Java heap space",
    "GC overhead limit exceeded",
    "Not enough memory to build and broadcast",
)
_LOST_MARKERS = (
    "Answer from Java side is empty",
    "Error while receiving",
    "Error while sending",
    "Java gateway process exited",
    "SparkContext was shut down",
    "Cannot call methods on a stopped SparkContext",
)


_BARE_CALL_ERROR = re.compile(r"An error occurred while calling [\w.:$]+")


def _jvm_answers() -> bool:
    """True when this process has a Spark JVM that still answers a call."""
    from pyspark import SparkContext

    context = SparkContext._active_spark_context
    if context is None or context._jvm is None:
        return False
    try:
        context._jvm.java.lang.System.nanoTime()
    except Exception:
        return False
    return True


def _connection_broke(exc: BaseException) -> bool:
    """True for the bare Py4JError (no Java exception, no trace) that py4j raises when the
    connection to the JVM broke during a call and it gave up retrying (it answers the call
    with a lone error code then), once the JVM no longer answers."""
    from py4j.protocol import Py4JError, Py4JJavaError

    return (
        isinstance(exc, Py4JError)
        and not isinstance(exc, Py4JJavaError)
        and _BARE_CALL_ERROR.fullmatch(f"{exc}".strip()) is not None
        and not _jvm_answers()
    )


def jvm_failure(exc: BaseException) -> str | None:
    """Name a failure of the Spark JVM itself (out of memory, or the JVM lost) in one line
    saying what to change; None for any other failure."""
    from py4j.protocol import Py4JNetworkError

    text = f"{exc}"
    advice = (
        "raise spark.driver.memory in [spark.conf] of the config (--driver-memory under "
        "spark-submit) or run a smaller batch"
    )
    if any(marker in text for marker in _MEMORY_MARKERS):
        return f"Spark ran out of memory: {advice}"
    if (
        isinstance(exc, Py4JNetworkError | ConnectionError)
        or _connection_broke(exc)
        or any(marker in text for marker in _LOST_MARKERS)
    ):
        return f"the Spark JVM was lost (killed, or out of memory): {advice}"
    return None


def _versions(ctx: RunContext) -> dict[str, int | None]:
    return {t: table_version(ctx.spark, ctx.warehouse.path(t)) for t in _VERSIONED}


def _changed(before: Mapping[str, int | None], after: Mapping[str, int | None]) -> dict[str, int]:
    return {t: v for t, v in after.items() if v is not None and v != before.get(t)}


def execute(
    ctx: RunContext,
    command: str,
    arguments: Mapping[str, Any],
    action: Callable[[], CommandResult],
) -> int:
    """Run `action` between the ledger's started and outcome rows; print what its result
    renders on stdout, the summary line and one clear line per error on stderr; return the
    contract's exit code."""
    started = time.monotonic()
    record = RunRecord(ctx.run_id, command, dict(arguments), ctx.processing_time, datetime.now(UTC))
    outcome, exit_code, error = Outcome.FAILED, UNEXPECTED_EXIT, None
    result = CommandResult()
    before: dict[str, int | None] = {}
    jvm_error: str | None = None
    try:
        record_start(ctx.spark, ctx.warehouse, record)
        before = _versions(ctx)
        result = action()
        output = result.stdout()
        if output is not None:
            print(output, file=sys.stdout, flush=True)
        exit_code = result.exit_code
        outcome = Outcome.SUCCEEDED if exit_code == 0 else Outcome.CHECK_FAILED
    except GuardRefused as exc:
        outcome, exit_code, error = Outcome.REFUSED, exc.exit_code, one_line(exc)
    except OrdersEtlError as exc:
        outcome = {1: Outcome.CHECK_FAILED, 2: Outcome.REFUSED}.get(exc.exit_code, Outcome.FAILED)
        exit_code, error = exc.exit_code, one_line(exc)
    except Exception as exc:
        jvm_error = jvm_failure(exc)
        error = jvm_error or f"{type(exc).__name__}: {one_line(exc)}"
        if ctx.verbose:
            log.exception("%s failed", command)
    elapsed = time.monotonic() - started
    if error:
        print(f"orders-etl {command}: error: {error}", file=sys.stderr, flush=True)
    try:
        record_end(
            ctx.spark,
            ctx.warehouse,
            record,
            ended_at=datetime.now(UTC),
            outcome=outcome,
            metrics=result.metrics,
            table_versions=_changed(before, _versions(ctx)) if before else {},
            error=error,
        )
    except Exception as exc:
        # After a JVM failure the ledger cannot be written either: that one line said it all.
        if not (jvm_error and jvm_failure(exc)):
            print(
                f"orders-etl {command}: error: could not write the run ledger: "
                f"{jvm_failure(exc) or one_line(exc)}",
                file=sys.stderr,
                flush=True,
            )
        if exit_code == 0:
            exit_code = UNEXPECTED_EXIT
    print(
        f"orders-etl {command}: {outcome} in {elapsed:.1f}s"
        + (f": {summary}" if (summary := result.summary()) else "")
        + f" (run {ctx.run_id})",
        file=sys.stderr,
        flush=True,
    )
    return exit_code
