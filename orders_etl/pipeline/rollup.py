"""Bring `daily_revenue` up to date with `fct_orders`, versioned with as-of times.

Only days whose orders changed are recomputed: the change data feed of `fct_orders` since
the version the last successful rollup reached (kept in the run ledger) names them. Without
that checkpoint, or when the feed cannot be read (vacuumed, or past the log's retention),
every day is recomputed, and the run says so. A recomputed day is compared with its published
figures, so a repeated or crashed-and-rerun rollup adds no version where nothing changed. The
versioning MERGE lands only if no other rollup committed since the figures it compared with
were read; otherwise the rollup starts over from the newer figures (or the timeline guard
refuses it, when they were published at a later processing time).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import date, datetime
from functools import partial
from typing import Any, cast

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from orders_etl.context import CommandResult, RunContext
from orders_etl.errors import GuardRefused
from orders_etl.io.history import changed_values
from orders_etl.io.ledger import ROLLUP_CHECKPOINT_METRIC, last_metric
from orders_etl.io.notify import WEBHOOK_VARIABLE, post_json, revision_payload
from orders_etl.io.tables import ensure_table, read_table, table_exists, table_version
from orders_etl.io.writes import (
    insert_new_rows,
    merge_revenue_versions,
    retry_on_conflict,
    revenue_snapshot,
)
from orders_etl.schemas import (
    DAILY_REVENUE,
    FCT_ORDERS,
    REVENUE_REVISIONS,
    REVENUE_REVISIONS_SCHEMA,
)
from orders_etl.session import concurrently
from orders_etl.transforms.revenue import (
    agg_daily_revenue,
    diff_figures,
    diff_revisions_at,
    filter_current,
    revisions_of_changes,
)
from orders_etl.transforms.stage import filter_order_dates

log = logging.getLogger(__name__)
CHECKPOINT_METRIC = ROLLUP_CHECKPOINT_METRIC


class ChangeFeed:
    """How a rollup learned which days changed: the `change_feed` metric."""

    READ = "read"
    NO_CHECKPOINT = "no checkpoint"
    UNAVAILABLE = "unavailable"


@dataclass(frozen=True)
class ChangedDays:
    """The days a rollup recomputes (None: every day) and how it learned them."""

    dates: list[date] | None
    change_feed: str
    error: str | None = None


@dataclass(frozen=True)
class RollupResult(CommandResult):
    """What one rollup recomputed, versioned and announced."""

    fct_version: int
    fct_version_from: int | None
    changed: ChangedDays
    figures_changed: int
    revisions: tuple[Mapping[str, Any], ...]
    daily_revenue_version: int | None
    announcement: str = ""

    @property
    def days_recomputed(self) -> int | str:
        """How many days were recomputed, or "all"."""
        dates = self.changed.dates
        return "all" if dates is None else len(dates)

    @property
    def metrics(self) -> Mapping[str, Any]:
        return {
            CHECKPOINT_METRIC: self.fct_version,
            "fct_version_from": self.fct_version_from,
            "days_recomputed": self.days_recomputed,
            "change_feed": self.changed.change_feed,
            "change_feed_error": self.changed.error,
            "figures_changed": self.figures_changed,
            "revisions": [dict(r) for r in self.revisions],
            "daily_revenue_version": self.daily_revenue_version,
            "announcement": self.announcement,
        }

    def summary(self) -> str:
        unavailable = (
            f"change data feed unavailable after version {self.fct_version_from} "
            f"({self.changed.error}), every day recomputed; "
            if self.changed.change_feed == ChangeFeed.UNAVAILABLE
            else ""
        )
        return (
            f"{unavailable}days_recomputed={self.days_recomputed} "
            f"figures_changed={self.figures_changed} "
            f"revisions={len(self.revisions)} announcement: {self.announcement}"
        )


def changed_dates(ctx: RunContext, after_version: int | None, to_version: int) -> ChangedDays:
    """Return the `order_date`s changed in `fct_orders` after `after_version` up to
    `to_version`, from its change data feed; every day when there is no checkpoint or the
    feed cannot be read (its files vacuumed, its commits past the log's retention)."""
    if after_version is None:
        return ChangedDays(None, ChangeFeed.NO_CHECKPOINT)
    if after_version >= to_version:
        return ChangedDays([], ChangeFeed.READ)
    fct_path = ctx.warehouse.path(FCT_ORDERS)
    try:
        values = changed_values(ctx.spark, fct_path, "order_date", after_version, to_version)
    except Exception as exc:
        log.warning(
            "change data feed of fct_orders unavailable after version %d (%s); "
            "recomputing every day",
            after_version,
            type(exc).__name__,
        )
        return ChangedDays(None, ChangeFeed.UNAVAILABLE, type(exc).__name__)
    return ChangedDays([v for v in values if isinstance(v, date)], ChangeFeed.READ)


def check_timeline(ctx: RunContext, version: int | None = None) -> datetime | None:
    """Refuse a processing time earlier than the newest published version: the new versions
    would break the as-of timeline. Writes nothing. Return the newest moment `daily_revenue`
    (at `version`, default its latest) holds, its latest `as_of` or `superseded_at`; None when
    there is none."""
    if not table_exists(ctx.spark, ctx.warehouse.path(DAILY_REVENUE)):
        return None
    row = (
        read_table(ctx.spark, ctx.warehouse, DAILY_REVENUE, version=version)
        .agg(F.max("as_of").alias("as_of"), F.max("superseded_at").alias("superseded_at"))
        .first()
    )
    newest: datetime | None = None if row is None else row["as_of"]
    if newest is not None and newest > ctx.processing_time.replace(tzinfo=None):
        raise GuardRefused(
            f"rollup refused: --processing-time {ctx.processing_time.isoformat()} is before "
            f"the newest published version ({newest.isoformat()}Z)"
        )
    moments = [m for m in (newest, None if row is None else row["superseded_at"]) if m]
    return max(moments, default=None)


def bring_up_to_date(ctx: RunContext) -> RollupResult:
    """One try of the rollup: recompute the changed days, version what differs, record the
    revisions of past days."""
    spark, wh = ctx.spark, ctx.warehouse
    to_version = table_version(spark, wh.path(FCT_ORDERS))
    assert to_version is not None
    revenue_version, last_merge = revenue_snapshot(spark, wh.path(DAILY_REVENUE))
    checked: list[Callable[[], object]] = [
        partial(last_metric, spark, wh, CHECKPOINT_METRIC),
        partial(check_timeline, ctx, revenue_version),
    ]
    last_checked, newest_checked = concurrently(checked)
    last = cast(int | None, last_checked)
    newest = cast(datetime | None, newest_checked)
    changed = changed_dates(ctx, last, to_version)
    dates = changed.dates
    fct_df = read_table(spark, wh, FCT_ORDERS, version=to_version)
    published_all = read_table(spark, wh, DAILY_REVENUE, version=revenue_version)
    published_df = filter_order_dates(filter_current(published_all), dates=dates)
    recomputed_df = agg_daily_revenue(filter_order_dates(fct_df, dates=dates))
    changes_df = diff_figures(published_df, recomputed_df)
    changes = 0
    if dates != []:  # no day changed: nothing to compare, no Spark job
        changes_df = changes_df.localCheckpoint()
        changes = changes_df.count()
    if changes:
        merge_revenue_versions(
            spark,
            wh.path(DAILY_REVENUE),
            changes_df,
            ctx.processing_time,
            ctx.run_id,
            after_merge=last_merge,
        )
    moment = ctx.processing_time.replace(tzinfo=None)
    if newest is not None and newest >= moment:
        # Versions at this processing time were there before this try (a crashed try of this
        # run left them): read back what they revised and was not recorded yet.
        revisions_df: DataFrame | None = diff_revisions_at(
            read_table(spark, wh, DAILY_REVENUE), ctx.processing_time
        ).join(
            read_table(spark, wh, REVENUE_REVISIONS),
            on=["order_date", "currency", "as_of"],
            how="left_anti",
        )
    elif changes:
        # The MERGE landed on the snapshot the changes came from, which held nothing at or
        # after this processing time: its revisions are the changes of published past days.
        revisions_df = revisions_of_changes(changes_df, published_all, ctx.processing_time)
    else:
        revisions_df = None  # nothing versioned now or before at this time: no revision
    revisions: tuple[Mapping[str, Any], ...] = ()
    if revisions_df is not None:
        new_revisions_df = (
            revisions_df.withColumn("run_id", F.lit(ctx.run_id))
            .select(*(f.name for f in REVENUE_REVISIONS_SCHEMA.fields))
            .localCheckpoint()
        )
        ordered = new_revisions_df.drop("as_of", "run_id").orderBy("order_date", "currency")
        revisions = tuple(r.asDict() for r in ordered.collect())
        if revisions:
            keys = ("order_date", "currency", "as_of")
            insert_new_rows(spark, wh.path(REVENUE_REVISIONS), new_revisions_df, keys)
    return RollupResult(
        fct_version=to_version,
        fct_version_from=last,
        changed=changed,
        figures_changed=changes,
        revisions=revisions,
        daily_revenue_version=table_version(spark, wh.path(DAILY_REVENUE)),
    )


def announce(ctx: RunContext, revisions: tuple[Mapping[str, Any], ...]) -> str:
    """Log each revision and POST them once to the webhook, when one is configured."""
    for r in revisions:
        log.warning(
            "revision %s %s: revenue %s -> %s, orders %s -> %s",
            r["order_date"],
            r["currency"],
            r["previous_revenue"],
            r["new_revenue"],
            r["previous_order_count"],
            r["new_order_count"],
        )
    url = os.environ.get(WEBHOOK_VARIABLE, "").strip()
    if not revisions:
        return "nothing to announce"
    if not url:
        return "logged (no webhook configured)"
    payload = revision_payload(ctx.run_id, ctx.processing_time.isoformat(), revisions)
    return post_json(url, payload, ctx.config.notify)


def run(ctx: RunContext) -> RollupResult:
    """Bring `daily_revenue` up to date (retried on a concurrent write), then announce."""
    for table in (FCT_ORDERS, DAILY_REVENUE, REVENUE_REVISIONS):
        ensure_table(ctx.spark, ctx.warehouse, table)
    result = retry_on_conflict(lambda: bring_up_to_date(ctx), ctx.config.retries, "rollup")
    return replace(result, announcement=announce(ctx, result.revisions))
