"""The optional catalog: every warehouse table as `<database>.<table>`, an external Delta table
at its warehouse path, and the view `<database>.daily_revenue_current` of the current figures.

Registering is planned first and written after: `plan_registration` reads the catalog and
refuses (nothing written) when a name already points elsewhere; `register` then adds only what
is missing. Commands keep reading and writing by path; the names serve SQL clients and BI tools.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from pyspark.errors import AnalysisException
from pyspark.sql import SparkSession

from orders_etl.errors import GuardRefused
from orders_etl.io.tables import TABLES, Warehouse
from orders_etl.schemas import DAILY_REVENUE
from orders_etl.session import CATALOG_IMPLEMENTATION
from orders_etl.transforms.revenue import FIGURE_COLUMNS

CURRENT_VIEW = "daily_revenue_current"
_EXTERNAL, _VIEW = "EXTERNAL", "VIEW"


class CatalogNameTaken(GuardRefused):
    """A catalog name already points at something other than this warehouse's table."""


class CatalogUnavailable(GuardRefused):
    """The session's catalog is in-memory: names registered there would end with the run."""


@dataclass(frozen=True)
class CatalogEntry:
    """What the catalog holds under one name (`SHOW TABLE EXTENDED`'s fields)."""

    name: str
    kind: str
    provider: str | None = None
    location: str | None = None
    view_text: str | None = None


@dataclass(frozen=True)
class Registration:
    """What `register` writes: the database if absent, the missing tables (name -> location),
    and the view's statement unless the view already is exactly that."""

    database: str
    create_database: bool
    tables: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    view_sql: str | None = None
    view_existed: bool = False


def _quoted(identifier: str) -> str:
    """Quote a plain identifier (config.py allows only letters, digits and `_`)."""
    return f"`{identifier}`"


def qualified_location(spark: SparkSession, path: str) -> str:
    """Spell `path` as the catalog stores a table location (Hadoop's qualified path)."""
    jvm = spark.sparkContext._jvm
    assert jvm is not None
    hadoop_path = jvm.org.apache.hadoop.fs.Path(path)
    file_system = hadoop_path.getFileSystem(spark._jsc.hadoopConfiguration())
    return str(file_system.makeQualified(hadoop_path).toString())


def _entry(name: str, information: str) -> CatalogEntry:
    fields = dict(line.split(": ", 1) for line in information.splitlines() if ": " in line)
    return CatalogEntry(
        name=name,
        kind=fields.get("Type", ""),
        provider=fields.get("Provider"),
        location=fields.get("Location"),
        view_text=fields.get("View Original Text"),
    )


def catalog_entries(spark: SparkSession, database: str) -> dict[str, CatalogEntry]:
    """Read every name in `database`, without opening any table: one entry per name."""
    if not spark.catalog.databaseExists(database):
        return {}
    rows = spark.sql(f"SHOW TABLE EXTENDED IN {_quoted(database)} LIKE '*'").collect()
    return {
        r["tableName"]: _entry(r["tableName"], r["information"])
        for r in rows
        if not r["isTemporary"]
    }


def current_view_sql(database: str) -> str:
    """The view of the current figures: the `daily_revenue` rows no later run has superseded."""
    columns = ", ".join((*FIGURE_COLUMNS, "as_of"))
    return (
        f"SELECT {columns} FROM {_quoted(database)}.{_quoted(DAILY_REVENUE)} "
        "WHERE superseded_at IS NULL"
    )


def _points_at(entry: CatalogEntry, location: str) -> bool:
    return (
        entry.kind == _EXTERNAL
        and (entry.provider or "").lower() == "delta"
        and entry.location == location
    )


def _conflict(database: str, entry: CatalogEntry, location: str) -> str:
    """Say what a table's name holds instead of this warehouse's table at `location`."""
    name = f"{database}.{entry.name}"
    if entry.kind == _VIEW:
        return f"{name} is a view, not this warehouse's table at {location}"
    if entry.location != location:
        return f"{name} points at {entry.location}, not at this warehouse's {location}"
    return (
        f"{name} is a {entry.kind} {entry.provider or 'unknown'} table at {location}, "
        "not an EXTERNAL delta table"
    )


def plan_registration(spark: SparkSession, warehouse: Warehouse, database: str) -> Registration:
    """Check every name of the warehouse in `database`; return what `register` must add.

    Refuses with `CatalogNameTaken` (exit 2, nothing written) when a table's name holds anything
    but an external Delta table at this warehouse's path, or the view's name holds a table.
    """
    implementation = spark.conf.get(CATALOG_IMPLEMENTATION, "in-memory")
    if implementation != "hive":
        raise CatalogUnavailable(
            f"[catalog] database {database!r} needs a Hive catalog, but this session's "
            f"catalog is {implementation!r}; its names would end with the run"
        )
    entries = catalog_entries(spark, database)
    missing: dict[str, str] = {}
    conflicts: list[str] = []
    for spec in TABLES:
        location = qualified_location(spark, warehouse.path(spec.name))
        entry = entries.get(spec.name)
        if entry is None:
            missing[spec.name] = location
        elif not _points_at(entry, location):
            conflicts.append(_conflict(database, entry, location))
    view = entries.get(CURRENT_VIEW)
    if view is not None and view.kind != _VIEW:
        conflicts.append(f"{database}.{CURRENT_VIEW} is a {view.kind} table, not a view")
    if conflicts:
        more = f" (and {len(conflicts) - 1} more)" if len(conflicts) > 1 else ""
        raise CatalogNameTaken(f"migrate refused: {conflicts[0]}{more}; nothing was written")
    wanted_view = current_view_sql(database)
    return Registration(
        database=database,
        create_database=not spark.catalog.databaseExists(database),
        tables=MappingProxyType(missing),
        view_sql=None if view is not None and view.view_text == wanted_view else wanted_view,
        view_existed=view is not None,
    )


def register(spark: SparkSession, registration: Registration) -> dict[str, Any]:
    """Write a planned registration; return what changed (metrics)."""
    database = registration.database
    if registration.create_database:
        spark.sql(f"CREATE DATABASE IF NOT EXISTS {_quoted(database)}")
    for name, location in registration.tables.items():
        try:
            # The location goes in as a value, never spliced into SQL text.
            spark.catalog.createTable(
                f"{_quoted(database)}.{_quoted(name)}", path=location, source="delta"
            )
        except AnalysisException:
            # Another migrate of this warehouse registered it meanwhile: fine if it is ours.
            entry = catalog_entries(spark, database).get(name)
            if entry is None or not _points_at(entry, location):
                raise
    view = "unchanged"
    if registration.view_sql is not None:
        spark.sql(
            f"CREATE OR REPLACE VIEW {_quoted(database)}.{_quoted(CURRENT_VIEW)} "
            f"AS {registration.view_sql}"
        )
        view = "replaced" if registration.view_existed else "created"
    return {
        "catalog_database": database,
        "catalog_registered": sorted(registration.tables),
        "catalog_view": view,
    }
