"""The embedded store: Arrow in and out, server-side parameters, dedup tokens, closing."""

from __future__ import annotations

import pyarrow as pa
import pytest

from keelwatch.store import (
    EmbeddedStore,
    Store,
    StoreError,
    StoreUnavailable,
    check_identifier,
    check_token,
)


def test_is_a_store(store: EmbeddedStore) -> None:
    assert isinstance(store, Store)
    assert store.kind == "embedded"


def test_insert_and_query_with_parameters(store: EmbeddedStore) -> None:
    store.insert("audit_log", pa.table({"actor": ["ann", "bob", "o'hara"], "action": ["a"] * 3}))
    found = store.query(
        "SELECT actor FROM audit_log WHERE actor IN {names:Array(String)} ORDER BY actor",
        {"names": ("bob", "o'hara", "'; DROP TABLE audit_log; --")},
    )
    assert found.column("actor").to_pylist() == ["bob", "o'hara"]


def test_repeated_dedup_token_inserts_once(store: EmbeddedStore) -> None:
    # Tables that take tokens set non_replicated_deduplication_window (predictions, outcomes).
    rows = pa.table({"model": ["m"], "prediction_id": ["p1"], "label": ["1"]})
    store.insert("outcomes", rows, dedup_token="t-1")
    store.insert("outcomes", rows, dedup_token="t-1")
    store.insert("outcomes", rows, dedup_token="t-2")
    assert store.query("SELECT count() AS n FROM outcomes").column("n")[0].as_py() == 2


def test_insert_skips_the_merge_on_insert(store: EmbeddedStore) -> None:
    # optimize_on_insert = 0: a repeat inside one insert is kept until a merge (FINAL hides it);
    # with the engine's default the block would be collapsed at a cost of ~3 us per row.
    rows = pa.table({"model": ["m", "m"], "prediction_id": ["p1", "p1"], "label": ["1", "2"]})
    store.insert("outcomes", rows, dedup_token="t-1")
    assert store.query("SELECT count() AS n FROM outcomes").column("n")[0].as_py() == 2
    assert store.query("SELECT count() AS n FROM outcomes FINAL").column("n")[0].as_py() == 1


@pytest.mark.parametrize("name", ["a b", "x;DROP", "1abc", "", "t" * 65, "a.b"])
def test_identifiers_are_checked(name: str, store: EmbeddedStore) -> None:
    with pytest.raises(ValueError):
        check_identifier(name)
    with pytest.raises(ValueError):
        store.insert(name, pa.table({"x": [1]}))


def test_tokens_are_checked() -> None:
    assert check_token("abc-1.2:3_") == "abc-1.2:3_"
    with pytest.raises(ValueError):
        check_token("a'b")


def test_bad_sql_is_a_store_error_with_the_statement(store: EmbeddedStore) -> None:
    with pytest.raises(StoreError) as info:
        store.query("SELECT nope FROM nowhere")
    assert info.value.sql == "SELECT nope FROM nowhere"


def test_closed_store_is_unavailable(store: EmbeddedStore) -> None:
    store.close()
    with pytest.raises(StoreUnavailable):
        store.query("SELECT 1")


@pytest.mark.parametrize(
    ("sql_type", "value", "expected"),
    [
        ("String", "a\\b\tc'd\n\"e", "a\\b\tc'd\n\"e"),
        ("String", "\\N", "\\N"),
        ("Nullable(String)", None, None),
        ("Array(String)", ["a'b", "c\\d", "x\ty"], ["a'b", "c\\d", "x\ty"]),
        ("Array(String)", ("t",), ["t"]),
        ("Array(Float64)", [1.0, 2.5], [1.0, 2.5]),
        ("Float64", 0.1, 0.1),
        ("Int64", -(2**62), -(2**62)),
        ("UInt8", True, 1),
        ("Map(String, String)", {"k'": "v\\"}, [("k'", "v\\")]),
        ("Array(Nullable(String))", ["a", None], ["a", None]),
    ],
)
def test_parameters_round_trip(
    store: EmbeddedStore, sql_type: str, value: object, expected: object
) -> None:
    got = store.query(f"SELECT {{v:{sql_type}}} AS v", {"v": value}).column("v")[0].as_py()
    assert got == expected


def test_datetime_parameter_keeps_microseconds(store: EmbeddedStore) -> None:
    from datetime import datetime, timedelta, timezone

    moment = datetime(2026, 1, 1, 1, 2, 3, 456789, tzinfo=timezone(timedelta(hours=2)))
    got = store.query("SELECT {t:DateTime64(6, 'UTC')} AS t", {"t": moment}).column("t")[0]
    assert got.as_py() == moment
