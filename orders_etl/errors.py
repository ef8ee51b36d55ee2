"""Exceptions whose messages say what was wrong, with which value, and map to exit codes."""

from __future__ import annotations


class OrdersEtlError(Exception):
    """Base of every error the CLI reports as one line; `exit_code` follows the contract."""

    exit_code = 3


class UsageError(OrdersEtlError):
    """A bad argument or configuration value; raised before Spark starts, nothing written."""

    exit_code = 2


class GuardRefused(OrdersEtlError):
    """A guard refused the command; nothing was written to any data table."""

    exit_code = 2


class DataQualityError(OrdersEtlError):
    """A data-quality check failed (exit 1)."""

    exit_code = 1


class ConcurrentWriteError(OrdersEtlError):
    """Another writer kept winning a Delta conflict after the bounded retries."""

    exit_code = 4
