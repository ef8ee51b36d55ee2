"""Run contexts that share one SparkContext tag their Delta commits with their own run id,
one after another and in threads at the same time."""

from __future__ import annotations

import threading
import time
from functools import partial
from pathlib import Path

import pytest
from delta.tables import DeltaTable
from pyspark.sql import SparkSession

from orders_etl.session import concurrently
from tests.conftest import ContextFactory, make_config
from tests.helpers import event, land_path, write_batch

NOW = "2026-03-02T12:00:00Z"


def _metadata(spark: SparkSession, path: Path) -> list[str | None]:
    history = DeltaTable.forPath(spark, str(path)).history().orderBy("version")
    return [r["userMetadata"] for r in history.select("userMetadata").collect()]


def test_a_context_keeps_its_run_id_after_another_context_on_the_same_session_starts(
    spark: SparkSession, make_ctx: ContextFactory, tmp_path: Path
) -> None:
    first, second = make_ctx(NOW), make_ctx(NOW)
    first_session = first.spark
    second.spark.range(1).write.format("delta").save(str(tmp_path / "b"))
    first_session.range(1).write.format("delta").save(str(tmp_path / "a"))

    assert first.run_id != second.run_id
    assert _metadata(spark, tmp_path / "a") == [first.run_id]
    assert _metadata(spark, tmp_path / "b") == [second.run_id]
    # the shared session itself is never tagged
    assert spark.conf.get("spark.databricks.delta.commitInfo.userMetadata", None) is None


def test_two_runs_in_threads_on_one_session_each_tag_their_own_commits(
    spark: SparkSession, make_ctx: ContextFactory, tmp_path: Path
) -> None:
    contexts = []
    for name in ("a", "b"):
        batch = write_batch(
            tmp_path / f"in-{name}",
            "batch.jsonl",
            [event(f"{name}{i}", "2026-03-01T10:00:00Z") for i in range(5)] + ["{bad"],
        )
        contexts.append((make_ctx(NOW, make_config(tmp_path / f"wh-{name}")), batch))
    start = threading.Barrier(len(contexts))
    errors: list[BaseException] = []

    def land(index: int) -> None:
        ctx, batch = contexts[index]
        try:
            start.wait()
            land_path(ctx, batch)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=land, args=(i,)) for i in range(len(contexts))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert errors == []
    for ctx, _ in contexts:
        for table in ("orders_landing", "orders_quarantine"):
            tags = _metadata(spark, Path(ctx.config.warehouse) / table)
            # created, then appended, by this run alone
            assert len(tags) >= 2
            assert set(tags) == {ctx.run_id}, (table, tags)


def test_concurrent_actions_run_at_once_and_return_in_the_given_order(
    spark: SparkSession,
) -> None:
    meet = threading.Barrier(2, timeout=60)

    def count(n: int) -> int:
        meet.wait()  # only returns when the other action is running too
        return spark.range(n).count()

    assert concurrently([partial(count, 3), partial(count, 5)]) == [3, 5]


def test_a_failing_concurrent_action_raises_once_the_others_have_ended(
    spark: SparkSession,
) -> None:
    ended: list[int] = []

    def fail() -> int:
        raise ValueError("bad action")

    def slow() -> int:
        time.sleep(0.5)
        ended.append(spark.range(2).count())
        return 2

    with pytest.raises(ValueError, match="bad action"):
        concurrently([fail, slow])
    assert ended == [2]
