"""Frozen, typed configuration loaded once from `conf/<env>.toml`."""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from orders_etl.errors import UsageError

DEFAULT_ENV = "local"
ENV_VARIABLE = "ORDERS_ETL_ENV"
CONF_DIR_VARIABLE = "ORDERS_ETL_CONF_DIR"


@dataclass(frozen=True)
class SparkSettings:
    """How the session is built: master and conf apply only outside spark-submit."""

    app_name: str = "orders_etl"
    master: str | None = "local[2]"
    conf: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))


@dataclass(frozen=True)
class CatalogSettings:
    """The catalog database `migrate` registers the tables in; empty means path-only."""

    database: str = ""


@dataclass(frozen=True)
class IncrementalSettings:
    """The processing-time window of `incremental`."""

    lookback_days: int = 3


@dataclass(frozen=True)
class BackfillSettings:
    """Defaults and guards of `backfill`."""

    default_days: int = 14
    max_days: int = 31
    max_shrink_share: float = 0.2


# Delta's own default file retention (`delta.deletedFileRetentionDuration`, 7 days): VACUUM's
# retention check refuses less, and so does the config.
MIN_RETENTION_HOURS = 168


@dataclass(frozen=True)
class MaintainSettings:
    """Defaults of `maintain`: its default range and VACUUM's retention."""

    days: int = 7
    retention_hours: int = MIN_RETENTION_HOURS


@dataclass(frozen=True)
class RetrySettings:
    """Bounded retries of a write that lost a Delta conflict."""

    attempts: int = 4
    backoff_seconds: float = 1.0


@dataclass(frozen=True)
class NotifySettings:
    """The revision webhook's timeout and retries (its URL comes only from the environment)."""

    timeout_seconds: float = 5.0
    attempts: int = 3


@dataclass(frozen=True)
class Config:
    """Everything a run needs from `conf/<env>.toml`; tests build it inline."""

    env: str
    warehouse: str
    catalog: CatalogSettings = CatalogSettings()
    incremental: IncrementalSettings = IncrementalSettings()
    backfill: BackfillSettings = BackfillSettings()
    maintain: MaintainSettings = MaintainSettings()
    retries: RetrySettings = RetrySettings()
    notify: NotifySettings = NotifySettings()
    spark: SparkSettings = SparkSettings()


def conf_dir() -> Path:
    """Return the folder holding `<env>.toml`: $ORDERS_ETL_CONF_DIR, ./conf, or the project's."""
    explicit = os.environ.get(CONF_DIR_VARIABLE)
    if explicit:
        return Path(explicit)
    local = Path.cwd() / "conf"
    if local.is_dir():
        return local
    return Path(__file__).resolve().parent.parent / "conf"


def load_config(env: str | None = None, warehouse: str | None = None) -> Config:
    """Load `conf/<env>.toml` into a frozen Config; `warehouse` overrides the file's root."""
    name = env or os.environ.get(ENV_VARIABLE) or DEFAULT_ENV
    if not name.replace("_", "").replace("-", "").isalnum():
        raise UsageError(f"--env must be a plain name, got {name!r}")
    path = conf_dir() / f"{name}.toml"
    if not path.is_file():
        raise UsageError(f"no config for --env {name!r}: {path} does not exist")
    try:
        with path.open("rb") as handle:
            raw = tomllib.load(handle)
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"config {path} is not valid TOML: {exc}") from exc
    return _build_config(name, raw, warehouse, path)


def _section(raw: Mapping[str, Any], name: str, path: Path) -> Mapping[str, Any]:
    value = raw.get(name, {})
    if not isinstance(value, Mapping):
        raise UsageError(f"config {path}: [{name}] must be a table")
    return value


def _positive_int(section: Mapping[str, Any], key: str, default: int, where: str) -> int:
    value = section.get(key, default)
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise UsageError(f"config {where}: {key} must be a whole number >= 0, got {value!r}")
    return value


# A plain SQL identifier, at most 128 characters (the Hive metastore's limit on names).
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}")


def _catalog(raw: Mapping[str, Any], root: str, path: Path) -> CatalogSettings:
    """Read `[catalog]`: the database must be empty or a plain SQL identifier."""
    database = _section(raw, "catalog", path).get("database", "")
    if not isinstance(database, str) or (database and not _IDENTIFIER.fullmatch(database)):
        raise UsageError(
            f"config {path}: [catalog] database must be a plain SQL identifier "
            f"(letters, digits, _; not starting with a digit), got {database!r}"
        )
    if database and "://" not in root.removeprefix("file:") and ";" in root:
        # The embedded metastore's Derby URL ends a path at ';'.
        raise UsageError(
            f"config {path}: [catalog] needs a warehouse path without ';' for its local "
            f"metastore, got {root!r}"
        )
    return CatalogSettings(database=database)


def _build_config(name: str, raw: Mapping[str, Any], warehouse: str | None, path: Path) -> Config:
    where = str(path)
    root = warehouse if warehouse is not None else _section(raw, "warehouse", path).get("root")
    if not isinstance(root, str):
        raise UsageError(f"config {where}: [warehouse] root must be a string")
    incremental = _section(raw, "incremental", path)
    backfill = _section(raw, "backfill", path)
    maintain = _section(raw, "maintain", path)
    retries = _section(raw, "retries", path)
    notify = _section(raw, "notify", path)
    spark = _section(raw, "spark", path)
    share = backfill.get("max_shrink_share", BackfillSettings.max_shrink_share)
    if not isinstance(share, int | float) or not 0 <= share <= 1:
        raise UsageError(f"config {where}: max_shrink_share must be between 0 and 1, got {share!r}")
    retention = _positive_int(maintain, "retention_hours", MaintainSettings.retention_hours, where)
    if retention < MIN_RETENTION_HOURS:
        raise UsageError(
            f"config {where}: [maintain] retention_hours must be at least {MIN_RETENTION_HOURS} "
            f"(Delta's retention check), got {retention}"
        )
    spark_conf = spark.get("conf", {})
    if not isinstance(spark_conf, Mapping):
        raise UsageError(f"config {where}: [spark.conf] must be a table")
    master = spark.get("master", SparkSettings.master)
    return Config(
        env=name,
        warehouse=root,
        catalog=_catalog(raw, root, path),
        incremental=IncrementalSettings(
            lookback_days=_positive_int(
                incremental, "lookback_days", IncrementalSettings.lookback_days, where
            )
        ),
        backfill=BackfillSettings(
            default_days=max(
                1, _positive_int(backfill, "default_days", BackfillSettings.default_days, where)
            ),
            max_days=max(1, _positive_int(backfill, "max_days", BackfillSettings.max_days, where)),
            max_shrink_share=float(share),
        ),
        maintain=MaintainSettings(
            days=max(1, _positive_int(maintain, "days", MaintainSettings.days, where)),
            retention_hours=retention,
        ),
        retries=RetrySettings(
            attempts=max(1, _positive_int(retries, "attempts", RetrySettings.attempts, where)),
            backoff_seconds=float(retries.get("backoff_seconds", RetrySettings.backoff_seconds)),
        ),
        notify=NotifySettings(
            timeout_seconds=float(notify.get("timeout_seconds", NotifySettings.timeout_seconds)),
            attempts=max(1, _positive_int(notify, "attempts", NotifySettings.attempts, where)),
        ),
        spark=SparkSettings(
            app_name=str(spark.get("app_name", SparkSettings.app_name)),
            master=str(master) if master else None,
            conf=MappingProxyType({str(k): str(v) for k, v in spark_conf.items()}),
        ),
    )
