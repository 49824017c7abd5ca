"""Ingest over HTTP: partial acceptance, idempotency, malformed bodies, decompression limits."""

from __future__ import annotations

import gzip
import time
import tracemalloc
from collections.abc import Callable
from typing import Any

import orjson
import pytest

from keelwatch.store import EmbeddedStore


def records(n: int, prefix: str = "p", **extra: Any) -> list[dict[str, Any]]:
    now = time.time()
    return [
        {
            "prediction_id": f"{prefix}{i}",
            "model": "churn",
            "ts": now - 60 + i * 0.001,
            "features": {"age": 30 + i, "plan": "pro"},
            "output": {"value": 0.5},
            **extra,
        }
        for i in range(n)
    ]


def count(store: EmbeddedStore, final: bool = False) -> int:
    sql = "SELECT count() AS n FROM predictions" + (" FINAL" if final else "")
    return int(store.query(sql).column("n")[0].as_py())


def post(client: Any, body: Any, **headers: str) -> Any:
    content = body if isinstance(body, bytes) else orjson.dumps(body)
    return client.post("/v1/predictions", content=content, headers=headers)


def test_good_records_stored_bad_ones_named(client: Any, store: EmbeddedStore) -> None:
    batch = records(5)
    batch[3]["ts"] = "soon"
    answer = post(client, {"records": batch})
    assert answer.status_code == 200
    assert answer.json() == {
        "accepted": 4,
        "rejected": [{"index": 3, "field": "ts", "error": "must be a number, got str"}],
    }
    assert count(store) == 4


def test_same_batch_twice_stores_one_copy(client: Any, store: EmbeddedStore) -> None:
    body = orjson.dumps({"records": records(50)})
    for _ in range(2):
        assert post(client, body).json()["accepted"] == 50
    # The insert deduplication token refuses the second insert outright: no FINAL needed.
    assert count(store) == 50


def test_replayed_record_in_another_batch_is_one_copy_after_final(
    client: Any, store: EmbeddedStore
) -> None:
    first = records(10)
    post(client, {"records": first})
    post(client, {"records": [first[4], *records(3, prefix="q")]})
    assert count(store, final=True) == 13
    assert count(store) == 14  # until a merge, only FINAL (or argMax by id) hides the replay


def test_gzip_body_is_accepted(client: Any, store: EmbeddedStore) -> None:
    body = gzip.compress(orjson.dumps({"records": records(20)}))
    assert post(client, body, **{"content-encoding": "gzip"}).json()["accepted"] == 20
    assert count(store) == 20


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (b"", 400),
        (b"\xff\xfe\x00garbage", 400),
        (b'{"records": [{"prediction_id": "\\ud800"}]}', 400),
        (b"[1, 2, 3]", 422),
        (b'{"records": 5}', 422),
        (b'{"records": [1e400]}', 400),
        (b"[" * 10000, 400),
        (b'{"records": [' + b"null," * 1000 + b"null]}", 200),
        (b'"records"', 422),
    ],
)
def test_malformed_bodies_get_4xx(client: Any, body: bytes, status: int) -> None:
    answer = post(client, body)
    assert answer.status_code == status
    assert "detail" in answer.json() or answer.json()["accepted"] == 0


def test_invalid_gzip_is_400(client: Any) -> None:
    answer = post(client, b"not gzip at all", **{"content-encoding": "gzip"})
    assert answer.status_code == 400


def test_gzip_bomb_is_413_in_bounded_memory(app_client: Callable[..., Any]) -> None:
    limit = 1 << 20
    bomb = gzip.compress(b"\0" * (64 << 20), compresslevel=9)  # 64 MiB -> ~64 KB
    with app_client(max_decompressed_bytes=limit) as client:
        tracemalloc.start()
        try:
            answer = post(client, bomb, **{"content-encoding": "gzip"})
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    assert answer.status_code == 413
    assert peak < 16 * limit


def test_oversized_body_is_413(app_client: Callable[..., Any]) -> None:
    with app_client(max_body_bytes=1000) as client:
        assert post(client, {"records": records(100)}).status_code == 413


def test_outcomes_are_stored(client: Any, store: EmbeddedStore) -> None:
    body = {"records": [{"prediction_id": "p1", "model": "churn", "ts": time.time(), "label": 1}]}
    answer = client.post("/v1/outcomes", content=orjson.dumps(body))
    assert answer.json() == {"accepted": 1, "rejected": []}
    assert store.query("SELECT label FROM outcomes").column("label").to_pylist() == ["1"]
