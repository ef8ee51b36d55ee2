"""Generate sample hourly batches with late, retried, stale and bad events (seeded)."""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

CURRENCIES = ("EUR", "USD", "GBP")
OFFSETS = (timedelta(0), timedelta(hours=2), timedelta(hours=-5), timedelta(hours=5, minutes=30))
BAD_LINES = (
    "{not json",
    '{"order_id": "", "customer_id": "c1", "status": "paid", "amount": 1, "currency": "EUR", '
    '"event_time": "2026-01-01T00:00:00Z"}',
    '{"order_id": "x1", "customer_id": "c1", "status": "paid", "amount": 1, "currency": "eur", '
    '"event_time": "2026-01-01T00:00:00Z"}',
    '{"order_id": "x2", "customer_id": "c1", "status": "lost", "amount": 1, "currency": "EUR", '
    '"event_time": "2026-01-01T00:00:00Z"}',
    '{"order_id": "x3", "customer_id": "c1", "status": "paid", "amount": -4, "currency": "EUR", '
    '"event_time": "2026-01-01T00:00:00Z"}',
    '["an", "array"]',
)


@dataclass(frozen=True)
class Version:
    """One version of an order as its producer sent it."""

    order_id: str
    customer_id: str
    status: str
    amount: Decimal
    currency: str
    event_time: datetime
    arrives_at: datetime

    def to_line(self, offset: timedelta) -> str:
        """Serialize as one JSON line, `event_time` written in the given UTC offset."""
        local = self.event_time.astimezone(timezone(offset))
        return json.dumps(
            {
                "order_id": self.order_id,
                "customer_id": self.customer_id,
                "status": self.status,
                "amount": str(self.amount),
                "currency": self.currency,
                "event_time": local.isoformat().replace("+00:00", "Z"),
                "sdk": "mobile-4.2",
            }
        )


@dataclass
class Batch:
    """One hourly batch: the processing time of its run and its lines."""

    processing_time: datetime
    lines: list[str] = field(default_factory=list)


def _lateness(rng: random.Random) -> timedelta:
    draw = rng.random()
    if draw < 0.80:
        return timedelta(minutes=rng.randint(0, 50))
    if draw < 0.93:
        return timedelta(hours=rng.randint(1, 20))
    return timedelta(days=rng.randint(1, 10), hours=rng.randint(0, 23))


def _lifecycle(rng: random.Random, order_id: str, placed_at: datetime) -> list[Version]:
    customer = f"c{rng.randint(1, 400):04d}"
    currency = rng.choice(CURRENCIES)
    amount = Decimal(rng.randint(500, 40000)) / 100
    steps = [("placed", timedelta(0))]
    end = rng.random()
    if end < 0.08:
        steps.append(("cancelled", timedelta(minutes=rng.randint(5, 300))))
    else:
        steps.append(("paid", timedelta(minutes=rng.randint(1, 30))))
        if end > 0.3:
            steps.append(("shipped", timedelta(hours=rng.randint(3, 40))))
        if end > 0.6:
            steps.append(("delivered", timedelta(days=rng.randint(1, 3))))
        if end > 0.97:
            steps.append(("refunded", timedelta(days=rng.randint(1, 2))))
    versions, at = [], placed_at
    for status, gap in steps:
        at = at + gap
        versions.append(
            Version(order_id, customer, status, amount, currency, at, at + _lateness(rng))
        )
    return versions


def generate_batches(
    seed: int,
    start: datetime,
    days: int,
    orders_per_hour: int = 12,
    batch_hours: int = 1,
    bad_line_share: float = 0.01,
    retry_share: float = 0.03,
) -> list[Batch]:
    """Generate `days` of batches of `batch_hours` each, starting at `start` (UTC).

    Each batch holds the versions that arrived during its hours (late ones included); its
    processing time is the end of those hours. Some versions are sent twice (retries) and a
    few lines are broken.
    """
    rng = random.Random(seed)
    start = start.astimezone(UTC)
    count = days * 24 // batch_hours
    end = start + timedelta(hours=count * batch_hours)
    batches = [Batch(start + timedelta(hours=(i + 1) * batch_hours)) for i in range(count)]
    arrivals: list[tuple[datetime, str]] = []
    for hour in range(days * 24):
        for n in range(rng.randint(orders_per_hour // 2, orders_per_hour * 3 // 2)):
            placed = start + timedelta(hours=hour, minutes=rng.randint(0, 59))
            for version in _lifecycle(rng, f"o{hour:04d}{n:03d}", placed):
                line = version.to_line(rng.choice(OFFSETS))
                arrivals.append((version.arrives_at, line))
                if rng.random() < retry_share:
                    arrivals.append((version.arrives_at + _lateness(rng), line))
    for arrives_at, line in arrivals:
        if start <= arrives_at < end:
            batches[int((arrives_at - start) / timedelta(hours=batch_hours))].lines.append(line)
    for batch in batches:
        rng.shuffle(batch.lines)
        for _ in range(sum(1 for _ in batch.lines if rng.random() < bad_line_share)):
            batch.lines.insert(rng.randint(0, len(batch.lines)), rng.choice(BAD_LINES))
    return batches


def write_batches(batches: list[Batch], folder: Path) -> list[tuple[datetime, Path]]:
    """Write each batch as `<folder>/batch-<YYYYMMDDTHH>.jsonl`; return (processing time, path)."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for batch in batches:
        path = folder / f"batch-{batch.processing_time:%Y%m%dT%H%M}.jsonl"
        path.write_text("\n".join(batch.lines) + "\n", encoding="utf-8")
        written.append((batch.processing_time, path))
    return written
