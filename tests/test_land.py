"""Delta tests of `land`: every non-blank line lands or is quarantined exactly once, also
across reruns, renamed copies and crashes between the writes."""

from __future__ import annotations

import gzip
import hashlib
import shutil
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from orders_etl import cli
from orders_etl.errors import DataQualityError
from orders_etl.io.landing import rows_per_content
from orders_etl.io.tables import table_version
from orders_etl.pipeline import land
from orders_etl.transforms.parse import filter_valid_rows
from tests.conftest import ContextFactory, make_config
from tests.helpers import event, land_path, landing_dicts, write_batch

NOW = "2026-03-02T12:00:00Z"
STAMP = datetime(2026, 3, 2, 12, 0)


def _quarantine_dicts(spark: SparkSession, warehouse: Path) -> list[dict[str, Any]]:
    df = spark.read.format("delta").load(str(warehouse / "orders_quarantine"))
    return [r.asDict() for r in df.collect()]


def _versions(spark: SparkSession, warehouse: Path) -> tuple[int | None, int | None]:
    return (
        table_version(spark, str(warehouse / "orders_landing")),
        table_version(spark, str(warehouse / "orders_quarantine")),
    )


def _lines_of(rows: list[dict[str, Any]]) -> list[tuple[str, int]]:
    """(file name, line number) of each row, sorted: a line twice shows up twice."""
    return sorted((Path(r["source_file"]).name, r["line_number"]) for r in rows)


def test_land_accounts_for_every_line_and_quarantines_with_reason(
    spark: SparkSession, make_ctx: ContextFactory, warehouse: Path, tmp_path: Path
) -> None:
    batch = write_batch(
        tmp_path / "in",
        "batch.jsonl",
        [
            event("o1", "2026-03-01T10:00:00Z", sdk="ios"),
            "",
            "{not json",
            event("o2", "2026-03-01T23:59:59-01:00"),
            "   ",
            event("o3", "2026-03-01T10:00:00Z", currency="eur"),
            "[1, 2]",
            event("o4", "2026-02-20T08:00:00Z", sdk="web", campaign="x"),
        ],
    )
    ctx = make_ctx(NOW)

    result = land_path(ctx, batch)

    metrics = result.metrics
    assert metrics["lines_read"] == 6
    assert (metrics["rows_landed"], metrics["rows_quarantined"]) == (3, 3)
    assert metrics["unknown_field_lines"] == 2
    assert metrics["quarantine_reasons"] == {
        "invalid_json": 1,
        "invalid_currency": 1,
        "not_an_object": 1,
    }
    assert (metrics["files_landed"], metrics["files_skipped"]) == (1, [])
    source = str(batch.resolve())
    sha = hashlib.sha256(batch.read_bytes()).hexdigest()
    landing = landing_dicts(spark, warehouse)
    assert len(landing) == metrics["rows_landed"]
    assert {
        (r["order_id"], r["source_file"], r["line_number"], r["run_id"], r["event_ingested_at"])
        for r in landing
    } == {
        ("o1", source, 1, ctx.run_id, STAMP),
        ("o2", source, 4, ctx.run_id, STAMP),
        ("o4", source, 8, ctx.run_id, STAMP),
    }
    assert {r["source_sha256"] for r in landing} == {sha}
    quarantine = _quarantine_dicts(spark, warehouse)
    assert len(quarantine) == metrics["rows_quarantined"]
    bad_currency = event("o3", "2026-03-01T10:00:00Z", currency="eur")
    assert {
        (
            r["raw"],
            r["reason"],
            r["source_file"],
            r["line_number"],
            r["run_id"],
            r["event_ingested_at"],
        )
        for r in quarantine
    } == {
        ("{not json", "invalid_json", source, 3, ctx.run_id, STAMP),
        (bad_currency, "invalid_currency", source, 6, ctx.run_id, STAMP),
        ("[1, 2]", "not_an_object", source, 7, ctx.run_id, STAMP),
    }


def test_a_rerun_or_a_renamed_copy_of_a_landed_file_adds_nothing(
    spark: SparkSession, make_ctx: ContextFactory, warehouse: Path, tmp_path: Path
) -> None:
    batch = write_batch(tmp_path / "in", "b1.jsonl", [event("o1", "2026-03-01T10:00:00Z"), "oops"])
    land_path(make_ctx(NOW), batch)
    versions = _versions(spark, warehouse)
    landed, quarantined = landing_dicts(spark, warehouse), _quarantine_dicts(spark, warehouse)
    assert (len(landed), len(quarantined)) == (1, 1)

    rerun = land_path(make_ctx("2026-03-02T13:00:00Z"), batch)
    copy = tmp_path / "later" / "renamed.jsonl"
    copy.parent.mkdir()
    shutil.copyfile(batch, copy)
    renamed = land_path(make_ctx("2026-03-02T14:00:00Z"), copy)

    for result, skipped in ((rerun, batch), (renamed, copy)):
        assert result.metrics["files_skipped"] == [str(skipped.resolve())]
        assert result.metrics["files_landed"] == 0
        assert (
            result.metrics["lines_read"],
            result.metrics["rows_landed"],
            result.metrics["rows_quarantined"],
        ) == (0, 0, 0)
    assert result.metrics["lines_skipped"] == 2
    assert _versions(spark, warehouse) == versions
    assert landing_dicts(spark, warehouse) == landed
    assert _quarantine_dicts(spark, warehouse) == quarantined


