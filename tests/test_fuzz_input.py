"""Hostile input: the landing parser and the command line under fuzzing.

The parser is checked differentially. A plain-Python reading of the contract's input rules
(`contract_verdict`) decides for every line whether it is a valid order event and what its typed
values are; `parse_order_lines` must agree on every line, never fail, and give every rejected line
a known reason code. Volume goes through DataFrames (a seeded corpus of mutated lines, and
hypothesis batches); the file-level cases (gzip, byte-order mark, CRLF, invalid UTF-8, NUL bytes,
a 10 MB line, odd file names) go through real `land` runs, where the accounting must hold:
landed + quarantined = non-blank lines, each line exactly once.

Bad arguments to every command exit 2 with one line on stderr, before Spark is touched, and write
nothing.
"""

from __future__ import annotations

import gzip
import json
import random
import re
from collections import Counter
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from orders_etl import cli
from orders_etl.schemas import INPUT_FIELDS, STATUSES, Reason
from orders_etl.transforms.parse import parse_order_lines
from tests.conftest import ContextFactory
from tests.helpers import LINES_SCHEMA, VALID, event, land_path

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
REASONS = frozenset(v for k, v in vars(Reason).items() if k.isupper())

# --- the contract's input rules, in plain Python -------------------------------------------------

_ISO_WITH_ZONE = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]{1,9})?)?"
    r"(Z|[+-][0-9]{2}:[0-9]{2})"
)
_DECIMAL_TEXT = re.compile(r"-?[0-9]+(\.[0-9]+)?")
_CURRENCY = re.compile(r"[A-Z]{3}")
_EXPONENT = re.compile(r"[eE]")


class _Rejected(Exception):
    pass


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [k for k, _ in pairs]
    if len(keys) != len(set(keys)):
        raise _Rejected("duplicate key")
    return dict(pairs)


def _no_constants(name: str) -> Any:
    raise _Rejected(f"{name} is not JSON")


def _parse_event_time(text: str) -> datetime | None:
    """ISO-8601 with a zone, extended format; offsets as java.time accepts them (|h| <= 18)."""
    if not _ISO_WITH_ZONE.fullmatch(text):
        return None
    zone = text[-6:]
    if zone[0] in "+-":
        hours, minutes = int(zone[1:3]), int(zone[4:6])
        if minutes > 59 or hours > 18 or (hours == 18 and minutes > 0):
            return None
    try:
        value = datetime.fromisoformat(text.replace(" ", "T", 1))
    except ValueError:
        return None
    return value.astimezone(UTC).replace(tzinfo=None)


