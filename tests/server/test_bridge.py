"""The ClickHouse-HTTP endpoint over the embedded store, read with clickhouse-connect itself."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import clickhouse_connect
import pyarrow as pa
import pytest
from clickhouse_connect.driver.exceptions import DatabaseError

from keelwatch.collector.server._bridge import BridgeError, prepare
from keelwatch.store import EmbeddedStore


@pytest.mark.parametrize(
    "sql",
    [
        "INSERT INTO predictions (model) VALUES ('x')",
        "DROP TABLE predictions",
        "SELECT 1; DROP TABLE predictions",
        "SELECT 1; DROP TABLE predictions; SELECT 2",
        "SELECT * FROM file('/etc/passwd', 'LineAsString')",
        "SELECT * FROM URL('http://127.0.0.1:1/', 'CSV')",
        "SELECT * FROM python(x)",
        "SELECT * FROM remote('127.0.0.1', system.one)",
        "WITH s AS (SELECT * FROM s3('http://x/y')) SELECT * FROM s",
        "/* hidden */ ALTER TABLE predictions DELETE WHERE 1",
        "SELECT 1 /* unterminated",
        "SELECT 'unterminated",
        "SELECT key_hash FROM api_keys",
        "SELECT * FROM default.API_KEYS",
        "SELECT * FROM merge(currentDatabase(), 'api_keys')",
        "SELECT * FROM merge(currentDatabase(), '^api_k')",
        "SELECT * FROM mergeTreeIndex(currentDatabase(), 'api' || '_keys')",
        "SELECT * FROM mergeTreeAnalyzeIndexes(currentDatabase(), 'api' || '_keys')",
        "SELECT * FROM loop(currentDatabase(), 'api' || '_keys')",
    ],
)
def test_prepare_refuses_anything_but_one_read(sql: str) -> None:
    with pytest.raises(BridgeError) as info:
        prepare(sql, {})
    assert info.value.status in (400, 403)


def test_prepare_ignores_names_inside_literals_and_comments() -> None:
    sql, fmt, params = prepare(
        "SELECT 'file(', `url(` -- ; DROP\nFROM system.one FORMAT JSON", {"param_x": "1"}
    )
    assert sql.endswith("\nSETTINGS readonly = 1")
    assert fmt == "JSON"
    assert params == {"x": "1"}


@pytest.fixture
def ch(store: EmbeddedStore, served: Any) -> Iterator[Any]:
    now = time.time()
    store.insert(
        "predictions",
        pa.table(
            {
                "project": ["default"] * 3,
                "model": ["churn", "churn", "fraud"],
                "prediction_id": ["a", "b", "c"],
                "ts": pa.array([now * 1e6] * 3, pa.int64()).cast(pa.timestamp("us", tz="UTC")),
                "latency_ms": [1.0, 2.0, 3.0],
            }
        ),
    )
    with served() as srv:
        client = clickhouse_connect.get_client(host="127.0.0.1", port=srv.port)
        try:
            yield client
        finally:
            client.close()


def test_clickhouse_connect_reads_the_embedded_store(ch: Any) -> None:
    result = ch.query(
        "SELECT prediction_id, latency_ms FROM predictions WHERE model = {m:String} "
        "ORDER BY prediction_id",
        parameters={"m": "churn"},
    )
    assert result.result_rows == [("a", 1.0), ("b", 2.0)]
    frame = ch.query_df("SELECT model, count() AS n FROM predictions GROUP BY model ORDER BY model")
    assert frame["n"].tolist() == [2, 1]
    table = ch.query_arrow(
        "SELECT sum(latency_ms) AS s FROM predictions WHERE latency_ms > {x:Float64}",
        parameters={"x": 1.5},
    )
    assert table.column("s").to_pylist() == [5.0]


@pytest.mark.parametrize(
    "sql",
    [
        "INSERT INTO predictions (model) VALUES ('x')",
        "TRUNCATE TABLE predictions",
        "SELECT * FROM file('/etc/passwd', 'LineAsString')",
        "SELECT * FROM url('http://127.0.0.1:1/', 'CSV', 'a String')",
        "SELECT 1; DROP TABLE predictions",
    ],
)
def test_writes_and_outside_access_are_refused(ch: Any, sql: str, store: EmbeddedStore) -> None:
    with pytest.raises(DatabaseError, match=r"403|read-only|not available|one statement"):
        ch.command(sql)
    assert store.query("SELECT count() AS n FROM predictions").column("n")[0].as_py() == 3


def test_insert_through_client_is_refused(ch: Any) -> None:
    with pytest.raises(DatabaseError):
        ch.insert("predictions", [["default", "x"]], column_names=["project", "model"])


def test_clickhouse_store_reads_through_the_endpoint(store: EmbeddedStore, served: Any) -> None:
    from keelwatch.store import ClickHouseStore

    with served() as srv:
        remote = ClickHouseStore(srv.url)
        try:
            table = remote.query("SELECT {s:String} AS s, 1 AS one", {"s": "it's"})
        finally:
            remote.close()
    assert table.to_pylist() == [{"s": "it's", "one": 1}]
