"""Where the incremental's time goes: its steps, timed one by one on a scratch copy.

The steps are the ones `orders_etl.pipeline.incremental.merge_window` runs, in its order and
with its functions; only the ledger and the summary are left out.
"""

from __future__ import annotations

from datetime import date

from baselines import read_version, window_since
from measure import Probe, Usage, measure
from pipeline import (
    commits_of_run,
    current_dates,
    dedupe_latest_version,
    distinct_dates,
    filter_ingested_since,
    merge_latest_versions,
    run_session,
    stage_versions,
    table_version,
    touched_partitions,
)
from pyspark.sql import DataFrame, SparkSession

STEP_WATERMARK = "watermark: max(effective_ingested_at) of fct_orders"
STEP_WINDOW = "window: read landing, stage, dedupe, checkpoint, count"
STEP_DATES = "dates: window dates + current dates (order_id, order_date of fct_orders)"
STEP_MERGE = "MERGE with order_date predicates"
STEP_BOOKKEEPING = "after: commits_of_run + touched_partitions"


def incremental_steps(
    spark: SparkSession,
    probe: Probe,
    landing_path: str,
    copy_path: str,
    lookback_days: int,
    run_id: str,
) -> tuple[dict[str, Usage], int]:
    """Time each step of the incremental on the copy; return the costs and the dates read."""
    steps: dict[str, Usage] = {}
    version_before = table_version(spark, copy_path)
    fct_df = read_version(spark, copy_path)
    since, steps[STEP_WATERMARK] = measure(probe, lambda: window_since(fct_df, lookback_days))

    def window() -> DataFrame:
        window_df = filter_ingested_since(
            stage_versions(read_version(spark, landing_path)), since
        ).localCheckpoint()
        latest_df = dedupe_latest_version(window_df).localCheckpoint()
        window_df.count()
        latest_df.count()
        return latest_df

    latest_df, steps[STEP_WINDOW] = measure(probe, window)

    def dates() -> list[date]:
        return sorted(set(distinct_dates(latest_df)) | set(current_dates(fct_df, latest_df)))

    merge_dates, steps[STEP_DATES] = measure(probe, dates)
    # The MERGE commits through a session tagged with `run_id`, as a run's own does.
    tagged = run_session(spark, run_id)
    _, steps[STEP_MERGE] = measure(
        probe, lambda: merge_latest_versions(tagged, copy_path, latest_df, merge_dates)
    )

    def bookkeeping() -> list[str]:
        made = commits_of_run(spark, copy_path, run_id, version_before)
        return touched_partitions(spark, copy_path, [c.version for c in made], "order_date")

    _, steps[STEP_BOOKKEEPING] = measure(probe, bookkeeping)
    return steps, len(merge_dates)
