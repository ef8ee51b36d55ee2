"""Render daily revenue per currency, first reported against as known at a time, to PNG."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path


@dataclass(frozen=True)
class Figure:
    """One day's revenue in one currency."""

    order_date: date
    currency: str
    revenue: float


def write_revision_chart(
    first: list[Figure], known: list[Figure], as_of: datetime, out: str
) -> None:
    """Plot per currency: revenue as first reported (dashed) and as known at `as_of` (solid)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    currencies = sorted({f.currency for f in known} | {f.currency for f in first})
    figure, axes = plt.subplots(
        len(currencies) or 1, 1, figsize=(10, 3 * max(len(currencies), 1)), squeeze=False
    )
    for axis, currency in zip(axes[:, 0], currencies, strict=False):
        for figures, style, label in (
            (first, "--o", "first reported"),
            (known, "-o", f"as of {as_of:%Y-%m-%d %H:%M}"),
        ):
            points = sorted((f.order_date, f.revenue) for f in figures if f.currency == currency)
            axis.plot([p[0] for p in points], [p[1] for p in points], style, label=label)
        axis.set_title(f"Daily revenue, {currency}")
        axis.set_ylabel(currency)
        axis.legend()
        axis.grid(alpha=0.3)
    figure.autofmt_xdate()
    figure.tight_layout()
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out, dpi=100)
    plt.close(figure)
