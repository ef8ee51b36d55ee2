"""What the bench keeps: phase names, one measured phase, one size's results, and their JSON."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from datagen import Shape
from measure import CommitStats, Usage

SETUP_LANDING = "setup: landing history"
SETUP_FCT = "setup: fct_orders from landing"
SETUP_ROLLUP = "setup: first rollup"
SETUP_BATCH = "setup: batch file"
LAND = "land"
INCREMENTAL = "incremental"
ROLLUP = "rollup"
BACKFILL = "backfill (14 days)"
ROLLUP_AFTER_BACKFILL = "rollup after backfill"
NO_PREDICATES = "baseline: MERGE without partition predicates"
EVENT_TIME = "baseline: event_time incremental"
FULL_REFRESH = "baseline: full refresh"
SETUP_PHASES = (SETUP_LANDING, SETUP_FCT, SETUP_ROLLUP, SETUP_BATCH)


@dataclass(frozen=True)
class Phase:
    """One measured step: its cost, its Delta commits and the metrics it reported."""

    name: str
    usage: Usage
    commits: tuple[CommitStats, ...] = ()
    metrics: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))

    def total(self, attribute: str) -> int:
        """Sum an integer attribute of CommitStats over the phase's commits."""
        return sum(int(getattr(c, attribute)) for c in self.commits)

    def rows_changed(self) -> int | None:
        """Inserted + updated + deleted rows over the phase's MERGE commits, if any."""
        changed = [c.rows_changed for c in self.commits if c.rows_changed is not None]
        return sum(changed) if changed else None


@dataclass
class SizeResult:
    """Everything measured at one size."""

    shape: Shape
    phases: dict[str, Phase] = field(default_factory=dict)
    facts: dict[str, Any] = field(default_factory=dict)
    checks: dict[str, Any] = field(default_factory=dict)
    steps: dict[str, Usage] = field(default_factory=dict)
    repeats: list[Usage] = field(default_factory=list)
    seconds: float = 0.0


def results_document(results: Sequence[SizeResult]) -> list[dict[str, Any]]:
    """Return the raw numbers of every size, JSON-ready (one entry per size)."""
    return [
        {
            "orders": r.shape.orders,
            "seconds": r.seconds,
            "facts": r.facts,
            "checks": r.checks,
            "phases": {
                name: {
                    "usage": vars(p.usage),
                    "metrics": dict(p.metrics),
                    "commits": [c.as_dict() for c in p.commits],
                }
                for name, p in r.phases.items()
            },
            "steps": {name: vars(u) for name, u in r.steps.items()},
            "repeats": [vars(u) for u in r.repeats],
        }
        for r in results
    ]


def write_results_json(path: Path, results: Sequence[SizeResult]) -> None:
    """Write the raw numbers (git-ignored, for a closer look)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results_document(results), indent=2, default=str))
