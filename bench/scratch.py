"""Where one size runs: a scratch warehouse, the config its commands get, and the scratch
copies of `fct_orders` the baselines, the breakdown and the repeats work on."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pipeline import Config, SparkSettings, Warehouse
from results import EVENT_TIME, FULL_REFRESH, NO_PREDICATES

BREAKDOWN = "breakdown"
COPIES = {
    FULL_REFRESH: "full_refresh",
    NO_PREDICATES: "no_partition_predicates",
    EVENT_TIME: "event_time_model",
    BREAKDOWN: "breakdown",
}


def repeat_copy(index: int) -> str:
    """Name the copy of `fct_orders` that the repeat `index` (from 0) works on."""
    return f"repeat_{index}"


@dataclass(frozen=True)
class Scratch:
    """One size's scratch folder: `warehouse/`, `batch/` and `copies/` under `folder`."""

    folder: Path
    config: Config

    @classmethod
    def at(cls, folder: Path, settings: SparkSettings) -> Scratch:
        """Lay out a scratch folder whose commands run with the bench's Spark settings."""
        warehouse = Warehouse(str(folder / "warehouse"))
        return cls(folder, Config(env="bench", warehouse=warehouse.root, spark=settings))

    @property
    def warehouse(self) -> Warehouse:
        """The scratch warehouse the commands write to."""
        return Warehouse(self.config.warehouse)

    @property
    def lookback_days(self) -> int:
        """The incremental's lookback window, from the config."""
        return self.config.incremental.lookback_days

    @property
    def batch_folder(self) -> Path:
        """The folder the hourly batch file is written to."""
        return self.folder / "batch"

    def path(self, table: str) -> str:
        """Return the folder of a table of the scratch warehouse."""
        return self.warehouse.path(table)

    def copy_path(self, name: str) -> str:
        """Return the folder of a scratch copy of `fct_orders` (a baseline's or another's)."""
        return str(self.folder / "copies" / COPIES.get(name, name))
