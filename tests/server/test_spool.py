"""The spool: durable appends, torn tails, replay when the store is back, 503 only when full."""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pytest
from fastapi import HTTPException

from keelwatch.collector.server._spool import Spool, SpoolFull
from keelwatch.collector.server._write_behind import SpoolingWriter, group_token
from keelwatch.store import EmbeddedStore, StoreUnavailable


def batch(ids: list[str]) -> pa.Table:
    n = len(ids)
    return pa.table(
        {
            "model": ["m"] * n,
            "prediction_id": ids,
            "ts": pa.array([int(time.time() * 1e6)] * n).cast(pa.timestamp("us", tz="UTC")),
        }
    )


class FlakyStore:
    """The embedded store, with inserts (and queries, when ``total``) failing while ``down``."""

    kind = "embedded"

    def __init__(self, store: EmbeddedStore) -> None:
        self.inner = store
        self.down = False
        self.total = True

    def _check(self) -> None:
        if self.down:
            raise StoreUnavailable("store is down (test)")

    def command(self, sql: str, params: Mapping[str, Any] | None = None) -> None:
        if self.total:
            self._check()
        self.inner.command(sql, params)

    def query(self, sql: str, params: Mapping[str, Any] | None = None) -> pa.Table:
        if self.total:
            self._check()
        return self.inner.query(sql, params)

    def insert(self, table: str, data: pa.Table, dedup_token: str | None = None) -> None:
        self._check()
        self.inner.insert(table, data, dedup_token)

    def close(self) -> None:
        self.inner.close()


def ids_in(store: EmbeddedStore, table: str = "predictions") -> list[str]:
    found = store.query(f"SELECT prediction_id FROM {table} ORDER BY prediction_id")
    return found.column("prediction_id").to_pylist()


def test_append_read_round_trip_and_reopen(tmp_path: Path) -> None:
    spool = Spool(tmp_path, limit_bytes=1 << 20, segment_bytes=1)
    spool.append("predictions", "t1", batch(["a"]))
    spool.append("outcomes", "t2", batch(["b", "c"]))
    segments = spool.seal()
    assert len(segments) == 2  # segment_bytes=1: one record per segment
    read = [b for s in segments for b in spool.read(s)]
    assert [(b.table, b.token, b.data.num_rows) for b in read] == [
        ("predictions", "t1", 1),
        ("outcomes", "t2", 2),
    ]
    reopened = Spool(tmp_path, limit_bytes=1 << 20)
    assert reopened.size == spool.size > 0
    reopened.append("predictions", "t3", batch(["d"]))
    assert len(reopened.segments()) == 3


def test_torn_tail_is_skipped(tmp_path: Path) -> None:
    spool = Spool(tmp_path, limit_bytes=1 << 20)
    spool.append("predictions", "t1", batch(["a"]))
    spool.append("predictions", "t2", batch(["b"]))
    (segment,) = spool.seal()
    segment.write_bytes(segment.read_bytes()[:-7])  # a crash in the middle of the second append
    assert [b.token for b in spool.read(segment)] == ["t1"]
    segment.write_bytes(b"garbage" + segment.read_bytes())
    assert list(spool.read(segment)) == []


def test_full_spool_refuses(tmp_path: Path) -> None:
    spool = Spool(tmp_path, limit_bytes=1000)
    spool.append("predictions", "t1", batch(["a"]))
    with pytest.raises(SpoolFull):
        spool.append("predictions", "t2", batch(["b"] * 50))


def test_outage_is_spooled_then_replayed_once(store: EmbeddedStore, tmp_path: Path) -> None:
    flaky = FlakyStore(store)
    writer = SpoolingWriter(flaky, Spool(tmp_path, 1 << 20), retry_interval_s=3600)
    try:
        writer.write("predictions", batch(["a", "b"]), "tok-1")
        assert writer.drain() is True
        assert ids_in(store) == ["a", "b"]
        flaky.down = True
        writer.write("predictions", batch(["c"]), "tok-2")
        writer.write("predictions", batch(["c"]), "tok-2")  # a client retry while down
        writer.write("predictions", batch(["d"]), "tok-3")
        assert writer.drain() is False  # still down: nothing lost
        assert not writer.healthy
        assert ids_in(store) == ["a", "b"]
        assert writer.spool.size > 0
        flaky.down = False
        assert writer.drain() is True
        assert writer.healthy
        assert ids_in(store) == ["a", "b", "c", "d"]
        assert writer.spool.size == 0
    finally:
        writer.close()


def test_a_lone_batch_is_inserted_after_the_linger(store: EmbeddedStore, tmp_path: Path) -> None:
    flaky = FlakyStore(store)  # no read barrier: only the inserter's own clock moves it
    writer = SpoolingWriter(flaky, Spool(tmp_path, 1 << 20), linger_s=0.05)
    try:
        writer.write("predictions", batch(["a"]), "tok-1")
        deadline = time.monotonic() + 10
        while writer.spool.size and time.monotonic() < deadline:
            time.sleep(0.01)  # the inserter thread's linger: nothing to inject
        assert ids_in(store) == ["a"]
    finally:
        writer.close()