def _amount_text(value: Any) -> str | None:
    """The amount as decimal text: a JSON number by its value (so -0 is 0), a string as
    written (a leading minus is out of range, even on zero)."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, Decimal):
        return format(value.copy_abs() if value == 0 else value, "f")
    if isinstance(value, str):
        return value.strip(" ")
    return None


def contract_verdict(
    raw: str, now: datetime = NOW, via_double: bool = False
) -> dict[str, Any] | None:
    """Return the typed event a line stands for, or None when the contract rejects it.

    `via_double` reads fractional numbers through a binary double first, as Spark does with
    numbers in exponent notation.
    """
    try:
        obj = json.loads(
            raw,
            object_pairs_hook=_no_duplicates,
            parse_constant=_no_constants,
            parse_float=(lambda s: Decimal(repr(float(s)))) if via_double else Decimal,
            parse_int=Decimal,
        )
    except (_Rejected, ValueError, RecursionError):
        return None
    if not isinstance(obj, dict):
        return None
    order_id, customer_id = obj.get("order_id"), obj.get("customer_id")
    status, currency, event_time = obj.get("status"), obj.get("currency"), obj.get("event_time")
    if not all(isinstance(v, str) for v in (order_id, customer_id, status, currency, event_time)):
        return None
    assert isinstance(order_id, str) and isinstance(customer_id, str)
    assert isinstance(currency, str) and isinstance(event_time, str)
    if not order_id.strip(" ") or len(order_id) > 64 or not customer_id.strip(" "):
        return None
    if status not in STATUSES or not _CURRENCY.fullmatch(currency):
        return None
    text = _amount_text(obj.get("amount"))
    if text is None or not _DECIMAL_TEXT.fullmatch(text) or text.startswith("-"):
        return None
    integer, _, fraction = text.partition(".")
    if len(integer.lstrip("0")) > 16 or len(fraction.rstrip("0")) > 2:
        return None
    moment = _parse_event_time(event_time)
    if moment is None or moment > (now + timedelta(days=1)).replace(tzinfo=None):
        return None
    return {
        "order_id": order_id,
        "customer_id": customer_id,
        "status": status,
        "amount": Decimal(text).quantize(Decimal("0.01")),
        "currency": currency,
        "event_time": moment,
    }


_LONE_SURROGATE = re.compile(
    r"\\u[dD][89abAB][0-9a-fA-F]{2}(?!\\u[dD][c-fC-F])"
    r"|(?<!\\u[dD][89abAB][0-9a-fA-F]{2})\\u[dD][c-fC-F][0-9a-fA-F]{2}"
)


def known_deviation(raw: str) -> bool:
    """Lines the pipeline reads differently from the contract, noted limitations:

    - an amount written as a JSON number in exponent notation is read through a double, so
      `2.5e7` is rendered `2.5E7` and quarantined as invalid_amount though it is 25000000, and
      `1e-400` underflows to 0;
    - a lone UTF-16 surrogate escape (`"\\ud800"`) cannot be stored as UTF-8 and is replaced.

    Such a line must be quarantined with a reason, or land as its double value.
    """
    if _LONE_SURROGATE.search(raw):
        return True
    return bool(re.search(r'"amount"\s*:\s*-?[0-9.]+[eE]', raw))


# --- running the parser --------------------------------------------------------------------------


def lines_df(spark: SparkSession, raws: list[str]) -> DataFrame:
    rows = [("fuzz.jsonl", "sha", i + 1, raw) for i, raw in enumerate(raws)]
    return spark.createDataFrame(rows, LINES_SCHEMA)


def check_against_contract(spark: SparkSession, raws: list[str]) -> Counter[str]:
    """Parse `raws` in one Spark job and compare every line with `contract_verdict`.

    Returns how many lines were valid, rejected (and why) and known deviations.
    """
    parsed = parse_order_lines(lines_df(spark, raws), NOW)
    rows = {r["line_number"]: r for r in parsed.collect()}
    assert sorted(rows) == list(range(1, len(raws) + 1)), "a line was lost or doubled"
    tally: Counter[str] = Counter()
    mismatches: list[str] = []
    for number, raw in enumerate(raws, start=1):
        row = rows[number]
        assert row["raw"] == raw
        assert row["reason"] is None or row["reason"] in REASONS, row["reason"]
        expected = contract_verdict(raw)
        if known_deviation(raw):
            tally["known_deviation"] += 1
            if row["reason"] is not None:
                continue  # quarantined with a reason: nothing lost, nothing wrong landed
            expected = contract_verdict(raw, via_double=True)
            if _LONE_SURROGATE.search(raw):
                continue  # landed with the surrogate replaced
        if expected is None:
            tally[f"rejected:{row['reason']}"] += 1
            if row["reason"] is None:
                mismatches.append(f"landed but the contract rejects it: {raw[:200]!r}")
            continue
        tally["valid"] += 1
        got = {name: row[name] for name in INPUT_FIELDS}
        if row["reason"] is not None:
            mismatches.append(f"quarantined ({row['reason']}) but valid: {raw[:200]!r}")
        elif got != expected:
            mismatches.append(f"landed as {got} but means {expected}: {raw[:200]!r}")
    assert not mismatches, f"{len(mismatches)} disagreements, e.g.\n" + "\n".join(mismatches[:8])
    return tally


# --- a seeded corpus: hand-made hostile lines and mutations of valid ones ------------------------

HAND_MADE: list[str] = [
    json.dumps(VALID),
    "{",
    "}",
    "null",
    "true",
    "42",
    '"a string"',
    "[]",
    "{}",
    '{"order_id": "o1"}',
    "{'order_id': 'o1'}",
    json.dumps(VALID) + " trailing",
    json.dumps(VALID) + json.dumps(VALID),
    json.dumps(VALID) + "," + json.dumps(VALID),
    json.dumps(VALID) + "]",
    json.dumps(VALID) + "}",
    json.dumps(VALID) + '], {"x": 1}',
    json.dumps(VALID) + '}, "x": 1',
    json.dumps(VALID) + "  \t ",
    "[" + json.dumps(VALID) + "]",
    json.dumps(VALID)[:-1] + ",}",
    json.dumps(VALID).replace('"o1"', '"o1" /* comment */'),
    "\x00" + json.dumps(VALID),
    json.dumps(VALID).replace('"c1"', '"c\x00d"'),
    json.dumps({**VALID, "customer_id": "c\u0000d"}),
    json.dumps(VALID).replace('"c1"', '"c\x01"'),
    json.dumps(VALID).replace('"c1"', '"\ufffd\ufffd"'),
    "\ufeff" + json.dumps(VALID),
    json.dumps(VALID) + "\r",
    "[" * 5000 + "]" * 5000,
    '{"a":' * 3000 + "1" + "}" * 3000,
    json.dumps({**VALID, "nested": json.loads('{"a":' * 200 + "1" + "}" * 200)}),
    '{"order_id": "o1", "order_id": "o2", "customer_id": "c1", "status": "paid", '
    '"amount": 1, "currency": "EUR", "event_time": "2026-03-01T10:00:00Z"}',
    json.dumps(VALID)[:-1] + ', "extra": {"k": 1, "k": 2}}',
    json.dumps({**VALID, "amount": "1e999999999"}),
    json.dumps(VALID).replace('"12.50"', "1e999999999"),
    json.dumps(VALID).replace('"12.50"', "-1e999999999"),
    json.dumps(VALID).replace('"12.50"', "1e-999999999"),
    json.dumps(VALID).replace('"12.50"', "9" * 400),
    json.dumps(VALID).replace('"12.50"', "0." + "0" * 300 + "1"),
    json.dumps(VALID).replace('"12.50"', "NaN"),
    json.dumps(VALID).replace('"12.50"', "Infinity"),
    json.dumps(VALID).replace('"12.50"', "-0"),
    json.dumps(VALID).replace('"12.50"', "-0.0"),
    json.dumps({**VALID, "amount": "-0.00"}),
    json.dumps(VALID).replace('"12.50"', "2.5e7"),
    json.dumps(VALID).replace('"12.50"', "1.5e2"),
    json.dumps(VALID).replace('"12.50"', "1.255E1"),
    json.dumps(VALID).replace('"12.50"', "007"),
    json.dumps(VALID).replace('"12.50"', "12.500000000000000000000000000000000000000000"),
    json.dumps(VALID).replace('"12.50"', "9999999999999999.99"),
    json.dumps(VALID).replace('"12.50"', "10000000000000000"),
    json.dumps({**VALID, "amount": " 12.5 "}),
    json.dumps({**VALID, "amount": "12.5\n"}),
    json.dumps({**VALID, "amount": "\u0661\u0662"}),
    json.dumps({**VALID, "amount": "+5"}),
    json.dumps({**VALID, "amount": True}),
    json.dumps({**VALID, "amount": None}),
    json.dumps({**VALID, "amount": [1]}),
    json.dumps({**VALID, "amount": {"value": 1}}),
    json.dumps({**VALID, "order_id": 7}),
    json.dumps({**VALID, "order_id": ["o1"]}),
    json.dumps({**VALID, "order_id": "x" * 64}),
    json.dumps({**VALID, "order_id": "\U0001f600" * 64}),
    json.dumps({**VALID, "order_id": "\U0001f600" * 65}),
    json.dumps({**VALID, "order_id": "\t"}),
    json.dumps({**VALID, "customer_id": "   "}),
    json.dumps({**VALID, "customer_id": False}),
    json.dumps({**VALID, "status": "PAID"}),
    json.dumps({**VALID, "status": "paid "}),
    json.dumps({**VALID, "status": 1}),
    json.dumps({**VALID, "currency": "EUR\n"}),
    json.dumps({**VALID, "currency": "EUR\u2028"}),
    json.dumps({**VALID, "currency": "\nEUR"}),
    json.dumps({**VALID, "currency": "ÉUR"}),
    json.dumps({**VALID, "currency": "EU"}),
    json.dumps({**VALID, "event_time": "2026-03-01T10:00:00Z\n"}),
    json.dumps({**VALID, "event_time": "2026-03-01T10:00:00+14:00"}),
    json.dumps({**VALID, "event_time": "2026-03-01T10:00:00-12:00"}),
    json.dumps({**VALID, "event_time": "2026-03-01T10:00:00+18:00"}),
    json.dumps({**VALID, "event_time": "2026-03-01T10:00:00+18:01"}),
    json.dumps({**VALID, "event_time": "2026-03-01T10:00:00+23:59"}),
    json.dumps({**VALID, "event_time": "2026-03-01T10:00:00+05:60"}),
    json.dumps({**VALID, "event_time": "2024-02-29T12:00:00Z"}),
    json.dumps({**VALID, "event_time": "2025-02-29T12:00:00Z"}),
    json.dumps({**VALID, "event_time": "2000-02-29T23:59:59.999999999-12:00"}),
    json.dumps({**VALID, "event_time": "1900-02-29T12:00:00Z"}),
    json.dumps({**VALID, "event_time": "2026-03-01T24:00:00Z"}),
    json.dumps({**VALID, "event_time": "2026-03-01T23:59:60Z"}),
    json.dumps({**VALID, "event_time": "2026-03-01 10:00Z"}),
    json.dumps({**VALID, "event_time": "2026-03-01t10:00:00z"}),
    json.dumps({**VALID, "event_time": "20260301T100000Z"}),
    json.dumps({**VALID, "event_time": "2026-03-11T12:00:00Z"}),
    json.dumps({**VALID, "event_time": "2026-03-11T12:00:00.000001Z"}),
    json.dumps({**VALID, "event_time": "2026-03-11T23:00:00+11:00"}),
    json.dumps({**VALID, "event_time": "9999-12-31T23:59:59Z"}),
    json.dumps({**VALID, "event_time": "1970-01-01T00:00:00-00:00"}),
    json.dumps({**VALID, "event_time": 1772359200}),
    json.dumps({**VALID, "event_time": "\u0662026-03-01T10:00:00Z"}),
    json.dumps({**VALID, "unknown": None, "": "", "ORDER_ID": "x"}),
    json.dumps(VALID, indent=2).replace("\n", " "),
    json.dumps(VALID, ensure_ascii=False),
    json.dumps({**VALID, "customer_id": "\u00e9\u4e2d\U0001f600"}, ensure_ascii=True),
    "\u2028" + json.dumps(VALID),
    json.dumps(VALID).replace(": ", ":\u00a0"),
    json.dumps(VALID).replace('"order_id"', '"order\\u005fid"'),
    json.dumps(VALID).replace('"o1"', '"\\ud800"'),
]


def mutate(rng: random.Random, line: str) -> str:
    """One random edit of a line: a character flipped, dropped, doubled or inserted, a cut,
    a field replaced by a value of another type, or a key duplicated."""
    kind = rng.randrange(7)
    position = rng.randrange(len(line) + 1)
    hostile = rng.choice(
        ['"', "\\", "{", "}", ",", ":", "\x00", "\x7f", "\ufffd", "\ufeff", "\r", "é", "9", "e9"]
    )
    if kind == 0:
        return line[:position] + hostile + line[position + 1 :]
    if kind == 1:
        return line[:position] + line[position + 1 :]
    if kind == 2:
        return line[:position] + hostile + line[position:]
    if kind == 3:
        return line[:position]
    if kind == 4:
        obj = json.loads(line)
        key = rng.choice(INPUT_FIELDS)
        obj[key] = rng.choice(
            [None, True, 0, -1, 1.5, 1e300, 10**20, "", " ", [], {}, "x" * 70, obj.get(key)]
        )
        return json.dumps(obj)
    if kind == 5:
        key = rng.choice(INPUT_FIELDS)
        return line[:-1] + f', "{key}": {json.dumps(rng.choice(["o9", 1, None]))}}}'
    return line.replace(" ", rng.choice(["", "  ", "\t", "\n"]))


def valid_line(rng: random.Random) -> str:
    moment = datetime(2024, 1, 1, tzinfo=UTC) + timedelta(seconds=rng.randrange(70_000_000))
    offset = timedelta(minutes=rng.choice([0, 60, -300, 330, 840, -720, 345, -570]))
    local = moment.astimezone(timezone(offset))
    stamp = local.isoformat(timespec=rng.choice(["minutes", "seconds", "milliseconds"]))
    amount: Any = rng.choice(
        [
            f"{rng.randrange(10**6)}.{rng.randrange(100):02d}",
            rng.randrange(10**6),
            round(rng.random() * 1000, 2),
            f"{rng.randrange(10**16)}",
            f"{rng.randrange(10**3)}.{rng.randrange(1000):03d}",
            "0.1" + "0" * rng.randrange(5),
        ]
    )
    return json.dumps(
        {
            "order_id": f"o{rng.randrange(10**6)}",
            "customer_id": rng.choice(["c1", "cust-\u00e9", "\U0001f600", " c "]),
            "status": rng.choice(STATUSES),
            "amount": amount,
            "currency": rng.choice(["EUR", "USD", "JPY", "GBP"]),
            "event_time": stamp.replace("+00:00", rng.choice(["Z", "+00:00", "-00:00"])),
        }
    )


def seeded_corpus(size: int, seed: int = 20260310) -> list[str]:
    rng = random.Random(seed)
    corpus = list(HAND_MADE)
    while len(corpus) < size:
        line = valid_line(rng)
        for _ in range(rng.choice([0, 0, 1, 1, 2, 3])):
            try:
                line = mutate(rng, line)
            except (ValueError, IndexError):
                break
        corpus.append(line)
    garbage = random.Random(seed + 1)
    for _ in range(200):
        data = bytes(garbage.randrange(256) for _ in range(garbage.randrange(1, 80)))
        corpus.append(data.decode("utf-8", errors="replace").replace("\n", " "))
    return corpus


@pytest.mark.slow
def test_parser_agrees_with_the_contract_on_a_seeded_hostile_corpus(spark: SparkSession) -> None:
    corpus = seeded_corpus(3000)
    tally = check_against_contract(spark, corpus)
    print(f"\nfuzz corpus: {len(corpus)} lines: {dict(sorted(tally.items()))}")
    assert tally["valid"] >= 500, "the corpus must also hold many valid lines"
    assert sum(n for k, n in tally.items() if k.startswith("rejected:")) >= 1000


# --- hypothesis batches --------------------------------------------------------------------------

_offsets = st.sampled_from(["Z", "+00:00", "-00:00", "+14:00", "-12:00", "+05:45", "+18:00"])
_stamps = st.builds(
    lambda d, fraction, zone, sep: d.strftime(f"%Y-%m-%d{sep}%H:%M:%S") + fraction + zone,
    st.datetimes(min_value=datetime(1970, 1, 1), max_value=datetime(2027, 12, 31)),
    st.sampled_from(["", ".5", ".123456", ".123456789"]),
    _offsets,
    st.sampled_from(["T", " "]),
)
_any_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=6,
)
_fields = {
    "order_id": st.text(max_size=70) | st.just("o1") | _any_json,
    "customer_id": st.text(max_size=6) | st.just(" ") | _any_json,
    "status": st.sampled_from([*STATUSES, "Paid", "", "lost"]) | _any_json,
    "amount": (
        st.decimals(min_value=0, max_value=10**17, places=3, allow_nan=False).map(str)
        | st.decimals(min_value=-5, max_value=10**17, places=2, allow_nan=False).map(float)
        | st.integers(min_value=-(10**3), max_value=10**17)
        | st.from_regex(r"-?[0-9]{1,18}(\.[0-9]{0,4})?", fullmatch=True)
        | _any_json
    ),
    "currency": st.sampled_from(["EUR", "USD", "eur", "EURO", "E1R", "EUR\n"]) | _any_json,
    "event_time": _stamps | st.text(max_size=25) | _any_json,
}
_events = st.fixed_dictionaries(
    {},
    optional={name: strategy for name, strategy in _fields.items()},
).flatmap(
    lambda obj: st.tuples(
        st.just(obj),
        st.dictionaries(st.text(max_size=6), _any_json, max_size=2),
        st.booleans(),
    )
)


def _serialize(item: tuple[dict[str, Any], dict[str, Any], bool]) -> str:
    obj, extra, ascii_only = item
    return json.dumps({**extra, **obj}, ensure_ascii=ascii_only)


_lines = st.one_of(
    _events.map(_serialize),
    st.builds(
        lambda obj: json.dumps({**VALID, **obj}),
        st.fixed_dictionaries({}, optional=dict(_fields.items())),
    ),
    st.text(max_size=60),
    st.binary(max_size=60).map(lambda b: b.decode("utf-8", errors="replace")),
)


@pytest.mark.slow
@settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(batch=st.lists(_lines, min_size=20, max_size=80))
def test_parser_agrees_with_the_contract_on_any_batch(
    spark: SparkSession, batch: list[str]
) -> None:
    check_against_contract(spark, [line.replace("\n", " ") for line in batch])


# --- file-level cases through real `land` runs ---------------------------------------------------

_JAVA_BLANK = b" \t\n\x0b\f\r"


def expected_lines(path: Path) -> dict[int, bytes]:
    """Non-blank lines of a batch file by number, as the contract counts them."""
    data = path.read_bytes()
    if path.name.endswith(".gz"):
        data = gzip.decompress(data)
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    return {
        n: line
        for n, line in enumerate(data.split(b"\n"), start=1)
        if line.removesuffix(b"\r").strip(_JAVA_BLANK)
    }


def accounted_lines(spark: SparkSession, warehouse: Path) -> Counter[tuple[str, int]]:
    seen: Counter[tuple[str, int]] = Counter()
    for table in ("orders_landing", "orders_quarantine"):
        df = spark.read.format("delta").load(str(warehouse / table))
        seen.update((r[0], r[1]) for r in df.select("source_file", "line_number").collect())
    return seen


@pytest.fixture
def hostile_batch(tmp_path: Path) -> Path:
    """A folder of batch files with every file-level hazard of the brief."""
    folder = tmp_path / "batch"
    folder.mkdir()
    valid = [event(f"v{i}", f"2026-03-0{1 + i % 9}T10:00:00Z") for i in range(6)]
    crlf = "\r\n".join(valid[:3]) + "\r\n\r\n"
    (folder / "a-crlf-bom.json").write_bytes(b"\xef\xbb\xbf" + crlf.encode())
    (folder / "b-gzip.jsonl.gz").write_bytes(
        gzip.compress(("\r\n".join(valid[3:]) + "\r\n").encode())
    )
    big = event("big-1", "2026-03-02T10:00:00Z", padding="x" * (10 * 1024 * 1024))
    raw_lines = [
        event("u1", "2026-03-02T10:00:00Z", customer_id="c1").encode(),
        event("u2", "2026-03-02T10:00:00Z").encode().replace(b'"c1"', b'"c\xff\xfe1"'),
        b'{"order_id": "u3", \xc3\x28 "x": 1}',
        b"\xef\xbb\xbf" + event("u4", "2026-03-02T10:00:00Z").encode(),
        event("u5", "2026-03-02T10:00:00Z").encode().replace(b'"c1"', b'"c\x001"'),
        b"\x00\x00\x00",
        b" \t \x0b\x0c ",
        b"\r",
        big.encode(),
        b"[" * 5000 + b"]" * 5000,
        event("u6", "2026-03-02T10:00:00Z", amount="1e999999999").encode(),
        event("u7", "2026-03-02T10:00:00+14:00").encode(),
        event("u8", "2026-03-02T10:00:00-12:00").encode(),
        event("u9", "2024-02-29T10:00:00Z").encode(),
        b'{"order_id": 1, "customer_id": [], "status": {}, "amount": "x", "currency": 3}',
        (event("u10", "2026-03-02T10:00:00Z") + event("u11", "2026-03-02T10:00:00Z")).encode(),
    ]
    (folder / "c-hostile.jsonl").write_bytes(b"\n".join(raw_lines))  # no final newline
    (folder / "d[1].jsonl").write_bytes((event("g1", "2026-03-03T10:00:00Z") + "\n").encode())
    (folder / "d1.jsonl").write_bytes((event("g2", "2026-03-03T10:00:00Z") + "\n").encode())
    (folder / "e space {x}.jsonl").write_bytes((event("g3", "2026-03-03T10:00:00Z")).encode())
    (folder / "f-empty.jsonl").write_bytes(b"")
    (folder / "g-blank.jsonl").write_bytes(b"\n\n  \n")
    return folder


@pytest.mark.slow
def test_land_accounts_for_every_line_of_hostile_files(
    spark: SparkSession, make_ctx: ContextFactory, warehouse: Path, hostile_batch: Path
) -> None:
    ctx = make_ctx("2026-03-10T12:00:00Z")
    result = land_path(ctx, hostile_batch)
    expected = {
        (str(path.resolve()), number): line
        for path in sorted(hostile_batch.iterdir())
        for number, line in expected_lines(path).items()
    }
    seen = accounted_lines(spark, warehouse)
    assert max(seen.values()) == 1, "a line was written twice"
    assert set(seen) == set(expected), (
        f"missing: {sorted(set(expected) - set(seen))[:5]}, extra: "
        f"{sorted(set(seen) - set(expected))[:5]}"
    )
    metrics = result.metrics
    assert metrics["rows_landed"] + metrics["rows_quarantined"] == metrics["lines_read"]
    assert metrics["lines_read"] == len(expected)
    quarantine = spark.read.format("delta").load(str(warehouse / "orders_quarantine"))
    assert (
        quarantine.filter(F.col("reason").isNull() | ~F.col("reason").isin(*REASONS)).count() == 0
    )
    landed = {
        r["order_id"]: r
        for r in spark.read.format("delta").load(str(warehouse / "orders_landing")).collect()
    }
    for order_id in ("v0", "v3", "big-1", "u1", "u7", "u8", "u9", "g1", "g2", "g3"):
        assert order_id in landed, f"{order_id} should have landed"
    assert "u10" not in landed and "u11" not in landed, "two objects on one line are not one"
    assert landed["u7"]["event_time"] == datetime(2026, 3, 1, 20, 0)
    assert landed["u8"]["event_time"] == datetime(2026, 3, 2, 22, 0)
    assert landed["u9"]["event_time"] == datetime(2024, 2, 29, 10, 0)
    assert landed["g1"]["source_file"] != landed["g2"]["source_file"]
    assert "u6" not in landed
    assert "u4" not in landed, "a byte-order mark is removed only at the start of a file"


@pytest.mark.slow
def test_a_truncated_gzip_fails_cleanly_and_writes_nothing(
    spark: SparkSession, warehouse: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "broken"
    folder.mkdir()
    body = gzip.compress(
        ("\n".join(event(f"t{i}", "2026-03-01T10:00:00Z") for i in range(50))).encode()
    )
    (folder / "cut.jsonl.gz").write_bytes(body[: len(body) // 2])
    argv = ["land", "--source", str(folder), "--warehouse", str(warehouse)]
    code = cli.main([*argv, "--processing-time", "2026-03-10T12:00:00Z"])
    err = capsys.readouterr().err
    assert code not in (0, 1, 2), "a corrupt file is an unexpected failure, not bad data"
    assert next(line for line in err.splitlines() if ": error: " in line).startswith(
        "orders-etl land: error:"
    )
    assert "\tat " not in err, "no Java stack trace without --verbose"
    landing = spark.read.format("delta").load(str(warehouse / "orders_landing"))
    assert landing.count() == 0


# --- bad arguments to every command --------------------------------------------------------------


BAD_COMMON = [
    ["--processing-time", "yesterday"],
    ["--processing-time", "2026-03-01T10:00:00"],
    ["--processing-time", "2026-03-01T10:00:00Z' OR 1=1 --"],
    ["--env", "../../etc/passwd"],
    ["--env", "no-such-env"],
    ["--warehouse", ""],
    ["--warehouse", "/"],
    ["--warehouse", "s3a://bucket/"],
    ["--bogus-flag"],
]
BAD_PER_COMMAND: dict[str, list[list[str]]] = {
    "migrate": [["extra-positional"]],
    "land": [
        [],
        ["--source"],
        ["--source", "{missing}"],
        ["--source", "/dev/null"],
        ["--source", "{text_file}"],
    ],
    "incremental": [
        ["--lookback-days", "-1"],
        ["--lookback-days", "three"],
        ["--lookback-days", "1e3"],
        ["--lookback-days", "9999999"],
        ["--lookback-days", "3; DROP TABLE fct_orders"],
    ],
    "backfill": [
        ["--start-date", "2026-02-30", "--end-date", "2026-03-01"],
        ["--start-date", "2026-1-1", "--end-date", "2026-01-02"],
        ["--start-date", "2026-01-01' OR 1=1 --", "--end-date", "2026-01-02"],
        ["--start-date", "2026-03-05", "--end-date", "2026-03-01"],
        ["--start-date", "2026-01-01", "--end-date", "2026-03-01"],
        ["--start-date", "2026-03-09", "--end-date", "2026-03-11"],
        ["--full-refresh"],
    ],
    "rollup": [["--dry-run"]],
    "maintain": [
        ["--start-date", "2026-03-05", "--end-date", "2026-03-01"],
        ["--start-date", "2026-01-01", "--end-date", "2026-03-01"],
        ["--end-date", "2026-03-11"],
        ["--start-date", "03/01/2026"],
        ["--end-date", "2026-03-01) OR (1=1"],
        ["--dry-run"],
    ],
    "verify": [
        ["--start-date", "2026-03-05", "--end-date", "2026-03-01"],
        ["--start-date", "03/01/2026"],
        ["--end-date", "2026-03-01) OR (1=1"],
    ],
    "revenue": [
        ["--as-of", "now"],
        ["--as-of", "2026-03-01"],
        ["--format", "xml"],
        ["--chart", "out.svg"],
        ["--start-date", "2026-13-01"],
        ["--start-date", "2026-03-05", "--end-date", "2026-03-01"],
    ],
    "hourly": [[], ["--source", "{missing}"], ["--source", "{batch}", "--lookback-days", "x"]],
    "demo": [["--days", "seven"], ["--seed", "-1"], ["--batch-hours", "1.5"]],
}
BAD_CASES = [
    (command, args)
    for command, cases in BAD_PER_COMMAND.items()
    for args in [*cases, *BAD_COMMON]
    if not (command == "land" and args == [])
] + [("land", []), ("", []), ("no-such-command", [])]


@pytest.mark.parametrize(("command", "args"), BAD_CASES, ids=lambda v: str(v)[:40])
def test_a_bad_argument_exits_2_with_one_line_and_writes_nothing(
    no_spark: None,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    command: str,
    args: list[str],
) -> None:
    warehouse = tmp_path / "warehouse"
    batch = tmp_path / "batch.jsonl"
    batch.write_text(json.dumps(VALID) + "\n", encoding="utf-8")
    (tmp_path / "notes.txt").write_text("not a batch\n", encoding="utf-8")
    names = {
        "{missing}": str(tmp_path / "missing"),
        "{text_file}": str(tmp_path / "notes.txt"),
        "{batch}": str(batch),
    }
    args = [names.get(a, a) for a in args]
    needs_source = command in ("land", "hourly") and "--source" not in args and args != []
    argv = [command] if command else []
    argv += ["--source", str(batch)] if needs_source else []
    argv += ["--processing-time", "2026-03-10T12:00:00Z"] if "--processing-time" not in args else []
    argv += ["--warehouse", str(warehouse)] if "--warehouse" not in args else []
    argv += args
    code = cli.main(argv)
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert code == 2, captured.err
    assert len(lines) == 1, lines
    assert lines[0].startswith("orders-etl") and ": error: " in lines[0]
    assert captured.out == ""
    assert not warehouse.exists(), "a refused command wrote to the warehouse"
