"""Plain-Python recomputations of the contract's rules, to compare the pipeline against."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

STATUS_RANK = {
    s: i for i, s in enumerate(("placed", "paid", "shipped", "delivered", "cancelled", "refunded"))
}
REVENUE_STATUSES = {"placed", "paid", "shipped", "delivered"}


@dataclass(frozen=True)
class LandedVersion:
    """One landed row, as plain Python values (timestamps naive UTC)."""

    order_id: str
    customer_id: str
    status: str
    amount: Decimal
    currency: str
    event_time: datetime
    event_ingested_at: datetime | None

    @property
    def effective_ingested_at(self) -> datetime:
        return self.event_ingested_at or self.event_time

    def key(self) -> tuple[object, ...]:
        return (
            self.event_time,
            self.effective_ingested_at,
            STATUS_RANK[self.status],
            self.customer_id,
            self.currency,
            self.amount,
            self.event_ingested_at is not None,
        )

    def fct_row(self) -> tuple[object, ...]:
        return (
            self.order_id,
            self.customer_id,
            self.status,
            self.amount,
            self.currency,
            self.event_time,
            self.event_ingested_at,
            self.effective_ingested_at,
            self.event_time.date(),
        )


def latest_versions(versions: Iterable[LandedVersion]) -> dict[str, LandedVersion]:
    """The contract's latest-version rule: one version per order_id."""
    best: dict[str, LandedVersion] = {}
    for v in versions:
        if v.order_id not in best or v.key() > best[v.order_id].key():
            best[v.order_id] = v
    return best


def expected_fct(versions: Iterable[LandedVersion]) -> set[tuple[object, ...]]:
    """fct_orders as the contract defines it, as a set of rows in FCT_ORDERS_COLUMNS order."""
    return {v.fct_row() for v in latest_versions(versions).values()}


def expected_counts_per_day(versions: Iterable[LandedVersion]) -> dict[date, int]:
    """Distinct orders whose latest version falls on each day."""
    counts: dict[date, int] = defaultdict(int)
    for v in latest_versions(versions).values():
        counts[v.event_time.date()] += 1
    return dict(counts)


def expected_revenue(
    versions: Iterable[LandedVersion],
) -> dict[tuple[date, str], tuple[int, Decimal]]:
    """(order_count, revenue) per (day, currency) over the latest versions."""
    out: dict[tuple[date, str], tuple[int, Decimal]] = {}
    for v in latest_versions(versions).values():
        k = (v.event_time.date(), v.currency)
        n, r = out.get(k, (0, Decimal("0.00")))
        out[k] = (n + 1, r + (v.amount if v.status in REVENUE_STATUSES else Decimal("0")))
    return out


def rows_to_versions(rows: Iterable[Mapping[str, Any]]) -> list[LandedVersion]:
    """Convert collected landing rows (asDict) into LandedVersions."""
    return [
        LandedVersion(
            str(r["order_id"]),
            str(r["customer_id"]),
            str(r["status"]),
            r["amount"],
            str(r["currency"]),
            r["event_time"],
            r["event_ingested_at"],  # type: ignore[arg-type]
        )
        for r in rows
    ]