def test_a_folder_lands_in_lexical_order_with_source_file_and_line_number(
    spark: SparkSession, make_ctx: ContextFactory, warehouse: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "batch"
    first_lines = [event("o1", "2026-03-01T10:00:00Z"), "", event("o2", "2026-03-01T11:00:00Z")]
    # Written first, sorted last: same content as "01 first.jsonl", so it is skipped.
    write_batch(folder, "04-copy.jsonl", first_lines)
    write_batch(folder, "01 first.jsonl", first_lines)
    write_batch(folder, "02.json", ["{bad", event("o3", "2026-03-01T12:00:00+05:30")])
    gz_text = event("o4", "2026-03-01T13:00:00Z") + "\r\n" + event("o5", "2026-03-01T14:00:00Z")
    (folder / "03.jsonl.gz").write_bytes(gzip.compress(gz_text.encode()))
    write_batch(folder, "_ignored.jsonl", [event("x1", "2026-03-01T10:00:00Z")])
    write_batch(folder, ".hidden.jsonl", [event("x2", "2026-03-01T10:00:00Z")])
    write_batch(folder, "notes.txt", [event("x3", "2026-03-01T10:00:00Z")])

    result = land_path(make_ctx(NOW), folder)

    assert result.metrics["files_read"] == 4
    assert result.metrics["files_landed"] == 3
    assert result.metrics["files_skipped"] == [str((folder / "04-copy.jsonl").resolve())]
    assert (result.metrics["lines_read"], result.metrics["rows_landed"]) == (6, 5)
    landing = landing_dicts(spark, warehouse)
    assert sorted((r["order_id"], r["source_file"], r["line_number"]) for r in landing) == [
        ("o1", str((folder / "01 first.jsonl").resolve()), 1),
        ("o2", str((folder / "01 first.jsonl").resolve()), 3),
        ("o3", str((folder / "02.json").resolve()), 2),
        ("o4", str((folder / "03.jsonl.gz").resolve()), 1),
        ("o5", str((folder / "03.jsonl.gz").resolve()), 2),
    ]
    quarantine = _quarantine_dicts(spark, warehouse)
    assert [(r["raw"], r["source_file"], r["line_number"]) for r in quarantine] == [
        ("{bad", str((folder / "02.json").resolve()), 1)
    ]


def _crash_on_call(monkeypatch: pytest.MonkeyPatch, number: int) -> None:
    """Make `land._write_new` raise on its `number`-th call (the earlier calls write)."""
    real = land._write_new
    calls = iter(range(1, 100))

    def crashing(*args: Any, **kwargs: Any) -> tuple[str, ...]:
        if next(calls) == number:
            raise RuntimeError("simulated crash")
        return real(*args, **kwargs)

    monkeypatch.setattr(land, "_write_new", crashing)


def test_a_crash_between_the_landing_and_quarantine_writes_then_a_rerun_lands_each_line_once(
    spark: SparkSession,
    make_ctx: ContextFactory,
    warehouse: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    batch = write_batch(
        tmp_path / "in",
        "b1.jsonl",
        [event("o1", "2026-03-01T10:00:00Z"), "{bad", event("o2", "2026-03-01T11:00:00Z")],
    )
    _crash_on_call(monkeypatch, 2)
    with pytest.raises(RuntimeError, match="simulated crash"):
        land_path(make_ctx(NOW), batch)
    assert _lines_of(landing_dicts(spark, warehouse)) == [("b1.jsonl", 1), ("b1.jsonl", 3)]
    assert _quarantine_dicts(spark, warehouse) == []
    monkeypatch.undo()
    landing_version = table_version(spark, str(warehouse / "orders_landing"))

    rerun = land_path(make_ctx("2026-03-02T13:00:00Z"), batch)

    assert (rerun.metrics["rows_landed"], rerun.metrics["rows_quarantined"]) == (2, 1)
    assert rerun.metrics["lines_read"] == 3
    assert table_version(spark, str(warehouse / "orders_landing")) == landing_version
    assert _lines_of(landing_dicts(spark, warehouse)) == [("b1.jsonl", 1), ("b1.jsonl", 3)]
    assert _lines_of(_quarantine_dicts(spark, warehouse)) == [("b1.jsonl", 2)]


_ACCOUNTING_BATCH = [
    event("o1", "2026-03-01T10:00:00Z"),
    "{bad",
    event("o2", "2026-03-01T11:00:00Z"),
    event("o3", "2026-03-01T12:00:00Z", currency="eur"),
]


@pytest.fixture
def accounting_batch(tmp_path: Path) -> Path:
    """One file of two valid lines and two quarantined ones."""
    return write_batch(tmp_path / "in", "b1.jsonl", _ACCOUNTING_BATCH)


def _table_rows(spark: SparkSession, path: Path) -> list[tuple[Any, ...]]:
    """A table's rows without the columns that name the run, sorted."""
    df = spark.read.format("delta").load(str(path)).drop("run_id")
    return sorted(tuple(r) for r in df.collect())


def test_the_parse_counts_stand_in_for_the_read_back_and_give_what_it_gives(
    spark: SparkSession,
    make_ctx: ContextFactory,
    warehouse: Path,
    tmp_path: Path,
    accounting_batch: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    read_backs: list[str] = []

    def counted(spark_: SparkSession, path: str, shas: Any) -> Any:
        read_backs.append(path)
        return rows_per_content(spark_, path, shas)

    monkeypatch.setattr(land, "rows_per_content", counted)
    fast = land_path(make_ctx(NOW), accounting_batch)
    assert read_backs == []

    # The same batch into a second warehouse, every count read back from the tables.
    other = tmp_path / "other"
    monkeypatch.setattr(land, "_rows_appended_alone", lambda *_: None)
    slow = land_path(make_ctx(NOW, make_config(other)), accounting_batch)
    assert len(read_backs) == 2

    assert fast.metrics == slow.metrics
    assert (fast.metrics["rows_landed"], fast.metrics["rows_quarantined"]) == (2, 2)
    for table in ("orders_landing", "orders_quarantine"):
        assert _table_rows(spark, warehouse / table) == _table_rows(spark, other / table)


def test_an_append_that_loses_a_row_fails_the_accounting_and_not_the_parse_counts(
    spark: SparkSession,
    make_ctx: ContextFactory,
    warehouse: Path,
    accounting_batch: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(
        land,
        "filter_valid_rows",
        lambda df: filter_valid_rows(df).filter(F.col("order_id") != "o2"),
    )

    with pytest.raises(DataQualityError, match="landing accounting does not hold for 1 file"):
        land_path(make_ctx(NOW), accounting_batch)

    assert sorted(r["order_id"] for r in landing_dicts(spark, warehouse)) == ["o1"]


def test_only_this_runs_own_append_lets_the_parse_counts_stand(
    spark: SparkSession, make_ctx: ContextFactory, warehouse: Path, tmp_path: Path
) -> None:
    ctx = make_ctx(NOW)
    land_path(ctx, write_batch(tmp_path / "a", "a.jsonl", [event("o1", "2026-03-01T10:00:00Z")]))
    path = str(warehouse / "orders_landing")
    before = table_version(spark, path)
    assert before is not None
    land_path(ctx, write_batch(tmp_path / "b", "b.jsonl", _ACCOUNTING_BATCH))

    assert land._rows_appended_alone(ctx, path, before) == 2
    assert land._rows_appended_alone(make_ctx(NOW), path, before) is None
    assert land._rows_appended_alone(ctx, path, None) is None
    assert land._rows_appended_alone(ctx, path, table_version(spark, path)) == 0


def _cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


class _Killed(BaseException):
    """The process dying: nothing in the command catches it."""


def test_a_crash_after_both_writes_before_the_ledger_then_a_rerun_adds_nothing(
    spark: SparkSession,
    warehouse: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    batch = write_batch(tmp_path / "in", "b1.jsonl", [event("o1", "2026-03-01T10:00:00Z"), "{bad"])
    argv = ["land", "--source", str(batch), "--warehouse", str(warehouse)]

    def killed(*args: Any, **kwargs: Any) -> None:
        raise _Killed

    monkeypatch.setattr("orders_etl.runner.record_end", killed)
    with pytest.raises(_Killed):
        cli.main([*argv, "--processing-time", NOW])
    monkeypatch.undo()
    capsys.readouterr()
    runs = spark.read.format("delta").load(str(warehouse / "pipeline_runs")).collect()
    assert [r["outcome"] for r in runs] == ["started"]
    versions = _versions(spark, warehouse)

    code, out, err = _cli(capsys, *argv, "--processing-time", "2026-03-02T13:00:00Z")

    assert (code, out) == (0, "")
    assert "lines_read=0 landed=0 quarantined=0" in err
    assert _versions(spark, warehouse) == versions
    assert _lines_of(landing_dicts(spark, warehouse)) == [("b1.jsonl", 1)]
    assert _lines_of(_quarantine_dicts(spark, warehouse)) == [("b1.jsonl", 2)]


def test_a_source_that_does_not_exist_exits_2_and_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "never"
    missing = tmp_path / "no-such-batch.jsonl"

    code, out, err = _cli(
        capsys,
        "land",
        "--source",
        str(missing),
        "--warehouse",
        str(root),
        "--processing-time",
        NOW,
    )

    assert (code, out) == (2, "")
    assert err.splitlines() == [f"orders-etl land: error: --source {str(missing)!r} does not exist"]
    assert not root.exists()