class GatedStore(FlakyStore):
    """Inserts wait for ``gate`` and are recorded; reads honour the writer's barrier."""

    def __init__(self, store: EmbeddedStore) -> None:
        super().__init__(store)
        self.gate = threading.Event()
        self.inserts: list[int] = []

    def insert(self, table: str, data: pa.Table, dedup_token: str | None = None) -> None:
        self.gate.wait(30)
        self.inserts.append(data.num_rows)
        super().insert(table, data, dedup_token)

    def set_read_barrier(self, barrier: Any) -> None:
        self.inner.set_read_barrier(barrier)


def test_acknowledged_before_insert_and_read_after_it(store: EmbeddedStore, tmp_path: Path) -> None:
    gated = GatedStore(store)
    writer = SpoolingWriter(gated, Spool(tmp_path, 1 << 20))
    try:
        for i in range(4):  # returns with the insert still held: spooled, not stored
            writer.write("predictions", batch([f"p{i}-0", f"p{i}-1"]), f"tok-{i}")
        assert gated.inserts == []
        threading.Timer(0.2, gated.gate.set).start()
        # The read waits at the barrier until every acknowledged batch is stored.
        assert len(ids_in(store)) == 8
        # Batches queued behind the first insert went into one insert, not one each.
        assert sum(gated.inserts) == 8
        assert len(gated.inserts) <= 2
    finally:
        writer.close()
    assert writer.spool.size == 0


def test_group_stored_before_a_crash_is_not_stored_again(
    store: EmbeddedStore, tmp_path: Path
) -> None:
    spool = Spool(tmp_path, 1 << 20)
    tokens = ["t1", "t2", "t3"]
    tables = [batch([f"{t}-a", f"{t}-b"]) for t in tokens]
    for token, table in zip(tokens, tables, strict=True):
        spool.append("predictions", token, table)
    spool.append_group("predictions", group_token(tokens), tokens)
    store.insert("predictions", pa.concat_tables(tables), group_token(tokens))
    # ... killed here, before the spool learnt that the group was stored.
    writer = SpoolingWriter(store, Spool(tmp_path, 1 << 20), retry_interval_s=3600)
    try:
        assert writer.drain() is True
        assert len(ids_in(store)) == 6  # the replay reused the group's token: no second copy
        assert writer.spool.size == 0
    finally:
        writer.close()


def test_full_spool_is_503_with_retry_after(store: EmbeddedStore, tmp_path: Path) -> None:
    flaky = FlakyStore(store)
    flaky.down = True
    writer = SpoolingWriter(flaky, Spool(tmp_path, 1000), retry_interval_s=3600)
    try:
        writer.write("predictions", batch(["a"]), "t1")
        with pytest.raises(HTTPException) as info:
            writer.write("predictions", batch(["b"] * 50), "t2")
        assert info.value.status_code == 503
        assert info.value.headers == {"Retry-After": "5"}
    finally:
        writer.close()


def test_poison_batch_moves_aside(store: EmbeddedStore, tmp_path: Path) -> None:
    spool = Spool(tmp_path, 1 << 20)
    spool.append("no_such_table", "t1", batch(["x"]))
    now = [0.0]
    writer = SpoolingWriter(
        store,
        spool,
        retry_interval_s=3600,
        poison_attempts=2,
        poison_after_s=60,
        clock=lambda: now[0],
    )
    try:
        writer.close()  # drive the replay by hand
        assert writer.drain() is False
        assert writer.drain() is False  # refused twice, but not for long enough yet
        assert not (tmp_path / "dead").exists()
        now[0] = 61.0
        assert writer.drain() is True
        assert [p.name for p in (tmp_path / "dead").iterdir()] == ["000000000001.seg"]
    finally:
        writer.close()


def test_http_ingest_survives_an_outage(
    store: EmbeddedStore, tmp_path: Path, app_client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from keelwatch.collector.server import _app

    flaky = FlakyStore(store)
    monkeypatch.setattr(_app, "apply_retention", lambda *_: {})
    with app_client(spool_dir=str(tmp_path / "spool"), spool_retry_s=3600) as client:
        client.app.state.keelwatch.store = flaky  # routes see the flaky store
        writer = client.app.state.keelwatch.writer.inner  # under the group commit
        assert writer.drain()
        writer.store = flaky
        flaky.down = True
        body = {"records": [{"prediction_id": "p1", "model": "m", "ts": time.time()}]}
        answer = client.post("/v1/predictions", content=orjson.dumps(body))
        assert answer.status_code == 200
        assert answer.json()["accepted"] == 1
        ready = client.get("/readyz")
        assert ready.status_code == 503
        assert ready.json()["spooled_bytes"] > 0
        assert "keelwatch_spooled_bytes" in client.get("/metrics").text
        flaky.down = False
        assert writer.drain()
        assert client.get("/readyz").json() == {"status": "ready", "spooled_bytes": 0}
    assert ids_in(store) == ["p1"]
